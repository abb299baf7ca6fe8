"""What a saved query's answer can depend on (`query.pattern_reads`): an incremental build keeps the queries
page unless a changed triple has one of the predicates (or fixed subjects or objects) its patterns match.
Missing one would leave a stale answer on the page, so every way a pattern can hide is checked here."""
import pytest

from kb.namespaces import PREFIXES
from kb.query import pattern_reads

P = dict({k: str(v) for k, v in PREFIXES.items()}, id="https://w3id.org/milkb/id/")
KB = "https://w3id.org/milkb/ontology#"


def reads(text: str):
    found = pattern_reads(text, P)
    return None if found is None else {(kind, term.replace(f"<{KB}", "kb:").rstrip(">")) for kind, term in found}


@pytest.mark.parametrize("text, expected", [
    ("SELECT * WHERE { ?s kb:crew ?c }", {("Q", "kb:crew")}),
    ("SELECT * WHERE { ?s a kb:System }", {("Q", "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type")}),
    ("SELECT * WHERE { ?s kb:crew ?c FILTER EXISTS { ?s kb:mass ?m } }", {("Q", "kb:crew"), ("Q", "kb:mass")}),
    ("SELECT * WHERE { ?s kb:crew ?c FILTER NOT EXISTS { ?s kb:a/kb:b|^kb:c ?m } }",
     {("Q", "kb:crew"), ("Q", "kb:a"), ("Q", "kb:b"), ("Q", "kb:c")}),
    ("SELECT * WHERE { ?s kb:crew ?c FILTER NOT EXISTS { ?s kb:x [ kb:w ?q ] } }",
     {("Q", "kb:crew"), ("Q", "kb:x"), ("Q", "kb:w")}),
    ("ASK { ?s ^kb:variantOf/kb:crew* ?x }", {("Q", "kb:crew"), ("Q", "kb:variantOf")}),
    ("SELECT ?x WHERE { { SELECT ?x WHERE { ?x kb:origin ?o } } }", {("Q", "kb:origin")}),
    ("SELECT * WHERE { ?s kb:crew ?o MINUS { ?s kb:mass ?m } OPTIONAL { ?s kb:origin ?t } }",
     {("Q", "kb:crew"), ("Q", "kb:mass"), ("Q", "kb:origin")}),
    ("CONSTRUCT { ?s ?p ?o } WHERE { ?s kb:crew ?o }", {("Q", "kb:crew")}),
    # a path that can be zero steps long, anchored: by a fixed end, or by an end another pattern matches
    ("SELECT * WHERE { ?x kb:variantOf* id:t-72 }", {("Q", "kb:variantOf")}),
    ("SELECT * WHERE { ?v kb:variantOf+ ?m . ?m kb:variantOf* ?r }", {("Q", "kb:variantOf")}),
    ("SELECT * WHERE { ?a kb:a* ?b . ?b kb:b? ?c . ?c kb:crew ?n }", {("Q", "kb:a"), ("Q", "kb:b"), ("Q", "kb:crew")}),
    ("SELECT * WHERE { ?x kb:a*/kb:b ?y }", {("Q", "kb:a"), ("Q", "kb:b")}),
    # a variable predicate: what the pattern fixes instead
    ("SELECT * WHERE { id:t-80 ?p ?o }", {("S", "<https://w3id.org/milkb/id/t-80")}),
    ("SELECT * WHERE { ?s ?p 'x' }", {("O", '"x"')}),
    ("SELECT * WHERE { ?s ?p 'two\\nlines' }", {("O", '"two\\nlines"')}),  # as the N-Triples lines write it
    ("SELECT * WHERE { id:t-80 !kb:a ?o }", {("S", "<https://w3id.org/milkb/id/t-80")}),
    # nothing fixed, or reads beyond the default graph: any triple can count
    ("SELECT * WHERE { ?s ?p ?o }", None),
    ("SELECT * WHERE { ?x kb:variantOf* ?y }", None),  # zero steps: every node of the graph, with itself
    ("SELECT * WHERE { ?x kb:variantOf? ?y }", None),
    ("SELECT * WHERE { ?x (kb:a|^kb:b*) ?y }", None),
    ("SELECT * WHERE { ?a kb:a* ?b . ?b kb:b* ?c }", None),
    ("SELECT * WHERE { ?s kb:crew ?c FILTER EXISTS { ?x kb:a* ?y } }", None),
    # a negated set read backwards or more than one step: triples to the fixed term, or from others
    ("SELECT * WHERE { id:t-80 ^!kb:a ?o }", None),
    ("SELECT * WHERE { ?o ^!kb:a id:t-80 }", None),
    ("SELECT * WHERE { id:t-80 !kb:a/!kb:a ?o }", None),
    ("SELECT * WHERE { id:t-80 (!kb:a)+ ?o }", None),
    # a literal Oxigraph matches by value, or an IRI written with an escape: not as the lines write them
    ("SELECT * WHERE { ?s ?p 'x'@EN }", None),
    ("SELECT * WHERE { ?s ?p 1.50 }", None),
    ("SELECT * WHERE { ?s ?p 'x'^^xsd:string }", None),
    ("SELECT * WHERE { ?s kb:a\\-b ?o }", None),
    ("SELECT * WHERE { ?s kb:crew ?c FILTER EXISTS { GRAPH ?g { ?s kb:crew ?o } } }", None),
    ("SELECT * WHERE { ?s !kb:crew ?o }", None),
    ("SELECT * WHERE { VALUES ?p { kb:crew } ?s ?p ?o }", None),
    ("SELECT * WHERE { ?s kb:crew ?c FILTER EXISTS { ?s ?p ?m } }", None),
    ("DESCRIBE id:t-80", None),
    ("SELECT * FROM <http://example.org/g> WHERE { ?s kb:crew ?o }", None),
    ("SELECT * WHERE { GRAPH ?g { ?s kb:crew ?o } }", None),
    ("SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s kb:crew ?o } }", None),
    ("SELECT * WHERE { this is not SPARQL", None),
])
def test_what_a_query_reads(text, expected):
    assert reads(text) == expected


def test_the_bundled_saved_queries_all_name_what_they_read():
    """Each bundled saved query fixes its predicates: a description edit keeps the queries page."""
    from kb.query import saved_queries

    from .conftest import REPO

    for name, q in saved_queries(REPO / "queries").items():
        found = pattern_reads(q.text, P)
        assert found, name
        assert ("Q", "<http://purl.org/dc/terms/description>") not in found, name
