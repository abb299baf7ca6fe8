"""The parse cache (parses and mappings of unchanged files) is reused, never stands in for a check across
files, and a cache file this user's milkb did not write is never unpickled."""
import os
import pickle
import re
import sys

import pytest

from .conftest import run_kb


class Boom:
    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['MARK'], 'w').write('ran')",))


def test_the_cache_is_written_and_reused(kb_root):
    assert run_kb("validate", cwd=kb_root).code == 0
    cache = kb_root / ".kb-cache" / "parsed.pickle"
    assert cache.is_file()
    before = cache.stat().st_mtime_ns
    assert run_kb("validate", cwd=kb_root).code == 0
    assert cache.stat().st_mtime_ns == before  # nothing changed, nothing re-parsed or re-written


def test_a_planted_cache_is_ignored(kb_root, tmp_path):
    mark = tmp_path / "ran"
    cache = kb_root / ".kb-cache" / "parsed.pickle"
    cache.parent.mkdir(parents=True, exist_ok=True)
    payload = pickle.dumps(Boom())
    for planted in (payload, b"\0" * 32 + payload):  # unsigned, and signed with a key that is not this user's
        cache.write_bytes(planted)
        result = run_kb("validate", cwd=kb_root, env={"MARK": str(mark)})
        assert result.code == 0, result.stderr
        assert not mark.exists()


def _triples_and_lines(root):
    from kb.knowledge_base import open_kb

    kb = open_kb(root)
    return set(kb.index), dict(kb.mapped.key_lines), sorted(map(str, kb.problems))


