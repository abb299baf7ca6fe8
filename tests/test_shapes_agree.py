"""The direct shape checker (kb/shapes.py) and pyshacl, the reference, find the same violations: on the
bundled corpus, on the test knowledge base and on every case of the invalid corpus."""
from pathlib import Path

import pytest
from rdflib import Graph, URIRef

from kb.knowledge_base import open_kb
from kb.shapes import ShapeChecker, UnsupportedShape, compile_shapes
from kb.validate import load_shapes, pyshacl_violations

from .conftest import make_root
from .test_invalid_corpus import CASES, read_case


def _both(root: Path):
    kb = open_kb(root, shacl=False)
    shapes = load_shapes(kb.config.ontology_dir)
    direct = ShapeChecker(compile_shapes(shapes), kb.index).violations()
    reference = pyshacl_violations(kb.index.to_rdflib(), shapes)
    return kb, set(direct), set(reference)


def test_bundled_corpus_agrees_and_conforms(bundled_root):
    kb, direct, reference = _both(bundled_root)
    assert direct == reference == set()
    assert len(kb.index) > 10_000


def _write_case(root: Path, case: Path) -> None:
    files, _ = read_case(case)
    for name, text in files.items():
        target = root / "entries" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_case_agrees(case, tmp_path):
    root = make_root(tmp_path)
    _write_case(root, case)
    _, direct, reference = _both(root)
    assert direct == reference
    assert open_kb(root, engine="direct").problems == open_kb(root, engine="pyshacl").problems


def test_shapes_violated_beyond_the_mapper_agree(tmp_path):
    """Triples the mapper never makes (so only the shapes can catch them), checked by both engines."""
    root = make_root(tmp_path)
    kb = open_kb(root, shacl=False)
    KB = "https://w3id.org/milkb/ontology#"
    system = next(iter(kb.index.subjects(URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"), URIRef(KB + "System"))))
    from rdflib import Literal
    from rdflib.namespace import SKOS, XSD
    broken = [(system, URIRef(KB + "crew"), Literal("-1", datatype=XSD.integer)),
              (system, URIRef(KB + "crew"), Literal("three")),
              (system, URIRef(KB + "caliber"), Literal("0.0", datatype=XSD.decimal)),
              (system, URIRef(KB + "origin"), Literal("nowhere")),
              (system, SKOS.prefLabel, Literal("second name", lang="en")),
              (system, URIRef(KB + "launchTubes"), Literal("abc", datatype=XSD.integer)),
              (system, URIRef("http://www.w3.org/2002/07/owl#sameAs"), Literal("not an IRI")),  # sh:nodeKind
              (system, SKOS.altLabel, Literal("12", datatype=XSD.integer))]  # sh:or
    statement = next(iter(kb.index.subjects(URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"),
                                            URIRef(KB + "Statement"))))
    broken.append((statement, URIRef(KB + "rank"), URIRef(KB + "Deprecated")))  # sh:in
    for t in broken:
        kb.index.add(t)
    shapes = load_shapes(kb.config.ontology_dir)
    direct = set(ShapeChecker(compile_shapes(shapes), kb.index).violations())
    reference = set(pyshacl_violations(kb.index.to_rdflib(), shapes))
    assert direct == reference
    assert len(direct) >= 8
    assert {c.split('#')[-1] for _, _, c, _ in direct} >= {
        'NodeKindConstraintComponent', 'OrConstraintComponent', 'DatatypeConstraintComponent', 'ClassConstraintComponent',
        'MinExclusiveConstraintComponent', 'MaxCountConstraintComponent', 'InConstraintComponent'}


def test_a_shape_feature_not_handled_is_refused(tmp_path):
    shapes = Graph().parse(data="""
        @prefix sh: <http://www.w3.org/ns/shacl#> . @prefix ex: <http://example.org/> .
        ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:pattern "^a" ] .
    """, format="turtle")
    with pytest.raises(UnsupportedShape):
        compile_shapes(shapes)
