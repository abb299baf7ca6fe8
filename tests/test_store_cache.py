"""`kb query`, `kb show` and `kb search` answer from the Oxigraph store saved in .kb-cache while no entry,
ontology file or kb.toml has changed, and give exactly what a fresh load gives."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, TEST_CACHE_HOME, copy_bundled, run_kb

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
    """describe(), the JSON-LD and the search of every entity of the bundled corpus, from the store `kb show`
    saves and reads, and from the graph of a fresh load (in a store in memory, and as rdflib terms)."""
    from dataclasses import replace

    from kb.config import load_config
    from kb.describe import describe, find_entity, pick_entity
    from kb.entity import entity_jsonld
    from kb.knowledge_base import load_valid_kb
    from kb.lookup import search
    from kb.oxstore import StoreView
    from kb.store_cache import Saved, fingerprint, save

    config = load_config(bundled_root)
    loaded = load_valid_kb(bundled_root, shacl=False)
    save(config, loaded, fingerprint(config))
    saved, memory = Saved(config), Saved.of(config, loaded)
    assert saved.current() and saved.summary == memory.summary and saved.lookups == memory.lookups
    stored = replace(loaded, mapped=None, entries=[], index=StoreView(saved.store))
    assert set(saved.lookups["ids"]) == loaded.entity_ids
    for entity_id in sorted(loaded.entity_ids):
        iri = loaded.iri(entity_id)
        assert pick_entity(saved, entity_id) == str(iri)
        described = describe(saved.store, saved.prefixes, saved.summary, str(iri))
        assert described == describe(memory.store, memory.prefixes, memory.summary, str(iri)), entity_id
        assert described.name and described.cls in ("system", "organization", "country", "place", "event", "source"), described
        assert entity_jsonld(stored, iri) == entity_jsonld(loaded, iri), entity_id
    names = [(str(s), kind, text) for s, kind, text in loaded.names]
    for words in ("TOS-1", "Нона", "t80", "Buratino"):
        assert find_entity(set(saved.lookups["ids"]), saved.lookups["names"], config.base_iri, words) == \
            find_entity(loaded.entity_ids, names, config.base_iri, words)
        assert search(stored, words) == search(loaded, words)


def test_an_answer_from_a_stale_store_is_never_given(kb_root):
    """`kb show` and `kb query` start on the saved store while its fingerprint is checked: an answer or an
    error that the entries as they are now would not give must not come out."""
    run_kb("query", CREW, cwd=kb_root)  # saves the store
    entry = kb_root / "entries" / "systems" / "t-72.yaml"
    text = entry.read_text()
    entry.write_text(text.replace("crew: 3", "crew: 4"))
    shown = run_kb("show", "t-72", cwd=kb_root)
    assert shown.code == 0 and any(line.split() == ["crew", "4"] for line in shown.stdout.splitlines()), shown.stdout
    # an entity the saved store does not know: the stale store's "no entity named" must not be the answer
    (kb_root / "entries" / "systems" / "t-72-copy.yaml").write_text(text.replace("name: T-72", "name: T-72 Copy"))
    run_kb("query", CREW, cwd=kb_root)
    (kb_root / "entries" / "systems" / "t-72-copy.yaml").unlink()
    (kb_root / "entries" / "systems" / "t-72-twin.yaml").write_text(text.replace("name: T-72", "name: T-72 Twin"))
    shown = run_kb("show", "t-72-twin", cwd=kb_root)
    assert shown.code == 0 and shown.stdout.startswith("T-72 Twin  (t-72-twin)"), shown.stderr


def test_the_fingerprint_from_the_child_is_the_fingerprint(kb_root):
    from kb.config import load_config
    from kb.store_cache import Saved, fingerprint

    config = load_config(kb_root)
    assert Saved(config).fingerprint == fingerprint(config)


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


def test_a_missing_names_file_means_the_entries_are_loaded_again(kb_root):
    """`kb show` by name and `kb search` read the saved names only when they need them; if that file is gone,
    they load the entries (and save everything again) rather than fail."""
    run_kb("query", CREW, cwd=kb_root)
    (kb_root / ".kb-cache" / "store-lookups.json").unlink()
    shown = run_kb("show", "T-72", cwd=kb_root)
    assert shown.code == 0 and shown.stdout.startswith("T-72  (t-72)"), shown.stderr
    (kb_root / ".kb-cache" / "store-lookups.json").unlink()
    assert run_kb("search", "T-72", cwd=kb_root).code == 0
    assert (kb_root / ".kb-cache" / "store-lookups.json").is_file()


def _edit_unseen(entry, old, new):
    """Change an entry's content but not its size or modification time: only a saved store can still answer
    as before the edit."""
    stat = entry.stat()
    entry.write_text(entry.read_text().replace(old, new))
    os.utime(entry, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_build_saves_the_store_the_next_query_answers_from(kb_root):
    shutil.copytree(REPO / "site_build", kb_root / "site_build")
    entry = kb_root / "entries" / "systems" / "t-72.yaml"
    assert run_kb("build", "--no-search", cwd=kb_root).code == 0
    store = (kb_root / ".kb-cache" / "store").stat().st_ino
    _edit_unseen(entry, "crew: 3", "crew: 7")
    assert run_kb("query", CREW, "--format", "csv", cwd=kb_root).stdout.splitlines() == ["crew", "3"]
    assert run_kb("build", "--no-search", cwd=kb_root).code == 0  # nothing changed: the store is kept as it is
    assert (kb_root / ".kb-cache" / "store").stat().st_ino == store
    entry.write_text(entry.read_text().replace("crew: 7", "crew: 4"))  # a change the next build sees
    assert run_kb("build", "--no-search", cwd=kb_root).code == 0
    _edit_unseen(entry, "crew: 4", "crew: 8")
    assert run_kb("query", CREW, "--format", "csv", cwd=kb_root).stdout.splitlines() == ["crew", "4"]
    assert sorted(p.name for p in (kb_root / ".kb-cache").iterdir() if p.name.startswith("store.")) == [
        "store.json", "store.lock"]  # no folder left by the saving


def _store_graph(root):
    """The graph in the saved store, read by Oxigraph itself."""
    import pyoxigraph as ox
    from rdflib import Graph

    store = ox.Store.read_only(str(root / ".kb-cache" / "store"))
    data = store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=ox.DefaultGraph())
    return Graph().parse(data=data.decode("utf-8"), format="nt")


def _exported(root):
    from rdflib import Graph

    exported = run_kb("export", "--format", "nt", cwd=root)
    assert exported.code == 0, exported.stderr
    return Graph().parse(data=exported.stdout, format="nt")


def _shared_files(store, before):
    """How many of the store's data files are files of an earlier store (`before`: their inodes)."""
    return len({p.stat().st_ino for p in store.glob("*.sst")} & before)


