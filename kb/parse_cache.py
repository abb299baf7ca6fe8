"""Parsed and mapped entries kept in `.kb-cache/parsed.pickle`, so that a run parses and maps only the files
that changed.

A file is recognised by its path, id, class, size and content hash (BLAKE2b of its bytes). A file whose size
and mtime are those kept, and which had not been modified for 2 s when it was read (`RACY_NS`), is taken to
be unchanged without being read, as git trusts its index. For a file whose
entry mapped without a problem the cache keeps its mapping (triples, key lines, and the id and class of each
entry it links to), not its parse tree: the next run adds those triples as they are, unless an entry it
links to is gone or changed class, in which case the file is parsed and mapped again (so that the broken
link is reported). For any other file it keeps the parsed entry. Mappings are only reused while the code
that makes them, the ontology and the base IRI are the same (`_mapping_stamp`). The cache holds entries
before the checks across files (duplicate ids), which are made afresh each run. It is kept in shards by file
(kb/shards.py), signed with a key kept outside the knowledge base (kb/signing.py), so a planted cache file is
ignored.
"""
from __future__ import annotations

import copy
import hashlib
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

from .loader import Entry, Node, discover, load_entry, mark_duplicate_ids, read_entry_file
from .mapping import Kept, MappedGraph, Premapped, entry_index
from .problems import Problem
from .schema import Schema
from .shards import _CORRUPT, Shards, shard_of
from .store_cache import MAPPING_CODE, libraries
from .uptodate import RACY_NS, content_digest

FORMAT = 9  # bump when what is kept changes shape (7: key lines `Packed`; 8: an entry's lines each once; 9: and
# their digest)
PATH = "parsed.pickle"  # in the cache folder
UNPARSED = Node({}, 0, "map")  # the data of an entry whose kept mapping stands in for its parse


