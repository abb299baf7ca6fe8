"""Incremental builds: re-render only the parts of the site that a change touches.

The site is made of *units*: an entity's page with its .ttl and .jsonld, a category page, a comparison, a
list page, the dumps. While a unit renders, every lookup it makes in the graph is recorded (`Tracker`): the
(subject, predicate) pairs it read values of, the subjects it read everything of, the (predicate, object)
pairs it asked for subjects of, the predicates it scanned, and whether it looked at the whole graph. After the build,
`.kb-cache/site-HASH.pickle` (one per output folder; a head and shards, kb/shards.py) keeps each unit's reads,
the files it wrote (path, size, modification time) and the triples of the graph, as N-Triples lines by the
entry whose mapping made them (`SiteWriter.graph_runs`).

The next build compares the new graph with the kept triples: the lines of the entries whose lines differ
from those kept (after one edit, one entry's), with no sorting or cutting of the whole graph's lines. A unit
whose reads meet none of the changed triples would render the same bytes, so its files are hard-linked from
the previous site into the new version instead of being rendered again; everything else is rendered as in a
full build. The downloads and the sitemap read the whole graph: any change renders them again (the dumps
from the kept pieces of their unchanged subjects, `kept_dumps`). The queries page names what its saved
queries can read (`Tracker.named`). Nothing is reused when anything but the entries changed (ontology,
templates, static files, saved queries, kb.toml, milkb's own code, the build date, the output folder): the
kept state names all of these (`inputs_stamp`). A kept file whose size or modification time changed since
(edited by hand, removed) makes its unit render again.

The model's memos (a system's table row with its rendered HTML, a category's systems) are kept the same way
(`State.kept_memo`): an entry whose reads meet no changed triple starts the next build's memo. A unit that
uses a memo entry keeps a reference to it (`memo_tag`), not a copy of what the entry read: the systems list
shows 10,000 rows, whose reads would otherwise be kept again by every page that shows them. A change names
the memo entries it touches among its tags, so a unit is touched through any entry it uses.

A reused file is the file a full build would write, so an incremental build is byte-identical to a full one;
`tests/test_incremental.py` checks that after added, deleted, renamed and changed entries.

A rebuild starts from the spare site when there is one (kb/site/output.py `atomic_folder`): the site before
the previous one, kept beside it (`.NAME.spare`) with the listing of its files as they were when it was the
site in place (`keep_spare`). Most of its files are the previous site's own (hard links, or the same bytes):
a reused file it holds with the size and modification time the kept unit names needs nothing, only the others
are linked from the previous site; what the spare holds that this build did not write or link is removed.
"""
from __future__ import annotations

import hashlib
import marshal
import os
import pickle
import sys
from array import array
from bisect import bisect_left
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path

from rdflib import Literal
from rdflib.namespace import RDF

from ..export import graph_lines, lines_digest, nt_term, split_line
from ..shards import _CORRUPT, Packed, Shards, _uriref, shard_of
from ..uptodate import Listing, inputs_stamp, site_names, state_path

FORMAT = 21  # 10: the dumps' offsets count bytes; 11: a row holds its CSV line; 13: reads as digests;
# 14: the graph's lines kept by subject, in the shards; 15: rows and the dumps' offsets `Packed`; 16: the
# offsets by format, as arrays in the dump's order; 17: a row's variants named by strings; 18: the graph's
# lines kept by entry; 19: each entry's `Packed`, with their digest at hand; 20: a summary of each shard;
# 21: its reads' low halves, every memo's values `Packed`


def tag(kind: str, *terms: str) -> str:
    """The string naming one lookup of the graph, of `kind` (see `Change`) with terms as N-Triples writes them:
    what a unit's reads are kept as (`Reads.keys`) and what a change is checked as (`Change.between`)."""
    return kind + "".join(terms)


def digest(tag_: str) -> int:
    """The 64-bit number a tag is kept as (`Reads.keys`), the same in every process. Two tags with one digest
    (at a million distinct tags, about 3 chances in 10^8 that any two share one) can only make a unit render
    again needlessly, never keep one a change touches: a unit is touched when a digest of its reads is a
    changed tag's."""
    return int.from_bytes(hashlib.blake2b(tag_.encode(), digest_size=8).digest(), "little", signed=True)


def memo_tag(name: str, key) -> str:
    """The string naming entry `key` (a term, or a tuple of terms and flags) of the kept memo `name`."""
    parts = key if isinstance(key, tuple) else (key,)
    return tag("M", name, "\0", *(str(k) if isinstance(k, bool) else nt_term(k) for k in parts))


