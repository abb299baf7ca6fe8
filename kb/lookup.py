"""Searching entities by name, alias or description, and the rdflib side of describing them (the site's
pages; `kb show` reads the saved store with `kb.describe`)."""
from __future__ import annotations

from dataclasses import dataclass

from rdflib import Literal, URIRef
from rdflib.namespace import DCTERMS, RDF, RDFS, SKOS

from .describe import Fact, Value, fold
from .knowledge_base import KnowledgeBase
from .namespaces import KB


@dataclass
class Match:
    iri: URIRef
    score: int
    why: str


def _names(kb: KnowledgeBase):
    """(iri, kind, text) for every entity name and alias."""
    return kb.names


def search(kb: KnowledgeBase, text: str, limit: int = 20) -> list[Match]:
    """Entities matching `text`, best first: name, then alias, then description."""
    words = [fold(w) for w in text.split() if fold(w)]
    whole = fold(text)
    if not words:
        return []
    best: dict[URIRef, Match] = {}

    def offer(iri, score, why):
        if iri not in best or best[iri].score < score:
            best[iri] = Match(iri, score, why)

    for s, kind, label in _names(kb):
        f = fold(label)
        base = 100 if kind == "name" else 80
        if f == whole:
            offer(s, base, f"{kind} {label}")
        elif f.startswith(whole):
            offer(s, base - 10, f"{kind} {label}")
        elif all(w in f for w in words):
            offer(s, base - 20, f"{kind} {label}")
    for s, desc in kb.index.subject_objects(DCTERMS.description):
        if kb.id_of(s):
            f = fold(str(desc))
            hits = sum(w in f for w in words)
            if hits == len(words):
                offer(s, 40, "description")
    return sorted(best.values(), key=lambda m: (-m.score, label_of(kb, m.iri).casefold(), str(m.iri)))[:limit]


def label_of(kb: KnowledgeBase, node, index=None) -> str:
    """The name of `node` in the knowledge base's graph (or in `index`), else its id or the end of its IRI."""
    g = kb.index if index is None else index
    label = g.value(node, SKOS.prefLabel) or g.value(node, RDFS.label)
    if label is not None:
        return str(label)
    return kb.id_of(node) or str(node).rsplit("/", 1)[-1].rsplit("#", 1)[-1]


# --- the rdflib side of describing an entity (the site's pages) -----------------------------------


def format_value(kb: KnowledgeBase, node, unit: str | None = None) -> Value:
    if isinstance(node, Literal):
        value = node.toPython()
        text = str(node) if not hasattr(value, "isoformat") else value.isoformat()
        if node.datatype and str(node.datatype).endswith("#decimal"):
            text = f"{value.normalize():f}" if hasattr(value, "normalize") else str(value)
        if node.language and node.language != "en":
            text += f" ({node.language})"
        return Value(f"{text} {unit}" if unit else text)
    entity_id = kb.id_of(node)
    if kb.index.value(node, KB.category) is None and not entity_id:
        return Value(label_of(kb, node))
    return Value(label_of(kb, node), entity_id)


def literal_key(o: Literal) -> tuple:
    """A total order of literals: text, then language, then datatype (`Бахмут`@ru before `Бахмут`@uk)."""
    return (str(o), o.language or "", str(o.datatype or ""))


def statements_in_order(statements) -> list:
    """Statement nodes in the order their values are written (`#maxRange-1`, `-2`, … `-10`), whichever store
    answers."""
    def key(st):
        head, _, n = str(st).rpartition("-")
        return (head, int(n)) if n.isdigit() else (str(st), 0)
    return sorted(statements, key=key)


def statements_of(g, iri) -> list:
    """The entity's statement nodes in the order their values are written."""
    return statements_in_order(g.objects(iri, KB.statement))


def incoming_facts(kb: KnowledgeBase, iri: URIRef) -> list[Fact]:
    """The entities linking to `iri`, by the inverse label of each link (`variants`, `operated by`, …)."""
    g = kb.index
    incoming = []
    for prop in sorted(set(g.predicates(None, iri)), key=str):
        inverse = kb.schema.ontology.value(prop, KB.inverseLabel)
        if not inverse:
            continue
        subjects = sorted((s for s in g.subjects(prop, iri) if kb.id_of(s)), key=lambda s: (label_of(kb, s), str(s)))
        if subjects:
            incoming.append(Fact(str(prop), str(inverse), [format_value(kb, s) for s in subjects]))
    return incoming


_STATEMENT_PARTS = frozenset((RDF.type, RDF.value, KB.property, KB.rank))  # not qualifiers: a set, looked up
# by hash (a tuple compares with rdflib's __eq__, Python code, for each member)


def statement_qualifiers(kb: KnowledgeBase, st) -> tuple[bool, list[tuple[str, object]]]:
    """(preferred?, [(qualifier key, value)]) of a statement node, in a stable order; the key of
    dcterms:source is `source`."""
    g = kb.index
    parts = []
    for p, o in sorted(g.predicate_objects(st), key=lambda po: (str(po[0]), str(po[1]))):
        if p in _STATEMENT_PARTS:
            continue
        key = "source" if p == DCTERMS.source else "stated" if p == KB.statedValue else next(
            (k for k, spec in kb.schema.qualifiers.items() if spec.prop == p), str(p))
        parts.append((key, o))
    return g.value(st, KB.rank) == KB.Preferred, parts

