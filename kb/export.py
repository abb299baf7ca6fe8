"""The graph in an RDF syntax, byte-identical for identical triples.

Turtle, N-Triples and RDF/XML are written by Oxigraph (rdflib's writers take seconds at 10,000 systems,
and its RDF/XML writer orders subjects by a set); JSON-LD by `jsonld` below, a direct writer of the
compact form with the fixed prefixes as context.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from itertools import chain

from rdflib import BNode, Literal, URIRef
from rdflib.namespace import RDF, XSD

from .namespaces import PREFIXES

FORMATS = ("turtle", "nt", "jsonld", "xml")
_CONTEXT = {k: str(v) for k, v in sorted(PREFIXES.items())}
_BY_LENGTH = sorted(_CONTEXT.items(), key=lambda kv: -len(kv[1]))


def export_graph(triples: Iterable[tuple], fmt: str = "turtle") -> str:
    """`triples` (a Graph, an Index or any iterable of triples) in `fmt`, in a stable order."""
    ordered = sorted_triples(triples)
    if fmt == "jsonld":
        return jsonld(ordered)
    return oxigraph_serialize(ordered, fmt)


def nt_term(x) -> str:
    """A term as N-Triples writes it. A literal is written as rdflib's `n3()` writes one that fits on a line,
    its text with backslash, quote, line feed and carriage return escaped, also when the text spans lines:
    `n3()` then writes a Turtle long string, which is not N-Triples, and not even Turtle when the text ends in
    a backslash and a quote."""
    if not isinstance(x, Literal):
        return "<" + str(x) + ">"
    text = '"' + str(x).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'
    if x.language is not None:
        return text + "@" + x.language
    return text + "^^<" + str(x.datatype) + ">" if x.datatype is not None else text


def triple_key(t: tuple) -> tuple:
    """A total order of triples: that of their N-Triples lines (so a dump's lines come out sorted)."""
    return tuple(map(nt_term, t))


def nt_line(t: tuple, terms: dict) -> str:
    """The triple as an N-Triples line; `terms` memoises `nt_term`. Sorting lines sorts triples as `triple_key`
    does (an IRI holds no `>`, and every character that can follow a term in a longer one sorts after the
    space)."""
    keys = []
    for x in t:
        k = terms.get(x)
        if k is None:
            k = terms[x] = nt_term(x)
        keys.append(k)
    return f"{keys[0]} {keys[1]} {keys[2]} ."


def graph_runs(mapped, ontology, index, complete: bool = True) -> dict[str, list[str]] | None:
    """The graph's triples as `nt_line`s by what made them, each line in one run: each entry's as kept with its
    mapping (`MappedGraph.runs`, by the entry's id), the ontology's ("") made here. None when `index` is not
    the graph the mapping made (a library user changed it since: `MappedGraph.edits`) or a line would be in
    two runs. Not `complete`, after the edit path (`MappedGraph.kept_runs`): only the changed entries' runs
    and the ontology's, the others being as kept (kb/site/incremental.py `State` takes them from its own)."""
    if mapped is None or mapped.edits != getattr(index, "edits", None):
        return None
    terms: dict = {}
    runs = {**mapped.runs, "": [nt_line(t, terms) for t in ontology]}
    if mapped.kept_runs is not None:
        if not complete:
            return runs
        runs.update((key, mapped.kept_runs(key)) for key in mapped.digests if key not in runs)
        if any(run is None for run in runs.values()):  # a kept run unreadable: the lines from the graph
            return None
    return runs if sum(map(len, runs.values())) == len(index) else None  # (each run's lines are distinct)


def lines_digest(lines: list[str]) -> bytes:
    """A digest of a run of N-Triples lines, in its order: what tells an entry's triples from the kept ones
    without the kept lines (kb/site/incremental.py `State`)."""
    return hashlib.blake2b("\n".join(lines).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def graph_lines(mapped, ontology, index) -> list[str]:
    """The graph's triples as sorted `nt_line`s: those of `graph_runs`, or made from `index` when there are none
    (the graph is not the one the mapping made). What a build dumps, and what the saved store loads."""
    runs = graph_runs(mapped, ontology, index)
    if runs is None:
        terms: dict = {}
        return sorted({nt_line(t, terms) for t in index})
    # the lines in the entries' order, long runs already sorted, which sorting then merges (0.08 s instead of
    # 0.2 s at 10,000 systems)
    return sorted(chain.from_iterable(runs.values()))


def split_line(line: str) -> tuple[str, str, str] | None:
    """The (subject, predicate, object) terms of an `nt_line`, or None if it is not one."""
    s, p, o = (line[:-2].split(" ", 2) + ["", ""])[:3]
    return (s, p, o) if s.endswith(">") and p.endswith(">") and o and line.endswith(" .") else None


def parse_lines(lines: list[str]) -> list:
    """Sorted `nt_line`s as pyoxigraph triples, in their order (for `oxigraph_serialize` and stores)."""
    return [quad.triple for quad in _parsed(lines)]


def _parsed(lines: list[str]):
    """The lines parsed by Oxigraph, as it goes: quads of the default graph."""
    import pyoxigraph as ox

    return ox.parse(input="\n".join(lines), format=ox.RdfFormat.N_TRIPLES, lenient=True)


def load_lines(store, lines: list[str] | None = None, path: str | None = None) -> None:
    """Oxigraph's bulk load into `store` (in memory or on disk) of `graph_lines`, or of the N-Triples dump of
    them at `path`. They are N-Triples milkb wrote from terms it checked as it mapped them: read as such, and
    without Oxigraph checking each IRI again (`lenient`), 244,000 lines load in 0.50 s, where reading them as
    Turtle took 0.63 s."""
    import pyoxigraph as ox

    source = {"path": path} if path is not None else {"input": "\n".join(lines).encode("utf-8")}
    store.bulk_load(**source, format=ox.RdfFormat.N_TRIPLES, lenient=True)


def export_lines(lines: list[str], fmt: str = "turtle") -> str:
    """The graph of `graph_lines` in `fmt`: the same text as `export_graph` of its triples, without sorting
    them again (1.3 s at 10,000 systems). Turtle, N-Triples and RDF/XML are written by Oxigraph as it parses
    the lines, with no Python object per triple: 0.4 s at 10,000 systems, where `parse_lines` alone takes
    0.9 s."""
    if fmt == "jsonld":
        return jsonld(parse_lines(lines))
    return lines_as(lines, fmt).decode("utf-8")


def lines_as(lines: list[str], fmt: str) -> bytes:
    """`graph_lines` written by Oxigraph in `fmt` (turtle, nt, xml) as UTF-8, in their order."""
    return _written(_parsed(lines), fmt)


def _written(triples, fmt: str) -> bytes:
    """Oxigraph's Turtle (with the fixed prefixes), N-Triples or RDF/XML of `triples`, in their order."""
    import pyoxigraph as ox

    formats = {"turtle": ox.RdfFormat.TURTLE, "nt": ox.RdfFormat.N_TRIPLES, "xml": ox.RdfFormat.RDF_XML}
    return ox.serialize(triples, format=formats[fmt], prefixes=_CONTEXT if fmt != "nt" else None)


def sorted_triples(triples: Iterable[tuple]) -> list[tuple]:
    return sorted(triples, key=triple_key)


def ox_triples(ordered: list[tuple]) -> list:
    """`ordered` as pyoxigraph triples (each term converted once), for `oxigraph_serialize`."""
    import pyoxigraph as ox

    named, literal = ox.NamedNode, ox.Literal
    terms: dict = {}
    out = []
    for s, p, o in ordered:
        if isinstance(s, BNode) or isinstance(o, BNode):
            raise ValueError("blank nodes make the export nondeterministic")  # our mapping never makes them
        x = terms.get(s)
        if x is None:
            x = terms[s] = named(s)
        y = terms.get(p)
        if y is None:
            y = terms[p] = named(p)
        key = (str(o), o.language, o.datatype) if isinstance(o, Literal) else o
        z = terms.get(key)
        if z is None:
            if key is o:
                z = named(o)
            elif o.language:
                z = literal(str(o), language=o.language)
            else:
                z = literal(str(o), datatype=named(o.datatype)) if o.datatype else literal(str(o))
            terms[key] = z
        out.append(ox.Triple(x, y, z))
    return out


def oxigraph_serialize(ordered: list, fmt: str) -> str:
    """Turtle, N-Triples or RDF/XML of `ordered` (sorted rdflib triples, or `ox_triples` of them), written by
    Oxigraph in that order."""
    import pyoxigraph as ox

    if ordered and not isinstance(ordered[0], ox.Triple):
        ordered = ox_triples(ordered)
    return _written(ordered, fmt).decode("utf-8")


_compacted: dict[str, str] = {}
_PN_LOCAL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?$")


def compact(iri: str) -> str:
    """`kb:System` for an IRI under one of the fixed prefixes, else the IRI itself."""
    found = _compacted.get(iri)
    if found is None:
        found = iri
        for prefix, ns in _BY_LENGTH:
            if iri.startswith(ns) and len(iri) > len(ns):
                rest = iri[len(ns):]
                if "/" not in rest and "#" not in rest:
                    found = f"{prefix}:{rest}"
                break
        _compacted[iri] = found
    return found


def _turtle_term(x) -> str:
    if isinstance(x, Literal):
        return x.n3()
    name = compact(str(x))
    return name if name != str(x) and _PN_LOCAL.match(name.split(":", 1)[1]) else "<" + str(x) + ">"


def turtle(ordered: list[tuple]) -> str:
    """Turtle of a few sorted triples (one entity's), written directly: prefixes, then one block per subject.

    For whole graphs `oxigraph_serialize` is the writer; for ten thousand small files the per-call
    conversion into Oxigraph's terms costs more than writing the text."""
    lines = [f"@prefix {prefix}: <{ns}> ." for prefix, ns in _CONTEXT.items()]
    subject = predicate = None
    for s, p, o in ordered:  # `is not` first: rdflib's != is Python code, and the terms are mostly the same objects
        if s is not subject and s != subject:
            if subject is not None:
                lines[-1] += " ."
            lines.append("")
            lines.append(_turtle_term(s))
            subject, predicate = s, None
        if p is not predicate and p != predicate:
            if predicate is not None:
                lines[-1] += " ;"
            lines.append(f"    {'a' if p is RDF_TYPE or p == RDF_TYPE else _turtle_term(p)} {_turtle_term(o)}")
            predicate = p
        else:
            lines[-1] += f", {_turtle_term(o)}"
    if subject is not None:
        lines[-1] += " ."
    return "\n".join(lines) + "\n"


def _value(text: str, language: str | None, datatype: str | None, literal: bool):
    if literal:
        if language:
            return {"@language": language, "@value": text}
        if datatype is None or datatype == _XSD_STRING:
            return text
        if datatype == _XSD_INTEGER and text.lstrip("-").isdigit() and str(int(text)) == text:
            return int(text)
        return {"@type": compact(datatype), "@value": text}
    return {"@id": compact(text)}


def _rdflib_terms(ordered):
    for s, p, o in ordered:
        if isinstance(o, Literal):
            yield str(s), str(p), (str(o), o.language, str(o.datatype) if o.datatype else None, True)
        else:
            yield str(s), str(p), (str(o), None, None, False)


def _oxigraph_terms(ordered):
    import pyoxigraph as ox

    for t in ordered:
        o = t.object
        if isinstance(o, ox.Literal):
            yield t.subject.value, t.predicate.value, (o.value, o.language, o.datatype.value, True)
        else:
            yield t.subject.value, t.predicate.value, (o.value, None, None, False)


def _jsonld_nodes(ordered: list) -> list[dict]:
    """The JSON-LD node of each subject of `ordered` (sorted triples, rdflib's or pyoxigraph's), by @id."""
    terms = _rdflib_terms(ordered) if not ordered or isinstance(ordered[0], tuple) else _oxigraph_terms(ordered)
    nodes: dict[str, dict] = {}
    for s, p, o in terms:
        node = nodes.get(s)
        if node is None:
            node = nodes[s] = {"@id": s}
        if p == _RDF_TYPE:
            key, value = "@type", compact(o[0])
        else:
            key, value = compact(p), _value(*o)
        if key in node:
            if not isinstance(node[key], list):
                node[key] = [node[key]]
            node[key].append(value)
        else:
            node[key] = value
    return [nodes[k] for k in sorted(nodes)]


def jsonld(ordered: list) -> str:
    """Compact JSON-LD of `ordered` (sorted triples, rdflib's or pyoxigraph's): one node per subject, nodes by
    @id, one line."""
    graph = _jsonld_nodes(ordered)
    data = dict(graph[0]) if len(graph) == 1 else {"@graph": graph}
    data["@context"] = _CONTEXT
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


RDF_TYPE = RDF.type  # the interned term (kb/namespaces.py)
RDFS_COMMENT = URIRef("http://www.w3.org/2000/01/rdf-schema#comment")
_RDF_TYPE, _XSD_STRING, _XSD_INTEGER = str(RDF_TYPE), str(XSD.string), str(XSD.integer)


# --- the dumps in pieces: one per subject, kept between builds (kb/site/build.py `_dumps`) ------------------

DUMP_FORMATS = ("turtle", "nt", "xml", "jsonld")
_PIECE_START = {"turtle": re.compile(r"^[^\t@]", re.M), "xml": re.compile(r"^\t<(?!/)", re.M)}


def dump_frame(fmt: str) -> tuple[str, str, str]:
    """(header, separator, footer) of a whole-graph dump in `fmt`: what comes before the first subject (the
    prefixes, the root element), between two subjects' pieces, and after the last."""
    if fmt == "jsonld":
        context = json.dumps(_CONTEXT, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return '{"@context":' + context + ',"@graph":[', ",", "]}\n"
    if fmt == "nt":
        return "", "", ""
    import pyoxigraph as ox

    x = ox.NamedNode("urn:milkb:frame")
    text = oxigraph_serialize([ox.Triple(x, ox.NamedNode(str(RDFS_COMMENT)), ox.Literal("frame"))], fmt)
    start = _PIECE_START[fmt].search(text).start()
    end = text.rindex("\n</rdf:RDF>") + 1 if fmt == "xml" else len(text)
    return text[:start], "", text[end:]


def dump_pieces(text: str, fmt: str, frame: tuple[str, str, str]) -> list[str]:
    """`text`, a dump Oxigraph wrote of sorted triples (`oxigraph_serialize`) in `fmt`, cut into one piece per
    subject in order, without its `frame`. What Oxigraph writes of a subject depends on that subject's triples
    alone (one block of lines: literals' line breaks are escaped in Turtle and N-Triples, `<` in RDF/XML)."""
    header, _, footer = frame
    if not (text.startswith(header) and text.endswith(footer)):
        raise ValueError(f"Oxigraph's {fmt} is not in the expected frame")
    body = text[len(header):len(text) - len(footer)]
    if fmt == "nt":
        pieces: list[str] = []
        subject = None
        for line in body.split("\n")[:-1]:  # not splitlines(): a literal may hold U+0085 or U+2028
            line += "\n"
            head = line[:line.index(" ")]
            if head == subject:
                pieces[-1] += line
            else:
                pieces.append(line)
                subject = head
        return pieces
    starts = [m.start() for m in _PIECE_START[fmt].finditer(body)]
    if body and starts[:1] != [0]:
        raise ValueError(f"Oxigraph's {fmt} does not start with a subject")
    return [body[a:b] for a, b in zip(starts, starts[1:] + [len(body)])]


def jsonld_pieces(ordered: list) -> dict[str, str]:
    """The nodes of `jsonld(ordered)` by @id, in its order, each written as that function writes it."""
    return {node["@id"]: json.dumps(node, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            for node in _jsonld_nodes(ordered)}
