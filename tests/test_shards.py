"""The caches kept in shards (kb/shards.py): after one edit only the shards of what changed are written
again; a shard that is damaged, missing or planted means no cache (never a wrong one, never unpickled); a
save cut off before its head is replaced leaves the previous cache whole."""
import os
import pickle

import pytest

import kb.files
from kb.shards import SHARDS, Shards, shard_of

from .conftest import run_kb


def _shard_files(folder, name):
    """Each shard file as (name, inode): a file written again is a new file (written beside, then renamed)."""
    return {(p.name, p.stat().st_ino) for p in folder.glob(f"{name}.*")}


def _items(n=2000):
    return {f"entry-{i}": {"value": i, "text": "x" * (i % 50)} for i in range(n)}


def test_only_the_shards_whose_items_changed_are_written_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    path = tmp_path / "cache.pickle"
    shards = Shards(path)
    items = _items()
    shards.save("v1", {"small": 1}, items, str)
    first = _shard_files(tmp_path, "cache.pickle")
    assert len(first) == len({shard_of(k) for k in items}) > SHARDS // 2

    again = Shards(path)
    head, loaded = again.load("v1")
    assert head == {"small": 1} and loaded == items
    loaded["entry-7"] = {"value": "changed"}  # a new object for one item: its shard only
    del loaded["entry-8"]  # and a removed one: its shard only
    again.save("v1", {"small": 2}, loaded, str)
    second = _shard_files(tmp_path, "cache.pickle")
    assert len(first - second) == len({shard_of("entry-7"), shard_of("entry-8")})
    assert len(second) == len(first)  # the replaced shards' old files are removed

    head, reloaded = Shards(path).load("v1")
    assert head == {"small": 2} and reloaded == loaded
    assert Shards(path).load("v2") is None  # another version's cache is not read


def test_a_damaged_missing_or_planted_shard_means_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    path = tmp_path / "cache.pickle"
    Shards(path).save("v1", {}, _items(), str)
    files = sorted(tmp_path.glob("cache.pickle.*"))

    class Boom:
        def __reduce__(self):
            return (exec, (f"open({str(tmp_path / 'ran')!r}, 'w').write('ran')",))

    files[0].write_bytes(pickle.dumps({"entry-0": Boom()}))  # planted: its digest is not the one named
    assert Shards(path).load("v1") is None
    assert not (tmp_path / "ran").exists()
    files[1].unlink()
    assert Shards(path).load("v1") is None


def test_a_save_cut_off_before_the_head_leaves_the_previous_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    path = tmp_path / "cache.pickle"
    shards = Shards(path)
    items = _items()
    shards.save("v1", "head 1", items, str)
    changed = dict(items, **{f"entry-{i}": {"value": -i} for i in range(0, 2000, 7)})
    monkeypatch.setattr(kb.files, "write_atomically", _failing_head(kb.files.write_atomically, path))
    with pytest.raises(OSError):
        shards.save("v1", "head 2", changed, str)
    head, loaded = Shards(path).load("v1")
    assert head == "head 1" and loaded == items


def _failing_head(write, head):
    """write_atomically that writes shards but fails on the head, as a run killed at that point would."""
    def patched(path, data, **kwargs):
        if path == head:
            raise OSError("killed before the head was replaced")
        return write(path, data, **kwargs)
    return patched


def test_a_damaged_parse_cache_shard_costs_a_parse_not_a_wrong_answer(kb_root):
    assert run_kb("validate", cwd=kb_root).code == 0
    cache = kb_root / ".kb-cache"
    shards = sorted(cache.glob("parsed.pickle.*"))
    assert len(shards) > 10
    for shard in shards[:3]:
        shard.write_bytes(shard.read_bytes()[:-10] + b"0123456789")
    (kb_root / "entries" / "systems" / "t-72.yaml").write_text(
        (kb_root / "entries" / "systems" / "t-72.yaml").read_text(encoding="utf-8").replace(
            "origin: soviet-union", "origin: no-such-country"), encoding="utf-8")
    result = run_kb("validate", cwd=kb_root)
    assert result.code == 1 and "no-such-country" in result.stderr
    assert run_kb("validate", cwd=kb_root).code == 1  # and again, from the cache written afresh


