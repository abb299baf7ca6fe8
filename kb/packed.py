"""The graph kept packed in `.kb-cache/graph.packed`, for a rebuild after a few edits (issue 6, goal 2).

Loading every kept entry and indexing its triples (`kb.index.Index`) took 0.9 s of a rebuild at 10,000
systems, though an edit changes a few dozen triples. Here the graph is kept as two sorted arrays of 64-bit
numbers, one per triple in each order (subject, predicate, object) and (predicate, object, subject), each
term a 21-bit number in a table of the terms: it loads in about 0.1 s (most of it the term table), and a
lookup finds its range by bisection, about as fast as the index's dictionaries (2.8 µs against 2.1 µs). An
edit removes and inserts a few numbers in place (kb/knowledge_base.py `open_kb`, the edit path).

A packed graph is the graph of one content (`content`: the parse cache's mappings by their digests, and the
stamp they were made under, kb/parse_cache.py), and is read only for that content. Like the other caches it
is signed (kb/signing.py), so a planted file is never unpickled. Triples come out of a lookup in the order of
their terms' numbers, not in insertion order: the site does not depend on the order (tests/test_graph_order.py).
"""
from __future__ import annotations

import pickle
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

import rdflib
from rdflib import Literal, URIRef

from . import shards  # noqa: F401 - rdflib's terms pickled by value (its copyreg functions)
from .index import Triples
from .namespaces import INTERNED

FORMAT = 2
PATH = "graph.packed"  # in the cache folder
BITS = 21
MASK = (1 << BITS) - 1
MAX_TERMS = 1 << BITS  # more terms: no packed graph, every run loads the entries (10,000 systems: 58,512)
BATCH = 256  # triples removed and added from which `change` sorts the arrays again rather than move them
_EMPTY: dict = {}


