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