def test_a_rebuild_saves_a_changed_copy_of_the_saved_store(kb_root):
    """After an edit, `kb build` makes the new store from a copy of the one it saved last time (sharing its
    data files), with only the difference written, and that store holds exactly the graph `kb export` writes.
    The store in use is never written: a reader that opened it before the build still reads the old graph. A
    store that does not hold the previous build's graph (its record says otherwise) is loaded anew, with the
    same result."""
    import json

    import pyoxigraph as ox
    from rdflib.compare import isomorphic

    shutil.copytree(REPO / "site_build", kb_root / "site_build")
    store, meta = kb_root / ".kb-cache" / "store", kb_root / ".kb-cache" / "store.json"
    entry = kb_root / "entries" / "systems" / "t-72.yaml"
    assert run_kb("build", "--no-search", cwd=kb_root).code == 0
    before = {p.stat().st_ino for p in store.glob("*.sst")}
    folder = store.stat().st_ino
    reader = ox.Store.read_only(str(store))
    crew = "SELECT ?c WHERE { <https://w3id.org/milkb/id/t-72> <https://w3id.org/milkb/ontology#crew> ?c }"
    entry.write_text(entry.read_text().replace("crew: 3", "crew: 4").replace("name: T-72", "name: T-72 (edited)"))
    assert run_kb("build", "--no-search", cwd=kb_root).code == 0
    assert [row[0].value for row in reader.query(crew)] == ["3"]  # the reader's store was not changed
    del reader
    assert store.stat().st_ino != folder  # a new folder: the one in use was not written
    assert _shared_files(store, before) > 0  # a copy of the saved store
    graph = _store_graph(kb_root)
    assert isomorphic(graph, _exported(kb_root)) and len(graph) > 100
    assert run_kb("query", CREW, "--format", "csv", cwd=kb_root).stdout.splitlines() == ["crew", "4"]

    before = {p.stat().st_ino for p in store.glob("*.sst")}
    saved = json.loads(meta.read_text())
    meta.write_text(json.dumps({**saved, "graph": "not the previous build's graph"}))
    entry.write_text(entry.read_text().replace("crew: 4", "crew: 5"))
    assert run_kb("build", "--no-search", cwd=kb_root).code == 0
    assert _shared_files(store, before) == 0  # loaded anew
    assert isomorphic(_store_graph(kb_root), _exported(kb_root))
    assert run_kb("query", CREW, "--format", "csv", cwd=kb_root).stdout.splitlines() == ["crew", "5"]
    assert sorted(p.name for p in (kb_root / ".kb-cache").iterdir() if p.name.startswith("store")) == [
        "store", "store-lookups.json", "store.json", "store.lock"]


