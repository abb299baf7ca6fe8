"""SPARQL over the graph: prefixes pre-bound, results in the W3C result formats."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from .problems import KBError, Problem

if TYPE_CHECKING:  # rdflib is imported where it is used: `kb query` on a saved store never needs it
    from rdflib import Graph
    from rdflib.query import Result

PARSER_LOCK = threading.Lock()
RESULT_FORMATS = {"csv": "csv", "json": "json", "xml": "xml"}  # tsv: see _tsv (rdflib has none)
GRAPH_FORMATS = {"turtle": "turtle", "nt": "nt", "jsonld": "json-ld", "xml": "xml"}


@dataclass(frozen=True)
class SavedQuery:
    name: str
    path: Path
    text: str
    description: str  # the leading comment lines


def saved_queries(queries_dir: Path) -> dict[str, SavedQuery]:
    found = {}
    for path in sorted(queries_dir.glob("*.rq")):
        text = path.read_text(encoding="utf-8")
        comments = []
        for line in text.splitlines():
            if not line.startswith("#"):
                break
            comments.append(line.lstrip("#").strip())
        found[path.stem] = SavedQuery(path.stem, path, text, " ".join(c for c in comments if c))
    return found


def pattern_reads(text: str, prefixes: dict[str, str]) -> list[tuple[str, str]] | None:
    """What the answer to query `text` can depend on, one pair per triple pattern and property-path step, each
    term as N-Triples writes it: ("Q", its predicate) when the predicate is an IRI, else ("S", its subject) or
    ("O", its object) when one of them is fixed. The answer can only change when a triple with one of these
    predicates, subjects or objects is added or removed. None when any triple can count: a pattern fixes
    nothing (`?s ?p ?o`); a negated path is read backwards or over several steps; a fixed term is not written
    as the lines write it (see `read`); a path that can be zero steps long (`p*`, `p?`) joins two ends that
    nothing else in its group anchors (it matches every node of the graph); or the query is a DESCRIBE or
    names graphs or services. What an incremental build checks the saved queries' answers by
    (kb/site/build.py); rdflib parses the query."""
    from rdflib import Literal, URIRef, Variable
    from rdflib.paths import AlternativePath, InvPath, MulPath, NegatedPath, SequencePath
    from rdflib.plugins.sparql import prepareQuery
    from rdflib.plugins.sparql.parserutils import CompValue

    from .export import nt_term

    class Anything(Exception):
        pass

    found: list[tuple[str, str]] = []

    def fixed(term) -> bool:
        return isinstance(term, (URIRef, Literal))

    def read(term) -> str:
        """A fixed term as the N-Triples lines, and so the changes' tags, write it. Oxigraph matches a literal
        with a datatype or a language by value (`1.50` is `1.5`, `"x"@EN` is `"x"@en`) and reads an IRI
        written with an escape (`kb:a\\-b`) without it, where rdflib's forms differ: any triple can count."""
        if "\\" in term or not (isinstance(term, URIRef) or (isinstance(term, Literal) and term.datatype is None
                                                             and term.language is None)):
            raise Anything
        return nt_term(term)

    def steps(path) -> list:
        if isinstance(path, URIRef):
            return [path]
        if isinstance(path, (SequencePath, AlternativePath)):
            return [step for arg in path.args for step in steps(arg)]
        if isinstance(path, InvPath):
            return steps(path.arg)
        if isinstance(path, MulPath):
            return steps(path.path)
        if isinstance(path, CompValue) and path.name.startswith("Path") and path.name != "PathNegatedPropertySet":
            return [step for value in _leaves(path) if isinstance(value, URIRef) for step in steps(value)]
        raise Anything  # a variable predicate, or a negated path (`!p`): any predicate

    def zero(path) -> bool:
        """Whether `path` can be zero steps long; a path of the parsed form counts as one."""
        if isinstance(path, MulPath):
            return path.zero or zero(path.path)
        if isinstance(path, SequencePath):
            return all(zero(arg) for arg in path.args)
        if isinstance(path, AlternativePath):
            return any(zero(arg) for arg in path.args)
        if isinstance(path, InvPath):
            return zero(path.arg)
        return isinstance(path, CompValue)

    def group(triples) -> None:
        """The patterns of one group, joined: a path that can be zero steps long is read by its steps only
        when one of its ends is fixed or anchored, i.e. also an end of a pattern that cannot be (or, in turn,
        of an anchored path); then it matches that node and what its steps reach."""
        anchored, loose = set(), []
        for s, p, o in triples:
            pattern(s, p, o)
            if zero(p):
                loose.append((s, o))
            else:
                anchored |= {s, o}
        while loose:
            held = [(s, o) for s, o in loose if {s, o} & anchored or fixed(s) or fixed(o)]
            if not held:
                raise Anything
            anchored |= {end for ends in held for end in ends}
            loose = [ends for ends in loose if ends not in held]

    def pattern(s, p, o) -> None:
        try:
            found.extend(("Q", read(step)) for step in steps(p))
        except Anything:  # one triple from s or to o: a variable predicate, or a negated set of forward ones
            one_step = isinstance(p, Variable) or (isinstance(p, NegatedPath)
                                                   and all(isinstance(arg, URIRef) for arg in p.args))
            if not one_step or not (fixed(s) or fixed(o)):
                raise
            found.append(("S", read(s)) if fixed(s) else ("O", read(o)))

    def walk(node) -> None:
        if isinstance(node, CompValue):
            if (node.name in ("DescribeQuery", "Graph", "GraphGraphPattern", "ServiceGraphPattern")
                    or dict.get(node, "datasetClause")):
                raise Anything
            if node.name == "BGP":  # the translated form
                group(node.triples)
            if node.name == "TriplesBlock":  # as parsed (inside EXISTS): flat lists of terms, three by three
                group([terms[i:i + 3] for terms in node.triples for i in range(0, len(terms) - 2, 3)])
            for key in node:
                walk(dict.get(node, key))
        elif isinstance(node, (list, tuple, set)) and not isinstance(node, str):
            for value in node:
                walk(value)

    try:
        with PARSER_LOCK:
            query = prepareQuery(text, initNs=prefixes)
        walk(query.algebra)
    except Exception:  # noqa: BLE001 - Anything, or a query rdflib cannot read (Oxigraph answers it): any triple
        return None
    return sorted(set(found))