class EntryCache:
    """The kept entries of one knowledge base: `load` the entries, map them, then `save` the mapping."""

    def __init__(self, root: Path, schema: Schema, cache_dir: Path, base_iri: str, ontology_dir: Path,
                 seen: dict | None = None):
        self.root = root
        self._seen = seen or {}  # path → (size, mtime) of entry files as seen just before this run (by the
        # entries' fingerprint: kb/store_cache.py `Saved.seen`), rather than stat each again
        self.schema = schema
        self.path = cache_dir / PATH
        self.base_iri = base_iri
        self._ontology_dir = ontology_dir
        self._shards = Shards(self.path)
        self.stamp = stamp(ontology_dir, base_iri)
        self.kept: dict[str, Kept] = {}  # entry id → its kept mapping, for map_entries
        self._keys: dict[str, tuple] = {}  # entry id → the key of its file (when it read cleanly)
        self._parsed: dict[tuple, Entry] = {}
        self._changed = False
        self._previous: dict = {}  # file key → the mapping kept from the last run
        self._shapes_ok = False  # whether the graph of exactly those mappings met the shapes
        self._stats: dict[str, tuple] = {}  # path → (size, mtime, when read, the key of its content)
        self._restated = False
        self._fresh = 0  # files parsed by `load` (not kept from the last run)

    def afresh(self) -> EntryCache:
        """A new cache of the same knowledge base that takes the head and shards this one read (after `edited`)
        rather than read them again."""
        fresh = EntryCache(self.root, self.schema, self.path.parent, self.base_iri, self._ontology_dir, self._seen)
        fresh._shards = self._shards
        return fresh

    def load(self) -> tuple[list[Entry], list[Problem]]:
        """As `loader.load_entries`, reusing what was kept for unchanged files."""
        parsed, mapped, self._shapes_ok, stats = self._read()
        now = time.time_ns()
        self._previous = mapped
        files, problems = discover(self.root / "entries", self.root, self.schema)
        entries: list[Entry] = []
        fresh: list[tuple] = []
        self._changed = len(parsed) + len(mapped) != len(files)
        for file, rel, entry_id, cls in files:
            data = None
            key = _unchanged(file, stats.get(rel), self._seen)  # by size and mtime, if old enough to trust: not read
            if key is not None:
                self._stats[rel] = stats[rel]
            else:
                seen = _size_mtime(file)  # before reading: a change after it shows in the next run's stat
                data, problem = read_entry_file(file, rel)
                if problem:  # still an entry, so that links to it are not reported as well
                    entries.append(Entry(entry_id, cls, rel, problems=[problem]))
                    self._changed = True
                    continue
                key = (rel, entry_id, str(cls), len(data), content_digest(data))
                if seen is not None and seen[0] == len(data):
                    self._stats[rel] = (*seen, now, key)
                    self._restated |= seen[1] < now - RACY_NS  # the next run can trust it: keep it
            self._keys[entry_id] = key
            premapped = mapped.get(key)
            if premapped is not None:
                self.kept[entry_id] = Kept(premapped, _parser(file, rel, entry_id, cls, data))
                entries.append(Entry(entry_id, cls, rel, UNPARSED))
                continue
            entry = parsed.get(key)
            if entry is None:  # new or changed: parsed below, with the others
                fresh.append((len(entries), file, rel, entry_id, cls, data, key))
                entries.append(Entry(entry_id, cls, rel))
                self._changed = True
                continue
            entries.append(self._take(key, entry))
        self._parse(entries, fresh)
        self._fresh = len(fresh)
        mark_duplicate_ids(entries)
        return entries, problems

    def _take(self, key: tuple, entry: Entry) -> Entry:
        """A parsed entry kept (for the next run) and used: the same parse, a problem list of its own."""
        self._parsed[key] = entry
        taken = copy.copy(entry)
        taken.problems = list(entry.problems)
        return taken

    def _parse(self, entries: list[Entry], fresh: list[tuple]) -> None:
        """Parse the new and changed files (`fresh`, in place in `entries`). Many of them (a first run, a
        checkout) are parsed and mapped by forked workers, at 10,000 entries about half the time on two CPUs:
        an entry that maps without a problem comes back as its mapping, offered to `map_entries` as if kept
        from an earlier run; any other comes back parsed, and is mapped (and its problems found) here."""
        from .workers import cpus, forked_pool

        jobs = min(cpus(), len(fresh) // FRESH_CHUNK)
        if jobs < 2:
            for pos, file, rel, entry_id, cls, data, key in fresh:
                entries[pos] = self._take(key, _parser(file, rel, entry_id, cls, data)())
            return
        from .quantities import learn

        index, duplicated = entry_index(entries)  # as map_entries will have them: links checked alike
        chunks = [(lo, min(lo + FRESH_CHUNK, len(fresh))) for lo in range(0, len(fresh), FRESH_CHUNK)]
        with forked_pool(jobs, (self.schema, self.base_iri, index, duplicated, fresh)) as pool:
            for done, conversions in pool.map(_parse_and_map, chunks):
                learn(conversions)
                for i, premapped, entry in done:
                    pos, file, rel, entry_id, cls, data, key = fresh[i]
                    if premapped is not None:
                        self.kept[entry_id] = Kept(premapped, _parser(file, rel, entry_id, cls, data), fresh=True)
                        entries[pos] = Entry(entry_id, cls, rel, UNPARSED)
                    else:
                        entries[pos] = self._take(key, entry)

    @property
    def sources(self) -> dict[str, tuple]:
        """Each entry file read by `load`, by its path from the root: (size, mtime, when seen, BLAKE2b digest of
        its bytes), as `uptodate` needs to tell a touched file from a changed one (without the ones whose
        stat could not be trusted when read)."""
        return {rel: (size, mtime, seen, key[4]) for rel, (size, mtime, seen, key) in self._stats.items()}

    def changed_lines(self, mapped: MappedGraph) -> set[str] | None:
        """The triples (as N-Triples lines) by which `mapped` differs from the graph that last met the shapes,
        or None if there is no such graph or an entry of this one did not map cleanly: then every focus node
        must be checked (kb/validate.py). Without any change it is the empty set."""
        if not self._shapes_ok or not mapped.all_clean:
            return None
        reused = {id(kept.premapped) for kept in self.kept.values() if kept.entry is None and not kept.fresh}
        old = {line for premapped in self._previous.values() if id(premapped) not in reused for line in premapped.lines}
        new = {line for premapped in mapped.clean.values() if id(premapped) not in reused for line in premapped.lines}
        return old ^ new

    def save(self, mapped: MappedGraph, shapes_ok: bool | None = None) -> None:
        """Keep the mapping of each entry that mapped cleanly, and the parse of every other one. `shapes_ok`:
        whether this graph met the shapes with every entry clean (None: not checked)."""
        keep_parsed, keep_mapped, digests = {}, {}, {}
        for entry_id, key in self._keys.items():
            clean = mapped.clean.get(entry_id)
            kept = self.kept.get(entry_id)
            if clean is not None and mapped.index.get(entry_id) is not None:
                keep_mapped[key] = clean
                digests[entry_id] = clean.digest
                self._changed = self._changed or kept is None or kept.premapped is not clean
            elif key in self._parsed:
                keep_parsed[key] = self._parsed[key]
            elif kept is not None and kept.entry is not None:
                keep_parsed[key] = kept.entry
                self._changed = True
        if shapes_ok is None:  # still true of an unchanged graph
            shapes_ok = self._shapes_ok and not self._changed
        if not self._changed and not self._restated and shapes_ok == self._shapes_ok:
            return

        kept = keep_parsed.keys() | keep_mapped.keys()
        stats = {rel: seen for rel, seen in self._stats.items() if seen[3] in kept}
        items = {("mapped", *key): value for key, value in keep_mapped.items()}
        items.update((("parsed", *key), value) for key, value in keep_parsed.items())
        try:  # sharded by file: after one edit, one shard is written again (kb/shards.py)
            self._shards.save(self.stamp, {"shapes_ok": shapes_ok, "stats": stats, "digests": digests}, items,
                              lambda item: item[1])
        except (OSError, pickle.PickleError):
            pass  # a read-only root still works, only slower

    def save_apart(self, mapped: MappedGraph, shapes_ok: bool | None = None):
        """`save`, in a forked child if many files were parsed (at 10,000 systems a first run's save takes 0.45 s,
        which the command then spends on its own work): something to `join()` once the command is done, or
        None if it was saved here."""
        from .workers import Child

        if self._fresh >= APART_FROM:
            from . import files, signing  # noqa: F401 - what `Shards.save` uses, imported before the fork
            saver = Child.fork(lambda: self.save(mapped, shapes_ok), "the parse cache's saver")
            if saver is not None:
                return saver
        self.save(mapped, shapes_ok)
        return None

    def content(self, mapped: MappedGraph) -> str | None:
        """What names the graph of `mapped` (`content`) when every entry mapped cleanly, else None."""
        if not mapped.all_clean:
            return None
        return content(self.stamp, {entry_id: premapped.digest for entry_id, premapped in mapped.clean.items()})

    # --- the edit path (kb/knowledge_base.py `open_kb`) ---------------------------------------------

    def edited(self, at_most: int) -> Edited | None:
        """The entries as kept, with the files changed since read and parsed, if the cache can stand for the
        rest: the last run's graph met the shapes with every entry clean, the same files hold the same ids
        and classes, and at most `at_most` of them changed. None otherwise (then `load` as usual)."""
        head = self._shards.load_head(self.stamp)
        if head is None or not head["shapes_ok"] or "digests" not in head:
            return None
        stats, digests = head["stats"], head["digests"]
        if not self._shards.complete():  # a shard removed since: load every entry (and keep the cache anew)
            return None
        files, problems = discover(self.root / "entries", self.root, self.schema)
        if problems or len(files) != len(stats) or len(files) != len(digests):
            return None
        now = time.time_ns()
        entries, changed = [], []
        for file, rel, entry_id, cls in files:
            kept = stats.get(rel)
            if kept is None or kept[3][1:3] != (entry_id, str(cls)) or entry_id not in digests:
                return None
            key = _unchanged(file, kept, self._seen)
            if key is None:
                seen = _size_mtime(file)
                data, problem = read_entry_file(file, rel)
                if problem:
                    return None
                key = (rel, entry_id, str(cls), len(data), content_digest(data))
                if seen is not None and seen[0] == len(data):
                    self._stats[rel] = (*seen, now, key)
                    self._restated |= seen[1] < now - RACY_NS
                if key != kept[3]:
                    if len(changed) == at_most:
                        return None
                    changed.append((len(entries), kept[3], key))
                    entries.append(load_entry(rel, entry_id, cls, data))
                    self._keys[entry_id] = key
                    continue
            else:
                self._stats[rel] = kept
            self._keys[entry_id] = key
            entries.append(Entry(entry_id, cls, rel, UNPARSED))
        try:
            old = [self._shards.shard(shard_of(before[0])).get(("mapped", *before)) for _, before, _ in changed]
        except _CORRUPT:
            return None
        if any(premapped is None for premapped in old):
            return None
        self._shapes_ok = True
        return Edited(entries, [(entries[pos], before, premapped) for (pos, before, _), premapped in zip(changed, old)],
                      dict(digests), content(self.stamp, digests))

    def kept_lines(self, entry_id: str) -> list[str] | None:
        """The N-Triples lines of an unchanged entry as kept (after `edited`); None if its shard cannot be read
        (damaged since: the caller makes the lines from the graph)."""
        key = self._keys[entry_id]
        try:
            return self._shards.shard(shard_of(key[0]))[("mapped", *key)].lines
        except _CORRUPT:
            return None

    def kept_key_lines(self, changed: set[str]) -> list:
        """The key lines (`Premapped.key_lines`) of every entry but those `changed`, as kept (after `edited`);
        those of an entry whose shard cannot be read are left out (its problems are then placed at line 1)."""
        found = []
        for entry_id, key in self._keys.items():
            if entry_id not in changed:
                try:
                    found.append(self._shards.shard(shard_of(key[0]))[("mapped", *key)].key_lines)
                except _CORRUPT:
                    pass
        return found

    def keeps_edit(self, edit: Edited) -> bool:
        """Whether `save_edit` has anything to write: an entry changed, or a file's stat can now be trusted."""
        return bool(edit.changed) or self._restated

    def save_edit(self, edit: Edited, mapped: MappedGraph) -> None:
        """Keep the mappings of the changed entries (after `edited`): their shards and the head are written
        again, the other shards stay."""
        if not self.keeps_edit(edit):
            return
        put = {("mapped", *self._keys[entry.id]): mapped.clean[entry.id] for entry, _, _ in edit.changed}
        drop = {("mapped", *before) for _, before, _ in edit.changed} - put.keys()
        kept = set(self._keys.values())
        stats = {rel: seen for rel, seen in self._stats.items() if seen[3] in kept}
        try:
            self._shards.update(self.stamp, {"shapes_ok": True, "stats": stats, "digests": edit.digests}, put, drop,
                                lambda item: item[1])
        except (OSError, pickle.PickleError, *_CORRUPT):
            pass

    def _read(self) -> tuple[dict, dict, bool, dict]:
        saved = self._shards.load(self.stamp)
        if saved is None:
            return {}, {}, False, {}
        head, items = saved
        parsed, mapped = {}, {}
        for (kind, *key), value in items.items():
            (mapped if kind == "mapped" else parsed)[tuple(key)] = value
        return parsed, mapped, head["shapes_ok"], head["stats"]


@dataclass
class Edited:
    """The entries after a few edits (`EntryCache.edited`): each unchanged one as kept (`UNPARSED`), each changed
    one parsed; `changed` holds (the changed entry, its file's key as kept, its kept mapping); `digests` the
    digest of every entry's lines as kept (the changed ones' to be put in); `content` what names the graph
    kept (kb/packed.py)."""

    entries: list[Entry]
    changed: list[tuple[Entry, tuple, Premapped]]
    digests: dict[str, bytes]
    content: str


def content(stamp: tuple, digests: dict[str, bytes]) -> str:
    """What names a graph made under `stamp` (the ontology, the base IRI, the code) from entries whose lines
    have `digests` (entry id → `export.lines_digest`): the packed graph is kept for it (kb/packed.py)."""
    h = hashlib.blake2b(repr(stamp).encode("utf-8", "surrogatepass"), digest_size=16)
    for entry_id in sorted(digests):
        h.update(entry_id.encode("utf-8", "surrogatepass") + b"\0" + digests[entry_id])
    return h.hexdigest()


FRESH_CHUNK = 250  # new or changed files a worker parses and maps at a time
APART_FROM = 2000  # files parsed by a run from which `save_apart` saves in a child (fewer: a shard or a few)


def _parse_and_map(chunk: tuple[int, int]) -> tuple[list, list]:
    """In a forked worker (`EntryCache._parse`): parse and map the fresh files `chunk`; for each, (its place,
    its mapping, None) if it mapped without a problem, else (its place, None, the parsed entry). Also the
    unit conversions learned meanwhile, for the parent's quantity cache."""
    from .mapping import Mapper, _Triples
    from .quantities import learned
    from .workers import shared

    schema, base_iri, index, duplicated, fresh = shared()
    known = len(learned())
    mapper = Mapper(schema, base_iri, index, duplicated)
    scratch = MappedGraph(graph=_Triples(), index=index)
    done = []
    for i in range(*chunk):
        _, file, rel, entry_id, cls, data, _ = fresh[i]
        entry = _parser(file, rel, entry_id, cls, data)()
        premapped = None
        if entry_id not in duplicated and entry.data is not None and not entry.problems:
            mapper.map_entry(entry, scratch)
            premapped = scratch.clean.pop(entry_id, None)
        done.append((i, premapped, None if premapped is not None else entry))
    return done, learned(known)


def _parser(file: str, rel: str, entry_id: str, cls, data: bytes | None):
    """Parse the entry from `data`, or from its file if it was not read."""
    def parse() -> Entry:
        nonlocal data
        if data is None:
            data, problem = read_entry_file(file, rel)
            if problem:
                return Entry(entry_id, cls, rel, problems=[problem])
        return load_entry(rel, entry_id, cls, data)

    return parse


def _size_mtime(file: str) -> tuple[int, int] | None:
    try:
        st = os.lstat(file)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns




def _unchanged(file: str, kept, seen: dict) -> tuple | None:
    """The kept key of `file` if its size and mtime (as in `seen`, else as now) are as kept and it was last
    modified well before it was read (as git trusts its index), else None: then the file is read and hashed."""
    if kept is None:
        return None
    size, mtime, seen_at, key = kept
    now = seen.get(file)
    if now is None:
        now = _size_mtime(file)
    return key if now == (size, mtime) and mtime < seen_at - RACY_NS else None


def _stat(path) -> str:
    st = os.stat(path)
    return f"{st.st_size}-{st.st_mtime_ns}"


def stamp(ontology_dir: Path, base_iri: str) -> tuple:
    """What the kept entries were made with: a cache under another stamp is not read."""
    return FORMAT, _code_stamp(), _mapping_stamp(ontology_dir, base_iri)


def _code_stamp() -> str:
    """The code that parses and maps, and the libraries it uses: a new version never reads an old cache."""
    code = Path(__file__).parent
    return "/".join(_stat(code / name) for name in MAPPING_CODE) + "|" + libraries()


def _mapping_stamp(ontology_dir: Path, base_iri: str) -> str:
    """What mappings depend on besides the entry and the code: the ontology (its keys, units, classes) and
    the base IRI."""
    files = sorted(p for p in ontology_dir.rglob("*") if p.is_file()) if ontology_dir.is_dir() else []
    return base_iri + "|" + "/".join(f"{p.name}:{_stat(p)}" for p in files)
