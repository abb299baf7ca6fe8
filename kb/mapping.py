"""Turning loaded entries into RDF triples, driven by the key specs read from the ontology."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

from rdflib import Literal, URIRef
from rdflib.namespace import DCTERMS, RDF, SKOS, XSD

from .export import lines_digest, nt_line
from .index import Index
from .loader import Entry, Node
from .namespaces import GEO, KB, WD, interned
from .problems import Problem, did_you_mean
from .quantities import QuantityError, convert, dimension_of, stated_form
from .schema import KeySpec, Schema
from .shards import Packed

_LANG = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$")
_WIKIDATA = re.compile(r"^Q[1-9][0-9]*$")
_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^\d{4}$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_DECIMAL, _INTEGER, _ANY_URI = XSD.decimal, XSD.integer, XSD.anyURI
_KIND_WORD = {"int": "a number", "float": "a number", "bool": "a yes/no value", "null": "empty",
              "timestamp": "a date", "map": "a mapping", "seq": "a list", "str": "text"}


def a(noun: str) -> str:
    """`noun` with its indefinite article."""
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


class ValueProblem(Exception):
    def __init__(self, message: str, hint: str | None = None, code: str = "wrong-type", line: int = 0):
        super().__init__(message)
        self.message, self.hint, self.code, self.line = message, hint, code, line


@dataclass
class MappedGraph:
    """The entries' triples, with where each came from, and the problems met on the way."""

    graph: Index
    problems: list[Problem] = field(default_factory=list)
    key_line_parts: list[Packed] = field(default_factory=list)  # each entry's `Premapped.key_lines`
    entry_files: dict[URIRef, str] = field(default_factory=dict)
    failed: set[tuple[URIRef, URIRef]] = field(default_factory=set)  # (subject, property) with a bad value
    unchecked: set[URIRef] = field(default_factory=set)  # entries too broken to check against the shapes
    index: dict[str, Entry] = field(default_factory=dict)
    clean: dict[str, Premapped] = field(default_factory=dict)  # entry id → its mapping, if it had no problem
    runs: dict[str, list] = field(default_factory=dict)  # entry id → its lines (`Premapped.lines`)
    digests: dict[str, bytes] = field(default_factory=dict)  # entry id → the digest of its lines
    edits: int = -1  # `graph.edits` once the ontology is added (`open_kb`): the graph is still the mapping's
    # The edit path (kb/knowledge_base.py `open_kb`): every entry mapped cleanly, but only the changed ones are in
    # `clean` and `runs`; this gives the lines of any other entry as kept (its digest is in `digests`)
    kept_runs: object = None
    kept_key_lines: object = None  # and this the key lines (`key_line_parts`) of those entries

    _key_lines: dict | None = field(default=None, repr=False, compare=False)  # made from the parts when asked

    @property
    def all_clean(self) -> bool:
        """Whether every entry mapped without a problem."""
        return self.kept_runs is not None or len(self.clean) == len(self.index)

    @property
    def key_lines(self) -> dict[tuple[URIRef, URIRef], tuple[str, int]]:
        """(subject, property) → (file, line) of the key it was mapped from, for the line of a problem: put
        together when first asked, so a run without problems never unpickles the kept entries' key lines
        (130,000 at 10,000 systems: 0.1 s of every rebuild)."""
        if self._key_lines is None:
            self._key_lines = {}
            kept = self.kept_key_lines() if self.kept_key_lines is not None else []
            for part in [*kept, *self.key_line_parts]:
                found = part.open()
                if found is not Packed.UNREADABLE:  # then a problem is reported at line 1 of the file
                    self._key_lines.update(found)
        return self._key_lines

    def add(self, mapping: Premapped, entry: Entry, clean: bool) -> None:
        """One entry's triples and key lines into the whole."""
        self.graph.add_all(mapping.triples)
        self.runs[entry.id] = mapping.lines
        self.digests[entry.id] = mapping.digest
        self.key_line_parts.append(mapping.key_lines)
        self._key_lines = None
        if clean:
            self.clean[entry.id] = mapping