@dataclass
class Reads:
    """What one unit read of the graph, as rdflib terms while it renders."""

    facts: dict = field(default_factory=dict)  # predicate → the subjects it was read of
    subjects: set = field(default_factory=set)
    pairs: set = field(default_factory=set)  # (predicate, object)
    predicates: set = field(default_factory=set)
    objects: set = field(default_factory=set)
    everything: bool = False
    tags: set = field(default_factory=set)  # lookups named by their tag: kept memo entries used (`memo_tag`), a
    # saved query's triple patterns (`named`)

    def merge(self, other: "Reads") -> None:
        for p, subjects in other.facts.items():
            self.facts.setdefault(p, set()).update(subjects)
        self.subjects |= other.subjects
        self.pairs |= other.pairs
        self.predicates |= other.predicates
        self.objects |= other.objects
        self.everything = self.everything or other.everything
        self.tags |= other.tags

    def keys(self, digests: "Digests") -> array:
        """The reads as the kept state keeps them: the digests of the tags naming each lookup (`Change.tags`),
        made in the process that rendered the unit (a worker)."""
        found = array("q")
        whole = self.subjects  # a change to p of s is a change to s as well (`Change.between`): p of a subject read
        for p, subjects in self.facts.items():  # whole is no read of its own (an entity page reads its subject's all)
            found.extend(digests.many("F", subjects - whole if whole else subjects, p))
        found.extend(digests.many("S", self.subjects))
        objects = self.objects  # likewise a change to the subjects with p o is a change to those with o (an IRI:
        # rdflib takes `"x"@en-GB` and `"x"@en-gb` for one literal, which the tags tell apart)
        found.extend(digests.many("P", [po for po in self.pairs if isinstance(po[1], Literal) or po[1] not in objects]
                                  if objects else self.pairs))
        found.extend(digests.many("Q", self.predicates))
        found.extend(digests.many("O", self.objects))
        if self.everything:
            found.extend(digests.many("*", ("*",)))
        found.extend(digests.many("=", self.tags))
        return found


class Digests:
    """The digests of the tags naming lookups (`Reads.keys`), each made once a process: 1.3 million reads
    at 10,000 systems, of 370,000 distinct lookups."""

    def __init__(self):
        self._tables: dict = {}  # (kind, first term) → {term: digest}

    def many(self, kind: str, terms, first=None) -> list[int]:
        """The digest of each of `terms` read as `kind`: "F" (`first` is the predicate), "S", "Q", "O" (a
        term), "P" (a (predicate, object) pair), "=" (a tag made already), "*" (the whole graph)."""
        table = self._tables.get((kind, first))
        if table is None:
            table = self._tables[(kind, first)] = {}
        found = []
        for term in terms:
            d = table.get(term)
            if d is None:
                d = table[term] = digest(_tag_of(kind, term, first))
            found.append(d)
        return found


def _tag_of(kind: str, term, first) -> str:
    if kind in ("=", "*"):
        return term
    terms = term if kind == "P" else (term,) if first is None else (first, term)
    return tag(kind, *map(nt_term, terms))


def unreadable(entry: tuple) -> bool:
    """Whether a memo entry (value, reads) is a kept one whose value cannot be unpickled: whoever uses it
    makes it again."""
    return type(entry[0]) is Packed and entry[0].open() is Packed.UNREADABLE