def test_terms_read_back_are_the_terms_written(tmp_path, monkeypatch):
    """rdflib's terms are pickled by value (no constructor run when read back): every attribute a later
    lookup, comparison or query uses comes back as it was."""
    from decimal import Decimal

    from rdflib import XSD, Literal, URIRef

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    terms = [URIRef("https://w3id.org/milkb/id/t-80"), Literal("T-80"), Literal("Т-80", lang="ru"),
             Literal(Decimal("46.5"), datatype=XSD.decimal), Literal("1985", datatype=XSD.gYear),
             Literal("not a number", datatype=XSD.integer), Literal("2022-03-01", datatype=XSD.date)]
    path = tmp_path / "cache.pickle"
    Shards(path).save("v1", None, {str(i): t for i, t in enumerate(terms)}, str)
    _, back = Shards(path).load("v1")
    for i, term in enumerate(terms):
        got = back[str(i)]
        assert type(got) is type(term) and got == term and hash(got) == hash(term)
        if isinstance(term, Literal):
            assert (got.value, got.language, got.datatype, got.ill_typed) == \
                   (term.value, term.language, term.datatype, term.ill_typed)
            assert got.n3() == term.n3() and got.eq(term)


def test_compiled_templates_are_kept_signed_and_a_planted_one_is_never_run(tmp_path):
    """jinja runs the code its bytecode cache gives it: the site's cache (`SignedBytecodeCache`) is used only
    when this user's milkb signed it. Code planted in its place, unsigned or signed with another key, is
    ignored and the template compiled again; signed, it is what runs (so the cache is used at all)."""
    from jinja2 import DictLoader, Environment

    from kb.signing import signed
    from kb.site.build import SignedBytecodeCache

    folder = tmp_path / "templates"
    source = "Hello {{ name }}"

    def render() -> str:
        env = Environment(loader=DictLoader({"page.html": source}), bytecode_cache=SignedBytecodeCache(folder))
        return env.get_template("page.html").render(name="x")

    assert render() == "Hello x"
    [kept] = folder.iterdir()
    other = Environment()
    bucket = SignedBytecodeCache(folder).get_bucket(other, "page.html", None, source)
    bucket.code = other.compile("PLANTED", "page.html")  # other code, under the real source's checksum
    planted = bucket.bytecode_to_string()
    kept.write_bytes(signed(planted))
    assert render() == "PLANTED"
    for blob in (planted, os.urandom(32) + planted):
        kept.write_bytes(blob)
        assert render() == "Hello x"


def test_templates_compiled_with_other_settings_are_compiled_again(tmp_path):
    """The kept code of a template is used only by an environment with the settings it was compiled with:
    code compiled without autoescape never renders for an environment with it."""
    from jinja2 import DictLoader, Environment

    from kb.site.build import SignedBytecodeCache

    def render(autoescape: bool) -> str:
        env = Environment(loader=DictLoader({"page.html": "{{ name }}"}), autoescape=autoescape,
                          bytecode_cache=SignedBytecodeCache(tmp_path / "templates"))
        return env.get_template("page.html").render(name="<b>")

    assert render(False) == "<b>"
    assert render(True) == "&lt;b&gt;"
    assert render(False) == "<b>"
    assert len(list((tmp_path / "templates").iterdir())) == 1  # one file a template: replaced, not piled up


def test_a_cache_loaded_ahead_is_taken_only_while_its_files_are_the_ones_loaded(tmp_path, monkeypatch):
    # kb serve's next rebuild process loads the caches while it waits for a change (kb/site/rebuild.py); the
    # rebuild takes what it loaded only if the head is still that file, under the same stamp, and only once
    from kb import shards as module

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(module, "TAKEN", [])
    path = tmp_path / "cache.pickle"
    Shards(path).save("v1", {"small": 1}, _items(), str)

    module.preload(path, "v1")
    loader = Shards(path)
    head, items = loader.load("v1")
    assert module.TAKEN == [path] and head == {"small": 1} and items == _items()
    items["entry-3"] = {"value": "changed"}  # and it saves as a load of its own would: one shard again
    before = _shard_files(tmp_path, "cache.pickle")
    loader.save("v1", {"small": 2}, items, str)
    assert len(before - _shard_files(tmp_path, "cache.pickle")) == 1

    module.preload(path, "v1")
    Shards(path).save("v1", {"small": 3}, _items(), str)  # another process saves meanwhile: a new head file
    assert Shards(path).load("v1")[0] == {"small": 3} and module.TAKEN == [path]
    assert Shards(path).load("v1")[0] == {"small": 3}  # (and what was loaded ahead is dropped)
    assert module._PRELOADED == {}

    module.preload(path, "v1")
    assert Shards(path).load("v2") is None and module.TAKEN == [path]  # another stamp: not taken
    module.preload(path, "v2")  # a cache of another stamp is not loaded ahead
    assert module._PRELOADED == {}

    monkeypatch.setattr(module, "_room_for", lambda path: False)  # no memory to spare: nothing loaded ahead
    module.preload(path, "v1")
    assert module._PRELOADED == {}
