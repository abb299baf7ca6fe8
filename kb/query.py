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