class Tracker:
    """The graph's lookups (those of `kb.index.Index`), each one recorded in the unit rendering now."""

    def __init__(self, index):
        self._index = index
        self.reads: Reads | None = None
        self.kept: dict[int, str] = {}  # id of a memo cache kept across builds → its name (`State.memos`)
        self._memo_tags: dict = {}

    @contextmanager
    def capture(self, merge: bool = True):
        """Record the lookups made inside into a fresh `Reads` (yielded), then add them to the enclosing one
        (unless not `merge`)."""
        outer, self.reads = self.reads, Reads()
        try:
            yield self.reads
        finally:
            inner, self.reads = self.reads, outer
            if outer is not None and merge:
                outer.merge(inner)

    def memoised(self, cache: dict, key, compute):
        """`compute()`, once per `key` in `cache`; what it read counts for every unit that uses the result:
        as a reference to the entry if `cache` is kept across builds (`kept`; it may hold entries kept from
        the previous build, their reads as digests), else as a copy of its reads."""
        name = self.kept.get(id(cache))
        found = cache.get(key)
        if found is not None and unreadable(found):
            found = None  # made again, as if it had not been kept
        if found is None:
            with self.capture(merge=name is None) as reads:
                value = compute()
            found = cache[key] = (value, reads)
        elif self.reads is not None and name is None:
            self.reads.merge(found[1])
        if name is not None and self.reads is not None:
            ref = self._memo_tags.get((name, key))
            if ref is None:
                ref = self._memo_tags[(name, key)] = memo_tag(name, key)
            self.reads.tags.add(ref)
        value = found[0]
        return value.open() if type(value) is Packed else value

    def _pattern(self, s, p, o) -> None:
        r = self.reads
        if r is None:
            return
        if s is not None and p is not None:
            found = r.facts.get(p)
            if found is None:
                found = r.facts[p] = set()
            found.add(s)
        elif s is not None:
            r.subjects.add(s)
        elif p is not None and o is not None:
            r.pairs.add((p, o))
        elif p is not None:
            r.predicates.add(p)
        elif o is not None:
            r.objects.add(o)
        else:
            r.everything = True

    def named(self, tags) -> None:
        """Lookups the unit makes by other means than this graph (a saved query on Oxigraph), named by their
        tags (`tag`); None: it may read any triple."""
        if self.reads is not None:
            if tags is None:
                self.reads.everything = True
            else:
                self.reads.tags.update(tags)

    def facts(self, s, predicates: tuple) -> None:
        if self.reads is not None:
            for p in predicates:
                self.reads.facts.setdefault(p, set()).add(s)

    def pair(self, p, o) -> None:
        if self.reads is not None:
            self.reads.pairs.add((p, o))

    # --- the Index lookups -----------------------------------------------------------------

    def __len__(self) -> int:  # the number of triples changes with any change
        self._pattern(None, None, None)
        return len(self._index)

    def __iter__(self):
        self._pattern(None, None, None)
        return iter(self._index)

    def __contains__(self, triple) -> bool:
        self._pattern(*triple)
        return triple in self._index

    def value(self, subject=None, predicate=None, object=None, default=None):
        self._pattern(subject, predicate, object)
        return self._index.value(subject, predicate, object, default)

    def objects(self, subject=None, predicate=None):
        self._pattern(subject, predicate, None)
        return self._index.objects(subject, predicate)

    def subjects(self, predicate=None, object=None):
        self._pattern(None, predicate, object)
        return self._index.subjects(predicate, object)

    def predicates(self, subject=None, object=None):
        self._pattern(subject, None, object)
        return self._index.predicates(subject, object)

    def subject_objects(self, predicate):
        self._pattern(None, predicate, None)
        return self._index.subject_objects(predicate)

    def about(self, subject):
        self._pattern(subject, None, None)
        return self._index.about(subject)

    def predicate_objects(self, subject):
        self._pattern(subject, None, None)
        return self._index.predicate_objects(subject)

    def triples(self, pattern):
        self._pattern(*pattern)
        return self._index.triples(pattern)

    @property
    def namespace_manager(self):
        return self._index.namespace_manager


class TrackedDict(dict):
    """A mapping of graph nodes `keys` (which nodes have an rdf:type) to a value made from `predicates` of each
    by `value(node)` when first asked (a rebuild after one edit asks for a few hundred of the 11,000 labels of
    a 10,000-system knowledge base): every lookup counts as reading those of the node (e.g. the labels)."""

    def __init__(self, tracker: Tracker, predicates: tuple, keys: set, value):
        super().__init__()
        self.tracker = tracker
        self.predicates = (RDF.type, *predicates)
        self._keys, self._value = keys, value

    def __getitem__(self, key):
        self.tracker.facts(key, self.predicates)
        found = super().get(key, _UNMADE)  # (made, or put in by a caller)
        if found is _UNMADE:
            if key not in self._keys:
                raise KeyError(key)
            found = self[key] = self._value(key)
        return found

    def get(self, key, default=None):
        return self[key] if key in self else default

    def __contains__(self, key) -> bool:
        self.tracker.facts(key, self.predicates)
        return key in self._keys or super().__contains__(key)


_UNMADE = object()
KEPT = object()  # a run of `State.runs` that is the one kept (its lines unread, in its shard)


@dataclass
class Unit:
    """A unit as kept: its reads, its files (path, size, mtime_ns) and the pages among them."""

    reads: array | None  # `Reads.keys`: the digests of the tags of what it read (None: in a shard not read)
    files: list = field(default_factory=list)
    pages: list = field(default_factory=list)