class PackedGraph(Triples):
    """The lookups of `kb.index.Index` (the same answers, in the order of the terms' numbers) over triples
    packed as numbers: `spo` holds s << 42 | p << 21 | o, `pos` holds p << 42 | o << 21 | s, both sorted."""

    def __init__(self, terms: list, spo: array, pos: array, base: tuple | None = None):
        self.terms = terms  # number → term
        self.ids = {t: i for i, t in enumerate(terms)}
        self.spo, self.pos = spo, pos
        self.edits = 0  # as `Index.edits`: this graph is the one the mapping made (kb/export.py `graph_runs`)
        self._base = base  # (terms, their pickle) as loaded: saved again as they were, new terms after them

    @classmethod
    def of(cls, index) -> PackedGraph | None:
        """The triples of `index` (an `Index`) packed; None if they have too many terms."""
        ids: dict = {}
        terms: list = []
        spo: list = []
        for s, predicates in index._spo.items():
            si = ids.get(s)
            if si is None:
                si = ids[s] = len(terms)
                terms.append(s)
            for p, objects in predicates.items():
                pi = ids.get(p)
                if pi is None:
                    pi = ids[p] = len(terms)
                    terms.append(p)
                head = (si << BITS | pi) << BITS
                for o in objects:
                    oi = ids.get(o)
                    if oi is None:
                        oi = ids[o] = len(terms)
                        terms.append(o)
                    spo.append(head | oi)
        if len(terms) > MAX_TERMS:
            return None
        pos = [(k >> BITS & MASK) << 2 * BITS | (k & MASK) << BITS | k >> 2 * BITS for k in spo]
        spo.sort()
        pos.sort()
        return cls(terms, array("q", spo), array("q", pos))

    # --- changing ----------------------------------------------------------------------------

    def _number(self, term) -> int:
        i = self.ids.get(term)
        if i is None:
            i = self.ids[term] = len(self.terms)
            self.terms.append(term)
        return i

    def add(self, triple: tuple) -> None:
        """As `Index.add` (a library user changing the graph)."""
        if triple not in self:
            self._grow([], [triple])

    def add_all(self, triples: Iterable[tuple]) -> None:
        for triple in triples:
            self.add(triple)

    def remove_subject(self, s) -> list[tuple]:
        """As `Index.remove_subject`: drop every triple with subject `s`; returns them."""
        gone = list(self.triples((s, None, None)))
        self._grow(gone, [])
        return gone

    def _grow(self, removed: list, added: list) -> None:
        if not self.change(removed, added):
            raise ValueError(f"more than {MAX_TERMS:,} terms in a packed graph")
        self.edits += len(removed) + len(added)

    def change(self, removed: Iterable[tuple], added: Iterable[tuple]) -> bool:
        """Remove and add triples in place; False (the graph then unusable) if the terms outgrow the numbers."""
        gone, new = [], []
        for s, p, o in removed:
            si, pi, oi = self.ids.get(s), self.ids.get(p), self.ids.get(o)
            if si is not None and pi is not None and oi is not None:
                gone.append((si, pi, oi))
        for s, p, o in added:
            new.append((self._number(s), self._number(p), self._number(o)))
            if len(self.terms) > MAX_TERMS:
                return False
        for keys, key in ((self.spo, lambda s, p, o: (s << BITS | p) << BITS | o),
                          (self.pos, lambda s, p, o: (p << BITS | o) << BITS | s)):
            out, put = {key(*t) for t in gone}, {key(*t) for t in new}
            if len(out) + len(put) > BATCH:  # one sorted merge rather than a move of the array per triple
                keys[:] = array("q", sorted(set(keys).difference(out).union(put)))
                continue
            for k in out:
                _drop(keys, k)
            for k in put:
                _put(keys, k)
        return True

    # --- ranges ------------------------------------------------------------------------------

    def _range(self, keys: array, prefix: int, width: int) -> range:
        """The positions in `keys` of the numbers whose top bits are `prefix` (all but the lowest `width`)."""
        return range(bisect_left(keys, prefix << width), bisect_left(keys, prefix + 1 << width))

    def _pairs(self, s: int) -> Iterator[tuple[int, int]]:
        spo = self.spo
        for i in self._range(spo, s, 2 * BITS):
            k = spo[i]
            yield k >> BITS & MASK, k & MASK

    def _objects(self, s: int, p: int) -> Iterator[int]:
        spo = self.spo
        for i in self._range(spo, s << BITS | p, BITS):
            yield spo[i] & MASK

    def _subjects(self, p: int, o: int) -> Iterator[int]:
        pos = self.pos
        for i in self._range(pos, p << BITS | o, BITS):
            yield pos[i] & MASK

    def _by_predicate(self, p: int) -> Iterator[tuple[int, int]]:
        """(object, subject) of each triple with predicate `p`, by object."""
        pos = self.pos
        for i in self._range(pos, p, 2 * BITS):
            k = pos[i]
            yield k >> BITS & MASK, k & MASK

    def _predicates(self) -> list[int]:
        """The number of every predicate in use."""
        found, pos, i = [], self.pos, 0
        while i < len(pos):
            p = pos[i] >> 2 * BITS
            found.append(p)
            i = bisect_left(pos, p + 1 << 2 * BITS)
        return found

    # --- the Graph lookups (as kb/index.py `Index` answers them) ------------------------------

    def __len__(self) -> int:
        return len(self.spo)

    def __iter__(self) -> Iterator[tuple]:
        t = self.terms
        for k in self.spo:
            yield t[k >> 2 * BITS], t[k >> BITS & MASK], t[k & MASK]

    def __contains__(self, triple) -> bool:
        s, p, o = triple
        if s is None or p is None or o is None:
            return next(iter(self.triples(triple)), None) is not None
        ids = self.ids
        si, pi, oi = ids.get(s), ids.get(p), ids.get(o)
        if si is None or pi is None or oi is None:
            return False
        k = (si << BITS | pi) << BITS | oi
        i = bisect_left(self.spo, k)
        return i < len(self.spo) and self.spo[i] == k

    def value(self, subject=None, predicate=None, object=None, default=None):
        if subject is not None:
            return next(iter(self.objects(subject, predicate)), default)
        return default if object is None else next(iter(self.subjects(predicate, object)), default)

    def objects(self, subject=None, predicate=None) -> Iterator:
        t, ids = self.terms, self.ids
        p = ids.get(predicate)
        if p is None:
            return
        if subject is not None:
            s = ids.get(subject)
            if s is not None:
                for o in self._objects(s, p):
                    yield t[o]
        else:
            last = None
            for o, _ in self._by_predicate(p):
                if o != last:
                    last = o
                    yield t[o]

    def subjects(self, predicate=None, object=None) -> Iterator:
        t, ids = self.terms, self.ids
        p = ids.get(predicate)
        if p is None:
            return
        if object is not None:
            o = ids.get(object)
            if o is not None:
                for s in self._subjects(p, o):
                    yield t[s]
        else:
            seen = set()
            for _, s in self._by_predicate(p):
                if s not in seen:
                    seen.add(s)
                    yield t[s]

    def predicates(self, subject=None, object=None) -> Iterator:
        t, ids = self.terms, self.ids
        if subject is not None:
            s = ids.get(subject)
            o = ids.get(object) if object is not None else None
            if s is None or (object is not None and o is None):
                return
            last = None
            for p, oo in self._pairs(s):
                if p != last and (o is None or oo == o):
                    last = p
                    yield t[p]
        elif object is not None:
            o = ids.get(object)
            if o is not None:
                for p in self._predicates():
                    if next(iter(self._subjects(p, o)), None) is not None:
                        yield t[p]

    def subject_objects(self, predicate) -> Iterator[tuple]:
        t = self.terms
        p = self.ids.get(predicate)
        if p is not None:
            for o, s in self._by_predicate(p):
                yield t[s], t[o]

    def about(self, subject) -> Mapping:
        """Every fact of `subject`: each predicate with its objects, read-only."""
        s = self.ids.get(subject)
        if s is None:
            return MappingProxyType(_EMPTY)
        t, found = self.terms, {}
        for p, o in self._pairs(s):
            found.setdefault(t[p], {})[t[o]] = None
        return MappingProxyType(found)

    def predicate_objects(self, subject) -> Iterator[tuple]:
        s = self.ids.get(subject)
        if s is not None:
            t = self.terms
            for p, o in self._pairs(s):
                yield t[p], t[o]

    def triples(self, pattern) -> Iterator[tuple]:
        s, p, o = pattern
        if s is not None and p is not None:
            if o is None:
                for oo in self.objects(s, p):
                    yield s, p, oo
            elif (s, p, o) in self:
                yield s, p, o
        elif s is not None:
            for pp, oo in self.predicate_objects(s):
                if (p is None or pp == p) and (o is None or oo == o):
                    yield s, pp, oo
        elif p is not None:
            if o is not None:
                for ss in self.subjects(p, o):
                    yield ss, p, o
            else:
                for ss, oo in self.subject_objects(p):
                    yield ss, p, oo
        else:
            for triple in self:
                if o is None or triple[2] == o:
                    yield triple

    # --- kept ----------------------------------------------------------------------------------

    def save(self, folder: Path, content: str) -> None:
        """Keep the graph as the graph of `content`. The terms it was loaded with are written as they were
        read (pickled once, when the graph was first packed); only the terms added since are pickled."""
        from .files import write_atomically
        from .signing import signed

        base = self._base
        if base is None:  # (terms are only ever added, after those kept)
            terms = list(self.terms)
            base = self._base = (terms, _pack_terms(terms))
        extra = self.terms[len(base[0]):]
        data = pickle.dumps((FORMAT, rdflib.__version__, content, base[1], extra, self.spo.tobytes(),
                             self.pos.tobytes()), protocol=pickle.HIGHEST_PROTOCOL)
        write_atomically(folder / PATH, signed(data), durable=False)

    @classmethod
    def load(cls, folder: Path, content: str) -> PackedGraph | None:
        """The graph kept for `content`, or None (none kept, another content, damaged, another version)."""
        from .shards import TAKEN, _identity
        from .signing import verified

        ahead = _PRELOADED.pop(folder / PATH, None)
        if ahead is not None and ahead[1] == content:
            try:
                if _identity(folder / PATH) == ahead[0]:
                    TAKEN.append(folder / PATH)
                    return ahead[2]
            except OSError:
                pass
        try:
            data = verified((folder / PATH).read_bytes())
            form, version, kept, base, extra, spo, pos = pickle.loads(data)
            if (form, version, kept) != (FORMAT, rdflib.__version__, content):
                return None
            terms = _unpack_terms(base)
            graph = cls(terms + extra, _array(spo), _array(pos), (terms, base))
        except (OSError, ValueError, pickle.PickleError, EOFError, TypeError, AttributeError, ImportError,
                IndexError, KeyError):
            return None
        return graph if len(graph.spo) == len(graph.pos) else None


