"""SPARQL over the graph: prefixes pre-bound, results in the W3C result formats."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rdflib import Graph
from rdflib.query import Result

from .namespaces import PREFIXES
from .problems import KBError, Problem

RESULT_FORMATS = {"csv": "csv", "tsv": "tsv", "json": "json", "xml": "xml"}
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


def run_query(graph: Graph, text: str, origin: str = "query", bindings: dict | None = None) -> Result:
    """Parse and run `text`; a syntax or evaluation error is a KBError at `origin:line:column`."""
    from pyparsing import ParseException
    from rdflib.plugins.sparql import prepareQuery

    try:
        query = prepareQuery(text, initNs=PREFIXES)
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
        graph = result.graph
        for prefix, ns in PREFIXES.items():
            graph.bind(prefix, ns, override=True, replace=True)
        return graph.serialize(format=GRAPH_FORMATS.get(fmt, "turtle"))
    data = result.serialize(format=RESULT_FORMATS[fmt])
    return data.decode("utf-8") if isinstance(data, bytes) else data
