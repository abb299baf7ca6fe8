"""View models for the site: every page's data, resolved from the graph once, so templates only lay out."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from rdflib import Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS

from ..knowledge_base import KnowledgeBase
from ..lookup import (incoming_facts, label_of, literal_key, statement_qualifiers, statements_in_order,
                      statements_of)
from ..namespaces import GEO, KB, KBC, SCHEMA, interned
from ..quantities import stated_places, with_stated
from ..schema import concept_ancestors
from .incremental import TrackedDict, Tracker
from .markdown import render_markdown

SAFE_SCHEMES = ("http://", "https://")


def safe_url(url) -> str | None:
    """An external address only if it is http(s): never javascript:, data: or the like."""
    text = str(url or "").strip()
    return text if text.lower().startswith(SAFE_SCHEMES) else None


# English names of the language tags entries use for names (`lang: ru`); a tag not listed is shown as it is
LANGUAGES = {
    "ar": "Arabic", "az": "Azerbaijani", "be": "Belarusian", "bg": "Bulgarian", "bn": "Bengali", "cs": "Czech",
    "da": "Danish", "de": "German", "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian",
    "hy": "Armenian", "it": "Italian", "ja": "Japanese", "ka": "Georgian", "kk": "Kazakh", "ko": "Korean",
    "ky": "Kyrgyz", "lt": "Lithuanian", "lv": "Latvian", "mn": "Mongolian", "ms": "Malay", "nb": "Norwegian",
    "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "ps": "Pashto", "pt": "Portuguese", "ro": "Romanian",
    "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian", "sv": "Swedish", "tg": "Tajik",
    "tk": "Turkmen", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek", "vi": "Vietnamese",
    "zh": "Chinese",
}


# what may be an entry's id in a note's text (`onwar-btr-70`, `t-80`): a word of letters and digits with hyphens
_ENTRY_ID = re.compile(r"(?<![\w/.@-])([a-z0-9]+(?:-[a-z0-9]+)+)(?![\w/@-]|\.\w)")

# links to an entity from events, which its page lists under "Reported events" (with date, action and role)
# rather than again among the other links to it
_LISTED_AS_EVENTS = frozenset((str(KB.involves), str(KB.weapon), str(KB.actor)))


def event_order(event: dict) -> tuple:
    """Events in order of date, one known only to the month or year after those dated within it (`2024`
    after `2024-08-10`: it may have been any time that year), then by name."""
    return (_end_of(event["date"]), event["name"], event["id"] or "")


def latest_reported(event: dict) -> tuple:
    """Events in order of when they were first reported (their date when that is not given)."""
    return (_end_of(event["reported"] or event["date"]), event_order(event))


def _end_of(date: str) -> str:
    """`2024` as `2024-99-99`, `2024-08` as `2024-08-99`: sorted after the days within them."""
    return date + "-99" * (2 - date.count("-")) if date else ""


def plain_number(value, decimals: int | None = None) -> str:
    """`46`, `42.5`; with `decimals`, rounded for display (the data keeps every digit)."""
    if isinstance(value, Decimal):
        if decimals is not None:
            value = round(value, decimals)
        return f"{value.normalize():f}"
    return str(value)


@dataclass
class Link:
    """A link to another page of the site (`href` relative to the site root) or plain text."""

    text: str
    href: str | None = None
    lang: str | None = None
    note: str = ""  # shown after it: what a name is (`Russian, nickname`), or the weak kind of a cited source


@dataclass
class Row:
    label: str
    values: list[dict]  # {"text", "href", "lang", "qualifiers": [..], "sources": [Link]}
    key: str = ""


@dataclass
class EntityPage:
    id: str
    iri: str
    name: str
    cls: str
    cls_key: str  # system, organization, …
    description_md: str
    description_html: str  # rendered by kb/site/markdown.py: no markup, only http(s) and relative links
    aliases: list[Link]
    category_path: list[Link]
    rows: list[Row]
    incoming: list[Row]
    sources: list[dict]
    family: dict | None  # {"root": Link, "svg": str}
    events: list[dict]
    jsonld: str
    summary: str
    external_url: str | None = None
    coordinates: tuple[float, float] | None = None
    replaced_by: str | None = None
    variant_events: list[dict] | None = None  # the events that name a variant of the system, not the system
    cited_for: list[dict] | None = None  # of a source: the values that cite it, {"entity": Link, "label", "value"}


class SiteModel:
    """Resolves ids, labels, categories and links for every page of one knowledge base."""

    def __init__(self, kb: KnowledgeBase, tracker: Tracker | None = None):
        """`tracker`: the graph's lookups recorded per unit of the site (kb/site/incremental.py); every
        lookup of the model goes through it, and so do its memos (they replay what they read)."""
        self.kb = kb
        self.tracker = tracker or Tracker(kb.index)
        self.g = self.tracker
        self.row_cache: dict = {}  # system → (its table row, what it read) (kb/site/build.py)
        self.systems_in_cache: dict = {}  # (concept, deep) → (its systems, what it read)
        self.query_cache: dict = {}  # saved query's name → (its answer on the page, what it read) (build.py)
        # the memos kept for the next build (kb/site/incremental.py `State.kept_memo`), by name
        self.memos = {"rows": self.row_cache, "systems in": self.systems_in_cache, "queries": self.query_cache}
        self.compare_keys: list | None = None  # (YAML key, property) of the compared quantities (build.py)
        self._specs: dict | None = None  # property → its key spec (`_spec_of`)
        self.ontology = kb.schema.ontology
        self._entities = sorted((kb.iri(e.id) for e in kb.entries if e.data is not None), key=str)
        self.cls_key = {v: k.rstrip("s").replace("countrie", "country") for k, v in kb.schema.classes.items()}
        index = self.tracker._index  # (lookups made for the model itself, in no unit)
        self.labels = TrackedDict(self.tracker, (SKOS.prefLabel, RDFS.label), set(self._entities),
                                  lambda e: label_of(kb, e, index))
        self._systems = [e for e in self._entities if (e, RDF.type, KB.System) in self.g]
        self.concepts = {c: str(self.g.value(c, SKOS.prefLabel)) for c in kb.schema.concepts.get(KBC.scheme, {}).values()}
        # each system's category and all broader ones, computed once for every category page and table
        self.system_concepts = TrackedDict(self.tracker, (KB.category,), set(self._systems),
                                           lambda s: self._concepts_of(index.value(s, KB.category)))
        self.under: dict = {}  # concept → it and the concepts below it (from the ontology)
        for c in self.concepts:
            for a in concept_ancestors(self.ontology, c):
                self.under.setdefault(a, set()).add(c)

    def _concepts_of(self, concept) -> tuple:
        """A system's category and the set of it and its broader ones."""
        return concept, set(concept_ancestors(self.ontology, concept)) if concept is not None else set()

    @property
    def entities(self) -> list[URIRef]:
        """Every entity, by IRI; a unit that lists them all depends on which there are."""
        for cls in self.kb.schema.classes.values():
            self.tracker.pair(RDF.type, cls)
        return self._entities

    @property
    def systems(self) -> list[URIRef]:
        self.tracker.pair(RDF.type, KB.System)
        return self._systems

    # --- ids and links ---------------------------------------------------------------------

    def id_of(self, node) -> str | None:
        return self.kb.id_of(node)

    def href(self, node) -> str | None:
        """Site-root-relative path of the page about `node`, if the site has one."""
        entity_id = self.id_of(node)
        if entity_id is not None and node in self.labels:
            return f"id/{entity_id}.html"
        if str(node).startswith(str(KBC)) and node in self.concepts:
            return f"category/{concept_id(node)}.html"
        return None

    def link(self, node) -> Link:
        if isinstance(node, Literal):
            return Link(str(node), lang=node.language if node.language and node.language != "en" else None)
        return Link(self.label(node), self.href(node))

    def label(self, node) -> str:
        if node in self.labels:
            return self.labels[node]
        return label_of(self.kb, node)

    # --- categories ------------------------------------------------------------------------

    def category_path(self, concept) -> list[Link]:
        chain = list(reversed(concept_ancestors(self.ontology, concept)))
        return [self.link(c) for c in chain]

    def systems_in(self, concept, deep: bool = True) -> list[URIRef]:
        """The systems of `concept` (and, deep, of the concepts under it), by name; computed once each."""
        key = (concept, deep)

        def compute():
            out = {s for c in (self.under.get(concept, {concept}) if deep else {concept})
                   for s in self.g.subjects(KB.category, c) if s in self.system_concepts}
            return sorted(out, key=lambda s: (self.labels[s].casefold(), str(s)))

        return self.tracker.memoised(self.systems_in_cache, key, compute)

    def narrower(self, concept) -> list[URIRef]:
        return sorted(self.g.subjects(SKOS.broader, concept), key=lambda c: self.concepts.get(c, ""))

    # --- values ----------------------------------------------------------------------------

    def value_and_places(self, system, prop, via_armament: bool = False, notes: dict | None = None) -> tuple:
        """(the system's value of `prop`, or its main weapon's with `via_armament`; the decimals to show of it
        if it was given in another unit, else None: `40 mph` is shown 64 km/h in a table, not 64.374; whether
        its only sources are weak ones). `notes`: the system's `figure_notes`, when the caller asks for several
        properties."""
        holder, value = system, self.g.value(system, prop)
        if value is None and via_armament:
            for weapon in sorted(self.g.objects(system, KB.armament), key=str):
                holder, value = weapon, self.g.value(weapon, prop)
                if value is not None:
                    break
        if not isinstance(value, Literal):
            return value, None, False
        stated, weak = (notes if notes is not None and holder == system else self.figure_notes(holder)).get(
            (prop, value), (None, False))
        return value.toPython(), stated_places(str(stated), value.toPython()) if stated is not None else None, weak

    def figure_notes(self, holder) -> dict:
        """(property, value) → (the value as stated, `340 hp`, if given in another unit (kb:statedValue), else
        None; whether its sources are all of a weak kind) for each of the entity's values with a statement.
        Two statements of one figure (`7.5 cm` from a shop, `75 mm` from a news agency) count together: the
        figure is weak only if each of them is, that is, cites sources and only weak ones (a statement without a
        source of its own rests on the entry's sources), and it is stated as the first of them in the entry
        says it, as its page shows it first."""
        g = self.g
        stated, weak = {}, {}
        for st in statements_of(g, holder):
            key = g.value(st, KB.property), g.value(st, RDF.value)
            if key not in stated:
                stated[key] = g.value(st, KB.statedValue)
            cited = list(g.objects(st, DCTERMS.source))
            weak[key] = weak.get(key, True) and bool(cited) and all(self.source_kind(s)[1] for s in cited)
        return {key: (stated[key], weak[key]) for key in stated}

    def unit_of(self, prop) -> str:
        return str(self.ontology.value(prop, KB.unitLabel) or "")

    # --- entity pages ----------------------------------------------------------------------

    def entity_page(self, iri: URIRef, jsonld: str) -> EntityPage:
        g = self.g
        about = g.about(iri)  # one read of every fact of the entity, as the page (and its Turtle) shows them all

        def one(p):
            return next(iter(about.get(p, ())), None)

        cls = one(RDF.type)
        statements: dict = {}  # (property, value) → its statements: one figure may be given twice, by two sources
        for st in statements_of(g, iri):
            statements.setdefault((g.value(st, KB.property), g.value(st, RDF.value)), []).append(st)
        stated: dict = {}  # property → the values of its statements (a lookup, not rdflib's __eq__ per pair)
        for p, v in statements:
            stated.setdefault(p, []).append(v)
        rows = []
        specs = self.kb.schema.keys.get(cls, {})
        for key, spec in specs.items():
            if key in ("name", "aliases", "description", "sources", "replaced_by", "coordinates"):
                continue
            objects = list(about.get(spec.prop, ()))
            extra = [v for v in stated.get(spec.prop, ()) if v not in objects]
            values = []
            for obj in sorted(objects, key=self._sort_key) + sorted(extra, key=self._sort_key):
                values += [self._value(spec, obj, st) for st in statements.get((spec.prop, obj)) or [None]]
            if len(values) == 1 and values[0]["qualifiers"][:1] == ["preferred"]:
                del values[0]["qualifiers"][0]  # preferred over nothing: a single value says only its source
            if values:
                label = self.actor_label(one(KB.action)) if spec.prop == KB.actor else spec.label
                rows.append(Row(label, values, key))
        linking = self._statements_valued(iri)
        incoming = [Row(f.label, [x for v in f.values for x in self._incoming(v, URIRef(f.key), linking)], f.key)
                    for f in incoming_facts(self.kb, iri) if f.key not in _LISTED_AS_EVENTS]
        aliases = self._aliases(about.get(SKOS.altLabel, ()), statements)
        category = one(KB.category)
        sources = []
        # (two sources of one name: by IRI, so that every build lists them alike)
        for src in sorted(about.get(DCTERMS.source, ()), key=lambda s: (self.label(s).casefold(), str(s))):
            sources.append({"link": self.link(src), "url": safe_url(g.value(src, SCHEMA.url)),
                            "kind": self.source_kind(src)[0],
                            "publisher": str(g.value(src, DCTERMS.publisher) or ""),
                            "title": str(g.value(src, DCTERMS.title) or "")})
        wkt = g.value(interned(f"{iri}#geometry"), GEO.asWKT)
        coordinates = None
        if wkt is not None:
            lon, lat = str(wkt).removeprefix("POINT(").rstrip(")").split()
            coordinates = (float(lat), float(lon))
        description = str(one(DCTERMS.description) or "")
        summary = self._summary(iri, category, description)
        replaced = one(DCTERMS.isReplacedBy)
        return EntityPage(
            id=self.id_of(iri), iri=str(iri), name=self.labels[iri], cls=self.kb.schema.class_label(cls),
            cls_key=self.cls_key.get(cls, "entity"), description_md=description,
            description_html=render_markdown(description), aliases=aliases,
            category_path=self.category_path(category) if category is not None else [],
            rows=rows, incoming=incoming, sources=sources, family=None,
            events=self.events_of(iri), jsonld=jsonld, summary=summary,
            external_url=safe_url(one(SCHEMA.url)), coordinates=coordinates,
            replaced_by=self.href(replaced) if replaced is not None else None,
            cited_for=self._cited_for(iri) if cls == KB.Source else None,
        )

    def _cited_for(self, source) -> list[dict]:
        """The values that cite `source` as their own (`T-80: combat mass 42 t`), so that its page says what
        each fact taken from it is, beside the entries that cite it as a whole."""
        g, out = self.g, []
        for st in g.subjects(DCTERMS.source, source):
            entity, hash_, _ = str(st).partition("#")
            prop = g.value(st, KB.property) if hash_ else None
            spec = self._spec_of(prop)
            if spec is None:
                continue
            value = self._value(spec, g.value(st, RDF.value), st)
            value["sources"] = [s for s in value["sources"] if s.href != self.href(source)]  # this page's own
            out.append({"entity": self.link(URIRef(entity)), "label": spec.label, "value": value})
        return sorted(out, key=lambda c: (c["entity"].text.casefold(), c["label"], c["value"]["text"]))

    def _spec_of(self, prop):
        """The key spec of property `prop` (of whichever class has it)."""
        if self._specs is None:
            self._specs = {spec.prop: spec for keys in self.kb.schema.keys.values() for spec in keys.values()}
        return self._specs.get(prop)

    def _statements_valued(self, iri) -> dict:
        """(the entity, the property) → the statement nodes giving `iri` as that entity's value of that property,
        in the entity's order (a country operating a system twice: two periods): the links to `iri` that carry
        qualifiers. Read from the statements whose value it is (an entity's statement nodes are
        `ENTITY#property-n`), not from every statement of every entity linking to it."""
        g, found = self.g, {}
        for st in statements_in_order(st for st in g.subjects(RDF.value, iri) if "#" in str(st)):
            found.setdefault((URIRef(str(st).partition("#")[0]), g.value(st, KB.property)), []).append(st)
        return found

    def _incoming(self, v, prop, linking: dict) -> list[dict]:
        """An entity linking to this one, with the qualifiers and source of its link when it has them (once per
        statement of that link): a country's page says which of the systems it operates it captured, and since
        when."""
        statements = linking.get((self.kb.iri(v.link), prop)) if v.link else None
        values = []
        for st in statements or [None]:
            value = {"text": v.text, "href": f"id/{v.link}.html" if v.link else None, "qualifiers": [], "sources": []}
            if st is not None:
                value["qualifiers"], value["sources"] = self._qualifiers(False, statement_qualifiers(self.kb, st)[1])
            values.append(value)
        return values

    def _note(self, text: str):
        """A note as text, or as text and links where it names an entry by its id ("same date in
        onwar-btr-70"): the reader sees the source's name and can follow it, not an internal id."""
        pieces = _ENTRY_ID.split(text)
        if len(pieces) == 1:
            return text
        out = []
        for i, piece in enumerate(pieces):
            iri = self.kb.iri(piece) if i % 2 else None
            if iri is not None and iri in self.labels:  # (a tracked read: an entry added later is linked then)
                out.append(self.link(iri))
            elif piece:
                out.append(piece)
        return out if any(isinstance(p, Link) for p in out) else text

    def _aliases(self, labels, statements: dict) -> list[Link]:
        """The other names, each said once with what it is (`Т-80` (Russian), `Flying Tank` (nickname),
        `Бахмут` (Russian, Ukrainian)): the same text in two languages is one name, marked up in the first."""
        merged: dict[str, tuple[list, list]] = {}
        for a in sorted(labels, key=literal_key):
            languages, kinds = merged.setdefault(str(a), ([], []))
            if a.language and a.language != "en":
                languages.append(a.language)
            for st in statements.get((SKOS.altLabel, a), ()):
                kind = self.g.value(st, KB.aliasKind)
                if kind is not None and str(kind) not in kinds:
                    kinds.append(str(kind))
        return [Link(text, lang=languages[0] if languages else None,
                     note=", ".join([LANGUAGES.get(t.split("-")[0], t) for t in languages] + kinds))
                for text, (languages, kinds) in merged.items()]

    def _sort_key(self, node):
        return (self.label(node).casefold(), str(node)) if not isinstance(node, Literal) else literal_key(node)

    def _value(self, spec, obj, statement) -> dict:
        preferred, parts = statement_qualifiers(self.kb, statement) if statement is not None else (False, [])
        if isinstance(obj, Literal):
            text = plain_number(obj.toPython()) if obj.datatype and str(obj.datatype).endswith("decimal") else str(obj)
            if spec.unit_label:
                text = f"{text} {spec.unit_label}"
            value = {"text": text, "href": None, "lang": obj.language if obj.language not in (None, "en") else None}
            stated = next((o for key, o in parts if key == "stated"), None)
            if stated is not None:  # `340 hp (254 kW)`, not the converted figure alone: 253.538 kW
                value["text"] = with_stated(str(stated), obj.toPython(), spec.unit_label or "")
        elif str(obj).startswith("http://www.wikidata.org/entity/"):
            value = {"text": str(obj).rsplit("/", 1)[-1], "href": None, "external": str(obj)}
        else:
            link = self.link(obj)
            value = {"text": link.text, "href": link.href}
        value.setdefault("external", None)
        value.setdefault("lang", None)
        value["qualifiers"], value["sources"] = self._qualifiers(preferred, parts)
        return value

    def _qualifiers(self, preferred: bool, parts: list) -> tuple[list[str], list[Link]]:
        quals = ["preferred"] if preferred else []
        quals += [self._note(str(o)) if key == "note" else f"{key}: {o}" for key, o in parts
                  if key not in ("source", "stated")]
        return quals, [self.cited(o) for key, o in parts if key == "source"]

    def source_kind(self, source) -> tuple[str, bool]:
        """(the label of the source's kind, or "" if it has none; whether that kind is a weak one)."""
        kind = self.g.value(source, KB.sourceKind)
        if kind is None:
            return "", False
        return self.concepts_label(kind), bool(self.g.value(kind, KB.weakSource))

    def cited(self, source) -> Link:
        """A link to a source where a value cites it, its kind said when it is a weak one (`copy`, `blog or
        forum`, `shop or hobby site`): the reader sees at once what the figure rests on."""
        link = self.link(source)
        label, weak = self.source_kind(source)
        if weak:
            link.note = label
        return link

    def _summary(self, iri, category, description: str) -> str:
        """One plain sentence for meta descriptions and link previews."""
        parts = [self.labels[iri]]
        if category is not None:
            parts.append(f"— {self.concepts.get(category, '')}")
        origin = self.g.value(iri, KB.origin)
        if origin is not None:
            parts.append(f"from {self.label(origin)}")
        text = " ".join(parts)
        first = description.strip().split(". ")[0].replace("\n", " ").replace("*", "").replace("_", "")
        return (text + ". " + first).strip()[:300] if first else text

    def events_of(self, iri) -> list[dict]:
        """The events that name `iri`: as a system they involve, as a weapon used against those, or as their
        actor (a country's page lists what its forces used, captured and lost), in order of date."""
        g = self.g
        found = dict.fromkeys([*g.subjects(KB.involves, iri), *g.subjects(KB.weapon, iri), *g.subjects(KB.actor, iri)])
        return sorted((self.event(e) for e in found), key=event_order)

    def variant_events_of(self, iri, variants: list) -> list[dict]:
        """The events that name one of `variants` (the system's, at any depth) and not the system itself: a
        reader of the T-80's page sees where its T-80U and T-80BV were reported, each event once."""
        g = self.g
        def naming(s) -> set:
            return {*g.subjects(KB.involves, s), *g.subjects(KB.weapon, s)}

        found = {e for v in variants for e in naming(v)} - naming(iri)
        return sorted((self.event(e) for e in found), key=event_order)

    def event(self, e) -> dict:
        g = self.g
        place = g.value(e, KB.place)
        return {
            "id": self.id_of(e), "name": self.labels.get(e, self.label(e)), "href": self.href(e),
            "date": str(g.value(e, KB.date) or ""), "reported": str(g.value(e, KB.reported) or ""),
            "place": self.link(place) if place is not None else None,
            "coordinates": self.coordinates(place) if place is not None else None,
            "systems": [self.link(s) for s in sorted(g.objects(e, KB.involves), key=self._sort_key)],
            "weapons": [self.link(s) for s in sorted(g.objects(e, KB.weapon), key=self._sort_key)],
            "action": self.concepts_label(g.value(e, KB.action)),
            "evidence": self.concepts_label(g.value(e, KB.evidence)),
            "actor": self.link(g.value(e, KB.actor)) if g.value(e, KB.actor) is not None else None,
            "actor_label": self.actor_label(g.value(e, KB.action)),
        }

    def actor_label(self, action) -> str:
        """How an event's actor is named for its action (`used by`, `lost by`: kb:actorLabel)."""
        return str(self.g.value(action, KB.actorLabel) or "actor") if action is not None else "actor"

    def concepts_label(self, node) -> str:
        return str(self.g.value(node, SKOS.prefLabel) or "") if node is not None else ""

    def coordinates(self, place):
        wkt = self.g.value(interned(f"{place}#geometry"), GEO.asWKT)
        if wkt is None:
            return None
        lon, lat = str(wkt).removeprefix("POINT(").rstrip(")").split()
        return (float(lat), float(lon))

    # --- vocabulary ------------------------------------------------------------------------

    def vocabulary(self) -> dict:
        o = self.ontology
        classes = []
        for cls in sorted(set(o.subjects(RDF.type, OWL.Class)), key=str):
            classes.append({"id": local(cls), "iri": str(cls), "label": str(o.value(cls, RDFS.label) or local(cls)),
                            "comment": str(o.value(cls, RDFS.comment) or ""),
                            "folder": str(o.value(cls, KB.folder) or ""),
                            "super": [local(c) for c in o.objects(cls, RDFS.subClassOf)],
                            "align": [str(c) for c in sorted(o.objects(cls, OWL.equivalentClass), key=str)]
                            + [str(c) for c in sorted(o.objects(cls, RDFS.seeAlso), key=str)]})
        properties = []
        for prop in sorted(set(o.subjects(KB.yamlKey, None)) | set(o.subjects(RDF.type, OWL.ObjectProperty))
                           | set(o.subjects(RDF.type, OWL.DatatypeProperty)), key=str):
            vt = o.value(prop, KB.valueType)
            properties.append({
                "id": local(prop), "iri": str(prop), "curie": self.g.namespace_manager.normalizeUri(prop),
                "label": str(o.value(prop, RDFS.label) or local(prop)),
                "comment": str(o.value(prop, RDFS.comment) or ""),
                "key": str(o.value(prop, KB.yamlKey) or ""),
                "applies": sorted(local(c) for c in o.objects(prop, KB.appliesTo)),
                "domain": [local(c) for c in o.objects(prop, RDFS.domain)],
                "range": [self.g.namespace_manager.normalizeUri(c) for c in o.objects(prop, RDFS.range)],
                "value_type": self.g.namespace_manager.normalizeUri(vt) if vt is not None else "",
                "unit": str(o.value(prop, KB.unitLabel) or ""),
                "multiple": bool(o.value(prop, KB.multiple)),
                "qualifiers": sorted(str(q) for q in o.objects(prop, KB.qualifier)),
                "constraints": self._constraints(prop),
                "align": sorted(str(x) for x in list(o.objects(prop, SKOS.exactMatch)) + list(o.objects(prop, SKOS.closeMatch))
                                + list(o.objects(prop, RDFS.subPropertyOf))),
            })
        return {"classes": classes, "properties": properties}

    def _constraints(self, prop) -> list[str]:
        """What the loader checks of a key's value besides its type, read from the same annotations it reads."""
        o, out = self.ontology, []
        lo, hi = o.value(prop, KB.minValue), o.value(prop, KB.maxValue)
        if lo is not None and hi is not None:
            out.append(f"plausible: {lo}–{hi}")
        earlier = o.value(prop, KB.notBefore)
        if earlier is not None:
            out.append(f"not before {o.value(earlier, KB.yamlKey) or local(earlier)}")
        return out


