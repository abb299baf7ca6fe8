"""The loader: each limit at its edge (just under passes that check, just over is refused), hostile YAML
refused quickly and in bounded memory, and every refusal a `path:line: message` problem."""
from __future__ import annotations

import os
import re
import time
import tracemalloc

import pytest

from kb.check import EntryChecker
from kb.loader import (MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, MAX_NUMBER, MAX_TEXT, load_entries,
                       parse_yaml)

from .conftest import make_root, run_kb


def problems(text: str) -> tuple[bool, list[str]]:
    """(whether the entry is kept for the later checks, its problems as printed)."""
    node, found = parse_yaml(text, "e.yaml")
    return node is not None, [p.format() for p in found]


def nested(levels: int) -> str:
    return "name: x\nn: " + "[" * (levels - 1) + "1" + "]" * (levels - 1) + "\n"  # the entry itself is level 1


def items(nodes: int) -> str:
    return "name: x\nl: [" + ", ".join(["1"] * (nodes - 5)) + "]\n"  # root, `name`, `x`, `l` and the list: 5


def aliases(expanded: int) -> str:
    return "name: x\nbase: &b [1]\nl: [" + ", ".join(["*b"] * (expanded // 2)) + "]\n"  # each *b is 2 nodes


def billion_laughs(levels: int = 9) -> str:
    lines = ["name: x", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# --- each limit at its edge ------------------------------------------------------------------------


def test_nesting_up_to_the_limit_passes_and_one_level_more_is_refused():
    assert problems(nested(MAX_DEPTH)) == (True, [])
    assert problems(nested(MAX_DEPTH + 1)) == (False, [
        "e.yaml:2: the entry is nested more than 64 levels deep — flatten the lists and mappings"])


def test_keys_and_values_up_to_the_limit_pass_and_one_more_is_refused():
    assert problems(items(MAX_NODES)) == (True, [])
    assert problems(items(MAX_NODES + 1)) == (False, [
        "e.yaml:2: the file holds more than 10,000 keys and values — an entry describes one thing; split it"])


def test_alias_expansions_up_to_the_limit_pass_and_one_more_alias_is_refused():
    assert problems(aliases(MAX_ALIAS_NODES)) == (True, [])
    assert problems(aliases(MAX_ALIAS_NODES + 2)) == (False, [
        "e.yaml:3: the aliases in this file expand to more than 1,000 values — write the values out, or use fewer "
        "`*` aliases"])


def test_a_text_up_to_the_limit_passes_the_loader_and_one_character_more_is_refused():
    assert problems("description: " + "é" * MAX_TEXT + "\n") == (True, [])
    assert problems("description: " + "é" * (MAX_TEXT + 1) + "\n") == (False, [
        "e.yaml:1: a text of 10,001 characters (at most 10,000) — shorten it"])


def test_numbers_below_the_limit_pass_and_the_limit_is_refused():
    assert problems(f"crew: {MAX_NUMBER - 1}\nmass: -{MAX_NUMBER - 1}.0\n") == (True, [])
    assert problems(f"crew: {MAX_NUMBER}\n") == (False, [
        "e.yaml:1: `1000000000000000` is too large a number (numbers are smaller than 10^15) — check the value; "
        "quote it if it is text"])


def test_a_file_up_to_the_size_limit_is_read_and_one_byte_more_is_refused(tmp_path, kb):
    root = make_root(tmp_path / "limit")
    head = b"name: Padded\n"
    (root / "entries" / "countries" / "padded.yaml").write_bytes(head + b"#" * (MAX_FILE_BYTES - len(head) - 1) + b"\n")
    (root / "entries" / "countries" / "too-big.yaml").write_bytes(head + b"#" * (MAX_FILE_BYTES - len(head)) + b"\n")
    entries, _ = load_entries(root, kb.schema)
    found = {e.id: [p.format() for p in e.problems] for e in entries}
    assert found["padded"] == []
    assert found["too-big"] == ["entries/countries/too-big.yaml:1: the file is 65,537 bytes, more than the limit of "
                                "65,536 — an entry is a few kilobytes: shorten it"]


def test_a_name_up_to_300_characters_is_valid_and_one_more_is_not(kb_root):
    checker = EntryChecker(kb_root)
    assert checker.check({"countries/x.yaml": ("name: " + "x" * 300).encode()}) == []
    found = checker.check({"countries/x.yaml": ("name: " + "x" * 301).encode()})
    assert [p.format() for p in found] == ["entries/countries/x.yaml:1: `name` is 301 characters long (at most 300)"]


# --- the attacks: refused quickly, in bounded memory -----------------------------------------------


ATTACKS = {
    "billion-laughs": billion_laughs(),
    "deep": "name: x\nn: " + "[" * 10_000 + "]" * 10_000 + "\n",
    "deep-block": "name: x\n" + "".join("  " * i + f"k{i}:\n" for i in range(2_000)),
    "long-name": "name: " + "x" * 100_000 + "\n",
    "many-values": "name: x\nl: [" + ", ".join(["1"] * 30_000) + "]\n",  # 60 KB: as many as fit
    "loop": "name: x\nl: &l [*l]\n",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_an_attack_is_refused_quickly_in_bounded_memory(name):
    text = ATTACKS[name]
    started = time.process_time()  # this process's CPU time: other processes' load does not count
    kept, found = problems(text)
    # a bound on a blow-up, not a speed target (bench/ has those): refused in milliseconds, while an unguarded
    # parser takes minutes or never ends
    assert time.process_time() - started < 5
    assert not kept and len(found) == 1 and re.match(r"^e\.yaml:\d+: ", found[0])
    tracemalloc.start()
    problems(text)
    assert tracemalloc.get_traced_memory()[1] < 20_000_000
    tracemalloc.stop()


def test_a_50_mb_file_is_refused_without_being_read(tmp_path, kb):
    root = make_root(tmp_path / "huge")
    with open(root / "entries" / "countries" / "huge.yaml", "wb") as f:
        f.truncate(50 * 1024 * 1024)
    tracemalloc.start()
    entries, _ = load_entries(root, kb.schema)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    huge = next(e for e in entries if e.id == "huge")
    assert [p.format() for p in huge.problems] == ["entries/countries/huge.yaml:1: the file is 52,428,800 bytes, more "
                                                   "than the limit of 65,536 — an entry is a few kilobytes: shorten it"]
    assert peak < 10_000_000


def test_the_kb_command_refuses_every_attack_with_path_line_message(kb_root):
    for name, text in ATTACKS.items():
        (kb_root / "entries" / "countries" / f"{name}.yaml").write_text(text, encoding="utf-8")
    with open(kb_root / "entries" / "countries" / "huge.yaml", "wb") as f:
        f.truncate(50 * 1024 * 1024)
    started = time.perf_counter()
    result = run_kb("validate", cwd=kb_root)
    assert time.perf_counter() - started < 60  # a bound on a blow-up (minutes, unguarded), on a loaded machine
    assert result.code == 1 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert all(re.match(r"^entries/countries/[a-z0-9-]+\.yaml:\d+: ", line) for line in lines[:-1]), lines
    assert lines[-1] == f"{len(ATTACKS) + 1} problems in {13 + len(ATTACKS) + 1} entries"


# --- what YAML may hold ---------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["!!python/object:os.system", "!!python/object/apply:os.system", "!!python/name:os.system",
                                 "!!binary", "!!set", "!!omap", "!foo", "!<tag:example.com,2000:x>"])
def test_a_yaml_tag_beyond_plain_values_is_refused(tag):
    kept, found = problems(f"name: x\nsources: {tag} [src-a]\n")
    shown = tag.replace("!<tag:example.com,2000:x>", "tag:example.com,2000:x")
    assert not kept and found == [f"e.yaml:2: the YAML tag `{shown}` is not allowed — entries hold plain values: "
                                  "remove the tag (quote the value if it is text)"]


def test_the_plain_tags_are_allowed():
    assert problems('name: !!str 1973\ncrew: !!int "3"\nin: !!timestamp 2022-11-04\n') == (True, [])


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.Inf", "1e999"])
def test_not_a_finite_number_is_refused(value):
    expected = f"e.yaml:2: `{value}` is not a finite number — check the value; quote it if it is text"
    if value == "1e999":  # YAML 1.1 reads a float only with a dot: this one is text, for the key's check
        assert problems(f"name: x\ncombat_mass: {value}\n") == (True, [])
    else:
        assert problems(f"name: x\ncombat_mass: {value}\n") == (False, [expected])


def test_a_huge_integer_is_refused_without_being_read():
    kept, found = problems("name: x\ncrew: " + "9" * 5_000 + "\n")
    assert not kept and found[0].startswith("e.yaml:2: `9999999999999999999999999999999999999999…` is too large")


@pytest.mark.parametrize("char", ["\u202e", "\u202a", "\u2066", "\u2069", "\x1b", "\x07", "\x7f", "\x85", "\r"])
def test_a_hidden_control_character_in_a_value_or_a_key_is_refused(char):
    escaped = char.encode("unicode_escape").decode()
    for text in (f'name: "a{escaped}b"\n', f'"na{escaped}me": x\n'):
        kept, found = problems(text)
        assert not kept and len(found) == 1, text
        assert found[0].startswith(f"e.yaml:1: the text contains the invisible control character U+{ord(char):04X}")


def test_a_byte_order_mark_and_crlf_line_ends_are_fine():
    assert problems("\ufeffname: x\r\ncrew: 3\r\n") == (True, [])
    assert problems("name: x\r\ncrew: [\r\n") [1][0].startswith("e.yaml:3: YAML syntax error")


def test_tabs_for_indentation_get_a_hint():
    assert problems("name: x\nsources:\n\t- src-a\n")[1] == [
        "e.yaml:3: YAML syntax error: while scanning for the next token found character that cannot start any token "
        "— YAML does not allow tabs for indentation: indent with spaces"]


def test_a_character_yaml_forbids_is_reported_at_its_line():
    assert problems("name: x\ncrew: 3\nnote: a\x00b\n")[1] == [
        "e.yaml:3: the character U+0000 is not allowed in YAML (control characters are not allowed) — remove it"]


def test_a_syntax_error_at_the_end_is_reported_on_the_last_line():
    assert problems("name: x\ncrew: [[[")[1][0].startswith("e.yaml:2: YAML syntax error")


def test_bytes_that_are_not_utf_8_are_reported_at_their_line(kb_root):
    checker = EntryChecker(kb_root)
    found = checker.check({"countries/x.yaml": b"name: X\ndescription: caf\xe9\n"})
    assert [p.format() for p in found] == ["entries/countries/x.yaml:2: the file is not UTF-8 text (byte 25) — save it "
                                           "as UTF-8"]
    found = checker.check({"countries/x.yaml": "name: X\n".encode("utf-16")})
    assert [p.format() for p in found] == ["entries/countries/x.yaml:1: the file is not UTF-8 text (byte 1): it is "
                                           "UTF-16 — save it as UTF-8"]


def test_a_problem_is_one_line_whatever_text_it_quotes(kb_root):
    found = EntryChecker(kb_root).check({"countries/x.yaml": b'name: X\n"bad\\nkey": 1\n'})
    assert [p.format() for p in found] == ["entries/countries/x.yaml:2: unknown key `bad\\nkey` for a country — keys of "
                                           "a country: aliases, description, name, replaced_by, sources, wikidata"]


# --- which files are read -------------------------------------------------------------------------


def test_links_and_special_files_in_entries_are_refused_and_never_read(kb_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("name: SECRET-CONTENT\n")
    folder = kb_root / "entries" / "countries"
    (folder / "linked.yaml").symlink_to(outside / "secret.yaml")
    (folder / "linked-folder").symlink_to(outside)
    (kb_root / "entries" / "linked-countries").symlink_to(folder)
    os.mkfifo(folder / "pipe.yaml")
    (folder / ".#editor-lock.yaml").symlink_to("user@host.1234")  # an editor's lock file: hidden, skipped
    result = run_kb("validate", cwd=kb_root)
    assert result.code == 1 and "SECRET" not in result.stdout + result.stderr
    assert result.problem_lines == [
        "entries/countries/linked-folder:1: is a symbolic link; entries must be files inside entries/ — replace the "
        "link with the file (or folder) itself",
        "entries/countries/linked.yaml:1: is a symbolic link; entries must be files inside entries/ — replace the link "
        "with the file (or folder) itself",
        "entries/countries/pipe.yaml:1: is not a regular file — entries are plain text files",
        "entries/linked-countries:1: is a symbolic link; entries must be files inside entries/ — replace the link with "
        "the file (or folder) itself"]