@dataclass
class Change:
    """What changed in the graph since the kept build, as the lookups that would see it: for each added or
    removed triple (s, p, o), reading p of s (`F`), everything of s (`S`), the subjects with p o (`P`), the
    triples with p (`Q`) or with o (`O`). A unit is touched when its reads (`Reads.keys`) name one of them."""

    tags: frozenset
    everything: bool = False  # a changed line could not be read: every unit is touched
    subjects: frozenset = frozenset()  # the subject of each added or removed triple, as N-Triples writes it
    removed: tuple = ()  # the lines of the triples removed, and of those added (sorted)
    added: tuple = ()

    @classmethod
    def between(cls, old: dict[str, list[str]], new: dict[str, list[str]]) -> "Change":
        """The change from graph `old` to graph `new`, both as N-Triples lines (`export.nt_line`) in runs by
        what they come from (`SiteWriter.graph_runs`: a line is in one run of each graph). Only the runs that
        are not the very same list are compared, as a whole: a line may move from one run to another."""
        before, now = set(), set()
        for key in old.keys() | new.keys():
            run, kept = new.get(key, ()), old.get(key, ())
            if run is not kept:
                before.update(kept)
                now.update(run)
        removed, added = before - now, now - before
        tags: set = set()
        subjects: set = set()
        everything = False
        for line in removed | added:
            triple = split_line(line)
            if triple is None:
                everything = True
                continue
            s, p, o = triple
            tags.update((tag("F", p, s), tag("S", s), tag("P", p, o), tag("Q", p), tag("O", o)))
            subjects.add(s)
        return cls(frozenset(tags), everything, frozenset(subjects), tuple(sorted(removed)), tuple(sorted(added)))

    @property
    def empty(self) -> bool:
        return not self.tags and not self.everything


def _same_folder(out: Path, listing: tuple | None) -> dict | None:
    """The files of `listing` ((device, inode) of a folder, its files: `uptodate.unchanged`) if `out` is still
    that folder, not one swapped in since by another build."""
    if listing is None:
        return None
    try:
        st = os.stat(out)
    except OSError:
        return None
    return listing[1] if (st.st_dev, st.st_ino) == listing[0] else None