def saved_query_reads(queries: dict[str, SavedQuery], prefixes: dict[str, str], cache_dir: Path) -> dict:
    """`pattern_reads` of each saved query by name, kept in `.kb-cache/query-reads.pickle` (signed, as the
    other caches: a planted file could make a build keep a stale answer) under a hash of the query and the
    prefixes: importing rdflib's SPARQL parser takes 0.3 s, and parsing a query 30 ms."""
    import hashlib
    import json
    import pickle

    from .shards import Shards

    cache = Shards(cache_dir / "query-reads.pickle")
    stamp = ("query-reads", 4)
    loaded = cache.load(stamp)
    kept = loaded[0] if loaded is not None and isinstance(loaded[0], dict) else {}
    found, now = {}, {}
    for name, q in queries.items():
        key = hashlib.blake2b(json.dumps([prefixes, q.text], sort_keys=True).encode(), digest_size=16).hexdigest()
        found[name] = now[key] = kept[key] if key in kept else pattern_reads(q.text, prefixes)
    if now != kept:
        try:
            cache.save(stamp, now, {}, str)
        except (OSError, pickle.PickleError):
            pass  # parsed again next time
    return found


def _leaves(node) -> list:
    """Every value inside a parsed (not yet translated) part of a query."""
    from rdflib.plugins.sparql.parserutils import CompValue

    if isinstance(node, CompValue):
        return [leaf for key in node for leaf in _leaves(dict.get(node, key))]
    if isinstance(node, (list, tuple)):
        return [leaf for value in node for leaf in _leaves(value)]
    return [node]


def run_query(graph: Graph, text: str, origin: str = "query", bindings: dict | None = None,
              base_iri: str | None = None) -> Result:
    """Parse and run `text`; a syntax or evaluation error is a KBError at `origin:line:column`.

    Besides the fixed prefixes, `id:` is bound to the entity base IRI when given (`id:t-72`).
    """
    from pyparsing import ParseException
    from rdflib.plugins.sparql import prepareQuery

    from .namespaces import PREFIXES

    try:
        namespaces = dict(PREFIXES, **({"id": base_iri} if base_iri else {}))
        with PARSER_LOCK:  # rdflib's SPARQL parser (pyparsing) is not safe in parallel threads
            query = prepareQuery(text, initNs=namespaces)
    except ParseException as e:
        found = e.line.strip() if e.line else ""
        raise KBError([Problem(origin, e.lineno, f"SPARQL syntax error at column {e.col}: "
                               f"unexpected {_token(found, e.col)}", "query-syntax",
                               "check the braces, dots and prefixes near there")])
    except Exception as e:  # noqa: BLE001 - rdflib raises plain exceptions for bad prefixes etc.
        raise KBError([Problem(origin, 1, f"SPARQL error: {e}", "query-error")])
    try:
        return graph.query(query, initBindings=bindings or {})
    except Exception as e:  # noqa: BLE001
        raise KBError([Problem(origin, 1, f"SPARQL evaluation error: {e}", "query-error")])


def _token(line: str, col: int) -> str:
    rest = line[col - 1:] if col else line
    word = re.split(r"\s", rest.strip(), maxsplit=1)[0] if rest.strip() else ""
    return f"`{word}`" if word else "end of query"


def serialize_result(result: Result, fmt: str) -> str:
    """SELECT/ASK in a W3C result format; CONSTRUCT/DESCRIBE as an RDF syntax."""
    if result.type in ("CONSTRUCT", "DESCRIBE"):
        from .export import export_graph  # Oxigraph's writers: rdflib's Turtle writes "46"^^xsd:decimal as 46.0

        return export_graph(result.graph, fmt if fmt in GRAPH_FORMATS else "turtle")
    if fmt == "tsv":
        return _tsv(result)
    data = result.serialize(format=RESULT_FORMATS[fmt])
    return data.decode("utf-8") if isinstance(data, bytes) else data


_XSD = "http://www.w3.org/2001/XMLSchema#"
_ABBREVIATED = {_XSD + "integer", _XSD + "decimal", _XSD + "double", _XSD + "boolean"}


def _tsv(result: Result) -> str:
    """SPARQL 1.1 Query Results TSV: `?var` header, RDF terms in Turtle syntax."""
    from rdflib import Literal

    if result.type == "ASK":
        return "?_askResult\n" + ("true" if result.askAnswer else "false") + "\n"
    lines = ["\t".join(f"?{v}" for v in result.vars)]
    for row in result:
        cells = []
        for term in row:
            if term is None:
                cells.append("")
            elif isinstance(term, Literal) and str(term.datatype) in _ABBREVIATED and _TURTLE_NUMBER.match(str(term)):
                cells.append(str(term))
            else:
                cells.append(term.n3())
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


_TURTLE_NUMBER = re.compile(r"^([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|true|false)$")