def test_kept_mappings_give_the_graph_a_fresh_mapping_gives(kb_root, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    cold = _triples_and_lines(kb_root)
    assert (kb_root / ".kb-cache" / "parsed.pickle").is_file()
    warm = _triples_and_lines(kb_root)
    assert warm == cold and len(cold[0]) > 50


def test_the_key_lines_are_unpickled_only_for_a_problem(kb_root, monkeypatch, tmp_path):
    """Each kept mapping's key lines (where each key of the entry is) serve only to place a problem: a run
    without problems never unpickles them; one with a problem places it at the key's line."""
    from kb.knowledge_base import open_kb

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    open_kb(kb_root)
    warm = open_kb(kb_root)
    assert warm.problems == [] and warm.mapped._key_lines is None
    entry = kb_root / "entries" / "systems" / "t-72.yaml"  # a system of its own `variant_of`: the cycle
    text = re.sub(r"^variant_of: .*\n", "", entry.read_text(encoding="utf-8"), flags=re.M)  # is placed by
    entry.write_text(text + "variant_of: t-72\n", encoding="utf-8")  # the key lines (kb/validate.py)
    broken = open_kb(kb_root)
    line = len(text.splitlines()) + 1
    assert [(p.path, p.line) for p in broken.problems if "circular" in p.message] == [
        ("entries/systems/t-72.yaml", line)], broken.problems


@pytest.mark.parametrize("change, file, message", [
    ("the linked entry is deleted", "systems/t-80.yaml", "`gun-125` is not an entry"),
    ("the linked entry changes class", "systems/t-72.yaml", "must link to an organization"),
])
def test_an_unchanged_entry_whose_link_broke_is_reported(kb_root, change, file, message):
    assert run_kb("validate", cwd=kb_root).code == 0  # the linking entry's mapping is kept
    entries = kb_root / "entries"
    if change == "the linked entry is deleted":
        (entries / "systems" / "gun-125.yaml").unlink()
    else:
        (entries / "organizations" / "uralvagonzavod.yaml").rename(entries / "countries" / "uralvagonzavod.yaml")
    result = run_kb("validate", cwd=kb_root)
    assert result.code == 1
    assert any(line.startswith(f"entries/{file}:") and message in line for line in result.problem_lines), result.stderr


def test_a_changed_ontology_maps_every_entry_again(kb_root):
    assert run_kb("validate", cwd=kb_root).code == 0
    cache = kb_root / ".kb-cache" / "parsed.pickle"
    before = cache.stat().st_mtime_ns
    with (kb_root / "ontology" / "milkb.ttl").open("a", encoding="utf-8") as f:
        f.write("\n# a comment\n")
    assert run_kb("validate", cwd=kb_root).code == 0
    assert cache.stat().st_mtime_ns != before


def _age(root, seconds: int) -> None:
    """Every entry file last modified `seconds` ago, as in a knowledge base not edited lately."""
    import os
    import time

    then = time.time_ns() - seconds * 1_000_000_000
    for path in (root / "entries").rglob("*.yaml"):
        os.utime(path, ns=(then, then))


def test_an_unchanged_file_is_not_read_again_and_a_changed_one_is(kb_root):
    """Files older than the racy window are recognised by size and mtime; an edit changes the mtime."""
    _age(kb_root, 60)
    assert run_kb("validate", cwd=kb_root).code == 0
    t80 = kb_root / "entries" / "systems" / "t-80.yaml"
    text = t80.read_text(encoding="utf-8")
    t80.write_text(text.replace("crew: 3", "crew: X"), encoding="utf-8")  # the same size, a new mtime
    result = run_kb("validate", cwd=kb_root)
    assert result.code == 1 and any(line.startswith("entries/systems/t-80.yaml:") for line in result.problem_lines)


def test_an_edit_within_the_racy_window_is_seen_even_with_the_same_size_and_mtime(kb_root):
    """A file modified just before it was read may change again within the filesystem's mtime resolution:
    its size and mtime are not trusted, so the edit below (same size, mtime put back) is still seen."""
    import os
    import time

    t80 = kb_root / "entries" / "systems" / "t-80.yaml"
    later = time.time_ns() + 3600 * 10**9  # racy when it is read below, however long the command takes to start
    os.utime(t80, ns=(later, later))
    assert run_kb("validate", cwd=kb_root).code == 0
    st = t80.stat()
    t80.write_text(t80.read_text(encoding="utf-8").replace("crew: 3", "crew: X"), encoding="utf-8")
    os.utime(t80, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert t80.stat().st_size == st.st_size and t80.stat().st_mtime_ns == st.st_mtime_ns
    result = run_kb("validate", cwd=kb_root)
    assert result.code == 1 and any(line.startswith("entries/systems/t-80.yaml:") for line in result.problem_lines)


def _broken_bundled(root):
    """The bundled corpus (over 500 entries: a cold run parses them in forked workers) with a few faults."""
    from .conftest import copy_bundled

    copy_bundled(root)
    systems = root / "entries" / "systems"
    t72 = systems / "t-72.yaml"
    t72.write_text(t72.read_text(encoding="utf-8").replace("combat_mass: {value: 41.5 t", "combat_mass: {value: 41.5 parsecs")
                   + "turret_colour: green\n", encoding="utf-8")
    (systems / "zz-dangling.yaml").write_text("name: Dangling\ncategory: main-battle-tank\nvariant_of: no-such-tank\n"
                                              "sources: [wikipedia-simple-t-72]\n", encoding="utf-8")
    (root / "entries" / "organizations" / "t-80.yaml").write_text("name: Not a tank\n", encoding="utf-8")
    (systems / "zz-broken.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    return root


def test_fresh_entries_mapped_by_workers_give_what_one_process_gives(tmp_path):
    """A first run parses and maps the files in forked workers (kb/parse_cache.py `_parse`): the problems, the
    graph and the export are those of the same run in one process (MILKB_JOBS=1), warm runs included."""
    runs = {}
    for jobs in ("1", "2"):
        root = _broken_bundled(tmp_path / f"jobs-{jobs}")
        env = {"MILKB_JOBS": jobs}
        broken = run_kb("validate", cwd=root, env=env)
        assert broken.code == 1
        for path in ("entries/systems/zz-dangling.yaml", "entries/systems/zz-broken.yaml", "entries/organizations/t-80.yaml"):
            (root / path).unlink()
        t72 = root / "entries" / "systems" / "t-72.yaml"
        t72.write_text(t72.read_text(encoding="utf-8").replace("41.5 parsecs", "41.5 t").replace("turret_colour: green\n", ""),
                       encoding="utf-8")
        fixed = run_kb("export", "--format", "nt", cwd=root, env=env)
        assert fixed.code == 0, fixed.stderr
        runs[jobs] = (broken.stderr, fixed.stdout, run_kb("validate", cwd=root, env=env).stdout.split(" (")[0])
    assert runs["2"] == runs["1"]
    assert "parsecs" in runs["1"][0] and "turret_colour" in runs["1"][0] and "no-such-tank" in runs["1"][0]
    assert runs["1"][0].count("\n") >= 5 and len(runs["1"][1].splitlines()) > 10_000


def test_a_cache_saved_by_a_child_while_the_build_goes_on_is_whole(kb_root, monkeypatch, tmp_path):
    """`open_kb(save_apart=True)` (as `kb build` loads): after a run that parsed many files, a forked child
    saves the parse cache while the command goes on; joined, the next run parses nothing and maps the same
    graph."""
    from kb import parse_cache
    from kb.knowledge_base import open_kb

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    monkeypatch.setattr(parse_cache, "APART_FROM", 1)  # (at 2,000 files parsed: the bundled entries are fewer)
    me = os.getpid()

    class NoImportInTheChild:  # a forked child must import nothing (kb/workers.py): one that does ends here
        def find_spec(self, name, path=None, target=None):
            if os.getpid() != me:
                os._exit(3)

    monkeypatch.setattr(sys, "meta_path", [NoImportInTheChild(), *sys.meta_path])
    kb = open_kb(kb_root, save_apart=True)
    assert kb.cache_saver is not None
    kb.cache_saved()
    parsed = []
    real = parse_cache.EntryCache._parse
    monkeypatch.setattr(parse_cache.EntryCache, "_parse", lambda self, entries, fresh: (parsed.extend(fresh),
                                                                                        real(self, entries, fresh)))
    again = open_kb(kb_root, save_apart=True)
    assert parsed == [] and again.cache_saver is None  # nothing parsed: saved here, had it anything to save
    assert set(again.index) == set(kb.index) and again.problems == kb.problems == []