class _Triples(list):
    """One entry's triples as they are mapped (an Index's `add`, kept in order)."""

    add, add_all = list.append, list.extend


@dataclass
class Premapped:
    """One entry's mapping, kept in `.kb-cache/` (kb/parse_cache.py) when it mapped without a problem: valid
    while the entry's file is unchanged and every entry it links to still exists with the class it had."""

    triples: list
    key_lines: Packed  # [((subject, property), (path, line))], unpickled only for a problem's line
    links: tuple  # ((linked entry id, its class), ...)
    lines: list  # the triples as N-Triples lines: what the site compares and dumps (kb/site/build.py)
    digest: bytes  # of the lines (`export.lines_digest`)


@dataclass
class Kept:
    """A kept mapping offered to `map_entries`, with the way to parse the entry if it no longer holds."""

    premapped: Premapped
    parse: object  # () -> Entry
    entry: Entry | None = None  # parsed, when the kept mapping was not used
    fresh: bool = False  # mapped in this run (by a worker, kb/parse_cache.py), not kept from an earlier one


class Mapper:
    """Maps entries to triples. One instance per knowledge base (it holds the id index)."""

    def __init__(self, schema: Schema, base_iri: str, index: dict[str, Entry], duplicated: set[str] = frozenset()):
        self.duplicated = duplicated
        self.schema = schema
        self.base_iri = base_iri
        self.index = index
        self._kinds: dict[int, str] = {}
        self._decimals: dict = {}  # Decimal -> its Literal: the same figures recur thousands of times
        self._links: list = []  # (id, class) of the entries the entry being mapped links to
        self._terms: dict = {}  # term → its N-Triples form
        self._ordered: dict = {}  # class → [(a date key's spec, the spec of the key it may not precede)]

    def iri(self, entry_id: str) -> URIRef:
        return interned(self.base_iri + entry_id)

    # --- one entry -------------------------------------------------------------------------

    def map_entry(self, entry: Entry, out: MappedGraph) -> None:
        subject = self.iri(entry.id)
        out.entry_files[subject] = entry.path
        g = _Triples()
        g.add((subject, RDF.type, entry.cls))
        key_lines: dict = {}
        problems = len(out.problems)
        self._links = []
        for key, node in entry.data.value.items() if entry.data is not None else ():
            spec = self.schema.keys.get(entry.cls, {}).get(key)
            if spec is None:
                out.problems.append(self._unknown_key(entry, key, node, self.schema.keys.get(entry.cls, {})))
                continue
            key_lines[(subject, spec.prop)] = (entry.path, node.key_line)
            for also in spec.also:
                key_lines[(subject, also)] = (entry.path, node.key_line)
            try:
                self._map_key(subject, spec, node, g)
            except ValueProblem as p:
                out.failed.add((subject, spec.prop))
                out.problems.append(Problem(entry.path, p.line or node.key_line, p.message, p.code, p.hint))
        out.problems.extend(self._dates_in_order(entry, subject, g))
        lines = list(dict.fromkeys(nt_line(t, self._terms) for t in g))  # each once: a value cited twice is one triple
        out.add(Premapped(list(g), Packed.of(list(key_lines.items())), tuple(self._links), lines,
                          lines_digest(lines)), entry,
                clean=entry.data is not None and len(out.problems) == problems and not entry.problems)

    def _dates_in_order(self, entry: Entry, subject: URIRef, g: _Triples) -> list[Problem]:
        """The entry's dates earlier than one their key may not precede (`kb:notBefore`: an event reported before
        it happened, a source read before it was published); a qualifier's are checked with its value
        (`_map_key`)."""
        pairs = self._ordered_pairs(entry.cls, self.schema.keys.get(entry.cls, {}))
        if not pairs:
            return []
        direct = {p: str(o) for s, p, o in g if s is subject}
        return [Problem(entry.path, entry.data.value[spec.key].key_line, message, "out-of-order", hint)
                for spec, message, hint in _out_of_order(pairs, lambda spec: direct.get(spec.prop))]

    def _ordered_pairs(self, cls, specs: dict) -> list[tuple]:
        """(a date key's spec, the spec of the key it may not precede) among `specs`, worked out once per class
        (None: the qualifiers)."""
        pairs = self._ordered.get(cls)
        if pairs is None:
            pairs = self._ordered[cls] = [
                (spec, first) for spec in specs.values() if spec.not_before is not None
                for first in [s for s in specs.values() if s.prop == spec.not_before][:1]]
        return pairs

    def _unknown_key(self, entry: Entry, key: str, node: Node, specs: dict[str, KeySpec]) -> Problem:
        what = self.schema.class_label(entry.cls)
        hint = did_you_mean(key, specs)
        if hint is None:
            elsewhere = sorted(self.schema.class_label(c) for c, ks in self.schema.keys.items() if key in ks)
            hint = (f"`{key}` is a key of {', '.join(elsewhere)} entries" if elsewhere
                    else f"keys of {a(what)}: " + ", ".join(sorted(specs)))
        return Problem(entry.path, node.key_line, f"unknown key `{key}` for {a(what)}", "unknown-key", hint)

    def _map_key(self, subject: URIRef, spec: KeySpec, node: Node, g: _Triples) -> None:
        is_list = node.kind == "seq" and self.kind(spec) != "coordinates"
        items = node.value if is_list else [node]
        if is_list and not items:
            raise ValueProblem(f"`{spec.key}` is an empty list", "remove the key or give a value", "wrong-type", node.line)
        if is_list and not spec.multiple and not all(i.kind == "map" for i in items):
            raise ValueProblem(f"`{spec.key}` takes one value, not a list",
                               "to record several sourced values, write each as {value: ..., source: ...}",
                               "wrong-type", node.line)
        parsed = [self._item(spec, item) for item in items]  # (value, qualifiers, line)
        preferred = [p for p in parsed if p[1].get("preferred") is True]
        if not spec.multiple and len(parsed) > 1 and len(preferred) != 1:
            raise ValueProblem(f"`{spec.key}` has {len(parsed)} values but takes one",
                               "mark exactly one of them `preferred: true`", "ambiguous-value", node.line)
        direct = preferred or parsed
        ordered = self._ordered_pairs(None, self.schema.qualifiers)  # an operator `until` a year before `since`
        for _, qualifiers, line in parsed:
            if ordered and qualifiers:
                for _, message, hint in _out_of_order(ordered, lambda q: _text(qualifiers.get(q.key))):
                    raise ValueProblem(f"{message} in a value of `{spec.key}`", hint, "out-of-order", line)
        for n, (value, qualifiers, line) in enumerate(parsed, start=1):
            if isinstance(value, tuple):  # coordinates: a GeoSPARQL geometry node
                _, lat, lon = value
                value = interned(f"{subject}#geometry")
                g.add((value, RDF.type, GEO.Geometry))
                g.add((value, GEO.asWKT, Literal(f"POINT({_num(lon)} {_num(lat)})", datatype=GEO.wktLiteral)))
            if (n - 1) < len(parsed) and parsed[n - 1] in direct:
                for prop in (spec.prop, *spec.also):
                    g.add((subject, prop, value))
            statement_qualifiers = {k: v for k, v in qualifiers.items() if k != "lang"}
            if statement_qualifiers:
                self._statement(subject, spec, n, value, statement_qualifiers, g, preferred_exists=bool(preferred))

    def _item(self, spec: KeySpec, node: Node) -> tuple:
        """(rdf value, qualifiers, line) of one list item or single value."""
        qualifiers: dict = {}
        value_node = node
        if node.kind == "map" and self.kind(spec) != "coordinates":
            allowed = set(spec.qualifiers) | {spec.value_key}
            for k, q in node.value.items():
                if k not in allowed:
                    hint = did_you_mean(k, allowed) or "allowed: " + ", ".join(sorted(allowed))
                    if re.match(r"^\d", k):  # `{value: 1,000 hp}`: the comma ended the value
                        hint = "a comma inside {…} separates keys: quote the value, e.g. `value: \"1,000 hp\"`"
                    raise ValueProblem(f"unknown qualifier `{k}` in `{spec.key}`", hint, "unknown-key", q.key_line)
            if spec.value_key not in node.value:
                raise ValueProblem(f"this `{spec.key}` item has no `{spec.value_key}`",
                                   f"write {{{spec.value_key}: ..., ...}}", "missing-key", node.line)
            value_node = node.value[spec.value_key]
            for k, q in node.value.items():
                if k != spec.value_key:
                    qualifiers[k] = self._qualifier(spec, k, q)
        value = self.convert(spec, value_node, qualifiers.get("lang"))
        if value_node.kind == "str" and self.kind(spec) == "quantity":
            stated = stated_form(value_node.value, value.toPython(), spec.unit)  # `340 hp`, kept beside 253.538 kW
            if stated is not None:
                qualifiers["stated"] = Literal(stated)
        return value, qualifiers, value_node.line

    def _qualifier(self, spec: KeySpec, key: str, node: Node):
        if key == "preferred":
            if node.kind != "bool":
                raise ValueProblem("`preferred` must be true or false", None, "wrong-type", node.line)
            return node.value
        if key == "source":
            return self._link(node, KB.Source, "source")
        if key == "lang":
            if node.kind != "str" or not _LANG.match(node.value):
                raise ValueProblem(f"`{node.source_text}` is not a language tag", "use e.g. `ru`, `uk`, `en`",
                                   "wrong-type", node.line)
            # in lower case, as RDF allows (tags are case-insensitive) and as Oxigraph keeps them: `en-GB` would
            # be `en-gb` in the dumps and the query store but not in the pages' JSON-LD
            return node.value.lower()
        return self.convert(self.schema.qualifiers[key], node)

    def _statement(self, subject, spec, n, value, qualifiers, g, preferred_exists):
        node = interned(f"{subject}#{spec.local_name}-{n}")
        g.add((subject, KB.statement, node))
        g.add((node, RDF.type, KB.Statement))
        g.add((node, KB.property, spec.prop))
        g.add((node, RDF.value, value))
        if "preferred" in qualifiers or preferred_exists:
            g.add((node, KB.rank, KB.Preferred if qualifiers.get("preferred") else KB.Normal))
        for key, q in qualifiers.items():
            if key == "preferred":
                continue
            prop = (DCTERMS.source if key == "source" else KB.statedValue if key == "stated"
                    else self.schema.qualifiers[key].prop)
            g.add((node, prop, q))

    # --- values ----------------------------------------------------------------------------

    def kind(self, spec: KeySpec) -> str:
        """What sort of value `spec` takes (`quantity`, `link`, `text`, …): worked out once per key, since
        comparing rdflib terms costs microseconds and a large knowledge base maps a few hundred thousand values."""
        kind = self._kinds.get(id(spec))
        if kind is None:
            t = spec.value_type
            kind = ("quantity" if t == KB.Quantity else "integer" if t in (XSD.integer, KB.Year)
                    else "date" if t == KB.FlexibleDate else "coordinates" if t == KB.Coordinates
                    else "concept" if t == SKOS.Concept else "link" if t in self.schema.subclasses
                    else "wikidata" if t == KB.WikidataId else "url" if t == XSD.anyURI
                    else "langstring" if t == RDF.langString else "text")
            self._kinds[id(spec)] = kind
        return kind

    def convert(self, spec: KeySpec, node: Node, lang: str | None = None):
        """The RDF term for one YAML value of `spec`, or ValueProblem."""
        kind = self.kind(spec)
        if node.kind in ("map", "seq") and kind != "coordinates":
            raise ValueProblem(f"`{spec.key}` must be {self._expected(spec)}, not {_KIND_WORD[node.kind]}",
                               None, "wrong-type", node.line)
        if node.kind == "null":
            raise ValueProblem(f"`{spec.key}` is empty", "give a value or remove the key", "wrong-type", node.line)
        if kind == "quantity":
            return self._quantity(spec, node)
        if kind == "integer":
            return self._integer(spec, node)
        if kind == "date":
            return self._date(spec, node)
        if kind == "coordinates":
            return self._coordinates(spec, node)
        if kind == "concept":
            return self._concept(spec, node)
        if kind == "link":
            return self._link(node, spec.value_type, spec.key)
        if kind == "wikidata" and node.kind != "str":
            raise ValueProblem(f"`{spec.key}` must be a Wikidata item id, not {_KIND_WORD[node.kind]} (`{node.source_text}`)",
                               f"write `Q{node.source_text}` if that is the item", "wrong-type", node.line)
        text = self._text(spec, node)
        if kind == "url":
            if not _URL.match(text):
                raise ValueProblem(f"`{text}` is not an http(s) URL", "write the full address, starting with https://",
                                   "bad-url", node.line)
            return Literal(text, datatype=_ANY_URI)
        if kind == "wikidata":
            if not _WIKIDATA.match(text):
                raise ValueProblem(f"`{text}` is not a Wikidata id", "write the item id, e.g. Q12345", "wrong-type", node.line)
            return WD[text]
        if kind == "langstring":
            return Literal(text, lang=lang)
        return Literal(text, lang="en") if spec.key in ("name", "description") else Literal(text)

    def _expected(self, spec: KeySpec) -> str:
        t = spec.value_type
        if t == KB.Quantity:
            return f"a quantity in {spec.unit_label or spec.unit}"
        if t in (XSD.integer, KB.Year):
            return "a year" if t == KB.Year else "a whole number"
        if t in self.schema.subclasses:
            return "the id of a " + self.schema.class_label(t)
        return "text"

    def _text(self, spec: KeySpec, node: Node) -> str:
        if node.kind != "str":
            hint = (f"quote it: `\"{node.source_text}\"`" if node.kind in ("bool", "int", "float", "timestamp") else None)
            raise ValueProblem(f"`{spec.key}` must be text, not {_KIND_WORD[node.kind]} (`{node.source_text}`)",
                               hint, "wrong-type", node.line)
        text = node.value.strip()
        if not text:
            raise ValueProblem(f"`{spec.key}` is empty", "give a value or remove the key", "wrong-type", node.line)
        if spec.max_value is not None and len(text) > spec.max_value:
            raise ValueProblem(f"`{spec.key}` is {len(text)} characters long (at most {int(spec.max_value)})",
                               None, "too-long", node.line)
        return text

    def _bounds(self, spec: KeySpec, value, node: Node, unit: str = ""):
        shown = f"{_num(value)} {unit}".strip()
        if value < 0:
            raise ValueProblem(f"`{spec.key}` is negative ({shown})", None, "out-of-range", node.line)
        if spec.min_value is not None and value < Decimal(str(spec.min_value)) or \
                spec.max_value is not None and value > Decimal(str(spec.max_value)):
            lo = _num(spec.min_value)
            hi = _num(spec.max_value)
            raise ValueProblem(f"`{spec.key}` of {shown} is not plausible (expected {lo}–{hi}{' ' + unit if unit else ''})",
                               "check the value and its unit" if unit else "check the value", "out-of-range", node.line)

    def _quantity(self, spec: KeySpec, node: Node) -> Literal:
        unit = spec.unit_label or spec.unit
        if node.kind in ("int", "float"):
            from .quantities import canonical_decimal
            value = canonical_decimal(node.value)
        elif node.kind == "str":
            if not re.match(r"^\s*[-+]?[\d.]", node.value):
                raise ValueProblem(f"`{spec.key}` must be a number with a unit, not `{node.value}`",
                                   f"write e.g. `12 {unit}`", "wrong-type", node.line)
            try:
                value = convert(node.value, spec.unit)
            except QuantityError as e:
                raise ValueProblem(f"`{spec.key}`: {e} (expected in {unit})", e.hint, e.code, node.line)
        else:
            raise ValueProblem(f"`{spec.key}` must be a quantity in {unit}, not {_KIND_WORD[node.kind]}",
                               f"write e.g. `12 {unit}`", "wrong-type", node.line)
        self._bounds(spec, value, node, unit)
        literal = self._decimals.get(value)
        if literal is None:
            literal = self._decimals[value] = Literal(value, datatype=_DECIMAL)
        return literal

    def _integer(self, spec: KeySpec, node: Node) -> Literal:
        if node.kind == "str" and (dim := dimension_of(node.value)):
            raise ValueProblem(f"`{spec.key}` is a plain number, but `{node.value}` is {dim}",
                               f"write `{spec.key}: {re.split(r'[^0-9.]', node.value.strip())[0] or 3}`",
                               "wrong-dimension", node.line)
        if node.kind != "int":
            got = "a fraction" if node.kind == "float" else _KIND_WORD[node.kind]
            raise ValueProblem(f"`{spec.key}` must be {self._expected(spec)}, not {got} (`{node.source_text}`)",
                               None, "wrong-type", node.line)
        self._bounds(spec, node.value, node)
        return Literal(node.value, datatype=_INTEGER)

    def _date(self, spec: KeySpec, node: Node) -> Literal:
        if node.kind == "timestamp":
            if isinstance(node.value, dt.datetime):
                return Literal(node.value.date().isoformat(), datatype=XSD.date)
            return Literal(node.value.isoformat(), datatype=XSD.date)
        text = str(node.value).strip()
        if node.kind == "int" and _YEAR.match(text):
            return Literal(text, datatype=XSD.gYear)
        if node.kind == "str":
            if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
                try:
                    return Literal(dt.date.fromisoformat(text).isoformat(), datatype=XSD.date)
                except ValueError:
                    pass
            elif m := _YEAR_MONTH.match(text):
                if 1 <= int(m.group(2)) <= 12:
                    return Literal(text, datatype=XSD.gYearMonth)
            elif _YEAR.match(text):
                return Literal(text, datatype=XSD.gYear)
        raise ValueProblem(f"`{spec.key}` is not a valid date: `{node.source_text}`",
                           "write YYYY-MM-DD, YYYY-MM or YYYY", "bad-date", node.line)

    def _coordinates(self, spec: KeySpec, node: Node):
        ok = node.kind == "seq" and len(node.value) == 2 and all(v.kind in ("int", "float") for v in node.value)
        if not ok:
            raise ValueProblem("`coordinates` must be [latitude, longitude] in decimal degrees",
                               "e.g. `coordinates: [48.5953, 38.0003]`", "wrong-type", node.line)
        lat, lon = (float(v.value) for v in node.value)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueProblem(f"coordinates [{lat}, {lon}] are out of range", "latitude comes first, then longitude",
                               "out-of-range", node.line)
        return ("geometry", lat, lon)

    def _concept(self, spec: KeySpec, node: Node) -> URIRef:
        if node.kind != "str":
            raise ValueProblem(f"`{spec.key}` must be a concept id, not {_KIND_WORD[node.kind]} (`{node.source_text}`)",
                               f"quote it: `\"{node.source_text}\"`", "wrong-type", node.line)
        concepts = self.schema.concepts.get(spec.scheme, {})
        if node.value not in concepts:
            hint = did_you_mean(node.value, concepts) or (  # a short scheme (actions, kinds of source) listed whole
                f"one of: {', '.join(sorted(concepts))}" if len(concepts) <= 12 else "see ontology/categories.ttl for the list")
            raise ValueProblem(f"unknown {spec.label} `{node.value}`", hint, "unknown-concept", node.line)
        return concepts[node.value]

    def _link(self, node: Node, expected: URIRef, key: str) -> URIRef:
        if node.kind != "str":
            hint = f"quote it: `\"{node.source_text}\"`" if node.kind in ("bool", "int", "float", "timestamp") else None
            raise ValueProblem(f"`{key}` must be an entry id, not {_KIND_WORD[node.kind]} (`{node.source_text}`)",
                               hint, "wrong-type", node.line)
        target = self.index.get(node.value)
        if node.value in self.duplicated:
            self._links.append((node.value, None))
            return self.iri(node.value)  # the duplicate itself is reported; its class is uncertain
        if target is None:
            same_kind = [i for i, e in self.index.items() if self.schema.is_a(e.cls, expected)]
            hint = did_you_mean(node.value, same_kind) or did_you_mean(node.value, self.index)
            raise ValueProblem(f"`{node.value}` is not an entry", hint, "dangling-link", node.line)
        if not self.schema.is_a(target.cls, expected):
            raise ValueProblem(f"`{key}` must link to {a(self.schema.class_label(expected))}, but `{node.value}` is "
                               f"{a(self.schema.class_label(target.cls))} ({target.path})", None, "wrong-link", node.line)
        self._links.append((node.value, target.cls))
        return self.iri(node.value)


