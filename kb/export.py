"""The whole graph in an RDF syntax, byte-identical for identical entries."""
from __future__ import annotations

import json

from rdflib import BNode, Graph, Literal

from .namespaces import PREFIXES

FORMATS = {"turtle": "turtle", "nt": "nt", "jsonld": "json-ld", "xml": "xml"}


def sorted_graph(graph: Graph) -> Graph:
    """A copy with triples inserted in sorted order, so serialisers iterate deterministically."""
    out = Graph()
    for prefix, ns in PREFIXES.items():
        out.bind(prefix, ns, override=True, replace=True)
    for triple in _sorted_triples(graph):
        out.add(triple)
    return out


def export_graph(graph: Graph, fmt: str = "turtle") -> str:
    """The graph in `fmt`, written from sorted triples so that the same graph gives the same bytes."""
    if fmt == "jsonld":
        return jsonld(sorted_graph(graph))
    return oxigraph_serialize(graph, fmt)


def _sorted_triples(graph: Graph):
    return sorted(graph, key=lambda t: tuple(x.n3() for x in t))


def oxigraph_serialize(graph: Graph, fmt: str) -> str:
    """Turtle, N-Triples or RDF/XML written by Oxigraph: fast, and in the order given (rdflib's writers
    are slow, and its RDF/XML writer orders subjects by a set)."""
    import pyoxigraph as ox

    def term(t):
        if isinstance(t, BNode):
            raise ValueError("blank nodes make the export nondeterministic")  # our mapping never makes them
        if isinstance(t, Literal):
            if t.language:
                return ox.Literal(str(t), language=t.language)
            return ox.Literal(str(t), datatype=ox.NamedNode(str(t.datatype))) if t.datatype else ox.Literal(str(t))
        return ox.NamedNode(str(t))

    formats = {"turtle": ox.RdfFormat.TURTLE, "nt": ox.RdfFormat.N_TRIPLES, "xml": ox.RdfFormat.RDF_XML}
    triples = [ox.Triple(term(s), term(p), term(o)) for s, p, o in _sorted_triples(graph)]
    prefixes = {k: str(v) for k, v in PREFIXES.items()} if fmt != "nt" else None
    return ox.serialize(triples, format=formats[fmt], prefixes=prefixes).decode("utf-8")

def jsonld(graph: Graph) -> str:
    """Compact JSON-LD with the fixed prefixes as context, nodes sorted by @id."""
    data = json.loads(graph.serialize(format="json-ld", context={k: str(v) for k, v in PREFIXES.items()}))
    if "@graph" in data:
        data["@graph"] = sorted(data["@graph"], key=lambda node: node.get("@id", ""))
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    return g.serialize(format=FORMATS[fmt])
