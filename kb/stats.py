"""Counts per class and category, and how much of each field the systems fill."""
from __future__ import annotations

from dataclasses import dataclass

from rdflib import URIRef
from rdflib.namespace import DCTERMS, RDF, SKOS

from .knowledge_base import KnowledgeBase
from .namespaces import KB, KBC
from .schema import concept_ancestors


@dataclass
class Stats:
    classes: dict[str, int]
    categories: dict[str, int]
    weapon_systems: int
    components: int
    coverage: dict[str, tuple[int, int]]  # key -> (systems having it, weapon systems)
    crew: tuple[int, int]  # (having crew, systems whose category has a crew)
    key_quantity: tuple[int, int]  # (having their category's key quantity, systems whose category has one)
    events: tuple[int, int]  # (named by at least one reported event, weapon systems)
    triples: int
    source_kinds: tuple[int, int] = (0, 0)  # (sources whose kind is given, sources)
    weak_only: tuple[int, int] = (0, 0)  # (sourced values of weapon systems citing weak kinds only, sourced values)


def is_weapon_system(kb: KnowledgeBase, system) -> bool:
    """True unless its category lies under `component` (guns, munitions, support vehicles)."""
    category = kb.index.value(system, KB.category)
    return category is not None and KBC.component not in concept_ancestors(kb.schema.ontology, category)


def compute_stats(kb: KnowledgeBase) -> Stats:
    g = kb.index
    classes = {kb.schema.class_label(c): len(set(g.subjects(RDF.type, c))) for c in kb.schema.classes.values()}
    categories: dict[str, int] = {}
    for s, c in g.subject_objects(KB.category):
        label = str(g.value(c, SKOS.prefLabel) or c)
        categories[label] = categories.get(label, 0) + 1
    systems = sorted(set(g.subjects(RDF.type, KB.System)))
    weapons = [s for s in systems if is_weapon_system(kb, s)]
    coverage = {}
    for key, spec in kb.schema.keys[KB.System].items():
        have = sum(1 for s in weapons if (s, spec.prop, None) in g or _has_statement(g, s, spec.prop))
        coverage[key] = (have, len(weapons))
    crewed = [s for s in weapons if category_annotation(kb, s, KB.crewApplies, True)]
    crew = (sum(1 for s in crewed if has_value(g, s, KB.crew)), len(crewed))
    keyed = [(s, q) for s in weapons if (q := category_annotation(kb, s, KB.keyQuantity, None)) is not None]
    key_quantity = (sum(1 for s, q in keyed if has_value(g, s, q, via_armament=q == KB.caliber)), len(keyed))
    events = (sum(1 for s in weapons if g.value(None, KB.involves, s) is not None
                  or g.value(None, KB.weapon, s) is not None), len(weapons))
    sources = set(g.subjects(RDF.type, KB.Source))
    kinds = {s: g.value(s, KB.sourceKind) for s in sources}
    weak = {s for s, kind in kinds.items() if kind is not None and g.value(kind, KB.weakSource) is not None
            and g.value(kind, KB.weakSource).toPython()}
    cited = [list(g.objects(st, DCTERMS.source)) for s in weapons for st in g.objects(s, KB.statement)]
    cited = [c for c in cited if c]
    weak_only = (sum(1 for c in cited if all(x in weak for x in c)), len(cited))
    return Stats(classes, dict(sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))), len(weapons),
                 len(systems) - len(weapons), coverage, crew, key_quantity, events, len(g),
                 (sum(1 for k in kinds.values() if k is not None), len(sources)), weak_only)


def category_annotation(kb: KnowledgeBase, system, annotation, default):
    """The nearest value of `annotation` on the system's category or one of its broader concepts."""
    category = kb.index.value(system, KB.category)
    for concept in concept_ancestors(kb.schema.ontology, category) if category is not None else []:
        value = kb.schema.ontology.value(concept, annotation)
        if value is not None:
            return value.toPython() if hasattr(value, "toPython") and not isinstance(value, URIRef) else value
    return default


def has_value(g, system, prop, via_armament: bool = False) -> bool:
    """Whether the system has `prop` (directly or as a sourced statement), or, for caliber, its weapon has."""
    if (system, prop, None) in g or _has_statement(g, system, prop):
        return True
    return via_armament and any((weapon, prop, None) in g for weapon in g.objects(system, KB.armament))


def _has_statement(g, s, prop) -> bool:
    return any(g.value(st, KB.property) == prop for st in g.objects(s, KB.statement))
