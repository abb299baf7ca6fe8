"""Finding an entity by id, name or alias, and describing it for people (`kb show`), read from an Oxigraph
store with pyoxigraph alone.

Nothing here imports rdflib: its import alone (0.1 s) is a third of what a warm `kb show` may take at
10,000 systems. What the description needs of the schema (each class's keys in order, their labels and
units, the qualifier keys, the inverse labels of links) is `schema_summary`, saved with the store.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import pyoxigraph as ox

from .problems import KBError, Problem, did_you_mean
from .quantities import with_stated

# Cyrillic letters that look like Latin ones, folded so `ТОС-1` typed either way matches.
_LOOKALIKES = str.maketrans("аеорсухкмтнвіїјѕ", "aeopcyxkmthbiijs")


def fold(text: str) -> str:
    """Case-, accent-, punctuation- and look-alike-insensitive form of a name."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_LOOKALIKES)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "", text)


def find_entity(ids: set[str], names: list, base_iri: str, text: str) -> tuple[list[str], str | None]:
    """The IRIs `text` names, among entity `ids` and `names` ((iri, kind, name) of every name and alias): an
    exact id wins, then folded name/alias matches. (matches, hint)."""
    text = text.strip()
    if text in ids:
        return [base_iri + text], None
    key = fold(text)
    found = sorted({str(s) for s, _, label in names if fold(label) == key} |
                   {base_iri + i for i in ids if fold(i) == key})
    if found or not key:
        return found, None
    candidates = {fold(label): label for _, _, label in names}
    candidates.update({fold(i): i for i in ids})
    close = did_you_mean(key, candidates)
    if close:
        close_names = [candidates[c.strip("`")] for c in re.findall(r"`[^`]+`", close)]
        return [], "did you mean " + " or ".join(f"`{n}`" for n in close_names) + "?"
    return [], None


def schema_summary(schema) -> dict:
    """What `describe` needs of a `kb.schema.Schema`, as plain JSON (saved beside the store)."""
    from .namespaces import KB

    classes = {}
    for cls in schema.classes.values():
        keys = [[key, str(spec.prop), spec.label, spec.unit_label, spec.value_type == KB.Coordinates]
                for key, spec in schema.keys.get(cls, {}).items() if key != "name"]
        classes[str(cls)] = {"label": schema.class_label(cls), "keys": keys}
    qualifiers = {}
    for key, spec in schema.qualifiers.items():
        qualifiers.setdefault(str(spec.prop), key)
    inverse = {str(p): str(label) for p, label in schema.ontology.subject_objects(KB.inverseLabel)}
    return {"classes": classes, "qualifiers": qualifiers, "inverse": inverse}


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
    iri: str
    id: str
    name: str
    cls: str
    facts: list[Fact]
    incoming: list[Fact]


