"""The bundled corpus: it validates, every saved query returns rows, every entry is sourced, and a
sample of key facts stays what the sources say (a later edit that breaks one fails CI)."""
from decimal import Decimal

import pytest
from rdflib import URIRef
from rdflib.namespace import DCTERMS, RDF

from kb.namespaces import KB
from kb.query import run_query, saved_queries
from kb.stats import is_weapon_system

from .conftest import REPO, run_kb


@pytest.fixture(scope="module")
def corpus(bundled_kb):
    return bundled_kb


def iri(entity_id: str) -> URIRef:
    return URIRef("https://w3id.org/milkb/id/" + entity_id)


def test_bundled_entries_validate_through_the_cli(bundled_root):
    result = run_kb("validate", cwd=bundled_root)
    assert result.code == 0, result.stderr


def test_at_least_90_weapon_systems(corpus):
    systems = [s for s in corpus.graph.subjects(RDF.type, KB.System) if is_weapon_system(corpus, s)]
    assert len(systems) >= 90


QUERIES = sorted(saved_queries(REPO / "queries"))


def test_there_are_at_least_15_saved_queries_each_described():
    queries = saved_queries(REPO / "queries")
    assert len(queries) >= 15
    assert all(q.description for q in queries.values())


@pytest.mark.parametrize("name", QUERIES)
def test_saved_query_returns_rows(corpus, name):
    query = saved_queries(REPO / "queries")[name]
    result = run_query(corpus.graph, query.text, name, base_iri=corpus.config.base_iri)
    assert len(list(result)) > 0


def test_every_system_organization_place_and_event_cites_an_existing_source(corpus):
    g = corpus.graph
    for cls in (KB.System, KB.Organization, KB.Place, KB.Event):
        for entity in g.subjects(RDF.type, cls):
            sources = list(g.objects(entity, DCTERMS.source))
            assert sources, f"{entity} cites no source"
            for source in sources:
                assert (source, RDF.type, KB.Source) in g, f"{entity} cites missing {source}"


def test_every_statement_source_exists(corpus):
    g = corpus.graph
    for statement in g.subjects(RDF.type, KB.Statement):
        for source in g.objects(statement, DCTERMS.source):
            assert (source, RDF.type, KB.Source) in g, f"{statement} cites missing {source}"


# (system, property, expected value): checked against the cited sources when written.
KEY_FACTS = [
    ("tos-1", KB.basedOn, iri("t-72")),
    ("tos-1", KB.launchTubes, 30),
    ("tos-1", KB.origin, iri("soviet-union")),
    ("tos-1a", KB.launchTubes, 24),
    ("tos-1a", KB.variantOf, iri("tos-1")),
    ("tos-1-220mm-rocket", KB.caliber, Decimal("220")),
    ("2s23", KB.caliber, Decimal("120")),
    ("t-80", KB.origin, iri("soviet-union")),
    ("t-80", KB.crew, 3),
    ("t-80bv", KB.variantOf, iri("t-80")),
    ("t-80bvm", KB.variantOf, iri("t-80bv")),
    ("2a46-125mm-gun", KB.caliber, Decimal("125")),
    ("t-72", KB.origin, iri("soviet-union")),
    ("t-72", KB.crew, 3),
    ("t-90", KB.basedOn, iri("t-72b")),
    ("btr-82a", KB.variantOf, iri("btr-80")),
    ("leopard-2", KB.origin, iri("germany")),
    ("m1-abrams", KB.origin, iri("united-states")),
    ("bmp-2", KB.basedOn, iri("bmp-1")),
    ("2s19", KB.caliber, Decimal("152")),
    ("2s7", KB.caliber, Decimal("203")),
    ("m777", KB.caliber, Decimal("155")),
    ("bm-21", KB.origin, iri("soviet-union")),
    ("bm-27", KB.caliber, Decimal("220")),
    ("bm-30", KB.caliber, Decimal("300")),
    ("m142-himars", KB.origin, iri("united-states")),
    ("pzh-2000", KB.caliber, Decimal("155")),
    ("caesar", KB.origin, iri("france")),
    ("s-400", KB.origin, iri("russia")),
    ("fgm-148-javelin", KB.origin, iri("united-states")),
    ("bayraktar-tb2", KB.origin, iri("turkey")),
    ("2s1", KB.caliber, Decimal("122")),
]


@pytest.mark.parametrize("system,prop,expected", KEY_FACTS, ids=[f"{s}-{p.split('#')[-1]}" for s, p, _ in KEY_FACTS])
def test_key_fact(corpus, system, prop, expected):
    values = [v.toPython() if not isinstance(v, URIRef) else v for v in corpus.graph.objects(iri(system), prop)]
    assert expected in values, f"{system} {prop}: {values}"
