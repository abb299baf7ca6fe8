"""The SPARQL 1.1 Protocol for a read-only endpoint: which query a request carries, whether it may run,
which result format the client accepts, and the service description."""
from __future__ import annotations

from dataclasses import dataclass

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, RDF, RDFS, VOID, XSD

from .namespaces import PREFIXES

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
FORMATS = Namespace("http://www.w3.org/ns/formats/")

# media type → the format name kb.query.serialize_result takes; the first is the default
RESULT_TYPES = {
    "application/sparql-results+json": "json",
    "application/sparql-results+xml": "xml",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/json": "json",
    "application/xml": "xml",
    "text/xml": "xml",
}
GRAPH_TYPES = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/ld+json": "jsonld",
    "application/rdf+xml": "xml",
    "application/x-turtle": "turtle",
    "application/turtle": "turtle",
}
_FORMAT_IRIS = (FORMATS.SPARQL_Results_JSON, FORMATS.SPARQL_Results_XML, FORMATS.SPARQL_Results_CSV,
                FORMATS.SPARQL_Results_TSV, FORMATS.Turtle, FORMATS["N-Triples"], FORMATS["JSON-LD"],
                FORMATS.RDF_XML)


class Refused(Exception):
    """The request cannot be answered; `status` is the HTTP status and the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CheckedQuery:
    text: str
    form: str  # SELECT, ASK, CONSTRUCT or DESCRIBE


def check_query(text: str, base_iri: str) -> CheckedQuery:
    """Parse `text` as the endpoint will run it; Refused (400 or 403) unless it is a read-only query.

    Updates (LOAD among them) do not parse as a query; they are recognised by parsing them as an update.
    SERVICE would make the server fetch from other hosts; it is found by walking the query's algebra.
    FROM would silently be ignored (the workers never load graphs from the web), so it is refused too.
    """
    from pyparsing import ParseException
    from rdflib.plugins.sparql import prepareQuery
    from rdflib.plugins.sparql.algebra import traverse
    from rdflib.plugins.sparql.parserutils import CompValue

    try:
        from .query import PARSER_LOCK

        with PARSER_LOCK:  # rdflib's SPARQL parser (pyparsing) is not safe in parallel threads
            query = prepareQuery(text, initNs=dict(PREFIXES, id=base_iri))
    except ParseException as e:
        operations = _update_operations(text)
        if operations is not None:
            if "Load" in operations:
                raise Refused(403, "LOAD is refused: this endpoint is read-only and never fetches other data")
            raise Refused(403, "updates are refused: this endpoint is read-only "
                               f"(the request is a SPARQL Update: {', '.join(operations)})")
        raise Refused(400, f"SPARQL syntax error: {e}")
    except Exception as e:  # noqa: BLE001 - rdflib raises plain exceptions, e.g. for an unknown prefix
        raise Refused(400, f"SPARQL error: {e}")

    if query.algebra.get("datasetClause"):
        raise Refused(400, "FROM and FROM NAMED are not supported: this endpoint has one default graph "
                           "(the whole knowledge base) and no named graphs")
    services = []

    def find_service(node):
        if isinstance(node, CompValue) and node.name == "ServiceGraphPattern":
            services.append(str(node.get("term", "")))

    traverse(query.algebra, visitPre=find_service)
    if services:
        raise Refused(403, f"SERVICE is refused: this endpoint does not query other endpoints ({services[0]})")
    form = query.algebra.name.removesuffix("Query").upper()
    return CheckedQuery(text, form)


def _update_operations(text: str) -> list[str] | None:
    """The operations of `text` if it parses as a SPARQL Update (e.g. ['Load', 'Drop']), else None."""
    from rdflib.plugins.sparql.parser import parseUpdate

    try:
        update = parseUpdate(text)
    except Exception:  # noqa: BLE001 - not an update either; the query's own error is reported
        return None
    return [operation.name for operation in update.request or []] or None


def negotiate(accept: str | None, offers: list[str]) -> str | None:
    """The offered media type the client prefers by its Accept header (RFC 9110: q-values, and the most
    specific matching range gives an offer its q); on a tie, the earlier offer. No header: the first offer."""
    if not accept or not accept.strip():
        return offers[0]
    ranges = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if "/" not in media:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((media, q))
    best, best_q = None, 0.0
    for offer in offers:
        kind = offer.split("/")[0]
        q, specificity = 0.0, -1
        for media, media_q in ranges:
            level = 2 if media == offer else 1 if media == f"{kind}/*" else 0 if media == "*/*" else -1
            if level > specificity:
                q, specificity = media_q, level
        if q > best_q:
            best, best_q = offer, q
    return best


def response_type(form: str, accept: str | None) -> tuple[str, str]:
    """(media type, serialize_result format) for a query form, or Refused(406)."""
    types = RESULT_TYPES if form in ("SELECT", "ASK") else GRAPH_TYPES
    media = negotiate(accept, list(types))
    if media is None:
        raise Refused(406, f"cannot answer a {form} query in any type the Accept header allows ({accept}); "
                           f"available: {', '.join(types)}")
    return media, types[media]


def service_description(endpoint: str, dataset_iri: str, triples: int, timeout: float, max_rows: int) -> Graph:
    """What the endpoint is, in the SPARQL 1.1 Service Description vocabulary."""
    g = Graph()
    g.bind("sd", SD)
    g.bind("void", VOID)
    g.bind("dcterms", DCTERMS)
    g.bind("formats", FORMATS)
    service = URIRef(endpoint)
    g.add((service, RDF.type, SD.Service))
    g.add((service, SD.endpoint, service))
    g.add((service, SD.supportedLanguage, SD.SPARQL11Query))
    for fmt in _FORMAT_IRIS:
        g.add((service, SD.resultFormat, fmt))
    g.add((service, RDFS.comment, Literal(
        f"Read-only: SPARQL Update, LOAD and SERVICE are refused. A query is stopped after {timeout:g} s "
        f"(answered 503); results are cut after {max_rows} rows and then carry the header "
        "X-Result-Truncated: true. Prefixes " + ", ".join(f"{p}:" for p in sorted(PREFIXES)) + " and id: are "
        "pre-bound.", lang="en")))
    dataset = URIRef(dataset_iri)
    graph = BNode()
    g.add((service, SD.defaultDataset, dataset))
    g.add((dataset, RDF.type, SD.Dataset))
    g.add((dataset, SD.defaultGraph, graph))
    g.add((graph, RDF.type, SD.Graph))
    g.add((graph, VOID.triples, Literal(triples, datatype=XSD.integer)))
    return g
