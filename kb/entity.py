"""One entity's own triples (its concise bounded description) and their JSON-LD."""
from __future__ import annotations

from rdflib import Graph, URIRef

from .knowledge_base import KnowledgeBase, new_graph


def entity_graph(kb: KnowledgeBase, iri: URIRef) -> Graph:
    """The entity's triples plus those of its statement and geometry nodes (`iri#…`)."""
    g = new_graph()
    prefix = str(iri) + "#"
    for s, p, o in kb.graph.triples((iri, None, None)):
        g.add((s, p, o))
        if isinstance(o, URIRef) and str(o).startswith(prefix):
            for triple in kb.graph.triples((o, None, None)):
                g.add(triple)
    return g


def entity_jsonld(kb: KnowledgeBase, iri: URIRef) -> str:
    from .export import jsonld, sorted_graph

    return jsonld(sorted_graph(entity_graph(kb, iri)))