class State:
    """The kept state of the previous build (empty when there is none usable) and the one being made.

    The reads of the kept units and memo entries are kept as 64-bit digests of their tags (`digest`, an
    `array("q")` each), made by the workers that render the units: at 10,000 systems 790,000 reads of 370,000
    distinct tags. Kept as sets of strings they took 0.3 s to unpickle; numbered in one table of the strings,
    numbering them took the building process 1.2 s at every full build and the table 31 MB.

    An entity's unit, table row and lines are kept in the shard of the entity (kb/shards.py); the head keeps a
    summary of each shard (`_summary`): what its units and rows read (the low halves of the digests, sorted),
    each unit's files and pages, each row's CSV line and each entry's lines digest. A rebuild reads only the
    shards whose reads meet the change (after one changed description, one of the 256, which hold 83 MB at
    10,000 systems and took 0.16 s to read); the others' items stand in as that summary holds them (a `Unit`
    without reads, a row `Packed` fetched from its shard if ever opened, a run `KEPT`), and their shards are
    not written again."""

    def __init__(self, kb, out: Path, search: bool, runs: dict[str, list[str]], listing=None):
        self.path = state_path(kb.config, out, ".pickle")
        self._shards = Shards(self.path)
        self.out = out
        # path → (size, mtime) of the files in `out`, or None (`listing`: as `uptodate.unchanged` gives it)
        listed = listing.get() if isinstance(listing, Listing) else listing
        self.listing = _same_folder(out, listed)
        self._listed = listed[0] if self.listing is not None else None  # the identity of the folder listed
        self.stamp = inputs_stamp(kb.config, out, search)
        self.previous: dict[str, Unit] = {}
        self.units: dict[str, Unit] = {}
        self.change: Change | None = None
        self.reused = 0
        self.digests = Digests()
        self.memos: dict[str, dict] = {}  # name → a `Tracker.memoised` cache, to keep for the next build
        self._kept_memos: dict[str, dict] = {}
        self._kept_offsets: Packed | None = None
        self.offsets: Packed | None = None  # where each subject's piece is in each dump this build wrote
        self._touch: tuple | None = None  # (the change, the digests of its tags)
        self._hits: tuple | None = None  # (the change, the shards whose summary meets it: `_hit_shards`)
        self._shard_reads: dict[int, array] = {}  # shard → the sorted digests of what its units and rows read
        self._unloaded_in: dict[int, list] = {}  # shard not read yet → the kept units in it
        self._kept_digests: dict[str, bytes] = {}  # each entry's lines digest, as kept (its lines in its shard)
        self._kept_rows: dict = {}  # the kept rows as this state handed them out: what `save` need not write again
        self._rows_in: dict[int, list] = {}  # shard → the rows kept in it
        self._all_rows: dict = {}  # every row kept
        self.runs = dict(runs)  # the graph's lines by what they come from (`SiteWriter.graph_runs`)
        self._digests = _digests_of(self.runs, kb.mapped)
        self.graph = os.urandom(8).hex()  # names this graph, for the query store saved from it (kb/store_cache.py)
        self.kept_graph: str | None = None  # the kept state's graph
        self.spare: tuple[int, int] | None = None  # the identity of the spare site kept (`keep_spare`), if usable
        self.spare_files: dict | None = None  # its files, if this build started from it (`start_from`)
        self.spare_names: set = set()  # and the paths of the files in it then
        self._spare_listing: dict | None = None
        old = self._load()
        self._as_kept(kb.mapped)
        if old is not None:  # a run whose digest is the one kept stands as `KEPT`: at 10,000 systems 34 MB of lines,
            # read from their shards only for the entries whose digest differs (and not written again)
            same = self._kept_digests.items() & {key: self._digests[key] for key, run in self.runs.items()
                                                 if run is not KEPT}.items()
            self.runs.update(dict.fromkeys([key for key, _ in same], KEPT))
            self.previous = old["units"]
            self.change = self._change()
            self.kept_graph = old["graph"]
            if not self.change.everything and not self.change.removed and not self.change.added:
                self.graph = self.kept_graph  # (a change that could not be read is not "no change")
            self._kept_memos = old["memos"]
            self._kept_offsets = old["offsets"]
            if not self.change.everything:
                self.spare, self._spare_listing = self._kept_spare()

    def _as_kept(self, mapped) -> None:
        """After the edit path (`MappedGraph.kept_runs`) the runs of the unchanged entries are not in `runs`:
        each is the run this state kept (`KEPT`), if its digest is the entry's, else the entry's lines as kept
        with its mapping (kb/parse_cache.py). Not if the graph is no longer the mapping's (then `runs` is all of
        it)."""
        if mapped is None or mapped.kept_runs is None or mapped.edits != mapped.graph.edits:
            return
        missing = {key: found for key, found in mapped.digests.items() if key not in self.runs}
        self._digests.update(missing)
        same = missing.items() & self._kept_digests.items()
        self.runs.update(dict.fromkeys([key for key, _ in same], KEPT))
        for key in missing.keys() - self.runs.keys():
            self.runs[key] = mapped.kept_runs(key)
            if self.runs[key] is None:  # its kept lines unreadable: the whole graph as one run
                self.runs = {"": graph_lines(None, None, mapped.graph)}
                self._digests = _digests_of(self.runs, None)
                return

    def _kept_run(self, key: str) -> list[str] | None:
        """The lines of run `key` as kept, read from its shard; None if they cannot be read."""
        try:
            found = self.kept_item(shard_of(_entity_of(("lines", key))), ("lines", key)).open()
        except _CORRUPT:
            return None
        return None if found is Packed.UNREADABLE else found

    def _change(self) -> Change:
        """`Change.between` the kept runs and this build's, of the runs that are not `KEPT`."""
        old, new = {}, {}
        for key in [key for key, run in self.runs.items() if run is not KEPT] + list(self._kept_digests.keys()
                                                                                       - self.runs.keys()):
            if key in self._kept_digests:
                old[key] = self._kept_run(key)
                if old[key] is None:
                    return Change(frozenset(), everything=True)
            if key in self.runs:
                new[key] = self.runs[key]
        return Change.between(old, new)

    def graph_lines(self) -> list[str] | None:
        """The graph's triples as sorted N-Triples lines, from `runs` (those `KEPT` read from their shards), or
        None if a kept run cannot be read."""
        runs = [self._kept_run(key) if run is KEPT else run for key, run in self.runs.items()]
        if any(run is None for run in runs):
            return None
        return sorted(chain.from_iterable(runs))  # (as `export.graph_lines`)

    def kept_memo(self, name: str) -> dict:
        """The entries of memo `name` kept from the previous build that the change does not touch: a table
        row, a category's systems, with what they read (as digests), ready to put in the memo's cache. The
        change then also names each entry it touches, so that the units that used one are touched too."""
        kept, touched = {}, set()
        entries = self._kept_memos.pop(name, {})
        if name == "rows" and self.change is not None and not self.change.everything:
            kept = dict(entries)  # as the shards' summaries hold them: only the rows of the shards whose reads
            for shard in self._hit_shards():  # meet the change are read, and checked
                for key in self._rows_in.get(shard, ()):
                    try:
                        found = self.kept_item(shard, ("memo", name, key))
                    except _CORRUPT:
                        found = None
                    if found is None or self._touches(found[1]):
                        del kept[key]
                        touched.add(memo_tag(name, key))
                    else:
                        kept[key] = found
        else:
            for key, found in entries.items():
                if found[1] is None or self._touches(found[1]):  # (a row not read: the change touches all)
                    touched.add(memo_tag(name, key))
                else:
                    kept[key] = found
        if touched:
            self.change = replace(self.change, tags=self.change.tags | touched)
        if name == "rows":
            self._kept_rows, self._all_rows = kept, entries
        return kept

    def kept_dumps(self, key: str, names: list[str]) -> tuple[list, dict[str, tuple]] | None:
        """The dump files `names` (one per format) that unit `key` wrote in the previous build, open (the
        caller closes them), and where each subject has its piece in each (`export.dump_pieces`): by format,
        (its subjects in order, starts, ends) in bytes, as kept with them; None if there are none, or a file is
        not as that build left it."""
        unit = self.previous.get(key)
        if self.change is None or self.change.everything or self._kept_offsets is None or unit is None:
            return None
        offsets = self._kept_offsets.open()
        if not offsets or offsets is Packed.UNREADABLE:
            return None
        written = {path: (size, mtime) for path, size, mtime in unit.files}
        files = []
        try:
            for name in names:
                files.append(open(os.path.join(self.out, name), "rb"))
                st = os.fstat(files[-1].fileno())
                if written.get(name) != (st.st_size, st.st_mtime_ns):
                    raise OSError(f"{name} is not as the last build wrote it")
        except OSError:
            for f in files:
                f.close()
            return None
        return files, offsets

    def _load(self):
        """The kept state's head, if it was kept under today's stamp with every shard in place (kb/shards.py
        reads the stamp first, so that a stale state is not unpickled in full). The shards' items stand in as
        their summaries hold them (see the class)."""
        shards = self._shards
        head = shards.load_head((FORMAT, self.stamp))
        if head is None or not shards.complete():
            return None
        if shards.summaries().keys() != shards.names():  # (a shard without its summary: its items unknown)
            return None
        units, rows, digests, rows_in, unloaded, reads_of = {}, {}, {}, {}, {}, {}  # (by shard: rows, units)
        try:
            for n, summary in shards.summaries().items():
                reads, kept_units, kept_rows, kept_lines = marshal.loads(summary)
                found = reads_of[n] = array("I")
                found.frombytes(reads)
                unloaded[n] = list(kept_units)
                for key, (files, pages) in kept_units.items():
                    units[key] = Unit(None, files, pages)
                digests.update(kept_lines)
                keys = rows_in[n] = []
                for iri, line in kept_rows.items():
                    key = _uriref(iri)
                    rows[key] = (Packed.later(_KeptRow(self, n, key), line), None)
                    keys.append(key)
        except (EOFError, ValueError, TypeError):
            return None
        head["units"].update(units)
        head["memos"]["rows"] = rows
        self._kept_digests, self._rows_in, self._unloaded_in, self._shard_reads = digests, rows_in, unloaded, reads_of
        return head

    def kept_item(self, shard: int, key: tuple):
        """Item `key` of shard `shard` of the kept state, read now if need be (raises KeyError or another
        error of `shards._CORRUPT` if it cannot be)."""
        return self._shards.shard(shard)[key]

    def _open_units(self, shard: int) -> None:
        """Read shard `shard` of the kept state: its units stand in `previous` in full (with their reads)."""
        try:
            items = self._shards.shard(shard)
        except _CORRUPT:
            items = {}
        for key in self._unloaded_in.pop(shard, ()):
            found = items.get(("unit", key))
            if found is not None:
                self.previous[key] = found
            else:  # (not in it: rendered again)
                del self.previous[key]

    def _hit_shards(self) -> set[int] | None:
        """The shards whose summary names a read the change meets (those of kept units and rows it may touch);
        None if it touches every unit."""
        change = self.change
        if change.everything:
            return None
        if self._hits is None or self._hits[0] is not change:
            wanted = set(_low_halves(self._touch_digests()))
            hits = set()
            for n, reads in self._shard_reads.items():
                size = len(reads)
                for d in wanted:
                    i = bisect_left(reads, d)
                    if i < size and reads[i] == d:
                        hits.add(n)
                        break
            self._hits = (change, hits)
        return self._hits[1]

    def reusable(self, keys: list[str]) -> list[Unit | None]:
        """Each kept unit of `keys` if the change does not touch it and its files are still as they were
        written, else None. (In the site in place: a file of the spare site that is a hard link to it changes
        with it.) In one loop: a rebuild asks for the 11,000 units of a 10,000-system site at once."""
        if self.change is None or self.change.everything:
            return [None] * len(keys)
        previous = self.previous
        for shard in self._hit_shards() & self._unloaded_in.keys():  # read the shards whose units the change
            self._open_units(shard)  # may touch (the others' units stand in without their reads)
        touch = self._touch_digests()
        now = self.listing.get if self.listing is not None else self._size_mtime
        found = []
        for key in keys:
            unit = previous.get(key)
            if unit is not None and unit.reads is not None and touch and not touch.isdisjoint(unit.reads):
                unit = None
            if unit is not None:
                for path, size, mtime in unit.files:
                    if now(path) != (size, mtime):
                        unit = None
                        break
            found.append(unit)
        return found

    # --- the spare site (kb/site/output.py `atomic_folder`) ---------------------------------------

    def _kept_spare(self) -> tuple:
        """(identity, files) of the spare site as the last build kept it, or (None, None)."""
        from ..signing import verified

        try:
            form, identity, files = marshal.loads(verified(self._spare_path.read_bytes()))
        except (OSError, EOFError, ValueError, TypeError):
            return None, None
        return (tuple(identity), files) if form == FORMAT else (None, None)

    @property
    def _spare_path(self) -> Path:
        return self.path.with_suffix(".spare")

    def start_from(self, work: Path, spare: bool) -> None:
        """Whether this build's folder `work` is the spare site or a new one. The spare's files are those the
        kept listing names with their size and mtime (`spare_files`), among those it holds now (`spare_names`:
        its paths, without a stat each); it is no longer the spare: its record goes."""
        if not spare:
            return
        self.spare_names = site_names(work)
        listed = self._spare_listing
        self.spare_files = (listed if listed.keys() == self.spare_names  # (as a rule: nobody touches the spare)
                            else {path: seen for path, seen in listed.items() if path in self.spare_names})
        self.keep_spare(None)

    def worth_keeping(self) -> tuple[int, int] | None:
        """The identity of the site in place if it is worth keeping as the spare once this build's is swapped
        in: this build's files are mostly its files (it reused most units), and this build knows which files
        it holds (`listing`, of that very folder: another build may swap in its own meanwhile)."""
        if self.listing is not None and self.change is not None and 2 * self.reused >= len(self.units):
            return self._listed
        return None

    def keep_spare(self, identity: tuple[int, int] | None) -> None:
        """Note the spare site kept by the swap (`identity`; None: none kept), with its files as they were
        when this build began (`listing`). Signed, as the other caches: a planted listing could make a build
        keep a stale file."""
        from ..files import write_atomically
        from ..signing import signed

        try:
            if identity is None:
                self._spare_path.unlink(missing_ok=True)
            else:
                write_atomically(self._spare_path, signed(marshal.dumps((FORMAT, identity, self.listing))),
                                 durable=False)
        except OSError:
            pass

    def _size_mtime(self, path: str) -> tuple[int, int] | None:
        """(size, modification time) of file `path` of the site in `out`, None if it is gone."""
        try:
            st = os.stat(os.path.join(self.out, path))
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def _touches(self, reads: array) -> bool:
        """Whether the change meets kept `reads` (`Reads.keys`)."""
        change = self.change
        if change.everything:
            return True
        return not self._touch_digests().isdisjoint(reads)

    def _touch_digests(self) -> set[int]:
        """The digests of the change's tags that a unit's reads may name (none if nothing changed)."""
        change = self.change
        if not change.tags:  # nothing changed
            return set()
        if self._touch is None or self._touch[0] is not change:  # `kept_memo` adds to the change
            self._touch = (change, {digest(t) for t in change.tags} | {digest("*")})  # "*": it read every triple
        return self._touch[1]

    def settle_memos(self) -> None:
        """Put the memo entries made by this build in the form `save` keeps them, once no page will add to
        them: called while this process waits for the whole-graph parts. At 10,000 systems, the table rows
        of a build from scratch take 0.4 s to pack."""
        for name, cache in self.memos.items():
            for key, found in cache.items():
                kept = self._kept_form(name, found)
                if kept is not found:
                    cache[key] = kept

    def digested(self, found: tuple) -> tuple:
        """A memo entry (value, reads) with its reads as digests (`Reads.keys`)."""
        return (found[0], found[1].keys(self.digests)) if isinstance(found[1], Reads) else found

    def _kept_form(self, name: str, found: tuple) -> tuple:
        """A memo entry (value, reads) as the kept state holds it: its reads as digests, its value `Packed` (a
        row with its CSV line at hand). An entry kept from the previous build is already so: it stays the
        object loaded, so that its shard is not written again (kb/shards.py), and the head pickles its bytes as
        they are (a category's systems: 1.6 MB of IRIs at 10,000 systems)."""
        found = self.digested(found)
        if type(found[0]) is not Packed:
            found = (Packed.of(found[0], plain=found[0]["csv"] if name == "rows" else None), found[1])
        return found

    def save(self) -> None:
        """Keep the units, with the size and mtime each file had when written (`SiteWriter.write` takes them
        from the open file: 32,000 stat calls less at 10,000 systems), once the site is swapped in."""
        if self.change is not None and self.change.empty and self.reused == len(self.units) == len(self.previous):
            return  # every unit linked as it was kept: the kept state still describes the site
        # An entity's page, its table row and its entry's lines go to the shard of the entity (kb/shards.py): after
        # one edit, the shards of the few entities it touches are written again. The rest is in the head.
        head = {"graph": self.graph, "units": {}, "memos": {name: {} for name in self.memos if name != "rows"},
                "offsets": self.offsets if self.offsets is not None else self._kept_offsets}  # None: not written
        put = {}  # the items that are not the ones kept
        previous, kept_rows = self.previous, self._kept_rows
        for key, run in self.runs.items():
            if run is not KEPT:
                put[("lines", key)] = Packed.of(run, plain=self._digests[key])
        for key, unit in self.units.items():
            if not key.startswith("id/"):
                head["units"][key] = unit
            elif previous.get(key) is not unit and unit.reads is not None:
                put[("unit", key)] = unit
        rows = self.memos.get("rows", {})
        for key, found in rows.items():
            if kept_rows.get(key) is not found:
                put[("memo", "rows", key)] = self._kept_form("rows", found)
        for name, cache in self.memos.items():
            if name != "rows":
                head["memos"][name] = {key: self._kept_form(name, found) for key, found in cache.items()}
        drop = ([("lines", key) for key in self._kept_digests.keys() - self.runs.keys()]
                + [("unit", key) for key in previous.keys() - self.units.keys() if key.startswith("id/")]
                + [("memo", "rows", key) for key in self._all_rows.keys() - rows.keys()])
        stamp = (FORMAT, self.stamp)
        try:
            if self.change is None:  # (no kept state: every item is new)
                self._shards.save(stamp, head, put, _entity_of, _summary)
            else:
                self._shards.update(stamp, head, put, drop, _entity_of, _summary)
        except (OSError, pickle.PickleError):
            pass  # a read-only root still builds, only never incrementally
        except _CORRUPT:  # a shard of the kept state damaged since: no kept state (the items this build did not
            try:  # make are in it, and only there), the next build is a full one
                self.path.unlink(missing_ok=True)
            except OSError:
                pass


