"""Forked worker processes for work that is CPU-bound and splits into independent parts: the entity pages,
the whole-graph parts of the site, the parsing and mapping of many changed entries.

A worker is forked, so it starts with the parent's objects as they stand (the model, the index of entries)
without pickling them; only each part's result travels back. A worker that dies (killed, out of memory)
fails the command with BrokenProcessPool, never hangs it, and a worker never outlives the command.

`Child` is one forked child doing one job beside the command: the fingerprint of the entries, the links of a
rebuild's reused files, the saving of the query store (which alone outlives a killed command).
"""
from __future__ import annotations

import os
import signal
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
    _before_fork()
    gc.freeze()  # the workers share the parent's objects copy-on-write; a collection in them would copy them all
    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"),
                                 initializer=die_with_parent) as pool:
            yield pool
    finally:
        _shared = None
        gc.unfreeze()


def alive(pid: int) -> bool:
    """Whether a process `pid` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def shared():
    """In a worker: the `work` its pool was started with."""
    return _shared


def die_with_parent() -> None:
    """In a worker (or another forked child): be killed when the parent dies (kill -9 included), so that no
    worker goes on writing into a build folder nobody will swap in (Linux prctl PR_SET_PDEATHSIG; elsewhere a
    no-op). The parent calls `_before_fork` first: this imports nothing."""
    if _prctl:
        _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    if os.getppid() == 1:  # the parent died before the call above
        os._exit(1)


_prctl = None  # libc's prctl, found by `_before_fork`; False where there is none


def _before_fork() -> None:
    """In the parent, before a fork: find what `die_with_parent` calls. A forked child must import nothing:
    another thread of the parent (importing rich, say) may have held an import lock at the fork, and the
    child would wait for it forever."""
    global _prctl
    if _prctl is None:
        try:
            import ctypes

            _prctl = ctypes.CDLL(None).prctl
        except (OSError, AttributeError):
            _prctl = False


_detached: list[int] = []  # the children `detached` forked that are not reaped yet


def detached(job, keep: int | None = None, low: bool = True) -> bool:
    """`job()` in a forked child that nothing waits for, at the lowest priority if `low`: it goes on after
    this process, its standard streams on /dev/null (a caller reading this process's output is not kept
    waiting), with no descriptor of this process's but `keep` (a lock it holds until it is done), ignoring
    Ctrl-C. Its errors are its own. The job must use only what is imported already (see `_before_fork`).
    False if there is no fork (the job was not run).

    One fork, not two (a child forking the grandchild and ending at once, which the caller waits for: 10 ms
    more of a rebuild at 10,000 systems, as each fork copies the page tables of a large process). The child
    is reaped by a later call, so that a process that goes on (a program using milkb, the tests) gathers no
    zombies; once this process ends it is the system's."""
    if not hasattr(os, "fork"):
        return False
    _reap_detached()
    try:
        pid = os.fork()
    except OSError:
        return False
    if pid == 0:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            kept = keep if keep is not None and keep > 2 else 1 << 16
            os.closerange(3, kept)  # nor anything else of the caller's (a pipe it waits on)
            os.closerange(kept + 1, 1 << 16)
            if low:
                os.nice(19)
            job()
        finally:
            os._exit(0)
    _detached.append(pid)
    return True


def _reap_detached() -> None:
    for pid in list(_detached):
        try:
            done = os.waitpid(pid, os.WNOHANG)[0]
        except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored)
            done = pid
        if done:
            _detached.remove(pid)


def name_process(name: str) -> None:
    """Name this process `name` where `ps` and /proc/PID/comm show it (Linux prctl PR_SET_NAME, at most 15
    bytes; elsewhere a no-op): `kb-spare`, a rebuild of `kb serve` waiting for its work, `kb-rebuild` doing it."""
    _before_fork()
    if _prctl:
        import ctypes

        _prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)  # PR_SET_NAME = 15


class Child:
    """A forked child doing one job beside this process (`Child.fork`). What the job returns (bytes) comes
    back through a pipe, and so does an OSError it raises, as that error."""

    def __init__(self, pid: int, read: int, what: str):
        self.pid: int | None = pid  # until it is reaped
        self._read, self._what = read, what

    @classmethod
    def fork(cls, job, what: str, *, with_parent: bool = True) -> Child | None:
        """`job()` in a forked child; None where there is no fork, or no pipe or process to be had (the
        caller then does the job itself). `what` names the child in an error. `with_parent`: the child is
        killed when this process dies; else it finishes its job, ignoring Ctrl-C (as Ctrl-C reaches every
        process of a terminal's foreground group)."""
        if not hasattr(os, "fork"):
            return None
        if with_parent:
            _before_fork()
        try:
            read, write = os.pipe()
        except OSError:
            return None
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, set() if with_parent else {signal.SIGINT})
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(read)
            os.close(write)
            return None
        if pid == 0:  # the child: the job, its answer as "\0" + bytes or "errno\0message\0file", out at once
            code = 0
            try:
                os.close(read)
                if with_parent:
                    die_with_parent()
                else:
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                write_all(write, b"\0" + (job() or b""))
            except OSError as e:
                write_all(write, f"{e.errno or 0}\0{e.strerror or e}\0{e.filename or ''}".encode(errors="replace"))
                code = 1
            except BaseException:
                code = 2
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(write)
        return cls(pid, read, what)

    def result(self) -> bytes:
        """Wait for the child and return what its job returned; its OSError is raised here, and an OSError
        too if it ended otherwise. Interrupted (Ctrl-C), the child stays known to `kill`."""
        with os.fdopen(self._read, "rb", closefd=False) as pipe:
            said = pipe.read()
        try:
            code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        except ChildProcessError:  # reaped elsewhere: judged by what it said
            code = 0 if said.startswith(b"\0") else 1
        self.pid = None
        os.close(self._read)
        if code == 0 and said.startswith(b"\0"):
            return said[1:]
        number, message, filename = (said.decode(errors="replace").split("\0") + ["", "", ""])[:3]
        raise OSError(int(number) if number.isdigit() else 0,
                      message if code == 1 and message else f"{self._what} ended with {code}", filename or None)

    def join(self) -> None:
        """Wait for the child, whatever became of it (as a thread's `join`)."""
        if self.pid is not None:
            try:
                self.result()
            except OSError:
                pass

    def kill(self) -> None:
        """Stop the child at once and reap it."""
        if self.pid is not None:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
            self.join()


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to descriptor `fd` (`os.write` may write less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