_PRELOADED: dict = {}  # the file → (its identity, the content, the graph loaded): `preload`


def preload(folder: Path, content: str) -> None:
    """Load the graph kept for `content` ahead of a `PackedGraph.load` to come in this process (kb serve's next
    rebuild process, waiting for a change), which takes it if the file is still the very file read here."""
    from .shards import _identity

    path = folder / PATH
    try:
        before = _identity(path)
        graph = PackedGraph.load(folder, content)
        if graph is not None and _identity(path) == before:
            _PRELOADED[path] = (before, content, graph)
    except OSError:
        pass


def _pack_terms(terms: list) -> bytes:
    """The term table as `_unpack_terms` reads it back: each term's kind, the IRIs' strings, the literals' parts
    and the few literal values that are not their own lexical form. Unpickling the terms one by one (rdflib's
    terms pickled by value, kb/shards.py) took 0.06-0.07 s of a rebuild at 10,000 systems; this, 0.03-0.06 s."""
    kinds, iris, literals, values, others = bytearray(), [], [], {}, []
    for term in terms:
        if type(term) is URIRef:
            kinds.append(0)
            iris.append(str(term))
        elif type(term) is Literal:
            kinds.append(1)
            lexical, value = str(term), term._value
            if not (type(value) is str and value == lexical):
                values[len(literals)] = value
            literals.append((lexical, term._language, term._datatype, term._ill_typed))
        else:
            kinds.append(2)
            others.append(term)
    return pickle.dumps((bytes(kinds), iris, literals, values, others), protocol=pickle.HIGHEST_PROTOCOL)