class _Reader:
    """The lookups `describe` makes, on one store, with the vocabulary's IRIs from the store's prefixes."""

    def __init__(self, store: ox.Store, prefixes: dict[str, str], summary: dict):
        self.store, self.summary, self.base = store, summary, prefixes["id"]
        iri = lambda prefix, name: ox.NamedNode(prefixes[prefix] + name)  # noqa: E731
        self.type, self.value_, self.label = iri("rdf", "type"), iri("rdf", "value"), iri("rdfs", "label")
        self.pref_label, self.source = iri("skos", "prefLabel"), iri("dcterms", "source")
        self.statement, self.property, self.rank = iri("kb", "statement"), iri("kb", "property"), iri("kb", "rank")
        self.preferred, self.category, self.wkt = iri("kb", "Preferred"), iri("kb", "category"), iri("geo", "asWKT")
        self.variant_of, self.involves, self.weapon = iri("kb", "variantOf"), iri("kb", "involves"), iri("kb", "weapon")
        self.stated, self.source_kind = iri("kb", "statedValue"), iri("kb", "sourceKind")
        self.weak = iri("kb", "weakSource")
        self.actor, self.action, self.actor_label = iri("kb", "actor"), iri("kb", "action"), iri("kb", "actorLabel")

    def quads(self, s=None, p=None, o=None):
        return self.store.quads_for_pattern(s, p, o, ox.DefaultGraph())

    def value(self, s, p):
        return next((q.object for q in self.quads(s, p)), None)

    def objects(self, s, p) -> list:
        return list(dict.fromkeys(q.object for q in self.quads(s, p)))

    def id_of(self, node) -> str | None:
        text = node.value
        if text.startswith(self.base) and "#" not in text[len(self.base):]:
            return text[len(self.base):]
        return None

    def label_of(self, node) -> str:
        label = self.value(node, self.pref_label) or self.value(node, self.label)
        if label is not None:
            return label.value
        return self.id_of(node) or node.value.rsplit("/", 1)[-1].rsplit("#", 1)[-1]

    def format_value(self, node, unit: str | None = None) -> Value:
        if isinstance(node, ox.Literal):
            text = node.value
            if node.datatype.value.endswith("#decimal"):
                try:
                    text = f"{Decimal(text).normalize():f}"
                except InvalidOperation:
                    pass
            if node.language and node.language != "en":
                text += f" ({node.language})"
            return Value(f"{text} {unit}" if unit else text)
        entity_id = self.id_of(node)
        if self.value(node, self.category) is None and not entity_id:
            return Value(self.label_of(node))
        return Value(self.label_of(node), entity_id)

    def qualifiers(self, st) -> list[str]:
        """`preferred`, then each qualifier of statement node `st` as `key: value`, in a stable order."""
        skip = {self.type, self.value_, self.property, self.rank, self.stated}
        parts = []
        for q in sorted(self.quads(st), key=lambda q: (q.predicate.value, q.object.value)):
            if q.predicate in skip:
                continue
            key = "source" if q.predicate == self.source else self.summary["qualifiers"].get(
                q.predicate.value, q.predicate.value)
            flag = self.weak_kind(q.object) if key == "source" else ""
            parts.append(f"{key}: {self.format_value(q.object).text}{flag}")
        return (["preferred"] if self.value(st, self.rank) == self.preferred else []) + parts

    def weak_kind(self, source) -> str:
        """` [blog or forum]` after a cited source of a weak kind (kb:weakSource), as pages flag it."""
        kind = self.value(source, self.source_kind)
        weak = self.value(kind, self.weak) if kind is not None else None
        return f" [{self.label_of(kind)}]" if weak is not None and weak.value == "true" else ""

    def sort_key(self, node) -> tuple:
        """Literals by text, language, datatype (`Бахмут`@ru before `Бахмут`@uk); the rest by label."""
        if isinstance(node, ox.Literal):
            return (node.value, node.language or "", node.datatype.value)
        return (self.label_of(node), node.value)  # two sources of one name: by IRI, the same in every store


