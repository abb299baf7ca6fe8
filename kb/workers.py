"""Forked worker processes for work that is CPU-bound and splits into independent parts: the entity pages,
the whole-graph parts of the site, the parsing and mapping of many changed entries.

A worker is forked, so it starts with the parent's objects as they stand (the model, the index of entries)
without pickling them; only each part's result travels back. A worker that dies (killed, out of memory)
fails the command with BrokenProcessPool, never hangs it, and a worker never outlives the command.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

_shared = None  # what the workers of the pool being started read (`shared()`)


def cpus() -> int:
    """The CPUs this process may use: MILKB_JOBS if set, else those of its affinity mask."""
    wanted = os.environ.get("MILKB_JOBS", "")
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@contextmanager
def forked_pool(jobs: int, work):
    """A pool of `jobs` forked workers; in them `shared()` is `work`. Their functions must be module-level."""
    global _shared
    import gc
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    _shared = work
    gc.freeze()  # the workers share the parent's objects copy-on-write; a collection in them would copy them all
    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"),
                                 initializer=die_with_parent) as pool:
            yield pool
    finally:
        _shared = None
        gc.unfreeze()


def shared():
    """In a worker: the `work` its pool was started with."""
    return _shared


def die_with_parent() -> None:
    """In a worker (or another forked child): be killed when the parent dies (kill -9 included), so that no
    worker goes on writing into a build folder nobody will swap in (Linux prctl PR_SET_PDEATHSIG; elsewhere a
    no-op)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before the call above
        os._exit(1)