class _KeptRow:
    """The bytes of a kept table row in a shard not read yet (`Packed.later`)."""

    __slots__ = ("state", "shard", "key")

    def __init__(self, state: State, shard: int, key):
        self.state, self.shard, self.key = state, shard, key

    def __call__(self) -> bytes:
        return self.state.kept_item(self.shard, ("memo", "rows", self.key))[0].data


def _summary(items: dict) -> bytes:
    """What the head keeps of a shard of the kept state (see `State`): the digests of what its units and rows
    read, sorted, each as its low 32 bits (`_low_halves`: half the bytes; a change's digest shares them with
    one of a shard's 4,000 reads once in a million, and then the shard is read for nothing), each unit's files
    and pages, each row's CSV line, each entry's lines digest."""
    reads, units, rows, lines = set(), {}, {}, {}
    for (kind, *key), value in items.items():
        if kind == "unit":
            reads.update(value.reads)
            units[key[0]] = (value.files, value.pages)
        elif kind == "lines":
            lines[key[0]] = value.plain
        else:  # a table row, (`Packed`, reads)
            reads.update(value[1])
            rows[str(key[1])] = value[0].plain
    return marshal.dumps((array("I", sorted(set(_low_halves(reads)))).tobytes(), units, rows, lines))


def _low_halves(digests) -> array:
    """The low 32 bits of each 64-bit digest, unsigned (as the summaries keep them)."""
    halves = array("I")
    halves.frombytes(array("q", digests).tobytes())
    return halves[0::2] if sys.byteorder == "little" else halves[1::2]


def _digests_of(runs: dict[str, list[str]], mapped) -> dict[str, bytes]:
    """The digest of each run (`export.lines_digest`): an entry's as its mapping kept it, when the run is its."""
    known = mapped.digests if mapped is not None else {}
    return {key: known[key] if key in known and mapped.runs.get(key) is run else lines_digest(run)
            for key, run in runs.items()}


def _entity_of(item: tuple) -> str:
    """The entity an item of the kept state belongs to: the id of `("unit", "id/ID")` and of the lines of an
    entry `("lines", "ID")`, the IRI's last segment of a row `("memo", "rows", IRI)`."""
    return str(item[-1]).rsplit("/", 1)[-1]
