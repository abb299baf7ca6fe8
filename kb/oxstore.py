"""Oxigraph behind the rdflib API: the graph bulk-loaded into a pyoxigraph store, SPARQL answered there,
and the answers handed back as rdflib results (so the result writers, tables and pages stay the same).

rdflib's own SPARQL engine takes seconds per join at 10,000 systems; Oxigraph takes milliseconds.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef, Variable
from rdflib.namespace import XSD
from rdflib.query import Result

from .namespaces import PREFIXES
from .store_cache import raw_query



def ox_term(t):
    """rdflib term → pyoxigraph term."""
    if isinstance(t, Literal):
        if t.language:
            return ox.Literal(str(t), language=t.language)
        return ox.Literal(str(t), datatype=ox.NamedNode(str(t.datatype))) if t.datatype else ox.Literal(str(t))
    if isinstance(t, BNode):
        return ox.BlankNode(str(t))
    return ox.NamedNode(str(t))


def rdf_term(t):
    """pyoxigraph term → rdflib term."""
    if t is None:
        return None
    if isinstance(t, ox.NamedNode):
        return URIRef(t.value)
    if isinstance(t, ox.Literal):
        if t.language:
            return Literal(t.value, lang=t.language)
        datatype = t.datatype.value
        return Literal(t.value, datatype=None if datatype == str(XSD.string) else URIRef(datatype))
    return BNode(t.value)


def load_store(triples: Iterable[tuple], path: Path | None = None) -> ox.Store:
    """A store holding `triples`: in memory, or on disk at `path` (created)."""
    store = ox.Store(str(path)) if path is not None else ox.Store()
    store.bulk_extend(ox.Quad(ox_term(s), ox_term(p), ox_term(o)) for s, p, o in triples)
    return store


def query(store: ox.Store, text: str, origin: str = "query", base_iri: str | None = None,
          bindings: dict | None = None) -> Result:
    """Run `text` on `store`; errors as KBError at `origin:line` (worded as `kb query` words them)."""
    prefixes = {k: str(v) for k, v in PREFIXES.items()}
    if base_iri:
        prefixes["id"] = base_iri
    substitutions = {ox.Variable(str(k)): ox_term(v) for k, v in (bindings or {}).items()}
    return _result(raw_query(store, text, origin, prefixes, substitutions))


def _result(answer) -> Result:
    if isinstance(answer, ox.QueryBoolean):
        result = Result("ASK")
        result.askAnswer = bool(answer)
        return result
    if isinstance(answer, ox.QuerySolutions):
        result = Result("SELECT")
        names = [v.value for v in answer.variables]
        result.vars = [Variable(n) for n in names]
        result.bindings = [{Variable(n): rdf_term(row[n]) for n in names if row[n] is not None} for row in answer]
        return result
    result = Result("CONSTRUCT")
    graph = Graph()
    for prefix, ns in PREFIXES.items():
        graph.bind(prefix, ns, override=True, replace=True)
    graph.addN((rdf_term(t.subject), rdf_term(t.predicate), rdf_term(t.object), graph) for t in answer)
    result.graph = graph
    return result


class StoreView:
    """The lookups of `kb.index.Index` answered by an Oxigraph store, for commands that read a few
    entities from the saved store (`kb show`) instead of loading every entry."""

    def __init__(self, store: ox.Store):
        self.store = store
        self._terms: dict = {}
        self._namespace_manager = None

    def _rdf(self, t):
        found = self._terms.get(t)
        if found is None:
            found = self._terms[t] = rdf_term(t)
        return found

    def _ox(self, t):
        return None if t is None else ox_term(t)

    def triples(self, pattern):
        s, p, o = pattern
        for q in self.store.quads_for_pattern(self._ox(s), self._ox(p), self._ox(o), ox.DefaultGraph()):
            yield self._rdf(q.subject), self._rdf(q.predicate), self._rdf(q.object)

    def __iter__(self):
        return self.triples((None, None, None))

    def __len__(self) -> int:
        return len(self.store)

    def __contains__(self, triple) -> bool:
        return next(iter(self.triples(triple)), None) is not None

    def value(self, subject=None, predicate=None, object=None, default=None):
        for s, _, o in self.triples((subject, predicate, object)):
            return o if subject is not None else s
        return default

    def objects(self, subject=None, predicate=None):
        seen = set()
        for _, _, o in self.triples((subject, predicate, None)):
            if o not in seen:
                seen.add(o)
                yield o

    def subjects(self, predicate=None, object=None):
        seen = set()
        for s, _, _ in self.triples((None, predicate, object)):
            if s not in seen:
                seen.add(s)
                yield s

    def predicates(self, subject=None, object=None):
        seen = set()
        for _, p, _ in self.triples((subject, None, object)):
            if p not in seen:
                seen.add(p)
                yield p

    def subject_objects(self, predicate):
        for s, _, o in self.triples((None, predicate, None)):
            yield s, o

    def predicate_objects(self, subject):
        for _, p, o in self.triples((subject, None, None)):
            yield p, o

    @property
    def namespace_manager(self):
        if self._namespace_manager is None:
            from .index import prefixed_graph

            self._namespace_manager = prefixed_graph().namespace_manager
        return self._namespace_manager
