"""The site brought up to date with its inputs, by the steps `kb build` and `kb serve`'s rebuilds share."""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..faults import fault_point


@dataclass
class Updated:
    """What `update_site` did: `report` is None if the site was up to date (nothing loaded or written)."""

    target: Path
    figures: dict  # pages, files and bytes of the site now in `target`
    report: object = None  # the build's `BuildReport`
    kb: object = None  # the KnowledgeBase built from (`kb build` keeps it until it exits: freeing it takes 1-2 s
    # at 10,000 systems)
    fingerprint: str = ""  # of the entries the site was found up to date with or built from (kb/store_cache.py)
    dump: list | None = None  # the identity of its dump `milkb.nt` (`dump_identity`), taken before the check
    # found the site up to date, or by the build before it swapped the site in

    def made(self) -> list | None:
        """What the graph of the site in `target` was made from, as `kb serve` checks it before it answers from
        the saved query store rather than load the dump (kb/serve.py `Graphs`): the fingerprint of the entries,
        and the dump's identity as this build left it or found it, taken before another build could swap in
        another site (a dump of that identity is the one made from those entries). None if there is no dump."""
        return None if self.dump is None else [self.fingerprint, self.dump]


def dump_identity(site: Path) -> list | None:
    """The identity of the site's dump `milkb.nt` (`file_identity`), or None."""
    try:
        return file_identity(os.stat(site / "milkb.nt"))
    except OSError:
        return None


def file_identity(st: os.stat_result) -> list:
    """A file's device, inode, size and modification time: a build that changes the graph writes a new dump,
    one that does not links the previous one."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


class CannotWrite(Exception):
    """The site could not be written (`error`, an OSError); the previous one is still in place."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


def preload(config: Config, target: Path, search: bool) -> None:
    """Load the caches that a rebuild of the site in `target` reads, the parse cache, the packed graph of its
    entries (kb/packed.py) and the site's kept state, as they are now: kb serve's next rebuild process does
    while it waits for a change (kb/site/rebuild.py), 0.5 s of a rebuild at 10,000 systems. The rebuild
    takes them only if their files are still the ones loaded here (kb/shards.py `preload`)."""
    from .. import packed, parse_cache
    from ..shards import preload as load_ahead
    from ..shards import preloaded_head
    from ..uptodate import inputs_stamp, state_path
    from .incremental import FORMAT

    path, stamp = config.cache_dir / parse_cache.PATH, parse_cache.stamp(config.ontology_dir, config.base_iri)
    load_ahead(path, stamp)
    head = preloaded_head(path)
    if head is not None and head["shapes_ok"] and "digests" in head:  # what the edit path would load
        packed.preload(config.cache_dir, parse_cache.content(stamp, head["digests"]))
    load_ahead(state_path(config, target, ".pickle"), (FORMAT, inputs_stamp(config, target, search)))


def update_site(config: Config, target: Path, *, search: bool, progress=nullcontext,
                index_later: bool = False) -> Updated:
    """Build the site into `target` unless the one there was built from the inputs as they are now
    (kb/uptodate.py); meanwhile the query store is saved for `kb show` and `kb query`. `progress()` gives a
    context manager yielding the build's step callback (entered only if there is something to build).
    Raises KBError if the knowledge base has errors, CannotWrite if the site cannot be written.

    `index_later` (with `search`): do not make the search index; keep the previous site's, if it has one
    (pagefind takes most of a rebuild at 10,000 systems: 11-13 s of 15, and as long again as the pages of a
    first build). Such a site is not recorded as built, so the next `update_site` with the search index makes
    it, reusing every page."""
    from .. import uptodate
    from ..store_cache import Saved

    entries = Saved.fingerprint_meanwhile(config, seen=True)  # of the entries as they are before they are read
    kb = listing = None
    try:
        settled(config)  # (a build just before keeps its state for this one in a process of its own)
        dump = dump_identity(target)
        kept, listing = uptodate.unchanged(config, target, search, lambda: entries.fingerprint, lambda: entries.seen)
        if kept is not None:
            return Updated(target, kept, fingerprint=entries.fingerprint, dump=dump)
        from functools import cache

        from ..export import graph_lines
        from ..knowledge_base import load_valid_kb

        entries.fingerprint  # taken before the entries are read (from the child, usually done by now): an entry
        # changed meanwhile differs from it, so the store saved under it never holds an older graph
        kb = load_valid_kb(config.root, shacl=True, save_apart=True, seen=entries.seen)  # its parse cache saved
        # meanwhile; the entry files as the fingerprint saw them, not stat'ed again
        if index_later:  # the site swapped in will not be the one recorded
            uptodate.forget(config, target)
        index = kb.index  # (the build puts a tracker of it in its place)
        # made when first needed, if at all: after an edit neither the pages nor the query store need them
        lines = cache(lambda: graph_lines(kb.mapped, kb.schema.ontology, index))
    except BaseException:  # a knowledge base with errors: the fingerprint's child is not left behind (`kb serve`
        entries.close()  # goes on after it), nor the listing's
        if isinstance(listing, uptodate.Listing):
            listing.close()
        if kb is not None:
            kb.cache_saved()
        raise
    try:
        return _build(config, target, search, progress, index_later, kb, lines, listing, entries)
    finally:
        kb.cache_saved()  # (its parse cache, saved meanwhile)


