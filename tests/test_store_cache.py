"""`kb query`, `kb show` and `kb search` answer from the Oxigraph store saved in .kb-cache while no entry,
ontology file or kb.toml has changed, and give exactly what a fresh load gives."""
import os
import shutil

from .conftest import run_kb

CREW = "SELECT ?crew WHERE { id:t-72 kb:crew ?crew }"


def _fresh(root):
    shutil.rmtree(root / ".kb-cache", ignore_errors=True)


def test_second_query_uses_the_saved_store(kb_root):
    first = run_kb("query", CREW, "--format", "csv", cwd=kb_root)
    assert first.code == 0 and first.stdout.splitlines() == ["crew", "3"]
    assert (kb_root / ".kb-cache" / "store.json").is_file()
    # Same size and modification time, different content: only a saved store can still answer `3`.
    entry = kb_root / "entries" / "systems" / "t-72.yaml"
    stat = entry.stat()
    entry.write_text(entry.read_text().replace("crew: 3", "crew: 4"))
    os.utime(entry, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run_kb("query", CREW, "--format", "csv", cwd=kb_root).stdout.splitlines() == ["crew", "3"]


def test_a_changed_entry_is_seen_at_once(kb_root):
    run_kb("query", CREW, cwd=kb_root)
    entry = kb_root / "entries" / "systems" / "t-72.yaml"
    entry.write_text(entry.read_text().replace("crew: 3", "crew: 4"))
    assert run_kb("query", CREW, "--format", "csv", cwd=kb_root).stdout.splitlines() == ["crew", "4"]


def test_a_broken_entry_is_reported_even_with_a_saved_store(kb_root):
    run_kb("query", CREW, cwd=kb_root)
    entry = kb_root / "entries" / "systems" / "t-72.yaml"
    entry.write_text(entry.read_text() + "crew_size: 3\n")
    for args in (("query", CREW), ("show", "t-72"), ("search", "T-72")):
        result = run_kb(*args, cwd=kb_root)
        assert result.code == 1
        assert any(line.startswith("entries/systems/t-72.yaml:") for line in result.problem_lines), result.stderr


def test_show_and_search_from_the_store_equal_a_fresh_load(kb_root):
    cases = [(i, "text") for i in ("t-80", "t-80-used", "bakhmut", "uralvagonzavod", "src-a")]
    cases += [("tos-1", "json"), ("tos-1", "turtle")]
    for entity_id, fmt in cases:
        _fresh(kb_root)
        loaded = run_kb("show", entity_id, "--format", fmt, cwd=kb_root)
        saved = run_kb("show", entity_id, "--format", fmt, cwd=kb_root)
        assert loaded.code == saved.code == 0, loaded.stderr
        assert saved.stdout == loaded.stdout, (entity_id, fmt)
    for words in ("ТОС", "nothing-like-this"):
        _fresh(kb_root)
        loaded = run_kb("search", words, cwd=kb_root)
        saved = run_kb("search", words, cwd=kb_root)
        assert (saved.code, saved.stdout, saved.stderr) == (loaded.code, loaded.stdout, loaded.stderr)


def test_every_bundled_entity_reads_the_same_from_a_store(bundled_root):
    """describe(), the JSON-LD and the search of every entity of the bundled corpus, from the index and
    from an Oxigraph store (what `kb show` reads when the store is saved)."""
    from dataclasses import replace

    from kb.entity import entity_jsonld
    from kb.knowledge_base import load_valid_kb
    from kb.lookup import describe, find_entity
    from kb.oxstore import StoreView, load_store

    loaded = load_valid_kb(bundled_root, shacl=False)
    stored = replace(loaded, mapped=None, entries=[], index=StoreView(load_store(loaded.index)))
    assert stored.entity_ids == loaded.entity_ids
    for entity_id in sorted(loaded.entity_ids):
        iri = loaded.iri(entity_id)
        assert describe(stored, iri) == describe(loaded, iri), entity_id
        assert entity_jsonld(stored, iri) == entity_jsonld(loaded, iri), entity_id
    for words in ("TOS-1", "Нона", "t80", "Buratino"):
        assert find_entity(stored, words) == find_entity(loaded, words)


def test_the_saved_store_holds_the_exported_graph(kb_root):
    """What SPARQL sees through the saved store is the graph `kb export` writes, triple for triple."""
    from rdflib import Graph
    from rdflib.compare import isomorphic

    everything = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"
    run_kb("query", everything, "--format", "nt", cwd=kb_root)  # loads the entries and saves the store
    assert (kb_root / ".kb-cache" / "store.json").is_file()
    queried = run_kb("query", everything, "--format", "nt", cwd=kb_root)
    exported = run_kb("export", "--format", "nt", cwd=kb_root)
    assert queried.code == exported.code == 0
    a = Graph().parse(data=queried.stdout, format="nt")
    b = Graph().parse(data=exported.stdout, format="nt")
    assert len(a) == len(b) > 100
    assert isomorphic(a, b)
