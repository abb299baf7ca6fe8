"""The graph as two dictionaries: the lookups of rdflib's Graph, answered without its store machinery.

rdflib's Memory store pays for contexts and generic pattern matching on every call; the site and the
checks ask millions of `value(s, p)` questions, so they ask this index instead. `to_rdflib()` gives the
same triples as an rdflib Graph for SPARQL, pyshacl and users of the library.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

from .namespaces import PREFIXES

_EMPTY: dict = {}


class Triples:
    """What the graph's forms share (`Index`, kb/packed.py `PackedGraph`): the same triples as an rdflib Graph,
    and its prefixes. A form gives its triples by iterating over it."""

    _namespace_manager = None

    @property
    def namespace_manager(self):
        if self._namespace_manager is None:
            self._namespace_manager = prefixed_graph().namespace_manager
        return self._namespace_manager

    def to_rdflib(self):
        """A new rdflib Graph (Memory store) holding the same triples, with the fixed prefixes bound."""
        graph = prefixed_graph()
        graph.addN((s, p, o, graph) for s, p, o in self)
        return graph


class Index(Triples):
    """Triples indexed subject → predicate → objects and predicate → object → subjects, in insertion order."""

    def __init__(self, triples: Iterable[tuple] = ()):
        self._spo: dict = {}
        self._pos: dict = {}
        self._len = 0
        self.edits = 0  # changes made so far: tells whether the graph is still the one the mapping made
        self.add_all(triples)

    # --- changing ----------------------------------------------------------------------------

    def add(self, triple: tuple) -> None:
        s, p, o = triple
        objects = self._spo.setdefault(s, {}).setdefault(p, {})
        if o in objects:
            return
        objects[o] = None
        self._pos.setdefault(p, {}).setdefault(o, {})[s] = None
        self._len += 1
        self.edits += 1

    def add_all(self, triples: Iterable[tuple]) -> None:
        """`add` of each triple, without a call per triple (loading 200,000 kept triples at 10,000 systems),
        and hashing each object twice, not four times (a literal's hash is Python code in rdflib)."""
        spo, pos, added = self._spo, self._pos, 0
        subject = predicates = None
        for s, p, o in triples:
            if s is not subject:
                predicates = spo.get(s)
                if predicates is None:
                    predicates = spo[s] = {}
                subject = s
            objects = predicates.get(p)
            if objects is None:
                objects = predicates[p] = {}
            known = len(objects)
            objects.setdefault(o, None)
            if len(objects) == known:
                continue
            by_object = pos.get(p)
            if by_object is None:
                by_object = pos[p] = {}
            by_object.setdefault(o, {})[s] = None
            added += 1
        self._len += added
        self.edits += added

    def remove_subject(self, s) -> list[tuple]:
        """Drop every triple with subject `s`; returns them."""
        gone = [(s, p, o) for p, objects in self._spo.pop(s, _EMPTY).items() for o in objects]
        for _, p, o in gone:
            subjects = self._pos[p][o]
            del subjects[s]
            if not subjects:
                del self._pos[p][o]
        self._len -= len(gone)
        self.edits += len(gone)
        return gone

    # --- the Graph lookups -------------------------------------------------------------------

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[tuple]:
        for s, predicates in self._spo.items():
            for p, objects in predicates.items():
                for o in objects:
                    yield s, p, o

    def __contains__(self, triple) -> bool:
        return next(iter(self.triples(triple)), None) is not None

    def value(self, subject=None, predicate=None, object=None, default=None):
        if subject is not None:
            return next(iter(self._spo.get(subject, _EMPTY).get(predicate, _EMPTY)), default)
        return next(iter(self._pos.get(predicate, _EMPTY).get(object, _EMPTY)), default)

    def objects(self, subject=None, predicate=None) -> Iterator:
        if subject is not None:
            yield from self._spo.get(subject, _EMPTY).get(predicate, _EMPTY)
        else:
            yield from self._pos.get(predicate, _EMPTY)

    def subjects(self, predicate=None, object=None) -> Iterator:
        if object is not None:
            yield from self._pos.get(predicate, _EMPTY).get(object, _EMPTY)
        else:
            seen = set()
            for subjects in self._pos.get(predicate, _EMPTY).values():
                for s in subjects:
                    if s not in seen:
                        seen.add(s)
                        yield s

    def predicates(self, subject=None, object=None) -> Iterator:
        if subject is not None:
            for p, objects in self._spo.get(subject, _EMPTY).items():
                if object is None or object in objects:
                    yield p
        else:
            for p, by_object in self._pos.items():
                if object in by_object:
                    yield p

    def subject_objects(self, predicate) -> Iterator[tuple]:
        for o, subjects in self._pos.get(predicate, _EMPTY).items():
            for s in subjects:
                yield s, o

    def about(self, subject) -> Mapping:
        """Every fact of `subject`: each predicate with its objects (in the order `objects` gives them), read-only."""
        return MappingProxyType(self._spo.get(subject, _EMPTY))

    def predicate_objects(self, subject) -> Iterator[tuple]:
        for p, objects in self._spo.get(subject, _EMPTY).items():
            for o in objects:
                yield p, o

    def triples(self, pattern) -> Iterator[tuple]:
        s, p, o = pattern
        if s is not None:
            predicates = self._spo.get(s, _EMPTY)
            for pp in (predicates if p is None else (p,) if p in predicates else ()):
                objects = predicates[pp]
                for oo in (objects if o is None else (o,) if o in objects else ()):
                    yield s, pp, oo
        elif p is not None:
            by_object = self._pos.get(p, _EMPTY)
            for oo in (by_object if o is None else (o,) if o in by_object else ()):
                for ss in by_object[oo]:
                    yield ss, p, oo
        else:
            for triple in self:
                if o is None or triple[2] == o:
                    yield triple


def prefixed_graph():
    from rdflib import Graph

    graph = Graph()
    for prefix, ns in PREFIXES.items():
        graph.bind(prefix, ns, override=True, replace=True)
    return graph