def _build(config: Config, target: Path, search: bool, progress, index_later: bool, kb, lines, listing,
           entries) -> Updated:
    """The site built (`update_site`), the query store saved meanwhile."""
    from .. import uptodate
    from ..store_cache import save_meanwhile
    from .build import build_site

    started, saver = False, None  # the query store, saved meanwhile: `kb show` and `kb query` then start at once
    keep = []  # what the build leaves for the next one, kept once it is swapped in

    def save(state) -> None:  # once the kept state is loaded (kb/site/incremental.py `State`); None: not known
        nonlocal started, saver
        started = True
        change = state.change if state is not None else None
        update = ((state.kept_graph, change.removed, change.added) if change is not None and not change.everything
                  else None)
        saver = save_meanwhile(config, kb, lines, entries.fingerprint, state and state.graph, update)

    with progress() as step:
        try:
            report = build_site(kb, target, search=search, progress=step, lines=lines, listing=listing,
                                previous=save, index_later=index_later, keep=keep.append)
        except OSError as e:
            raise CannotWrite(e) from e
        finally:
            if not started:  # the build failed before it knew
                save(None)
            if saver is not None:
                saver.join()
    figures = {"pages": report.pages, "files": report.files, "bytes": report.bytes}

    def finish() -> None:
        fault_point("keeping-state")  # (tests stop it here: the next build waits; or kill it)
        for job in keep:  # the site's kept state
            job()
        if not report.search_later:  # (a site without its own search index is not the one a build would write)
            uptodate.record(config, target, report.stamp, entries.fingerprint, report.listing, figures, kb.sources)

    _keep_apart(config, finish)
    return Updated(target, figures, report, kb, entries.fingerprint, report.dump)


SETTLING = "build.lock"  # in the cache folder: held by the process that keeps a build's state (`_keep_apart`)


def settled(config: Config) -> None:
    """Wait until no build of this knowledge base is still keeping what it leaves for the next one (`_keep_apart`):
    the site's kept state and its record are then whole, and the ones the site in place was built with."""
    try:
        import fcntl

        fd = os.open(config.cache_dir / SETTLING, os.O_RDONLY | os.O_CLOEXEC)
    except (ImportError, OSError):  # (no lock file: nothing was ever kept apart)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)


def _keep_apart(config: Config, job) -> None:
    """`job()`, which keeps what a build leaves for the next one (the site's kept state, its record: 0.1-0.15 s
    after one edit at 10,000 systems), in a detached process that goes on after this one, holding `SETTLING`
    until it is done: the site is in place already, and the next build waits for it (`settled`). Without
    fork or the lock, here."""
    from .. import files, signing  # noqa: F401 - what the keeping uses, imported before the fork
    from ..workers import detached

    try:
        import fcntl

        config.cache_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(config.cache_dir / SETTLING, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except (ImportError, OSError):
        job()
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # (another build's, beside this one, is done first)
        if not detached(job, keep=fd, low=False):
            job()
    finally:
        os.close(fd)  # (the detached process holds the lock, not released here)
