"""The entry schema, read from ontology/: which YAML keys each class has and what they map to."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS, OWL

from .index import Index
from .namespaces import KB

ONTOLOGY_FILES = ("milkb.ttl", "categories.ttl")
SHAPES_FILE = "shapes.ttl"


@dataclass(frozen=True)
class KeySpec:
    """What one YAML key means: its property, value type and constraints (from annotations)."""

    key: str
    prop: URIRef
    value_type: URIRef
    also: tuple[URIRef, ...] = ()
    unit: str | None = None
    unit_label: str | None = None
    multiple: bool = False
    qualifiers: tuple[str, ...] = ()
    value_key: str = "value"
    min_value: float | None = None
    max_value: float | None = None
    scheme: URIRef | None = None
    label: str = ""
    not_before: URIRef | None = None  # a date: the entry's property whose value it may not precede

    @property
    def local_name(self) -> str:
        """The property's local name, used in statement-node IRIs (`#combatMass-1`)."""
        text = str(self.prop)
        return text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


@dataclass
class Schema:
    """Entry classes, their folders and keys; qualifier keys; the concepts of each scheme."""

    ontology: Index
    classes: dict[str, URIRef] = field(default_factory=dict)  # folder -> class
    keys: dict[URIRef, dict[str, KeySpec]] = field(default_factory=dict)  # class -> key -> spec
    qualifiers: dict[str, KeySpec] = field(default_factory=dict)  # statement qualifier keys
    concepts: dict[URIRef, dict[str, URIRef]] = field(default_factory=dict)  # scheme -> id -> concept
    subclasses: dict[URIRef, set[URIRef]] = field(default_factory=dict)  # class -> itself + subclasses

    def class_label(self, cls: URIRef) -> str:
        return str(self.ontology.value(cls, RDFS.label) or cls)

    def folder_of(self, cls: URIRef) -> str:
        return next(f for f, c in self.classes.items() if c == cls)

    def is_a(self, cls: URIRef, expected: URIRef) -> bool:
        return cls in self.subclasses.get(expected, {expected})


def load_ontology(ontology_dir: Path) -> Index:
    """The vocabulary and category scheme as one graph (an `Index`: the lookups of rdflib's Graph, filled
    five times faster), parsed by Oxigraph (ten times faster than rdflib's Turtle parser): `kb show` on a
    saved store reads nothing else."""
    import pyoxigraph as ox

    from .namespaces import interned
    from .oxstore import rdf_term

    def term(t):  # its IRIs interned: the entries' triples use the same objects (kb/namespaces.py)
        return interned(t.value) if isinstance(t, ox.NamedNode) else rdf_term(t)

    graph = Index()
    for name in ONTOLOGY_FILES:
        for t in ox.parse(path=str(ontology_dir / name), format=ox.RdfFormat.TURTLE):
            graph.add((term(t.subject), term(t.predicate), term(t.object)))
    return graph


def _number(node) -> float | None:
    return float(node.toPython()) if isinstance(node, Literal) else None


def read_schema(ontology: Index) -> Schema:
    """Build the schema from the ontology's kb:yamlKey annotations."""
    schema = Schema(ontology=ontology)
    for cls, folder in ontology.subject_objects(KB.folder):
        schema.classes[str(folder)] = cls
    entity_classes = set(schema.classes.values())
    schema.subclasses[KB.Entity] = entity_classes | {KB.Entity}
    for cls in entity_classes:
        schema.subclasses[cls] = {cls}

    for prop, key in ontology.subject_objects(KB.yamlKey):
        g = ontology
        spec = KeySpec(
            key=str(key),
            prop=prop,
            value_type=g.value(prop, KB.valueType),
            also=tuple(sorted(g.objects(prop, KB.alsoMapsTo))),
            unit=str(g.value(prop, KB.unit)) if g.value(prop, KB.unit) else None,
            unit_label=str(g.value(prop, KB.unitLabel)) if g.value(prop, KB.unitLabel) else None,
            multiple=bool(g.value(prop, KB.multiple, default=Literal(False)).toPython()),
            qualifiers=tuple(sorted(str(q) for q in g.objects(prop, KB.qualifier))),
            value_key=str(g.value(prop, KB.valueKey, default=Literal("value"))),
            min_value=_number(g.value(prop, KB.minValue)),
            max_value=_number(g.value(prop, KB.maxValue)),
            scheme=g.value(prop, KB.conceptScheme),
            label=str(g.value(prop, RDFS.label) or key),
            not_before=g.value(prop, KB.notBefore),
        )
        applies = list(g.objects(prop, KB.appliesTo))
        for cls in applies:
            schema.keys.setdefault(cls, {})[spec.key] = spec
        if not applies:  # a qualifier of statement nodes
            schema.qualifiers[spec.key] = spec

    for cls, keys in schema.keys.items():  # put each class's keys in its kb:keyOrder
        order = ontology.value(cls, KB.keyOrder)
        ranked = str(order).split() if order is not None else []
        schema.keys[cls] = dict(sorted(keys.items(), key=lambda kv: (ranked.index(kv[0]) if kv[0] in ranked else len(ranked), kv[0])))

    for concept, scheme in ontology.subject_objects(SKOS.inScheme):
        schema.concepts.setdefault(scheme, {})[str(concept).rsplit("/", 1)[-1]] = concept
    return schema


def concept_ancestors(ontology: Index, concept: URIRef) -> list[URIRef]:
    """The concept and its broader concepts, nearest first."""
    chain, seen = [concept], {concept}
    while (up := ontology.value(chain[-1], SKOS.broader)) is not None and up not in seen:
        chain.append(up)
        seen.add(up)
    return chain
