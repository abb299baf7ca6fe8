"""A rebuild of `kb serve`, in a process of its own: `python -m kb.site.rebuild ROOT SITE [--index-later]`, or
`python -m kb.site.rebuild --spare ROOT SITE`, which imports what a rebuild uses and then waits for the rest of
its arguments, as a JSON list on a line of its standard input (the server starts the next rebuild's process
ahead: at 10,000 systems an edit's pages come 0.2 s sooner). Standard input closed without a line: it ends,
doing nothing. If milkb's code changed while it waited, it runs the rebuild as a process of the new code.

The server starts one after each batch of changes, with `--index-later` (the pages and the graph, the previous
search index kept: kb/site/update.py), and then, if the index was kept, one without it that brings the index up
to date; it stops that one (SIGTERM) when the next change comes. In its own process a rebuild neither holds the
server's interpreter lock (pages and queries are answered meanwhile) nor leaves its knowledge base in the
server's memory (freeing it took 1-2 s at 10,000 systems).

It writes one JSON object to standard output, what the server says of it: `status` "built" (with `search`:
"later" or "made"), "up to date", "errors" (with `problems`, each as `path:line: message`),
"cannot write" or "failed" (with `reason`). "built" and "up to date" come with `made`, what the site's graph
was made from (kb/site/update.py `Updated.made`). Each says which process rebuilt (`pid`), whether it
had been started ahead with its imports done (`ahead`), and how many of the caches it reads it took as that
process had loaded them meanwhile (`preloaded`).

Started ahead, the process also loads the caches a rebuild reads, the parse cache, the packed graph and the
site's kept state, in a thread while it waits (0.5 s of a rebuild at 10,000 systems: kb/site/update.py `preload`). The rebuild
takes them only if their files are still the ones loaded (a `kb build` in another terminal meanwhile writes new
ones), else it reads them itself. They stay in its memory meanwhile: about 270 MB at 10,000 systems.
"""
from __future__ import annotations

import gc
import json
import os
import signal
import sys
import threading
from pathlib import Path


def _stopped(number, frame) -> None:
    """SIGTERM: the forked workers rendering pages are killed (a pool's shutdown would wait for every page
    queued), then the build's own clean-up runs: its unfinished folder is removed, pagefind and the process
    linking reused files are stopped."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.kill()
    raise KeyboardInterrupt


def rebuild(root: Path, site: Path, index_later: bool) -> dict:
    from ..config import load_config
    from ..problems import KBError
    from .update import CannotWrite, update_site

    try:
        updated = update_site(load_config(root), site, search=True, index_later=index_later)
    except KBError as e:
        return {"status": "errors", "problems": [p.format() for p in e.problems]}
    except CannotWrite as e:
        return {"status": "cannot write", "reason": e.error.strerror or str(e.error)}
    except Exception as e:  # noqa: BLE001 - a template error, a full disk …: the server keeps serving and says why
        return {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
    report = updated.report
    if report is None:
        return {"status": "up to date", "made": updated.made()}
    return {"status": "built", "search": "later" if report.search_later else "made", "made": updated.made()}


# what a rebuild imports on its way (most of them lazily, for the commands that do not need them)
AHEAD = ("concurrent.futures", "multiprocessing", "markdown_it", "pyoxigraph", "rdflib", "jinja2", "yaml",
         "kb.knowledge_base", "kb.mapping", "kb.parse_cache", "kb.validate", "kb.shapes", "kb.store_cache",
         "kb.export", "kb.site.build", "kb.site.incremental", "kb.site.model", "kb.site.update", "kb.workers")


def _preload(root: Path, site: Path) -> None:
    """The caches the rebuild will read, loaded as they are now (kb/site/update.py `preload`); best effort:
    without them the rebuild loads them itself."""
    from ..config import load_config
    from .update import preload

    try:  # at a low priority: it runs while the last edit is answered (the new query workers load its graph)
        thread = threading.get_native_id()  # (a thread's own priority: Linux)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + 10))
    except (AttributeError, OSError):
        pass
    try:
        preload(load_config(root), site, search=True)
    except Exception:  # noqa: BLE001 - a kb.toml broken meanwhile …: the rebuild says what is wrong
        pass


def _hurry(thread: threading.Thread) -> None:
    """`thread` back at the priority of the thread calling, where the system lets a priority be raised again
    (root, or a permissive RLIMIT_NICE): the rebuild waits for it now."""
    try:
        if thread.is_alive():
            os.setpriority(os.PRIO_PROCESS, thread.native_id,
                           os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    except (AttributeError, OSError, TypeError):
        pass


def _code() -> list[tuple[str, int, int]]:
    """milkb's files as the caches' stamp sees them, with their size and mtime."""
    from ..uptodate import code_stamps

    return code_stamps()


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGTERM, _stopped)
    gc.disable()  # as in `kb build` (kb/cli.py `command`)
    spare = argv[0] == "--spare"
    try:
        from ..workers import name_process

        if spare:
            import importlib

            code = _code()
            name_process("kb-spare")
            for name in AHEAD:
                importlib.import_module(name)
            loading = threading.Thread(target=_preload, args=(Path(argv[1]), Path(argv[2])), name="kb-preload")
            loading.start()  # while it waits: a change coming meanwhile is read at once
            line = sys.stdin.readline()
            if not line:  # the server did not need it
                os._exit(0)
            _hurry(loading)
            loading.join()  # (what it loaded is the rebuild's first work anyway)
            argv = argv[1:3] + json.loads(line)
            if _code() != code:  # milkb changed while it waited (an editable install): what it imported is not
                # the code the caches are stamped with (kb/uptodate.py `inputs_stamp`), so a process of the new
                os.execv(sys.executable, [sys.executable, "-P", "-m", "kb.site.rebuild", *argv])  # code, in its place
        name_process("kb-rebuild")
        root, site, *flags = argv
        if "--index-later" not in flags:  # the search index: in the background, after the pages and the graph
            os.nice(10)  # are answered, so at a low priority (pagefind and every child inherit it)
        outcome = rebuild(Path(root), Path(site), "--index-later" in flags)
    except KeyboardInterrupt:
        os._exit(143)
    from ..shards import TAKEN

    outcome["pid"], outcome["ahead"] = os.getpid(), spare  # (`ahead`: in the process started ahead, as it was)
    outcome["preloaded"] = len(TAKEN)  # caches the rebuild took as the process loaded them while it waited
    sys.stdout.write(json.dumps(outcome) + "\n")
    sys.stdout.flush()
    os._exit(0)  # without freeing the knowledge base object by object (kb/cli.py `run`)


if __name__ == "__main__":
    main(sys.argv[1:])