def test_a_rebuild_writes_the_lookups_again_only_when_a_name_changes(kb_root):
    """The lookups saved beside the store (every id, name and alias `kb show` matches) stay as they are after a
    rebuild whose change has no type, name or alias in it (the saver need not make them), still named by the
    store's record; a changed name writes them again, and `kb show` finds the entity by it."""
    from kb.store_cache import _digest_of

    shutil.copytree(REPO / "site_build", kb_root / "site_build")
    cache = kb_root / ".kb-cache"
    entry = kb_root / "entries" / "systems" / "t-72.yaml"
    assert run_kb("build", "--no-search", cwd=kb_root).code == 0
    kept = (cache / "store-lookups.json").stat().st_ino
    entry.write_text(entry.read_text().replace("crew: 3", "crew: 4"))
    assert run_kb("build", "--no-search", cwd=kb_root).code == 0
    assert (cache / "store-lookups.json").stat().st_ino == kept  # not written again
    assert json.loads((cache / "store.json").read_text())["lookups"] == _digest_of(
        (cache / "store-lookups.json").read_bytes())
    assert run_kb("query", CREW, "--format", "csv", cwd=kb_root).stdout.splitlines() == ["crew", "4"]
    assert run_kb("show", "T-72", cwd=kb_root).stdout.splitlines()[0].startswith("T-72  (t-72)")
    entry.write_text(entry.read_text().replace("name: T-72\n", "name: T-72 Ural\n"))
    assert run_kb("build", "--no-search", cwd=kb_root).code == 0
    assert (cache / "store-lookups.json").stat().st_ino != kept
    shown = run_kb("show", "t-72 ural", cwd=kb_root)
    assert shown.code == 0 and shown.stdout.splitlines()[0].startswith("T-72 Ural  (t-72)"), shown.stdout + shown.stderr


IN_PROCESS = """
import sys, tempfile
from pathlib import Path
import pyoxigraph as ox
ox.Store(tempfile.mkdtemp()).flush()  # an on-disk store opened here: RocksDB's threads live on in this process
from kb.config import load_config
from kb.site.update import update_site
root = Path(sys.argv[1])
update_site(load_config(root), root / "_site", search=False)
entry = root / "entries" / "systems" / "t-72.yaml"
text = entry.read_text()
assert "crew: {value: 3," in text
entry.write_text(text.replace("crew: {value: 3,", "crew: {value: 6,"))
update_site(load_config(root), root / "_site", search=False)
print("built twice")
"""


def test_a_program_that_opened_an_on_disk_store_can_build_in_process(tmp_path):
    """A program that opened an on-disk Oxigraph store and then builds the site in the same process (kb/site/update.py
    `update_site`): the query store is saved by a thread, not a forked child, which could wait forever for a lock
    of RocksDB's threads (it did). Run apart, with a time limit: the build, a rebuild after an edit, and the store
    then answers with the edit."""
    root = copy_bundled(tmp_path / "kb")
    env = {**os.environ, "XDG_CACHE_HOME": str(TEST_CACHE_HOME), "HOME": str(root)}
    done = subprocess.run([sys.executable, "-c", IN_PROCESS, str(root)], capture_output=True, text=True, timeout=240,
                          env=env, cwd=root)
    assert done.returncode == 0 and "built twice" in done.stdout, done.stderr[-2000:]
    assert run_kb("query", CREW, "--format", "csv", cwd=root).stdout.splitlines() == ["crew", "6"]
    assert json.loads((root / ".kb-cache" / "store.json").read_text())["fingerprint"]