def describe(store: ox.Store, prefixes: dict[str, str], summary: dict, iri: str) -> Description:
    """Every fact about `iri` in its class's key order, each with its statement's qualifiers, then the
    entities linking to it by the inverse label of each link (`variants`, `operated by`, …)."""
    r = _Reader(store, prefixes, summary)
    node = ox.NamedNode(iri)
    cls = r.value(node, r.type)
    cls = cls.value if cls is not None else ""
    known = summary["classes"].get(cls, {"label": cls, "keys": []})

    def numbered(st):  # `#maxRange-1`, `-2`, … `-10`
        head, _, n = st.value.rpartition("-")
        return (head, int(n)) if n.isdigit() else (st.value, 0)

    statements: dict = {}  # (property, value) → its statements: one figure may be given twice, from two sources
    for st in sorted(r.objects(node, r.statement), key=numbered):
        statements.setdefault((r.value(st, r.property), r.value(st, r.value_)), []).append(st)
    facts = []
    for key, prop_iri, label, unit, coordinates in known["keys"]:
        prop = ox.NamedNode(prop_iri)
        objects = sorted(r.objects(node, prop), key=r.sort_key)
        shown = set(objects)
        extra = [v for (p, v) in statements if p == prop and v not in shown]  # only as (non-preferred) statements
        values = []
        for obj in objects + extra:
            for st in statements.get((prop, obj)) or [None]:
                if coordinates:
                    wkt = r.value(obj, r.wkt)
                    value = Value(wkt.value if wkt is not None else "")
                else:
                    value = r.format_value(obj, unit)
                if st is not None:
                    value.qualifiers = r.qualifiers(st)
                    stated = r.value(st, r.stated)
                    if stated is not None:  # `340 hp (254 kW)`, not the converted figure alone: 253.538 kW
                        value.text = with_stated(stated.value, Decimal(obj.value), unit or "")
                values.append(value)
        if len(values) == 1 and values[0].qualifiers[:1] == ["preferred"]:
            del values[0].qualifiers[0]  # preferred over nothing: as the page shows it
        if prop == r.actor:  # named by its role for the event's action (`lost by`), as pages name it
            action = r.value(node, r.action)
            role = r.value(action, r.actor_label) if action is not None else None
            label = role.value if role is not None else label
        if values:
            facts.append(Fact(key, label, values))
    incoming = []
    for prop in sorted({q.predicate for q in r.quads(o=node)}, key=lambda p: p.value):
        inverse = summary["inverse"].get(prop.value)
        if not inverse:
            continue
        subjects = sorted((s for s in dict.fromkeys(q.subject for q in r.quads(p=prop, o=node)) if r.id_of(s)),
                          key=r.sort_key)
        if subjects:
            incoming.append(Fact(prop.value, inverse, [r.format_value(s) for s in subjects]))
    events = _variant_events(r, node)
    if events:
        incoming.append(Fact("variant-events", "events of variants", [r.format_value(e) for e in events]))
    return Description(iri, r.id_of(node) or iri, r.label_of(node), known["label"], facts, incoming)


def _variant_events(r: _Reader, node) -> list:
    """The events that name a variant of `node` (at any depth) and not `node` itself, by label: as its page on
    the site lists them."""
    seen, stack, events = {node}, [node], set()
    while stack:
        for q in r.quads(p=r.variant_of, o=stack.pop()):
            if q.subject not in seen:
                seen.add(q.subject)
                stack.append(q.subject)
                for p in (r.involves, r.weapon):
                    events.update(e.subject for e in r.quads(p=p, o=q.subject))
    events -= {q.subject for p in (r.involves, r.weapon) for q in r.quads(p=p, o=node)}
    return sorted(events, key=r.sort_key)


def pick_entity(saved, name: str) -> str:
    """The IRI of the one entity `name` names in `saved` (a `kb.store_cache.Saved`), or KBError: none (with
    a close name if there is one), or several (listed, with a hint to give the id). An exact id is looked
    up in the store; only other names read the saved list of names."""
    r = _Reader(saved.store, saved.prefixes, saved.summary)
    text = name.strip()
    try:
        node = ox.NamedNode(r.base + text)
    except ValueError:  # not even an IRI
        node = None
    if node is not None and r.id_of(node) == text:
        cls = r.value(node, r.type)
        if cls is not None and cls.value in saved.summary["classes"]:
            return node.value
    lookups = saved.lookups
    matches, hint = find_entity(set(lookups["ids"]), lookups["names"], r.base, name)
    if not matches:
        raise KBError([Problem("", 0, f"no entity named `{name}`", "not-found", hint)])
    if len(matches) > 1:
        listing = "; ".join(f"{r.id_of(n)} ({r.label_of(n)})" for n in map(ox.NamedNode, matches))
        raise KBError([Problem("", 0, f"`{name}` names {len(matches)} entities: {listing}", "ambiguous",
                               "give the id to pick one")])
    return matches[0]

