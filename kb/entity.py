"""One entity's own triples (its concise bounded description) and their JSON-LD."""
from __future__ import annotations

from rdflib import Graph, URIRef

from .index import Index
from .knowledge_base import KnowledgeBase, new_graph


def entity_triples(index: Index, iri: URIRef) -> list[tuple]:
    """The entity's triples plus those of its statement and geometry nodes (`iri#…`)."""
    out = []
    prefix = str(iri) + "#"
    for p, o in index.predicate_objects(iri):
        out.append((iri, p, o))
        if isinstance(o, URIRef) and o.startswith(prefix):
            out.extend((o, p2, o2) for p2, o2 in index.predicate_objects(o))
    return list(dict.fromkeys(out))


def entity_graph(kb: KnowledgeBase, iri: URIRef) -> Graph:
    """The entity's triples (see `entity_triples`) as an rdflib Graph."""
    g = new_graph()
    g.addN((s, p, o, g) for s, p, o in entity_triples(kb.index, iri))
    return g


def entity_jsonld(kb: KnowledgeBase, iri: URIRef) -> str:
    from .export import jsonld, sorted_triples

    return jsonld(sorted_triples(entity_triples(kb.index, iri)))
