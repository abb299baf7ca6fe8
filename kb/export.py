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
    for triple in sorted(graph, key=lambda t: tuple(x.n3() for x in t)):
        out.add(triple)
    return out


def export_graph(graph: Graph, fmt: str = "turtle") -> str:
    if any(isinstance(x, BNode) for t in graph for x in t):
        raise ValueError("blank nodes make the export nondeterministic")  # our mapping never makes them
    g = sorted_graph(graph)
    if fmt == "nt":
        lines = g.serialize(format="nt").splitlines()
        return "\n".join(sorted(line for line in lines if line.strip())) + "\n"
    if fmt == "jsonld":
        return jsonld(g)
    if fmt == "xml":
        return rdf_xml(graph)
    return g.serialize(format=FORMATS[fmt])


def rdf_xml(graph: Graph) -> str:
    """RDF/XML written by Oxigraph from sorted triples (rdflib's writer orders subjects by a set)."""
    import pyoxigraph as ox

    def term(t):
        if isinstance(t, Literal):
            if t.language:
                return ox.Literal(str(t), language=t.language)
            return ox.Literal(str(t), datatype=ox.NamedNode(str(t.datatype))) if t.datatype else ox.Literal(str(t))
        return ox.NamedNode(str(t))

    triples = [ox.Triple(term(s), term(p), term(o)) for s, p, o in sorted(graph, key=lambda t: tuple(x.n3() for x in t))]
    return ox.serialize(triples, format=ox.RdfFormat.RDF_XML,
                        prefixes={k: str(v) for k, v in PREFIXES.items()}).decode("utf-8")

def jsonld(graph: Graph) -> str:
    """Compact JSON-LD with the fixed prefixes as context, nodes sorted by @id."""
    data = json.loads(graph.serialize(format="json-ld", context={k: str(v) for k, v in PREFIXES.items()}))
    if "@graph" in data:
        data["@graph"] = sorted(data["@graph"], key=lambda node: node.get("@id", ""))
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    return g.serialize(format=FORMATS[fmt])