def _unpack_terms(packed: bytes) -> list:
    """The terms `_pack_terms` packed, in their order: the IRIs interned as kb/shards.py interns them. (Its
    `_uriref` and `_literal`, inlined: calling them for each of 58,000 terms took 0.011 s more at 10,000
    systems.)"""
    kinds, iris, literals, values, others = pickle.loads(packed)
    new, interned, made = str.__new__, INTERNED, []
    for iri in iris:
        term = interned.get(iri)
        if term is None:
            term = interned[iri] = new(URIRef, iri)
        made.append(term)
    lits = []
    for n, (lexical, language, datatype, ill_typed) in enumerate(literals):
        term = new(Literal, lexical)
        term._language, term._datatype, term._ill_typed = language, datatype, ill_typed
        term._value = values.get(n, lexical)
        lits.append(term)
    nexts = (iter(made).__next__, iter(lits).__next__, iter(others).__next__)
    return [nexts[kind]() for kind in kinds]


def _array(raw: bytes) -> array:
    found = array("q")
    found.frombytes(raw)
    return found


def _drop(keys: array, k: int) -> None:
    i = bisect_left(keys, k)
    if i < len(keys) and keys[i] == k:
        del keys[i]


def _put(keys: array, k: int) -> None:
    i = bisect_left(keys, k)
    if i == len(keys) or keys[i] != k:
        keys.insert(i, k)