def local(node) -> str:
    text = str(node)
    return text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def concept_id(node) -> str:
    return str(node).rsplit("/", 1)[-1]


class TreeNodeBuilder:
    """Builds the variant tree of a family for the SVG drawing, marking the page's own system."""

    def __init__(self, model: SiteModel):
        self.model = model

    def children(self, s) -> list:
        """The systems whose (first) `variant_of` is `s`."""
        g = self.model.g
        return [c for c in g.subjects(KB.variantOf, s) if c in self.model.system_concepts and g.value(c, KB.variantOf) == s]

    def family(self, s):
        """(the root of the family of variants `s` belongs to, its tree drawn for `s`), or None if it has none."""
        g = self.model.g
        root, seen = s, {s}
        while (up := g.value(root, KB.variantOf)) is not None and up not in seen:
            seen.add(up)
            root = up
        if not self.children(root):
            return None
        return root, self.tree(root, s)

    def descendants(self, s) -> list:
        """The variants of `s` at any depth, each once."""
        seen, stack, out = {s}, [s], []
        while stack:
            for c in self.children(stack.pop()):
                if c not in seen:
                    seen.add(c)
                    out.append(c)
                    stack.append(c)
        return out

    def tree(self, root, current):
        """The family below `root`, built with a stack rather than recursion: a chain of variants may be as long
        as the entries make it (`variant_of` has no cycles, validation sees to that)."""
        from .svg import TreeNode

        def box(s):
            based_on = sorted(self.model.label(b) for b in self.model.g.objects(s, KB.basedOn))
            return TreeNode(self.model.labels[s], self.model.href(s), [], current=s == current, based_on=based_on)

        top = box(root)
        seen, stack = {root}, [(root, top)]
        while stack:
            s, node = stack.pop()
            for c in sorted(self.children(s), key=lambda c: (self.model.labels[c], str(c))):
                if c not in seen:
                    seen.add(c)
                    node.children.append(box(c))
                    stack.append((c, node.children[-1]))
        return top
