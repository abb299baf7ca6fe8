"""An incremental `kb build` (units the change does not touch linked from the previous site) writes exactly
the bytes a build from scratch writes: checked on the bundled corpus after each kind of change."""
from __future__ import annotations

import os
import re
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import REPO, copy_bundled, make_root, run_kb, settled

ENV = {"SOURCE_DATE_EPOCH": "1700000000", "MILKB_JOBS": "1"}
REUSED = re.compile(r"; (\d+) of (\d+) parts unchanged since the last build, reused")


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _build(root: Path, out: str, jobs: str = "1") -> tuple[int, int]:
    """`kb build --no-search -o out`; (parts reused, parts in all)."""
    result = run_kb("build", "--no-search", "-o", out, cwd=root, env=ENV | {"MILKB_JOBS": jobs})
    assert result.code == 0, result.stderr
    found = REUSED.search(result.stdout)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def _same_as_full(root: Path, step: str, jobs: str = "1") -> tuple[int, int]:
    """Build incrementally into _site, and meanwhile from scratch into a fresh folder (another output folder:
    nothing of the kept state applies there): the two must be identical."""
    with ThreadPoolExecutor(1) as pool:
        full = pool.submit(_build, root, f"full-{step}", jobs)
        reused = _build(root, "_site", jobs)
        assert full.result() == (0, 0)
    incremental, full = _tree(root / "_site"), _tree(root / f"full-{step}")
    assert sorted(incremental) == sorted(full), f"{step}: files differ"
    differing = [path for path in full if incremental[path] != full[path]]
    assert not differing, f"{step}: incremental build differs from a full build in {differing[:5]}"
    shutil.rmtree(root / f"full-{step}")
    return reused


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert re.search(old, text, flags=re.M), f"{old!r} not in {path}"
    path.write_text(re.sub(old, new, text, count=1, flags=re.M), encoding="utf-8")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = copy_bundled(tmp_path_factory.mktemp("incremental") / "kb")
    assert _build(root, "_site") == (0, 0)  # the first build renders everything
    return root


def test_an_unchanged_knowledge_base_reuses_every_part(corpus):
    entry = corpus / "entries" / "systems" / "t-80.yaml"  # a comment: other bytes, the same graph
    entry.write_text(entry.read_text(encoding="utf-8") + "# a comment\n", encoding="utf-8")
    reused, units = _same_as_full(corpus, "unchanged")
    assert units > 900 and reused == units


UP_TO_DATE = "is up to date: nothing changed since the last build"


def _touch(path: Path) -> None:
    os.utime(path)


def _append(path: Path) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write("<!-- edited by hand -->")


CHANGES = [  # none of them changes what the site shows
    ("ontology touched", lambda root: _touch(next((root / "ontology").glob("*.ttl")))),
    ("template touched", lambda root: _touch(root / "site_build" / "templates" / "entity.html")),
    ("saved query touched", lambda root: _touch(next((root / "queries").glob("*.rq")))),
    ("page edited by hand", lambda root: _append(root / "_site" / "id" / "t-80.html")),
    ("page removed", lambda root: (root / "_site" / "index.html").unlink()),
    ("file added to the site", lambda root: (root / "_site" / "stray.html").write_text("stray")),
    ("query store removed", lambda root: shutil.rmtree(root / ".kb-cache" / "store")),
    ("record not signed by this user", lambda root: _unsign(next((root / ".kb-cache").glob("site-*.built")))),
]


def _unsign(record: Path) -> None:
    """The record as another user's milkb would have written it: the same data, another signature."""
    settled(record.parent.parent)
    data = record.read_bytes()
    record.write_bytes(bytes(32) + data[32:])


