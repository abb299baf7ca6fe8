"""Finding entities by id, name or alias (any script), and describing one for people."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from rdflib import Literal, URIRef
from rdflib.namespace import DCTERMS, RDF, RDFS, SKOS

from .knowledge_base import KnowledgeBase
from .namespaces import KB
from .problems import did_you_mean

# Cyrillic letters that look like Latin ones, folded so `ТОС-1` typed either way matches.
_LOOKALIKES = str.maketrans("аеорсухкмтнвіїјѕ", "aeopcyxkmthbiijs")


def fold(text: str) -> str:
    """Case-, accent-, punctuation- and look-alike-insensitive form of a name."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_LOOKALIKES)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "", text)


@dataclass
class Match:
    iri: URIRef
    score: int
    why: str


def _names(kb: KnowledgeBase):
    """(iri, kind, text) for every entity name and alias."""
    return kb.names


def find_entity(kb: KnowledgeBase, text: str) -> tuple[list[URIRef], str | None]:
    """Entities `text` names: an exact id wins, then folded name/alias matches. (matches, hint)."""
    text = text.strip()
    ids = kb.entity_ids
    if text in ids:
        return [kb.iri(text)], None
    key = fold(text)
    found = sorted({s for s, _, label in _names(kb) if fold(label) == key} |
                   {kb.iri(i) for i in ids if fold(i) == key}, key=str)
    if found or not key:
        return found, None
    candidates = {fold(label): label for _, _, label in _names(kb)}
    candidates.update({fold(i): i for i in ids})
    close = did_you_mean(key, candidates)
    if close:
        close_names = [candidates[c.strip("`")] for c in re.findall(r"`[^`]+`", close)]
        return [], "did you mean " + " or ".join(f"`{n}`" for n in close_names) + "?"
    return [], None


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


def label_of(kb: KnowledgeBase, node) -> str:
    label = kb.index.value(node, SKOS.prefLabel) or kb.index.value(node, RDFS.label)
    if label is not None:
        return str(label)
    return kb.id_of(node) or str(node).rsplit("/", 1)[-1].rsplit("#", 1)[-1]


# --- describing an entity (the view model shared by `kb show` and the site) --------------------


@dataclass
class Value:
    text: str  # what a person reads: `46 t`, `Soviet Union`
    link: str | None = None  # the id of a linked entity
    qualifiers: list[str] = field(default_factory=list)  # `source: …`, `note: …`, `since 2022`


@dataclass
class Fact:
    key: str
    label: str
    values: list[Value]


@dataclass
class Description:
    iri: URIRef
    id: str
    name: str
    cls: str
    facts: list[Fact]
    incoming: list[Fact]


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


def statements_of(g, iri) -> list:
    """The entity's statement nodes in the order their values are written (`#maxRange-1`, `-2`, … `-10`),
    whichever store answers."""
    def key(st):
        head, _, n = str(st).rpartition("-")
        return (head, int(n)) if n.isdigit() else (str(st), 0)
    return sorted(g.objects(iri, KB.statement), key=key)


def describe(kb: KnowledgeBase, iri: URIRef) -> Description:
    """Every fact about `iri` in key order, with statement qualifiers, plus its incoming links."""
    g = kb.index
    cls = g.value(iri, RDF.type)
    specs = kb.schema.keys.get(cls, {})
    statements = {}
    for st in statements_of(g, iri):
        statements.setdefault((g.value(st, KB.property), g.value(st, RDF.value)), st)
    facts = []
    for key, spec in specs.items():
        if key == "name":
            continue
        values = []
        objects = sorted(g.objects(iri, spec.prop), key=lambda o: literal_key(o) if isinstance(o, Literal) else (label_of(kb, o),))
        shown = set(objects)
        # values that exist only as (non-preferred) statements
        extra = [v for (p, v) in statements if p == spec.prop and v not in shown]
        for obj in objects + extra:
            if spec.value_type == KB.Coordinates:
                value = Value(str(g.value(obj, URIRef("http://www.opengis.net/ont/geosparql#asWKT"))))
            else:
                value = format_value(kb, obj, spec.unit_label)
            st = statements.get((spec.prop, obj))
            if st is not None:
                value.qualifiers = _qualifiers(kb, st)
            values.append(value)
        if values:
            facts.append(Fact(key, spec.label, values))
    return Description(iri, kb.id_of(iri) or str(iri), label_of(kb, iri), kb.schema.class_label(cls), facts,
                       incoming_facts(kb, iri))


def incoming_facts(kb: KnowledgeBase, iri: URIRef) -> list[Fact]:
    """The entities linking to `iri`, by the inverse label of each link (`variants`, `operated by`, …)."""
    g = kb.index
    incoming = []
    for prop in sorted(set(g.predicates(None, iri)), key=str):
        inverse = kb.schema.ontology.value(prop, KB.inverseLabel)
        if not inverse:
            continue
        subjects = sorted((s for s in g.subjects(prop, iri) if kb.id_of(s)), key=lambda s: label_of(kb, s))
        if subjects:
            incoming.append(Fact(str(prop), str(inverse), [format_value(kb, s) for s in subjects]))
    return incoming


def statement_qualifiers(kb: KnowledgeBase, st) -> tuple[bool, list[tuple[str, object]]]:
    """(preferred?, [(qualifier key, value)]) of a statement node, in a stable order; the key of
    dcterms:source is `source`. Shared by `kb show` and the site, which format them differently."""
    g = kb.index
    parts = []
    for p, o in sorted(g.predicate_objects(st), key=lambda po: (str(po[0]), str(po[1]))):
        if p in (RDF.type, RDF.value, KB.property, KB.rank):
            continue
        key = "source" if p == DCTERMS.source else next(
            (k for k, spec in kb.schema.qualifiers.items() if spec.prop == p), str(p))
        parts.append((key, o))
    return g.value(st, KB.rank) == KB.Preferred, parts


def _qualifiers(kb: KnowledgeBase, st) -> list[str]:
    preferred, parts = statement_qualifiers(kb, st)
    return (["preferred"] if preferred else []) + [f"{key}: {format_value(kb, o).text}" for key, o in parts]
