"""The read-only SPARQL protocol rules as functions: content negotiation, what a query may do, the editor's examples."""
from __future__ import annotations

import pytest

from kb.serve import with_prefixes
from kb.sparql_protocol import GRAPH_TYPES, RESULT_TYPES, Refused, check_query, negotiate, response_type

BASE = "https://w3id.org/milkb/id/"


@pytest.mark.parametrize("accept, expected", [
    (None, "application/sparql-results+json"),  # no header: the first offer
    ("*/*", "application/sparql-results+json"),
    ("text/csv", "text/csv"),
    ("text/*", "text/csv"),  # the earlier offer wins a tie
    ("text/csv;q=0.5, text/tab-separated-values", "text/tab-separated-values"),
    ("application/sparql-results+xml, */*;q=0.1", "application/sparql-results+xml"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/xml"),  # a browser
    ("text/*;q=0.9, text/csv;q=0", "text/tab-separated-values"),  # the most specific range decides csv's q
    ("image/png", None),
    ("garbage", None),
])
def test_negotiate(accept, expected):
    assert negotiate(accept, list(RESULT_TYPES)) == expected


def test_response_type_by_query_form():
    assert response_type("SELECT", "text/tab-separated-values") == ("text/tab-separated-values", "tsv")
    assert response_type("ASK", None) == ("application/sparql-results+json", "json")
    assert response_type("CONSTRUCT", None) == ("text/turtle", "turtle")
    assert response_type("DESCRIBE", "application/n-triples") == ("application/n-triples", "nt")
    with pytest.raises(Refused) as refused:
        response_type("CONSTRUCT", "text/csv")
    assert refused.value.status == 406
    assert set(GRAPH_TYPES.values()) == {"turtle", "nt", "jsonld", "xml"}


@pytest.mark.parametrize("text, form", [
    ("SELECT * WHERE { ?s ?p ?o }", "SELECT"),
    ("ASK { id:t-80 kb:crew 3 }", "ASK"),  # pre-bound prefixes
    ("CONSTRUCT WHERE { ?s kb:crew ?o }", "CONSTRUCT"),
    ("DESCRIBE id:t-80", "DESCRIBE"),
])
def test_read_only_queries_pass(text, form):
    assert check_query(text, BASE).form == form


@pytest.mark.parametrize("text, status, message", [
    ("INSERT DATA { <urn:a> <urn:b> <urn:c> }", 403, "updates are refused"),
    ("DELETE WHERE { ?s ?p ?o }", 403, "updates are refused"),
    ("CLEAR ALL", 403, "updates are refused"),
    ("LOAD <http://example.org/x.ttl> INTO GRAPH <urn:g>", 403, "LOAD is refused"),
    ("SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }", 403, "SERVICE is refused"),
    ("ASK { FILTER EXISTS { SERVICE <http://example.org/sparql> { ?s ?p ?o } } }", 403, "SERVICE is refused"),
    ("SELECT * FROM NAMED <urn:g> WHERE { ?s ?p ?o }", 400, "FROM and FROM NAMED are not supported"),
    ("SELECT * WHERE { ?s ?p }", 400, "SPARQL syntax error: "),
    ("SELECT * WHERE { ?s nope:p ?o }", 400, "nope"),
])
def test_what_is_refused(text, status, message):
    with pytest.raises(Refused) as refused:
        check_query(text, BASE)
    assert refused.value.status == status
    assert message in str(refused.value)


def test_examples_declare_the_prefixes_they_use_after_their_comments():
    text = "# Tanks.\n# More.\nSELECT ?t WHERE { ?t kb:category kbc:main-battle-tank . FILTER(?t != id:t-80) }\n"
    out = with_prefixes(text, {"kb": "https://w3id.org/milkb/ontology#", "kbc": "https://w3id.org/milkb/category/",
                               "id": BASE, "skos": "http://www.w3.org/2004/02/skos/core#"})
    assert out.splitlines() == [
        "# Tanks.", "# More.",
        "PREFIX kb: <https://w3id.org/milkb/ontology#>",
        "PREFIX kbc: <https://w3id.org/milkb/category/>",
        f"PREFIX id: <{BASE}>",
        "SELECT ?t WHERE { ?t kb:category kbc:main-battle-tank . FILTER(?t != id:t-80) }",
    ]
    assert with_prefixes("PREFIX kb: <x#>\nASK { ?s kb:p ?o }", {"kb": "y#"}).count("PREFIX") == 1
