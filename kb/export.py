"""The whole graph in an RDF syntax, byte-identical for identical entries."""
from __future__ import annotations

from rdflib import BNode, Graph

from .namespaces import PREFIXES

FORMATS = {"turtle": "turtle", "nt": "nt", "jsonld": "json-ld", "xml": "pretty-xml"}


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
        return g.serialize(format="json-ld", context={k: str(v) for k, v in PREFIXES.items()}, sort_keys=True, indent=2)
    return g.serialize(format=FORMATS[fmt])
