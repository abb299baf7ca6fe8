"""An incremental `kb build` (units the change does not touch linked from the previous site) writes exactly
the bytes a build from scratch writes: checked on the bundled corpus after each kind of change."""
from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import REPO, run_kb

ENV = {"SOURCE_DATE_EPOCH": "1700000000", "MILKB_JOBS": "1"}
REUSED = re.compile(r"; (\d+) of (\d+) parts unchanged since the last build, reused")


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _build(root: Path, out: str) -> tuple[int, int]:
    """`kb build --no-search -o out`; (parts reused, parts in all)."""
    result = run_kb("build", "--no-search", "-o", out, cwd=root, env=ENV)
    assert result.code == 0, result.stderr
    found = REUSED.search(result.stdout)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def _same_as_full(root: Path, step: str) -> tuple[int, int]:
    """Build incrementally into _site, and meanwhile from scratch into a fresh folder (another output folder:
    nothing of the kept state applies there): the two must be identical."""
    with ThreadPoolExecutor(1) as pool:
        full = pool.submit(_build, root, f"full-{step}")
        reused = _build(root, "_site")
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
    root = tmp_path_factory.mktemp("incremental") / "kb"
    root.mkdir()
    for name in ("entries", "ontology", "site_build", "queries"):
        shutil.copytree(REPO / name, root / name)
    shutil.copy(REPO / "kb.toml", root / "kb.toml")
    assert _build(root, "_site") == (0, 0)  # the first build renders everything
    return root


def test_an_unchanged_knowledge_base_reuses_every_part_but_the_whole_graph_counts(corpus):
    reused, units = _same_as_full(corpus, "unchanged")
    assert units > 900 and reused >= units - 1  # index.html shows the number of triples: always rendered


def test_changed_value(corpus):
    systems = corpus / "entries" / "systems"
    _edit(systems / "t-80bv.yaml", r"^crew: .*$", "crew: {value: 4, source: armyrecognition-t-80bv-2019}")
    reused, units = _same_as_full(corpus, "value")
    assert 0 < reused < units


def test_changed_link(corpus):
    _edit(corpus / "entries" / "systems" / "t-80bv.yaml", r"^variant_of: t-80$", "variant_of: t-80b")
    reused, units = _same_as_full(corpus, "link")
    assert 0 < reused < units


def test_changed_category(corpus):
    _edit(corpus / "entries" / "systems" / "bm-21.yaml", r"^category: .*$", "category: self-propelled-howitzer")
    reused, units = _same_as_full(corpus, "category")
    assert 0 < reused < units


def test_changed_name_of_a_much_linked_entity(corpus):
    _edit(corpus / "entries" / "countries" / "ukraine.yaml", r"^name: .*$", "name: Ukraine (renamed)")
    reused, units = _same_as_full(corpus, "name")
    assert 0 < reused < units


def test_added_entry(corpus):
    (corpus / "entries" / "systems" / "t-80-test.yaml").write_text(
        "name: T-80 Test\ncategory: main-battle-tank\norigin: soviet-union\nvariant_of: t-80\n"
        "operators: [ukraine]\ncrew: 3\nsources: [armyrecognition-t-80bv-2019]\n", encoding="utf-8")
    reused, units = _same_as_full(corpus, "added")
    assert 0 < reused < units
    assert (corpus / "_site" / "id" / "t-80-test.html").is_file()


def test_deleted_entry(corpus):
    (corpus / "entries" / "systems" / "bm-21.yaml").unlink()
    reused, _ = _same_as_full(corpus, "deleted")
    assert reused > 0
    assert not (corpus / "_site" / "id" / "bm-21.html").exists()


def test_renamed_entry(corpus):
    systems, events = corpus / "entries" / "systems", corpus / "entries" / "events"
    (systems / "2s23.yaml").rename(systems / "2s23-nona-svk.yaml")
    for event in ("2022-03-captured-2s23-t-80.yaml", "2022-11-bakhmut-captured-2s23-used.yaml"):
        _edit(events / event, r"^systems: \[2s23\b", "systems: [2s23-nona-svk")
    reused, _ = _same_as_full(corpus, "renamed")
    assert reused > 0
    assert (corpus / "_site" / "id" / "2s23-nona-svk.html").is_file()
    assert not (corpus / "_site" / "id" / "2s23.html").exists()


def test_a_file_edited_in_the_site_is_rendered_again(corpus):
    page = corpus / "_site" / "id" / "t-72.html"
    page.write_text("edited by hand", encoding="utf-8")
    _same_as_full(corpus, "hand-edit")
    assert "edited by hand" not in page.read_text(encoding="utf-8")