def _out_of_order(pairs: list[tuple], value_of):
    """(the later key's spec, message, hint) for each pair (a date key, the key it may not precede) whose dates
    `value_of(spec)` gives in the wrong order, compared to the precision of the less precise one (`2022` is not
    before `2022-03-26`)."""
    for spec, first in pairs:
        later, earlier = value_of(spec), value_of(first)
        if later is not None and earlier is not None and later[:len(earlier)] < earlier[:len(later)]:
            yield (spec, f"`{spec.key}` ({later}) is before `{first.key}` ({earlier})",
                   f"`{spec.key}` cannot be earlier than `{first.key}`: check both")


def _text(value) -> str | None:
    return None if value is None else str(value)


def _num(x):
    """A number as a person writes it: `5`, `42.5`, `9000000`."""
    if x is None:
        return "…"
    if isinstance(x, Decimal):
        return f"{x.normalize():f}"
    return int(x) if float(x).is_integer() else x


def entry_index(entries: list[Entry]) -> tuple[dict[str, Entry], set[str]]:
    """(id → the first entry with it, the ids that more than one entry has): what links are checked against."""
    index: dict[str, Entry] = {}
    duplicated = set()
    for e in entries:
        if e.id in index:
            duplicated.add(e.id)
        index.setdefault(e.id, e)
    return index, duplicated