def test_a_build_with_nothing_changed_writes_nothing_and_any_change_builds_again(tmp_path):
    """A second build with nothing changed says so and leaves the site alone (the same folder, the same
    files): `kb/uptodate.py`. Each change in CHANGES makes an ordinary build again, and since none changes
    what the site shows, that build puts back exactly the first build's files."""
    root = copy_bundled(tmp_path / "kb")
    _build(root, "_site")
    site = root / "_site"
    first = _tree(site)
    # Python names every module it imports on stderr: finding out that there is nothing to do loads neither
    # the graph's libraries nor the templates' (at 10,000 systems, 0.2 s where a build takes seconds)
    result = run_kb("build", "--no-search", "-o", "_site", cwd=root, env=ENV | {"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.code == 0 and UP_TO_DATE in result.stdout, result.stdout + result.stderr
    assert f"{len(first)} files" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "kb.uptodate" in imported and not imported & {"rdflib", "jinja2", "pyoxigraph", "yaml"}
    for step, change in CHANGES:
        inode = site.stat().st_ino
        change(root)
        result = run_kb("build", "--no-search", "-o", "_site", cwd=root, env=ENV)
        assert result.code == 0 and result.stdout.startswith("built "), f"{step}: {result.stdout}{result.stderr}"
        assert site.stat().st_ino != inode, f"{step}: no new site was swapped in"
        assert _tree(site) == first, f"{step}: the site is not as the first build wrote it"
        again = run_kb("build", "--no-search", "-o", "_site", cwd=root, env=ENV)
        assert UP_TO_DATE in again.stdout, f"{step}: the build after it should have had nothing to do"
        assert site.stat().st_ino != inode and _tree(site) == first


def test_an_entry_touched_or_put_back_as_built_leaves_the_site_alone(tmp_path):
    """An entry file with a new mtime but the bytes the site was built from (touched, checked out again, or
    broken and then put back) leaves the site alone: its digest is compared with the one the build recorded
    (kb/uptodate.py), and the query store is kept under the new fingerprint, so `kb query` answers from it
    without saving another. One changed byte builds again."""
    root = copy_bundled(tmp_path / "kb")
    _build(root, "_site")
    site, store = root / "_site", root / ".kb-cache" / "store"
    first, inode = _tree(site), site.stat().st_ino
    entry = root / "entries" / "systems" / "t-80.yaml"
    text = entry.read_text(encoding="utf-8")

    def up_to_date(step: str) -> None:
        result = run_kb("build", "--no-search", "-o", "_site", cwd=root, env=ENV)
        assert result.code == 0 and UP_TO_DATE in result.stdout, f"{step}: {result.stdout}{result.stderr}"
        assert site.stat().st_ino == inode and _tree(site) == first, step
        saved = store.stat().st_ino
        assert run_kb("query", "--saved", "main-battle-tanks", "--format", "csv", cwd=root).code == 0
        assert store.stat().st_ino == saved, f"{step}: kb query did not answer from the saved store"

    _touch(entry)
    up_to_date("touched")
    entry.write_text(text + "oops: [\n", encoding="utf-8")
    assert run_kb("build", "--no-search", "-o", "_site", cwd=root, env=ENV).code == 1
    entry.write_text(text, encoding="utf-8")
    up_to_date("broken, then put back")
    entry.write_text(text.replace("T-80", "T-80 ", 1), encoding="utf-8")
    result = run_kb("build", "--no-search", "-o", "_site", cwd=root, env=ENV)
    assert result.code == 0 and result.stdout.startswith("built "), result.stdout + result.stderr


def test_an_entry_replaced_by_a_link_or_a_pipe_is_not_taken_for_the_built_one(tmp_path):
    """The touched-entry check of kb/uptodate.py never follows a link nor opens a pipe: an entry replaced by
    a link to a file with its very bytes is the loader's problem (links are refused), and a pipe is a change;
    neither hangs nor is called up to date."""
    root = copy_bundled(tmp_path / "kb")
    _build(root, "_site")
    entry = root / "entries" / "systems" / "t-80.yaml"
    copy = tmp_path / "t-80.yaml"
    shutil.copy2(entry, copy)
    entry.unlink()
    entry.symlink_to(copy)
    result = run_kb("build", "--no-search", "-o", "_site", cwd=root, env=ENV)
    assert result.code == 1 and "symbolic link" in result.stderr, result.stdout + result.stderr
    entry.unlink()
    os.mkfifo(entry)
    result = run_kb("build", "--no-search", "-o", "_site", cwd=root, env=ENV)  # run_kb's timeout: no hang
    assert UP_TO_DATE not in result.stdout, result.stdout


def test_a_dangling_link_among_the_entries_hides_no_other_file_from_the_fingerprint(kb_root):
    """An editor's lock file (`.#x.yaml`, a link to nowhere) in a folder of entries: the fingerprint still
    sees a change to every other file there (kb/store_cache.py `fingerprint`)."""
    from kb.config import load_config
    from kb.store_cache import fingerprint

    config = load_config(kb_root)
    folder = kb_root / "entries" / "systems"
    (folder / ".#aaa.yaml").symlink_to("nobody@host.1234")
    before = fingerprint(config)
    for entry in sorted(p for p in folder.glob("*.yaml") if not p.name.startswith(".")):
        os.utime(entry, ns=(1, 1))
        assert fingerprint(config) != before, entry.name
        before = fingerprint(config)


def test_the_build_date_and_the_search_option_are_inputs_of_the_site(monkeypatch):
    """A build on another day, or with the other search option, is not the same build: neither the no-op of
    `kb/uptodate.py` nor the kept parts of the previous site apply."""
    from kb.config import load_config
    from kb.uptodate import inputs_stamp

    config, out = load_config(REPO), REPO / "_site"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    today, searched = inputs_stamp(config, out, False), inputs_stamp(config, out, True)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700086400")
    assert len({today, searched, inputs_stamp(config, out, False)}) == 3
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert inputs_stamp(config, out, False) == today


@pytest.mark.parametrize("step, file, old, new", [  # changed values and names: the random edits below
    ("link", "systems/t-80bv.yaml", r"^variant_of: t-80$", "variant_of: t-80b"),
    ("category", "systems/bm-21.yaml", r"^category: .*$", "category: self-propelled-howitzer"),
    # what pages show of other entries: a source's kind where a value cites it, a figure's stated form in the
    # tables, a link's qualifiers on the linked page, an event's role names, an entry named in a note
    ("source kind", "sources/ipmsdeutschland-tos-1a.yaml", r"^kind: .*$", "kind: news"),
    ("stated value", "systems/archer.yaml", r"^engine_power: .*$", "engine_power: {value: 350 hp, source: wikipedia-archer}"),
    ("operator qualifier", "systems/2s23.yaml", "captured vehicle refitted", "captured vehicle that was refitted"),
    ("event action", "events/2024-02-avdiivka-m1a1-abrams-destroyed.yaml", r"^action: destroyed$", "action: damaged"),
    ("event weapon", "events/2024-sumy-oblast-caesar-destroyed.yaml", r"^weapons: \[lancet\]$", "weapons: [shahed-136]"),
    ("note naming an entry", "systems/tos-1.yaml", "note: \"original Object 634;", "note: \"original Object 634 (as t-72 and tos-1a);"),
])
def test_changed_entry(corpus, step, file, old, new):
    _edit(corpus / "entries" / file, old, new)
    reused, units = _same_as_full(corpus, step.replace(" ", "-"))
    assert 0 < reused < units


def test_added_entry(corpus):
    (corpus / "entries" / "systems" / "t-80-test.yaml").write_text(
        "name: T-80 Test\ncategory: main-battle-tank\norigin: soviet-union\nvariant_of: t-80\n"
        "operators: [ukraine]\ncrew: 3\nsources: [armyrecognition-t-80bv-2019]\n", encoding="utf-8")
    reused, units = _same_as_full(corpus, "added")
    assert 0 < reused < units
    assert (corpus / "_site" / "id" / "t-80-test.html").is_file()


def _events_naming(corpus: Path, system: str) -> list[Path]:
    return [p for p in sorted((corpus / "entries" / "events").glob("*.yaml"))
            if re.search(rf"^systems: \[(.*, )?{re.escape(system)}[],]", p.read_text(encoding="utf-8"), flags=re.M)]


def test_deleted_entry(corpus):
    for event in _events_naming(corpus, "bm-21"):  # and the events that name it, which would link to nothing
        event.unlink()
    (corpus / "entries" / "systems" / "bm-21.yaml").unlink()
    reused, _ = _same_as_full(corpus, "deleted")
    assert reused > 0
    assert not (corpus / "_site" / "id" / "bm-21.html").exists()


def test_renamed_entry(corpus):
    systems = corpus / "entries" / "systems"
    naming = _events_naming(corpus, "2s23")
    assert len(naming) >= 2
    (systems / "2s23.yaml").rename(systems / "2s23-nona-svk.yaml")
    for event in naming:
        _edit(event, r"^(systems: \[(.*, )?)2s23\b", r"\g<1>2s23-nona-svk")
    reused, _ = _same_as_full(corpus, "renamed")
    assert reused > 0
    assert (corpus / "_site" / "id" / "2s23-nona-svk.html").is_file()
    assert not (corpus / "_site" / "id" / "2s23.html").exists()


def test_the_query_page_is_kept_unless_a_saved_query_reads_the_change(corpus):
    """The saved queries' answers depend only on the triples their patterns can match (`query.pattern_reads`):
    a changed description, which no saved query reads, keeps the page (linked: the same inode); a changed
    crew, which `main-battle-tanks` reads, renders it again, as a full build has it."""
    page = corpus / "_site" / "queries.html"
    _same_as_full(corpus, "before-query-edits")
    before = page.stat().st_ino
    _edit(corpus / "entries" / "systems" / "t-72.yaml", r"^description: >-$", "description: >-\n  Edited.")
    _same_as_full(corpus, "description")
    assert page.stat().st_ino == before
    _edit(corpus / "entries" / "systems" / "t-72.yaml", r"^crew: \{value: 3,", "crew: {value: 4,")
    _same_as_full(corpus, "crew")
    assert page.stat().st_ino != before


def test_only_the_saved_queries_that_read_a_change_run_again(corpus, monkeypatch):
    """Each saved query's answer is kept with what it read (`_query_page`): after a changed description no
    query runs; after a changed crew, `main-battle-tanks` (which reads crew) runs again but not every query
    does. The site is still the one a full build writes."""
    import kb.site.build as build
    from kb.knowledge_base import load_valid_kb
    from kb.query import saved_queries

    everyone = set(saved_queries(corpus / "queries"))
    ran: list[str] = []
    real = build.raw_query
    monkeypatch.setattr(build, "raw_query", lambda store, text, name, *rest: ran.append(name) or real(store, text, name, *rest))
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)

    def rebuild() -> set[str]:
        ran.clear()
        build.build_site(load_valid_kb(corpus), corpus / "_site", search=False)
        return set(ran)

    _same_as_full(corpus, "before-query-runs")
    assert rebuild() == set()  # nothing changed
    _edit(corpus / "entries" / "systems" / "t-80.yaml", r"^description: >-$", "description: >-\n  Edited again.")
    assert rebuild() == set()
    _edit(corpus / "entries" / "systems" / "t-80.yaml", r"^crew: \{value: 3,", "crew: {value: 4,")
    again = rebuild()
    assert "main-battle-tanks" in again and again < everyone, again
    _same_as_full(corpus, "crew-t-80")


def test_a_rebuild_unpickles_only_the_kept_rows_it_shows(corpus, monkeypatch):
    """The kept table rows are `Packed`: after a changed description, which no table shows, the rebuild
    unpickles only the rows that the pages it renders again show (none, with today's templates), not all of
    them, and writes systems.csv from the CSV lines kept beside them. The site is still the one a full build
    writes."""
    import kb.site.build as build
    from kb.knowledge_base import load_valid_kb
    from kb.site.incremental import Packed

    opened: list = []
    real = Packed.open
    monkeypatch.setattr(Packed, "open", lambda self: opened.append(self) or real(self))
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    _same_as_full(corpus, "before-packed-rows")
    build.build_site(load_valid_kb(corpus), corpus / "_site", search=False)  # the kept rows are Packed now
    systems = len(load_valid_kb(corpus).mapped.index)
    _edit(corpus / "entries" / "systems" / "t-80.yaml", r"^description: >-$", "description: >-\n  Edited for rows.")
    opened.clear()
    build.build_site(load_valid_kb(corpus), corpus / "_site", search=False)
    rows = {id(p) for p in opened if isinstance(p.plain, str)}  # a row has its CSV line beside it
    assert len(rows) < systems / 10, (len(rows), systems)
    _same_as_full(corpus, "packed-rows")


def test_a_rebuild_unpickles_the_kept_lines_of_the_changed_entries_only(corpus, monkeypatch):
    """Each entry's kept lines are `Packed` with their digest beside them: a rebuild after one changed entry
    compares digests, and unpickles the kept lines of that entry alone to say what changed."""
    import kb.site.build as build
    from kb.knowledge_base import load_valid_kb
    from kb.site.incremental import Packed

    opened: list = []
    real = Packed.open
    monkeypatch.setattr(Packed, "open", lambda self: opened.append(self) or real(self))
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    _edit(corpus / "entries" / "systems" / "t-80.yaml", r"^description: >-$", "description: >-\n  Edited for lines.")
    kb = load_valid_kb(corpus)
    opened.clear()
    report = build.build_site(kb, corpus / "_site", search=False)
    lines = [real(p) for p in list(opened) if isinstance(p.plain, bytes)]
    assert len(lines) == 1  # t-80's, as the last build kept them
    assert any("/t-80> " in line for line in lines[0]) and not any("Edited for lines." in line for line in lines[0])
    assert 0 < report.reused < report.units
    _same_as_full(corpus, "packed-lines")


def test_a_rebuild_reads_only_the_shards_of_the_kept_state_the_change_may_touch(corpus, monkeypatch):
    """The head of the kept state summarises each of its 256 shards (what its pages and rows read, their files,
    each row's CSV line): after one changed description the rebuild reads the few shards whose reads meet the
    change, not all of them, and the site is still the one a full build writes. The shards it did not read
    are not written again."""
    import kb.site.build as build
    from kb.knowledge_base import load_valid_kb
    from kb.shards import Shards

    read: list = []
    real = Shards.shard

    def shard(self, number):
        if self.path.name.startswith("site-"):
            read.append(number)
        return real(self, number)

    monkeypatch.setattr(Shards, "shard", shard)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    build.build_site(load_valid_kb(corpus), corpus / "_site", search=False)
    before = {p.name for p in (corpus / ".kb-cache").glob("site-*.pickle.*")}
    _edit(corpus / "entries" / "systems" / "t-80.yaml", r"^description: >-$", "description: >-\n  Edited for shards.")
    read.clear()
    report = build.build_site(load_valid_kb(corpus), corpus / "_site", search=False)
    assert 0 < len(set(read)) < len(before) / 4, (sorted(set(read)), len(before))
    assert 0 < report.reused < report.units
    after = {p.name for p in (corpus / ".kb-cache").glob("site-*.pickle.*")}
    assert 0 < len(after - before) <= len(set(read))  # only shards it read are written again
    _same_as_full(corpus, "shards-read")


def _state_shards(root: Path) -> list[Path]:
    settled(root)
    return sorted((root / ".kb-cache").glob("site-*.pickle.*"))


def test_a_removed_or_damaged_shard_of_the_kept_state_never_gives_a_stale_site(tmp_path):
    """A shard of the kept state removed since the last build means no kept state (a build from scratch); one
    damaged in place (its digest no longer the one the signed head names) is found when a change needs it:
    whatever the rebuild renders from then on is rendered afresh, and the next builds are right again."""
    root = copy_bundled(tmp_path / "kb")
    assert _build(root, "_site") == (0, 0)
    _state_shards(root)[0].unlink()
    _edit(root / "entries" / "systems" / "t-80.yaml", r"^description: >-$", "description: >-\n  Shard removed.")
    assert _same_as_full(root, "shard-removed")[0] == 0
    for path in _state_shards(root):
        path.write_bytes(b"damaged" + path.read_bytes()[7:])
    _edit(root / "entries" / "systems" / "t-80.yaml", r"^description: >-$", "description: >-\n  Shards damaged.")
    _same_as_full(root, "shards-damaged")
    assert "Shards damaged." in _description(root, "t-80")  # the query store is the new graph, not the kept one
    for event in _events_naming(root, "bm-21"):  # an entry deleted after the damage is gone from the dumps too
        event.unlink()
    (root / "entries" / "systems" / "bm-21.yaml").unlink()
    _same_as_full(root, "deleted-after-damage")
    assert _description(root, "bm-21") == ""
    _edit(root / "entries" / "systems" / "t-72.yaml", r"^description: >-$", "description: >-\n  After the damage.")
    reused, units = _same_as_full(root, "after-damage")
    assert 0 < reused < units
    assert "After the damage." in _description(root, "t-72")


def _stopped_in(root: Path, timeout: float = 30.0) -> int:
    """The pid of the process stopped (SIGSTOP) whose working folder is `root`: the one keeping a build's state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    stat = Path(entry.path, "stat").read_text()
                    if stat[stat.rindex(")") + 2] == "T" and os.readlink(Path(entry.path, "cwd")) == str(root):
                        return int(entry.name)
                except (OSError, ValueError):
                    continue
        time.sleep(0.01)
    raise AssertionError("no process stopped keeping the build's state")


def test_a_build_keeps_its_state_after_it_returns_and_the_next_build_waits_for_it(tmp_path):
    """`kb build` returns once its site is in place; a process of its own then keeps the state the next build
    starts from and the build's record (kb/site/update.py `_keep_apart`). The next build waits for it: here it
    is stopped before it keeps anything, and the next build does not end until it goes on, and then finds the
    site up to date. Killed before it is done, it leaves the previous build's state and record, which the next
    build does not take for this site's: that one builds again, the same bytes as a build from scratch."""
    root = copy_bundled(tmp_path / "kb")
    _build(root, "_site")
    entry = root / "entries" / "systems" / "t-80.yaml"
    _edit(entry, r"^description: >-$", "description: >-\n  Kept apart.")
    result = run_kb("build", "--no-search", "-o", "_site", cwd=root, env=ENV | {"MILKB_FAULT_AT": "keeping-state:stop"})
    assert result.code == 0 and result.stdout.startswith("built "), result.stdout + result.stderr
    assert "Kept apart." in (root / "_site" / "id" / "t-80.html").read_text(encoding="utf-8")  # in place already
    keeper = _stopped_in(root)
    try:
        with ThreadPoolExecutor(1) as pool:
            following = pool.submit(run_kb, "build", "--no-search", "-o", "_site", cwd=root, env=ENV)
            time.sleep(2)
            assert not following.done(), following.result().stdout  # waiting for the stopped one
            os.kill(keeper, signal.SIGCONT)
            result = following.result()
        assert result.code == 0 and UP_TO_DATE in result.stdout, result.stdout + result.stderr
    finally:
        try:
            os.kill(keeper, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _edit(entry, r"^description: >-$", "description: >-\n  Killed keeping.")
    result = run_kb("build", "--no-search", "-o", "_site", cwd=root, env=ENV | {"MILKB_FAULT_AT": "keeping-state"})
    assert result.code == 0 and "Killed keeping." in (root / "_site" / "id" / "t-80.html").read_text(encoding="utf-8")
    _edit(entry, r"^description: >-$", "description: >-\n  After the kill.")
    reused, units = _same_as_full(root, "after-keeping-killed")
    assert 0 < reused < units  # the state the build before kept, trusted for the files still as it wrote them
    assert "After the kill." in (root / "_site" / "id" / "t-80.html").read_text(encoding="utf-8")


def _description(root: Path, entry: str) -> str:
    """The entry's description as `kb query` answers (from the store the last build saved)."""
    query = f"SELECT ?d WHERE {{ <https://w3id.org/milkb/id/{entry}> dcterms:description ?d }}"
    result = run_kb("query", query, "--format", "csv", cwd=root, env=ENV)
    assert result.code == 0, result.stderr
    return result.stdout.partition("\n")[2]


def test_a_kept_row_that_cannot_be_unpickled_is_made_again():
    """A `Packed` value whose bytes cannot be unpickled (a library changed a class since) is no cache: the
    memo makes the entry afresh rather than stop the build."""
    from array import array

    from kb.index import Index
    from kb.site.incremental import Packed, Tracker

    assert Packed.of({"csv": "a,b\n"}).open() == {"csv": "a,b\n"}
    assert Packed(b"\x80\x05not a pickle").open() is Packed.UNREADABLE
    tracker = Tracker(Index())
    cache = {"x": (Packed(b"\x80\x05not a pickle", plain="x\n"), array("q"))}
    tracker.kept = {id(cache): "rows"}
    assert tracker.memoised(cache, "x", lambda: {"csv": "fresh\n"}) == {"csv": "fresh\n"}
    assert cache["x"][0] == {"csv": "fresh\n"}


def test_a_row_a_worker_makes_again_goes_back_to_the_building_process():
    """A forked worker that makes a kept row again (it could not be unpickled) reports it with the rows it made,
    and the building process takes it in place of its own unreadable one (else every build would make it
    again until a build from scratch)."""
    from array import array
    from types import SimpleNamespace

    from kb.index import Index
    from kb.site.build import _done_since, _merge, _started
    from kb.site.incremental import Packed, Tracker

    def writer():
        rows = {"bad": (Packed(b"\x80\x05not a pickle", plain="b\n"), array("q")),
                "good": (Packed.of({"csv": "g\n"}, plain="g\n"), array("q"))}
        state = SimpleNamespace(offsets=None, units={}, digested=lambda entry: entry)
        return SimpleNamespace(model=SimpleNamespace(memos={"rows": rows}), state=state, pages=[], files=0, bytes=0)

    worker, parent = writer(), writer()
    tracker = Tracker(Index())
    rows = worker.model.memos["rows"]
    tracker.kept = {id(rows): "rows"}
    before, memos = _started(worker)
    assert tracker.memoised(rows, "bad", lambda: {"csv": "fresh\n"}) == {"csv": "fresh\n"}
    assert tracker.memoised(rows, "good", lambda: {"csv": "never\n"}) == {"csv": "g\n"}
    tracker.memoised(rows, "new", lambda: {"csv": "new\n"})
    _merge(parent, _done_since(worker, before, [], memos))
    merged = parent.model.memos["rows"]
    assert merged["bad"][0] == {"csv": "fresh\n"} and merged["new"][0] == {"csv": "new\n"}
    assert type(merged["good"][0]) is Packed and merged["good"][0].plain == "g\n"  # left as kept, unopened


def test_the_change_is_between_the_graphs_whatever_run_a_line_is_in():
    """The kept state holds the graph's lines by the entry they come from (`SiteWriter.graph_runs`): a line
    that moves from one entry's run to another's is in both graphs, no change."""
    from kb.site.incremental import Change

    moved, gone, new = "<s> <p> <o> .", '<s> <p> "old" .', '<t> <p> "new" .'
    kept = {"a": [moved, gone], "b": [], "c": ["<u> <p> <o> ."]}
    change = Change.between(kept, {"a": [], "b": [moved, new], "c": kept["c"]})
    assert change.removed == (gone,) and change.added == (new,) and change.subjects == {"<s>", "<t>"}
    assert Change.between(kept, {"a": [], "b": [moved], "c": kept["c"], "d": [gone]}).empty


def test_a_graph_a_library_user_changed_is_compared_as_one_run(tmp_path, monkeypatch):
    """A graph that is not the mapping's is kept and compared as one run of lines: the triple added shows,
    also when a subject removed leaves as many triples as the mapping made."""
    from rdflib import Literal
    from rdflib.namespace import SKOS

    from kb.export import graph_runs
    from kb.knowledge_base import open_kb
    from kb.site import build_site
    from kb.site.build import SiteWriter
    from kb.site.incremental import Tracker

    monkeypatch.setenv("SOURCE_DATE_EPOCH", ENV["SOURCE_DATE_EPOCH"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    root = copy_bundled(tmp_path / "kb")
    build_site(open_kb(root), root / "_site", search=False)
    kb = open_kb(root)  # (the edit path's: kb/knowledge_base.py `_edited`)
    assert len(graph_runs(kb.mapped, kb.schema.ontology, kb.index)) == len(kb.entries) + 1
    count = len(kb.index)
    removed = kb.index.remove_subject(kb.iri("t-64"))  # and as many added: the same number of triples
    for n in range(len(removed)):
        kb.index.add((kb.iri("t-80"), SKOS.altLabel, Literal(f"Added by a library user {n}")))
    assert len(kb.index) == count
    runs = SiteWriter(kb, tmp_path / "unused", Tracker(kb.index)).graph_runs()
    assert list(runs) == [""] and len(runs[""]) == len(kb.index)
    report = build_site(kb, root / "_site", search=False)
    build_site(kb, root / "full", search=False)
    assert 0 < report.reused < report.units
    assert "Added by a library user" in (root / "_site" / "id" / "t-80.html").read_text(encoding="utf-8")
    assert _tree(root / "_site") == _tree(root / "full")


def test_a_value_cited_twice_keeps_the_entries_runs(tmp_path):
    """An entry that gives one value twice (two sources of one manufacturer, an operator listed twice) makes
    one triple, and one line in its run: the graph is still compared entry by entry."""
    from kb.knowledge_base import load_valid_kb
    from kb.site.build import SiteWriter
    from kb.site.incremental import Tracker

    root = copy_bundled(tmp_path / "kb")
    _edit(root / "entries" / "systems" / "t-80.yaml", r"^operators:$", "operators:\n  - mongolia\n  - mongolia")
    kb = load_valid_kb(root)
    assert len(kb.mapped.runs["t-80"]) == len(set(kb.mapped.runs["t-80"]))
    assert len(SiteWriter(kb, tmp_path / "unused", Tracker(kb.index)).graph_runs()) == len(kb.entries) + 1


def test_the_dumps_keep_the_pieces_of_unchanged_subjects(corpus, monkeypatch):
    """After one changed description, the next build has the previous dump files and where each subject's
    piece is in them (`State.kept_dumps`): it cuts every other subject's from there, and writes only the
    changed subject's again."""
    from kb.export import DUMP_FORMATS
    from kb.knowledge_base import open_kb
    from kb.site.build import DUMPS, SiteWriter
    from kb.site.incremental import State, Tracker

    _same_as_full(corpus, "before-dump-edits")
    _edit(corpus / "entries" / "systems" / "t-80.yaml", r"^description: >-$", "description: >-\n  Edited.")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", ENV["SOURCE_DATE_EPOCH"])
    kb = open_kb(corpus)
    w = SiteWriter(kb, corpus / "unused", Tracker(kb.index))
    lines = w.graph_lines()
    state = State(kb, (corpus / "_site").resolve(), False, w.graph_runs())
    names = {fmt: name for name, fmt, _ in DUMPS}
    files, kept = state.kept_dumps("downloads", [names[fmt] for fmt in DUMP_FORMATS])
    texts = [f.read() for f in files]
    for f in files:
        f.close()
    subjects = list(dict.fromkeys(line[:line.index(" ")] for line in lines))  # the graph's, in line order
    assert state.change.subjects == {"<https://w3id.org/milkb/id/t-80>"}
    assert set(kept) == set(DUMP_FORMATS)
    nt = (corpus / "_site" / "milkb.nt").read_bytes()
    assert texts[DUMP_FORMATS.index("nt")] == nt
    order, starts, ends = kept["nt"]
    assert order == subjects  # the same subjects as now: only t-80's triples changed
    pieces = [nt[a:b] for a, b in zip(starts, ends)]
    assert all(nt.count(piece) == 1 and piece.startswith(s.encode() + b" ") for s, piece in zip(order, pieces))
    assert b"".join(pieces) == nt  # one piece after another, nothing between (N-Triples has no frame)
    _same_as_full(corpus, "description-t-80")


def test_a_file_edited_in_the_site_is_rendered_again(corpus):
    page = corpus / "_site" / "id" / "t-72.html"
    page.write_text("edited by hand", encoding="utf-8")
    _same_as_full(corpus, "hand-edit")
    assert "edited by hand" not in page.read_text(encoding="utf-8")


# --- random edits on a small knowledge base, built in this process -------------------------------------

CATEGORIES = ["main-battle-tank", "heavy-flamethrower-system", "tank-gun", "self-propelled-howitzer",
              "multiple-rocket-launcher"]
COUNTRIES = ["russia", "soviet-union", "ukraine"]
NAMES = ["Alpha", "Bravo", "Charlie", "alpha", "T-80 Mod", "Zulu"]  # repeats and case: ties in the sorting


def _system_yaml(s: dict) -> str:
    lines = [f"name: {s['name']}", f"category: {s['category']}"]
    for key in ("origin", "variant_of", "based_on", "crew", "in_service"):
        if s.get(key) is not None:
            lines.append(f"{key}: {s[key]}")
    if s.get("operators"):
        lines.append(f"operators: [{', '.join(s['operators'])}]")
    if s.get("gun"):
        lines.append("armament:\n  - {system: gun-125, role: main}")
    lines.append(f"sources: [{s['source']}]")
    return "\n".join(lines) + "\n"


def _random_system(rng, systems: dict, n: int) -> dict:
    earlier = [k for k, v in systems.items() if v["n"] < n] + ["t-80", "t-72"]  # links point back: no cycles
    return {"n": n, "name": rng.choice(NAMES), "category": rng.choice(CATEGORIES),
            "origin": rng.choice(COUNTRIES + [None]), "variant_of": rng.choice(earlier + [None, None]),
            "based_on": rng.choice(earlier + [None, None, None]), "crew": rng.choice([None, 2, 3, 4]),
            "in_service": rng.choice([None, 1970, 1985, 2001]), "operators": rng.sample(COUNTRIES, rng.randint(0, 2)),
            "gun": rng.random() < 0.3, "source": rng.choice(["src-a", "src-b"])}


def _random_edit(rng, root: Path, systems: dict, step: int) -> str:
    """One random change to the entries: add, delete, rename or change a generated system, or rename a
    country or source that many pages show."""
    kind = rng.choice(["add", "add", "change", "change", "delete", "rename", "base-name"] if systems else ["add"])
    folder = root / "entries" / "systems"
    if kind == "add":
        systems[f"x-{step}"] = _random_system(rng, systems, step)
    elif kind == "change":
        key = rng.choice(sorted(systems))
        fresh = _random_system(rng, systems, systems[key]["n"])
        field_ = rng.choice(["name", "category", "origin", "variant_of", "based_on", "crew", "operators", "gun"])
        systems[key][field_] = fresh[field_]
    elif kind in ("delete", "rename"):
        key = rng.choice(sorted(systems))
        (folder / f"{key}.yaml").unlink()
        new = f"y-{step}" if kind == "rename" else None
        if new:
            systems[new] = systems[key]
        del systems[key]
        for other in systems.values():
            for link in ("variant_of", "based_on"):
                if other.get(link) == key:
                    other[link] = new
    else:
        path = rng.choice([root / "entries" / "countries" / "ukraine.yaml", root / "entries" / "sources" / "src-b.yaml",
                           root / "entries" / "systems" / "t-72.yaml"])
        _edit(path, r"^name: .*$", f"name: {rng.choice(NAMES)} {step}")
    for key, s in systems.items():
        (folder / f"{key}.yaml").write_text(_system_yaml(s), encoding="utf-8")
    return kind


@pytest.mark.parametrize("seed, colliding", [(1, False), (2, True)])
def test_random_edits_keep_incremental_builds_identical_to_full_ones(tmp_path, monkeypatch, seed, colliding):
    """`colliding`: the reads are kept as digests of only 2,000 values (`incremental.digest`), so that many
    tags share one: such collisions may render a unit needlessly, never keep one a change touched."""
    import random

    from kb.knowledge_base import open_kb
    from kb.site import build_site, incremental

    if colliding:
        real = incremental.digest
        monkeypatch.setattr(incremental, "digest", lambda text: real(text) % 2000)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    root = make_root(tmp_path)
    shutil.copytree(REPO / "site_build", root / "site_build")
    rng = random.Random(seed)
    systems: dict = {}
    reused_any = False
    for step in range(14):
        kind = _random_edit(rng, root, systems, step)
        kb = open_kb(root)
        assert not kb.errors, [str(p) for p in kb.errors]
        report = build_site(kb, root / "_site", search=False)
        build_site(kb, root / f"full-{step}", search=False)
        incremental, full = _tree(root / "_site"), _tree(root / f"full-{step}")
        assert sorted(incremental) == sorted(full), f"step {step} ({kind}): files differ"
        differing = [p for p in full if incremental[p] != full[p]]
        assert not differing, f"step {step} ({kind}): incremental build differs from a full one in {differing[:5]}"
        shutil.rmtree(root / f"full-{step}")
        reused_any = reused_any or report.reused > 0
    assert reused_any


def test_builds_by_forked_workers_stay_the_same_as_full_ones(tmp_path):
    """With two workers (entity pages, the query page and the downloads in forked processes that hand back
    their parts and the table rows they made), a rebuild after changes is still a full build's."""
    root = copy_bundled(tmp_path / "kb")
    assert _build(root, "_site", jobs="2") == (0, 0)
    _edit(root / "entries" / "systems" / "t-80bv.yaml", r"^variant_of: t-80$", "variant_of: t-80b")
    _edit(root / "entries" / "systems" / "bm-21.yaml", r"^category: .*$", "category: self-propelled-howitzer")
    reused, units = _same_as_full(root, "forked", jobs="2")
    assert 0 < reused < units
    _edit(root / "entries" / "systems" / "t-80bv.yaml", r"^variant_of: t-80b$", "variant_of: t-80")
    reused, units = _same_as_full(root, "forked-back", jobs="2")
    assert 0 < reused < units


@pytest.mark.parametrize("forked", [False, True], ids=["here", "forked"])
def test_the_reused_files_are_linked_and_a_failed_link_is_raised(tmp_path, monkeypatch, forked):
    """`Links` makes each reused file in the new folder the previous one's file (a hard link), here or, when
    there are many, in a forked child while the build goes on; a link that cannot be made (the previous file
    is gone) fails the build with that file's error, wherever it was made."""
    from kb.site.output import Links

    monkeypatch.setattr(Links, "FORKED", 10 if forked else 1_000)
    old, new, failing = tmp_path / "old", tmp_path / "new", tmp_path / "failing"
    for folder in (old, new, failing):
        (folder / "id").mkdir(parents=True)
    for i in range(50):
        (old / "id" / f"{i}.html").write_text(f"page {i}")
    fds = [os.open(folder / "id", os.O_RDONLY) for folder in (old, new, failing)]
    try:
        with Links(old, new) as links:
            for i in range(50):
                links.add((fds[0], fds[1]), f"{i}.html", f"id/{i}.html")
            links.start()
            assert (links._child is not None) == forked
        assert all((new / "id" / f"{i}.html").stat().st_ino == (old / "id" / f"{i}.html").stat().st_ino
                   for i in range(50))
        with pytest.raises(FileNotFoundError) as raised:
            with Links(old, failing) as links:
                for i in range(49, -1, -1):
                    name = f"{i}.html" if i != 7 else "gone.html"
                    links.add((fds[0], fds[2]), name, f"id/{name}")
                links.start()
        assert raised.value.filename.endswith("gone.html")
    finally:
        for fd in fds:
            os.close(fd)


def _processes_in(folder: Path) -> list[int]:
    """The processes whose working folder is `folder` (Linux /proc), but for the remover of previous sites
    each build may start, which runs on its own (kb/site/output.py `_empty_in_background`): a shell, and the
    `rm` and `rmdir` it starts."""
    remover = (b"sh\0-c\0rm -rf", b"rm\0", b"rmdir\0")  # the command lines' start
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if (os.readlink(f"/proc/{pid}/cwd") == str(folder)
                    and not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(remover)):
                found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs Linux /proc")
def test_a_rebuild_failing_while_its_files_are_linked_leaves_the_site_and_no_process(corpus):
    """A rebuild of the bundled corpus after one edit reuses about 2,700 files, more than `Links.FORKED`: a
    forked child links them while the build goes on. The build fails right after the entity pages (a full
    disk, by the fault hook): it says so in one line, the previous site is left as it was, no build folder is
    left, and the child does not outlive the build."""
    site = corpus / "_site"
    before = _tree(site)
    shutil.rmtree(corpus / "._site.spare", ignore_errors=True)  # a rebuild from it would link only a few files
    entry = corpus / "entries" / "systems" / "t-80.yaml"
    text = entry.read_text(encoding="utf-8")
    _edit(entry, r"^description: >-$", "description: >-\n  Edited while the disk fills.")
    try:
        failed = run_kb("build", "--no-search", "-o", "_site", cwd=corpus,
                        env=ENV | {"MILKB_FAULT_AT": "entity-pages-written:enospc"})
    finally:
        entry.write_text(text, encoding="utf-8")
    assert failed.code == 1
    assert failed.stderr.count("\n") == 1 and "No space left on device" in failed.stderr, failed.stderr
    assert _tree(site) == before
    assert not list(corpus.glob("._site.build-*"))
    assert _processes_in(corpus.resolve()) == []


def test_a_cancelled_linking_child_is_stopped_at_once(tmp_path, monkeypatch):
    """`Links.cancel` (a build failing) kills the child that links the reused files and waits for it: it
    does not go on linking into a folder that is being removed."""
    from kb.site.output import Links

    monkeypatch.setattr(Links, "FORKED", 10)
    old, new = tmp_path / "old", tmp_path / "new"
    (old / "id").mkdir(parents=True)
    (new / "id").mkdir(parents=True)
    count = 30_000  # linking them takes the child about half a second
    for i in range(count):
        os.close(os.open(old / "id" / f"{i}.html", os.O_WRONLY | os.O_CREAT))
    fds = (os.open(old / "id", os.O_RDONLY), os.open(new / "id", os.O_RDONLY))
    try:
        links = Links(old, new)
        for i in range(count):
            links.add(fds, f"{i}.html", f"id/{i}.html")
        links.start()
        pid = links._child.pid
        links.cancel()
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped
        linked = len(os.listdir(new / "id"))
        time.sleep(0.2)
        assert len(os.listdir(new / "id")) == linked < count
    finally:
        for fd in fds:
            os.close(fd)


def test_a_listing_is_used_only_for_the_folder_it_was_made_of(tmp_path):
    """The listing `kb build` makes of the site before it loads anything replaces a stat per kept file only
    while the output is still that folder: another build may have swapped in a new one meanwhile."""
    from kb.site.incremental import _same_folder

    st = os.stat(tmp_path)
    files = {"index.html": (10, 20)}
    assert _same_folder(tmp_path, ((st.st_dev, st.st_ino), files)) is files
    assert _same_folder(tmp_path, ((st.st_dev, st.st_ino + 1), files)) is None
    assert _same_folder(tmp_path / "gone", ((st.st_dev, st.st_ino), files)) is None
    assert _same_folder(tmp_path, None) is None


# --- the spare site: a rebuild starts from the site before the previous one (kb/site/output.py) ---------------

def _inodes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_ino for p in folder.rglob("*") if p.is_file()}


def test_a_rebuild_starts_from_the_spare_site_and_never_writes_through_to_the_site_in_place(tmp_path):
    """After a rebuild, the site before it is kept as `._site.spare`; the next rebuild moves that folder into
    place and brings it up to date, its files being mostly hard links to the site in place. A file it writes
    is a new file, never the shared one written over: the site in place (then the spare) keeps every byte,
    and each site is a full build's."""
    root = copy_bundled(tmp_path / "kb")
    entry = root / "entries" / "systems" / "t-80.yaml"
    _build(root, "_site")
    _edit(entry, r"^description: >-$", "description: >-\n  First edit.")
    _same_as_full(root, "first")
    spare = root / "._site.spare"
    assert spare.is_dir()
    before, inode = _tree(root / "_site"), spare.stat().st_ino
    _edit(entry, r"^  First edit\.$", "  Second edit.")
    (root / "entries" / "systems" / "bm-21.yaml").unlink()  # and a page gone, that the spare still holds
    for event in _events_naming(root, "bm-21"):
        event.unlink()
    reused, units = _same_as_full(root, "second")
    assert 0 < reused < units
    assert (root / "_site").stat().st_ino == inode  # the spare, brought up to date
    assert _tree(spare) == before  # the site that was in place, untouched
    shared = _inodes(root / "_site").items() & _inodes(spare).items()
    assert len(shared) > 0.9 * len(before)
    assert not (root / "_site" / "id" / "bm-21.html").exists()


def test_a_rebuild_from_the_spare_killed_before_the_swap_leaves_the_site_and_the_next_is_whole(tmp_path):
    """Killed (SIGKILL) once its content is written, a rebuild started from the spare leaves the site in place
    as it was; the spare went with the killed build's folder, so the next rebuild starts from an empty one."""
    root = copy_bundled(tmp_path / "kb")
    entry = root / "entries" / "systems" / "t-80.yaml"
    _build(root, "_site")
    for n in (1, 2):
        _edit(entry, r"^description: >-$", f"description: >-\n  Edit {n}.")
        _build(root, "_site")
    assert (root / "._site.spare").is_dir()
    before = _tree(root / "_site")
    _edit(entry, r"^description: >-$", "description: >-\n  Edit 3.")
    killed = run_kb("build", "--no-search", "-o", "_site", cwd=root, env=ENV | {"MILKB_FAULT_AT": "content-written"})
    assert killed.code != 0
    assert _tree(root / "_site") == before
    assert not (root / "._site.spare").exists()
    reused, units = _same_as_full(root, "after-kill")
    assert 0 < reused < units


def test_the_listing_made_meanwhile_is_the_sites_whether_or_not_it_holds_the_expected_files(tmp_path):
    """`uptodate.Listing` lists the site in a forked child while the build loads the entries; told what the
    site should hold, the child hands back only that it does. Either way `get` gives what `site_files` finds,
    with the folder's identity; nothing for a folder that is not there."""
    from kb.uptodate import Listing, site_files

    site = tmp_path / "site"
    (site / "id").mkdir(parents=True)
    for i in range(50):
        (site / "id" / f"{i}.html").write_text(f"page {i}")
    files, st = site_files(site), site.stat()
    assert Listing(site, files).get() == ((st.st_dev, st.st_ino), files)
    (site / "id" / "7.html").write_text("edited")
    changed = site_files(site)
    assert changed != files
    assert Listing(site, files).get() == ((st.st_dev, st.st_ino), changed)
    assert Listing(site).get() == ((st.st_dev, st.st_ino), changed)
    assert Listing(tmp_path / "gone", files).get() is None


def test_the_spare_is_taken_as_it_is_and_its_stale_pages_go_before_the_search_index_reads_them(tmp_path, monkeypatch):
    """What the spare holds is read from the folder itself, not only from its kept listing: a file put there
    since is removed, a file removed since is linked again. And a page it holds that the build no longer
    writes is gone before pagefind indexes the pages: it would otherwise be found by the search."""
    import kb.site.build as build
    from kb.config import load_config
    from kb.site.update import update_site

    root = copy_bundled(tmp_path / "kb")
    entry = root / "entries" / "systems" / "t-80.yaml"
    _build(root, "_site")
    for n in (1, 2):
        _edit(entry, r"^description: >-$", f"description: >-\n  Edit {n}.")
        _build(root, "_site")
    spare = root / "._site.spare"
    (spare / "planted.html").write_text("not a page of this site")
    (spare / "id" / "t-72.html").unlink()  # a page no change touches: reused
    _edit(entry, r"^description: >-$", "description: >-\n  Edit 3.")
    _same_as_full(root, "spare-as-it-is")

    indexed: list = []

    def pagefind(work, templates):  # the pages the search index would read
        indexed[:] = sorted(p.name for p in (work / "id").glob("*.html"))
        (work / "pagefind").mkdir()

    monkeypatch.setattr(build, "_pagefind", pagefind)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = load_config(root)
    update_site(config, root / "_site", search=True)  # (with the search index: all afresh)
    _edit(entry, r"^description: >-$", "description: >-\n  Edit 4.")
    update_site(config, root / "_site", search=True)
    assert spare.is_dir() and "bm-21.html" in indexed
    for event in _events_naming(root, "bm-21"):
        event.unlink()
    (root / "entries" / "systems" / "bm-21.yaml").unlink()
    report = update_site(config, root / "_site", search=True).report
    assert 0 < report.reused < report.units
    assert "bm-21.html" not in indexed and "t-80.html" in indexed
    assert not (root / "_site" / "id" / "bm-21.html").exists()


def test_the_previous_site_is_kept_as_the_spare_only_if_it_is_the_folder_listed(tmp_path):
    """Another build may swap in its own site between this build's listing and its swap: the folder it would
    keep is then not the one whose files it listed, and it is removed rather than kept as the spare."""
    from kb.site.output import atomic_folder, folder_identity, spare_of

    out = tmp_path / "site"
    out.mkdir()
    listed = folder_identity(out)
    with atomic_folder(out) as building:
        (building.path / "index.html").write_text("new")
        building.keep = (listed[0], listed[1] + 1)  # another folder
    assert building.kept is None and not spare_of(out).exists()
    listed = folder_identity(out)
    with atomic_folder(out) as building:
        (building.path / "index.html").write_text("newer")
        building.keep = listed
    assert building.kept == listed == folder_identity(spare_of(out))
    assert (spare_of(out) / "index.html").read_text() == "new"
