"""The edit path (kb/knowledge_base.py `_edited`): after a few edits a run takes the graph kept packed
(kb/packed.py) and maps only the changed entries. Its graph, its problems and its site must be those of a
run that loads every entry."""
from __future__ import annotations

import pickle
import re
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rdflib import Literal, URIRef

from .conftest import copy_bundled, run_kb

ENV = {"SOURCE_DATE_EPOCH": "1700000000"}


class Boom:
    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['MARK'], 'w').write('ran')",))


def _packed(root: Path) -> Path:
    """The packed graph, once the process that keeps it after a full load has written it."""
    path = root / ".kb-cache" / "graph.packed"
    for _ in range(300):
        if path.is_file():
            return path
        time.sleep(0.1)
    raise AssertionError("no packed graph was kept")


def _edit(path: Path, pattern: str, replacement: str) -> None:
    text = path.read_text(encoding="utf-8")
    changed, count = re.subn(pattern, replacement, text, count=1, flags=re.M)
    assert count == 1, pattern
    path.write_text(changed, encoding="utf-8")


def _fresh(root: Path, to: Path) -> Path:
    """A copy of the knowledge base without its caches: a run there loads every entry."""
    shutil.copytree(root, to, ignore=shutil.ignore_patterns(".kb-cache", "_site", "full"))
    return to


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> tuple[Path, Path]:
    """The bundled corpus loaded once, with what a full load keeps (the parse cache, the packed graph), and the
    cache home whose key signed them."""
    from kb.knowledge_base import open_kb

    home = tmp_path_factory.mktemp("cache-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(home))
        root = copy_bundled(tmp_path_factory.mktemp("loaded") / "kb")
        assert open_kb(root).problems == []
        _packed(root)
    return root, home


@pytest.fixture
def built(loaded, tmp_path, monkeypatch) -> Path:
    """A copy of the bundled corpus as a full load left it: its caches copied along and its files' mtimes kept, so
    that the next load takes the edit path (each test checks it does)."""
    root, home = loaded
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return shutil.copytree(root, tmp_path / "kb", symlinks=True)


EDITS = {  # what a change to an entry can touch: its own facts, its links, what other pages show of it
    "a description": ("systems/t-80.yaml", r"^description: >-$", "description: >-\n  Edited."),
    "a figure": ("systems/t-72.yaml", r"^combat_mass: .*$", "combat_mass: 41 t"),
    "a name": ("systems/t-64.yaml", r"^name: .*$", "name: T-64 (renamed)"),
    "a link": ("systems/t-80.yaml", r"^operators:$", "operators:\n  - mongolia"),
    "a category": ("systems/t-80.yaml", r"^category: .*$", "category: infantry-fighting-vehicle"),
    "a key removed": ("systems/bmp-2.yaml", r"^crew: .*\n", ""),
}


@pytest.mark.parametrize("what", sorted(EDITS))
def test_the_graph_after_an_edit_is_the_graph_of_every_entry_loaded(built, what, tmp_path):
    from kb.knowledge_base import open_kb
    from kb.packed import PackedGraph

    file, pattern, replacement = EDITS[what]
    _edit(built / "entries" / file, pattern, replacement)
    edited = open_kb(built)
    assert type(edited.index) is PackedGraph, "the edit path was not taken"
    full = open_kb(_fresh(built, tmp_path / "fresh"))
    assert edited.problems == full.problems == []
    assert set(edited.index) == set(full.index) and len(edited.index) == len(full.index)
    assert edited.entity_ids == full.entity_ids and sorted(edited.names) == sorted(full.names)
    # a second edit starts from what the first one kept (the parse cache's changed shards, the packed graph)
    _edit(built / "entries" / "systems" / "t-72.yaml", r"^description: >-$", "description: >-\n  Again.")
    again = open_kb(built)
    assert type(again.index) is PackedGraph
    assert set(again.index) == set(open_kb(_fresh(built, tmp_path / "fresh-again")).index)


BROKEN = {  # each must be reported as a run loading every entry reports it
    "an unknown key": ("systems/t-80.yaml", r"^name: (.*)$", r"name: \1\nwieght: 46 t"),
    "a link to no entry": ("systems/t-80.yaml", r"^operators:$", "operators:\n  - atlantis"),
    "a wrong unit": ("systems/t-72.yaml", r"^combat_mass: .*$", "combat_mass: 41 parsecs"),
    "a required key removed": ("systems/t-72.yaml", r"^name: .*\n", ""),
    "a cycle": ("systems/t-72.yaml", r"^name: (.*)$", r"name: \1\nvariant_of: t-72"),
}


@pytest.mark.parametrize("what", sorted(BROKEN))
def test_an_edit_with_a_problem_is_reported_as_by_a_full_load(built, what, tmp_path):
    from kb.knowledge_base import open_kb

    file, pattern, replacement = BROKEN[what]
    _edit(built / "entries" / file, pattern, replacement)
    problems = [p.format() for p in open_kb(built).problems]
    assert problems and problems == [p.format() for p in open_kb(_fresh(built, tmp_path / "fresh")).problems]


def test_the_site_after_edits_is_the_site_of_a_full_build(tmp_path):
    """An edit checked by `kb validate` (the edit path keeps it), another one, then `kb build`: the site is
    byte for byte the one a build from scratch writes."""
    root = copy_bundled(tmp_path / "kb")
    assert run_kb("build", "--no-search", cwd=root, env=ENV).code == 0
    _packed(root)
    _edit(root / "entries" / "systems" / "t-80.yaml", r"^description: >-$", "description: >-\n  Edited.")
    assert run_kb("validate", cwd=root).code == 0
    _edit(root / "entries" / "systems" / "t-64.yaml", r"^name: .*$", "name: T-64 (renamed)")
    result = run_kb("build", "--no-search", cwd=root, env=ENV)
    assert result.code == 0, result.stderr
    fresh = _fresh(root, tmp_path / "fresh")
    assert run_kb("build", "--no-search", cwd=fresh, env=ENV).code == 0
    mine, theirs = _tree(root / "_site"), _tree(fresh / "_site")
    assert sorted(mine) == sorted(theirs)
    assert [path for path in mine if mine[path] != theirs[path]] == []


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_planted_packed_graph_is_never_unpickled(built, tmp_path, monkeypatch):
    from kb.knowledge_base import open_kb

    mark = tmp_path / "ran"
    monkeypatch.setenv("MARK", str(mark))
    path = _packed(built)
    payload = pickle.dumps(Boom())
    for planted in (payload, b"\0" * 32 + payload):  # unsigned, and signed with a key that is not this user's
        path.write_bytes(planted)
        _edit(built / "entries" / "systems" / "t-80.yaml", r"^description: >-$", "description: >-\n  Edited.")
        kb = open_kb(built)
        assert not mark.exists()
        assert set(kb.index) == set(open_kb(_fresh(built, tmp_path / f"fresh-{len(planted)}")).index)


def test_a_packed_graph_of_another_content_is_not_used(built, tmp_path):
    """The packed graph kept before an edit that a later run did not keep (it could not write it) names the
    graph before: the next run loads every entry rather than use it."""
    from kb.index import Index
    from kb.knowledge_base import open_kb

    before = _packed(built).read_bytes()
    _edit(built / "entries" / "systems" / "t-80.yaml", r"^description: >-$", "description: >-\n  Edited.")
    open_kb(built)
    (built / ".kb-cache" / "graph.packed").write_bytes(before)
    _edit(built / "entries" / "systems" / "t-72.yaml", r"^description: >-$", "description: >-\n  Again.")
    kb = open_kb(built)
    assert type(kb.index) is Index
    assert set(kb.index) == set(open_kb(_fresh(built, tmp_path / "fresh")).index)


# --- the packed graph answers as the index does --------------------------------------------------

IRIS = [URIRef(f"https://example.org/{i}") for i in range(8)]
TERMS = IRIS + [Literal("a"), Literal("a", lang="en"), Literal(1), Literal("1"), Literal("1.5", datatype=IRIS[0])]
TRIPLES = st.tuples(st.sampled_from(IRIS), st.sampled_from(IRIS[:4]), st.sampled_from(TERMS))


def _same(a, b) -> bool:
    return sorted(map(repr, a)) == sorted(map(repr, b))


@settings(max_examples=60, deadline=None)
@given(st.lists(TRIPLES, max_size=30), st.lists(TRIPLES, max_size=5), st.lists(TRIPLES, max_size=5))
def test_the_packed_graph_answers_every_lookup_as_the_index(triples, removed, added):
    from kb.index import Index
    from kb.packed import PackedGraph

    packed = PackedGraph.of(Index(triples))
    assert packed.change(removed, added)
    index = Index([t for t in Index(triples) if t not in set(removed)] + added)
    assert len(packed) == len(index) and _same(packed, index)
    nodes = [None, *IRIS[:5], *TERMS[-4:]]
    for s in nodes:
        for p in [None, *IRIS[:4]]:
            for o in nodes:
                assert _same(packed.triples((s, p, o)), index.triples((s, p, o))), (s, p, o)
                assert ((s, p, o) in packed) == ((s, p, o) in index)
            assert _same(packed.objects(s, p), index.objects(s, p))
            assert (packed.value(s, p) is None) == (index.value(s, p) is None)
            assert packed.value(s, p) in {None, *index.objects(s, p)} if s is not None else True
            assert _same(packed.subjects(p, s), index.subjects(p, s))
        for o in nodes:
            assert _same(packed.predicates(s, o), index.predicates(s, o))
        assert {p: dict(v) for p, v in packed.about(s).items()} == {p: dict(v) for p, v in index.about(s).items()}
        assert _same(packed.predicate_objects(s), index.predicate_objects(s))
    for p in [None, *IRIS[:4]]:
        assert _same(packed.subject_objects(p), index.subject_objects(p))


def _parts(term) -> tuple:
    """All a term is: its kind, its string, and a literal's language, datatype, value and well-typedness."""
    return (type(term), str(term), getattr(term, "language", None), getattr(term, "datatype", None),
            type(getattr(term, "value", None)), getattr(term, "value", None), getattr(term, "ill_typed", None))


def test_the_packed_graph_is_kept_and_read_back(tmp_path):
    from rdflib import BNode
    from rdflib.namespace import XSD

    from kb.index import Index
    from kb.packed import PackedGraph

    typed = [Literal("2024-01-02", datatype=XSD.date), Literal("1.50", datatype=XSD.decimal),
             Literal("abc", datatype=XSD.integer), Literal("true", datatype=XSD.boolean),
             Literal("https://example.org/x", datatype=XSD.anyURI), Literal("", lang="fr"), BNode("b1")]
    objects = TERMS + typed
    triples = [(IRIS[i % 8], IRIS[i % 4], objects[i % len(objects)]) for i in range(60)]
    packed = PackedGraph.of(Index(triples))
    packed.save(tmp_path, "one")
    assert PackedGraph.load(tmp_path, "another") is None
    again = PackedGraph.load(tmp_path, "one")
    assert _same(again, packed) and set(again) == set(packed)
    assert sorted(map(_parts, again.terms), key=repr) == sorted(map(_parts, packed.terms), key=repr)
    assert {type(t) for t in again.terms} == {URIRef, Literal, BNode}
    again.change([triples[0]], [(IRIS[7], IRIS[0], Literal("new"))])
    again.save(tmp_path, "two")  # the terms read back as they were, the new one after them
    assert _same(PackedGraph.load(tmp_path, "two"), again)


def test_a_shard_removed_since_is_no_traceback_and_no_wrong_graph(built, tmp_path):
    """A shard of the parse cache removed by hand (or lost in a copy): the next run loads every entry and
    keeps the cache anew, rather than trust a head that names a missing file."""
    from kb.index import Index
    from kb.knowledge_base import open_kb

    cache = built / ".kb-cache"
    next(cache.glob("parsed.pickle.*")).unlink()
    _edit(built / "entries" / "systems" / "t-80.yaml", r"^description: >-$", "description: >-\n  Edited.")
    kb = open_kb(built)
    assert type(kb.index) is Index and kb.problems == []
    assert set(kb.index) == set(open_kb(_fresh(built, tmp_path / "fresh")).index)


def test_keys_moved_keep_the_packed_graph_for_the_next_run(built):
    """Keys written in another order make the same triples, but the entry's lines in another order (another
    digest): the packed graph is kept under the new content, and the next edit takes the edit path too."""
    from kb.knowledge_base import open_kb
    from kb.packed import PackedGraph

    path = built / "entries" / "systems" / "t-80.yaml"
    first, rest = path.read_text(encoding="utf-8").split("\n", 1)
    path.write_text(rest.rstrip("\n") + "\n" + first + "\n", encoding="utf-8")  # `name:` last
    assert type(open_kb(built).index) is PackedGraph
    _edit(built / "entries" / "systems" / "t-72.yaml", r"^description: >-$", "description: >-\n  Again.")
    assert type(open_kb(built).index) is PackedGraph


def test_a_large_change_is_merged_into_the_packed_graph(tmp_path):
    """Many triples removed and added at once are merged in one sort (`BATCH`): the same graph."""
    from kb.index import Index
    from kb.packed import BATCH, PackedGraph

    triples = [(URIRef(f"https://example.org/s{i}"), IRIS[i % 4], Literal(i)) for i in range(3 * BATCH)]
    packed = PackedGraph.of(Index(triples))
    new = [(URIRef(f"https://example.org/n{i}"), IRIS[1], Literal(f"n{i}")) for i in range(BATCH)]
    assert packed.change(triples[:BATCH], new)
    assert _same(packed, Index(triples[BATCH:] + new))
    assert list(packed.spo) == sorted(packed.spo) and list(packed.pos) == sorted(packed.pos)