def test_one_command_at_a_time_saves_the_store(kb_root):
    """Saving takes `.kb-cache/store.lock`: while another process holds it, a command that must save the
    store waits for it, then saves and answers."""
    import fcntl
    import subprocess
    import sys
    import time

    from .conftest import kb_executable

    (kb_root / ".kb-cache").mkdir(exist_ok=True)
    meta = kb_root / ".kb-cache" / "store.json"
    with open(kb_root / ".kb-cache" / "store.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        query = subprocess.Popen([kb_executable(), "query", CREW, "--format", "csv"], cwd=kb_root, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(kb_root)})
        deadline = time.monotonic() + 60
        while not (kb_root / ".kb-cache" / "parsed.pickle").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the entries are loaded and checked; then it saves the store
        time.sleep(1.0)
        assert query.poll() is None and not meta.exists()  # waiting for the lock
    out, err = query.communicate(timeout=60)
    assert query.returncode == 0, err
    assert out.splitlines() == ["crew", "3"] and meta.is_file()


def test_without_fork_a_thread_saves_the_store(kb_root, monkeypatch):
    """Where the build cannot fork (no fork, or no process left), the store is saved by a thread as well."""
    import threading

    from kb import store_cache
    from kb.export import graph_lines
    from kb.knowledge_base import load_valid_kb

    kb = load_valid_kb(kb_root, shacl=False)
    lines = graph_lines(kb.mapped, kb.schema.ontology, kb.index)

    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    saving = store_cache.save_meanwhile(kb.config, kb, lines, store_cache.fingerprint(kb.config))
    assert isinstance(saving, threading.Thread)
    saving.join()
    assert store_cache.saved_meta(kb.config)["fingerprint"] == store_cache.fingerprint(kb.config)
    assert run_kb("query", CREW, "--format", "csv", cwd=kb_root).stdout.splitlines() == ["crew", "3"]


def test_a_library_installed_or_upgraded_makes_every_cache_stale(tmp_path, monkeypatch):
    """The installed packages (their `*.dist-info` folders) are part of what the saved store, the parse
    cache and the kept site were made with: a jinja2 or pyoxigraph upgrade must not leave pages or dump
    pieces of the old version beside new ones."""
    import kb.store_cache as store_cache
    from kb.config import load_config
    from kb.parse_cache import _code_stamp
    from kb.store_cache import fingerprint
    from kb.uptodate import inputs_stamp

    site = tmp_path / "site-packages"
    (site / "jinja2-3.1.6.dist-info").mkdir(parents=True)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(sys, "path", [*sys.path, tmp_path / "site-packages"])  # a Path, as a library user may
    # add one (the import system skips it): no error
    config = load_config(REPO)

    def stamps():  # as in a process started now (`libraries` is taken once, when milkb is imported)
        monkeypatch.setattr(store_cache, "_LIBRARIES", store_cache._installed())
        return fingerprint(config), _code_stamp(), inputs_stamp(config, tmp_path / "_site", False)

    before = stamps()
    assert stamps() == before
    (site / "jinja2-3.1.6.dist-info").rename(site / "jinja2-3.2.0.dist-info")
    upgraded = stamps()
    assert all(a != b for a, b in zip(before, upgraded))
    (site / "markdown_it_py-4.0.0.dist-info").mkdir()
    assert all(a != b for a, b in zip(upgraded, stamps()))
    added = stamps()
    (site / "legacy-1.0.egg-info").mkdir()
    assert all(a != b for a, b in zip(added, stamps()))


def _stopped_in(root: Path) -> list[int]:
    """The processes of a `kb` command in `root` stopped at a fault point (state T)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state == "T" and str(root).encode() in command:
            found.append(int(proc.name))
    return found


@pytest.mark.parametrize("command", [("query", CREW, "--format", "csv"), ("build", "--no-search")])
def test_an_entry_saved_while_a_command_reads_the_entries_is_not_answered_stale(kb_root, command):
    # The fingerprint that names the saved query store is taken by a forked child; the command waits for it
    # before it reads the entries. Here the child is held (MILKB_FAULT_AT=entries-fingerprint:stop) while an
    # entry is saved: had the command read the entries meanwhile, the store would hold the old crew under the
    # new entries' fingerprint, and every later query would answer 3.
    import signal
    import subprocess
    import time

    from .conftest import kb_executable

    shutil.copytree(REPO / "site_build", kb_root / "site_build")
    process = subprocess.Popen([kb_executable(), "--root", str(kb_root), *command], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "MILKB_FAULT_AT": "entries-fingerprint:stop"})
    try:
        deadline = time.monotonic() + 30
        while not (stopped := _stopped_in(kb_root)):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        time.sleep(1.5)  # long enough for the command to read the 90 entries, had it not waited
        entry = kb_root / "entries" / "systems" / "t-72.yaml"
        entry.write_text(entry.read_text().replace("crew: 3", "crew: 4"))
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        assert process.wait(60) == 0
    finally:
        process.kill()
    assert run_kb("query", CREW, "--format", "csv", cwd=kb_root).stdout.splitlines() == ["crew", "4"]


def test_a_store_swapped_in_while_a_command_opens_it_is_not_answered_from(kb_root):
    # `kb query` reads store.json (which names the fingerprint the store was saved under), then opens the store.
    # Here it is held between the two (MILKB_FAULT_AT=store-meta-read:stop) while a saver that started before
    # the last edit (a build's, a `kb serve` rebuild's) swaps in its older store with its own store.json, as
    # `_write` does. Had the command taken the store it then opened with the store.json it had read, it would
    # answer the old crew under the new entries' fingerprint.
    import signal
    import subprocess
    import time

    from .conftest import kb_executable

    cache = kb_root / ".kb-cache"
    assert run_kb("query", CREW, "--format", "csv", cwd=kb_root).stdout.splitlines() == ["crew", "3"]
    shutil.copytree(cache / "store", kb_root / "old-store")
    old_meta, old_lookups = (cache / "store.json").read_bytes(), (cache / "store-lookups.json").read_bytes()
    entry = kb_root / "entries" / "systems" / "t-72.yaml"
    entry.write_text(entry.read_text().replace("crew: 3", "crew: 4"))
    assert run_kb("query", CREW, "--format", "csv", cwd=kb_root).stdout.splitlines() == ["crew", "4"]
    process = subprocess.Popen([kb_executable(), "--root", str(kb_root), "query", CREW, "--format", "csv"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               env={**os.environ, "MILKB_FAULT_AT": "store-meta-read:stop"})
    try:
        deadline = time.monotonic() + 30
        while not (stopped := _stopped_in(kb_root)):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        (cache / "store.json").unlink()  # the older saver's swap
        os.replace(cache / "store", kb_root / "new-store")
        os.replace(kb_root / "old-store", cache / "store")
        (cache / "store-lookups.json").write_bytes(old_lookups)
        (cache / "store.json").write_bytes(old_meta)
        while process.poll() is None:  # (it stops there again when it opens the store it saves)
            for pid in stopped or _stopped_in(kb_root):
                os.kill(pid, signal.SIGCONT)
            stopped = None
            assert time.monotonic() < deadline + 60
            time.sleep(0.05)
        out = process.stdout.read()
    finally:
        process.kill()
    assert process.returncode == 0 and out.decode().splitlines() == ["crew", "4"]


def test_lookups_saved_with_another_store_are_not_used(kb_root):
    # `kb show` reads the names it matches against (store-lookups.json) only when it needs them, after it opened
    # the store: lookups another saver wrote meanwhile are refused (store.json holds the digest of its own).
    assert run_kb("show", "t-72", cwd=kb_root).code == 0
    lookups = kb_root / ".kb-cache" / "store-lookups.json"
    names = json.loads(lookups.read_text())
    names["names"] = [n for n in names["names"] if not n[0].endswith("/t-72")]
    names["ids"] = [i for i in names["ids"] if i != "t-72"]
    lookups.write_text(json.dumps(names))
    shown = run_kb("show", "T-72", cwd=kb_root)
    assert shown.code == 0 and "(t-72)" in shown.stdout
