"""The graph in an RDF syntax, byte-identical for identical triples.

Turtle, N-Triples and RDF/XML are written by Oxigraph (rdflib's writers take seconds at 10,000 systems,
and its RDF/XML writer orders subjects by a set); JSON-LD by `jsonld` below, a direct writer of the
compact form with the fixed prefixes as context.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable

from rdflib import BNode, Literal, URIRef
from rdflib.namespace import XSD

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


def triple_key(t: tuple) -> tuple:
    """A total order of triples: that of their N-Triples lines (so a dump's lines come out sorted)."""
    s, p, o = t
    return ("<" + str(s) + ">", "<" + str(p) + ">", o.n3() if isinstance(o, Literal) else "<" + str(o) + ">")


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

    formats = {"turtle": ox.RdfFormat.TURTLE, "nt": ox.RdfFormat.N_TRIPLES, "xml": ox.RdfFormat.RDF_XML}
    if ordered and not isinstance(ordered[0], ox.Triple):
        ordered = ox_triples(ordered)
    prefixes = _CONTEXT if fmt != "nt" else None
    return ox.serialize(ordered, format=formats[fmt], prefixes=prefixes).decode("utf-8")


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
    for s, p, o in ordered:
        if s != subject:
            if subject is not None:
                lines[-1] += " ."
            lines.append("")
            lines.append(_turtle_term(s))
            subject, predicate = s, None
        if p != predicate:
            if predicate is not None:
                lines[-1] += " ;"
            lines.append(f"    {'a' if p == RDF_TYPE else _turtle_term(p)} {_turtle_term(o)}")
            predicate = p
        else:
            lines[-1] += f", {_turtle_term(o)}"
    if subject is not None:
        lines[-1] += " ."
    return "\n".join(lines) + "\n"


def _value(o):
    if isinstance(o, Literal):
        if o.language:
            return {"@language": o.language, "@value": str(o)}
        datatype = o.datatype
        if datatype is None or datatype == XSD.string:
            return str(o)
        text = str(o)
        if datatype == XSD.integer and text.lstrip("-").isdigit() and str(int(text)) == text:
            return int(text)
        return {"@type": compact(str(datatype)), "@value": text}
    return {"@id": compact(str(o))}


def jsonld(ordered: list[tuple]) -> str:
    """Compact JSON-LD of `ordered` (sorted triples): one node per subject, nodes by @id, one line."""
    nodes: dict[str, dict] = {}
    for s, p, o in ordered:
        node = nodes.setdefault(str(s), {"@id": str(s)})
        if p == RDF_TYPE:
            key, value = "@type", compact(str(o))
        else:
            key, value = compact(str(p)), _value(o)
        if key in node:
            if not isinstance(node[key], list):
                node[key] = [node[key]]
            node[key].append(value)
        else:
            node[key] = value
    graph = [nodes[k] for k in sorted(nodes)]
    data = dict(graph[0]) if len(graph) == 1 else {"@graph": graph}
    data["@context"] = _CONTEXT
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


RDF_TYPE = URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