def map_entries(entries: list[Entry], schema: Schema, base_iri: str, kept_mappings: dict[str, Kept] | None = None
                ) -> MappedGraph:
    """Map every entry; an entry with a broken file still gets its rdf:type so links to it resolve.

    `kept_mappings`: entry id → the mapping kept from an earlier run of the same file (kb/parse_cache.py),
    used when everything it links to is as it was."""
    index, duplicated = entry_index(entries)
    out = MappedGraph(graph=Index(), index=index)
    mapper = Mapper(schema, base_iri, index, duplicated)
    for entry in entries:
        if entry.id in duplicated or entry.data is None:
            out.unchecked.add(mapper.iri(entry.id))  # already reported; SHACL would only add noise
        if entry.id in duplicated:
            continue
        kept = (kept_mappings or {}).get(entry.id)
        if kept is None:
            mapper.map_entry(entry, out)
        elif all(i not in duplicated and (e := index.get(i)) is not None and e.cls == cls
                 for i, cls in kept.premapped.links):
            out.entry_files[mapper.iri(entry.id)] = entry.path
            out.add(kept.premapped, entry, clean=True)
        else:  # an entry it links to is gone or changed class: map it again, to report that
            kept.entry = kept.parse()
            mapper.map_entry(kept.entry, out)
    return out


__all__ = ["entry_index", "map_entries", "MappedGraph", "Mapper"]
