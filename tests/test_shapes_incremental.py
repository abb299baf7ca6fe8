"""After a clean check, the shapes are checked only at the focus nodes a change can affect
(`parse_cache.EntryCache.changed_lines`, `validate.focus_nodes`). Whatever the edit, a warm run must
report exactly what a cold run (no `.kb-cache/`) reports."""
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from kb.config import load_config
from kb.knowledge_base import open_kb
from kb.mapping import map_entries
from kb.parse_cache import EntryCache
from kb.schema import load_ontology, read_schema


def _problems(root) -> list[str]:
    return [p.format() for p in open_kb(root).problems]


def _cold(root, tmp_path) -> list[str]:
    """The problems of a copy of `root` without its `.kb-cache/`: a new folder each time, since a process the
    last load left saving into its cache (`knowledge_base._keep_packed`) may still be writing there."""
    fresh = Path(tempfile.mkdtemp(prefix="cold-", dir=tmp_path)) / "kb"
    shutil.copytree(root, fresh, ignore=shutil.ignore_patterns(".kb-cache"))
    return _problems(fresh)


def _edit(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _changed_lines(root):
    config = load_config(root)
    schema = read_schema(load_ontology(config.ontology_dir))
    cache = EntryCache(root, schema, config.cache_dir, config.base_iri, config.ontology_dir)
    entries, _ = cache.load()
    return cache.changed_lines(map_entries(entries, schema, config.base_iri, cache.kept))


EDITS = [
    # (file, old, new): each applied on top of the previous ones
    ("systems/t-80.yaml", "sources: [src-a, src-b]\n", ""),  # an entity without sources (sh:minCount)
    ("systems/t-80.yaml", "wikidata: Q1000001\n", "wikidata: Q1000001\nsources: [src-a, src-b]\n"),  # mended
    ("events/t-80-used.yaml", "systems: [t-80]\n", ""),  # an event involving nothing (sh:minCount)
    ("events/t-80-used.yaml", "actor: ukraine\n", "actor: ukraine\nsystems: [t-80]\n"),
    ("events/t-80-used.yaml", "place: bakhmut\n", "place: russia\n"),  # a place that is a country (sh:class)
    ("events/t-80-used.yaml", "place: russia\n", "place: bakhmut\n"),
    ("systems/t-72.yaml", "category: ", "designer: uralvagonzavod\ncategory: "),
    ("systems/t-72.yaml", "designer: uralvagonzavod\n", "designer: ukraine\n"),  # not an organization
    ("systems/t-72.yaml", "designer: ukraine\n", "designer: uralvagonzavod\n"),
]


def test_warm_checks_report_what_cold_checks_report(kb_root, tmp_path):
    entries = kb_root / "entries"
    assert _problems(kb_root) == [] == _cold(kb_root, tmp_path)
    assert _changed_lines(kb_root) == set()  # a clean check is on record, and nothing changed since
    for file, old, new in EDITS:
        _edit(entries / file, old, new)
        warm = _problems(kb_root)
        assert warm == _cold(kb_root, tmp_path), (file, old, new)
    assert _problems(kb_root) == []
    # an organization becomes a country: t-72's designer link now points at the wrong class
    (entries / "organizations" / "uralvagonzavod.yaml").rename(entries / "countries" / "uralvagonzavod.yaml")
    assert _problems(kb_root) == _cold(kb_root, tmp_path) != []


def test_after_a_clean_check_only_the_change_is_looked_at(kb_root):
    assert _problems(kb_root) == []
    _edit(kb_root / "entries" / "systems" / "t-80.yaml", "crew: 3", "crew: 4")
    changed = _changed_lines(kb_root)
    assert changed and all("/id/t-80" in line for line in changed)
    assert _problems(kb_root) == []
    _edit(kb_root / "entries" / "systems" / "t-80.yaml", "sources: [src-a, src-b]\n", "")
    assert any("source" in p for p in _problems(kb_root))
    assert _changed_lines(kb_root) is None  # the last check was not clean: the next one checks everything


@pytest.mark.parametrize("shacl", [False, True])
def test_an_unchecked_change_is_not_taken_for_checked(kb_root, tmp_path, shacl):
    """`kb show` maps without the shapes: the graph it saw was never checked, so the next check is full."""
    from kb.knowledge_base import open_kb as open_

    assert _problems(kb_root) == []
    _edit(kb_root / "entries" / "systems" / "t-80.yaml", "sources: [src-a, src-b]\n", "")
    open_(kb_root, shacl=shacl)
    assert _problems(kb_root) == _cold(kb_root, tmp_path) != []


def test_a_node_whose_type_changed_brings_in_what_links_to_it():
    """sh:class reads the types of values: a retyped node puts every node linking to it in focus (the mapping
    re-maps such entries anyway, but the shapes must not rely on it)."""
    from rdflib import URIRef
    from rdflib.namespace import RDF

    from kb.export import nt_line
    from kb.index import Index
    from kb.namespaces import KB
    from kb.validate import focus_nodes

    x, o, y = (URIRef(f"https://w3id.org/milkb/id/{n}") for n in ("x", "o", "y"))
    g = Index([(x, KB.designer, o), (o, RDF.type, KB.Country), (y, KB.origin, x)])
    assert focus_nodes({nt_line((o, RDF.type, KB.Organization), {})}, g) == {o, x}
    assert focus_nodes({nt_line((o, KB.country, y), {})}, g) == {o}
    assert focus_nodes({"garbage"}, g) is None


def test_entries_mapped_afresh_by_workers_are_checked_again(tmp_path, monkeypatch):
    """Hundreds of changed files are parsed and mapped by forked workers; their mappings come back like kept
    ones, but they are new: their triples count as changed, so the shapes are checked at them."""
    from .conftest import copy_bundled

    monkeypatch.setenv("MILKB_JOBS", "2")
    root = copy_bundled(tmp_path / "kb")
    assert _problems(root) == []  # a clean check on record
    files = sorted((root / "entries").rglob("*.yaml"))
    assert len(files) > 500
    for path in files:  # new bytes, the same graph: every file is fresh, none is kept
        path.write_text(path.read_text(encoding="utf-8") + "# checked again\n", encoding="utf-8")
    events = root / "entries" / "events"
    event = (events / "2022-03-captured-2s23-t-80.yaml").read_text(encoding="utf-8")
    (events / "2022-03-nothing-captured.yaml").write_text(event.replace("systems: [2s23, t-80]\n", ""), encoding="utf-8")
    assert any("/2022-03-nothing-captured>" in line for line in _changed_lines(root))
    problems = _problems(root)
    assert problems == _cold(root, tmp_path) and any("nothing-captured.yaml" in p and "systems" in p for p in problems)
