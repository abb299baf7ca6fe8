"""Random and mutated entries (hypothesis): whatever a file holds, milkb accepts it or reports it as
`path:line: message` problems; it never raises, and a file that is certainly broken never passes.

Cases start from the entries of tests/data/kb and are
- rewritten in equivalent ways (key order, YAML styles, quoting, comments, anchors, BOM, CRLF): still valid;
- broken in one known way (a value no key takes, an unknown or duplicate key, a YAML tag, a byte that is
  not UTF-8, too deep, an alias bomb, …): must be reported;
- given any values at all, mangled at random byte by byte, or made up from random keys and values: judged
  by an independent, partial check (PyYAML's own loader and constructors, the schema's keys and the
  limits), which must never call invalid what milkb accepts.

In CI: EXAMPLES cases through the library (kb.check: the loader, mapping and checks of `kb validate`) and
CLI_EXAMPLES through the `kb` command (`kb validate`, and `kb build` for one in ten), with a fixed seed.
A longer run: MILKB_FUZZ_EXAMPLES=100000 .venv/bin/python -m pytest tests/test_fuzz.py
"""
from __future__ import annotations

import datetime as dt
import math
import multiprocessing
import os
import re
import shutil
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kb.check import EntryChecker
from kb.cli import app
from kb.loader import MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, MAX_NUMBER, MAX_TEXT
from kb.schema import load_ontology, read_schema

from .conftest import DATA, REPO, make_root

# 2,000 by default: ~360 rewritten, ~550 broken (~36 each of the 15 ways), ~550 retyped, ~360 mangled, ~180 made up
EXAMPLES = int(os.environ.get("MILKB_FUZZ_EXAMPLES", "2000"))
CLI_EXAMPLES = max(EXAMPLES // 25, 20)
WORKERS = 2  # processes sharing the library cases
FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])

ENTRIES = DATA / "kb" / "entries"
CORPUS = {p.relative_to(ENTRIES).as_posix(): p.read_bytes() for p in sorted(ENTRIES.rglob("*.yaml"))}
SCHEMA = read_schema(load_ontology(REPO / "ontology"))
KEYS = {folder: set(SCHEMA.keys[cls]) for folder, cls in SCHEMA.classes.items()}
QUALIFIERS = ["value", "source", "preferred", "note", "lang", "label", "kind", "role", "system", "country", "since",
              "until"]
PROBLEM = re.compile(r"^entries/\S+\.yaml:\d+: \S[^\n]*$")
SUMMARY = re.compile(r"^\d+ problems?( in \d+ entries)?$")
LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # libyaml's line breaks
HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

TRICKY_TEXT = ["46 t", "1,000 hp", "42,5 t", "9**9**9 t", "1e400 t", "1e30", "nan t", "-5 t", "0 t", "3 km", "70 km/h",
               "t-72", "t-80", "src-a", "soviet-union", "ukraine", "main-battle-tank", "tank-gun", "bakhmut", "used",
               "2022-02-30", "2022-13", "2022-11", "1973", "Q1", "Q0", "https://example.org/", "javascript:alert(1)",
               "no", "yes", "~", "null", ".nan", "<script>alert(1)</script>", "[x](javascript:alert(1))",
               "../../etc/passwd", "a\u202eb", "a\x1b[2Jb", "é", "\x00", "{", "}", "*a", "&a", "ru",
               "!!python/object:os.system", "x" * 301, "x" * (MAX_TEXT + 1), "1 " + "a/" * 40 + "b"]
# No key takes any of these (an empty or null value, a yes/no, a number YAML cannot be trusted with, a
# hidden character, too long a text, a mapping with an unknown qualifier).
NEVER_VALID = [None, True, False, "", [], [None], [True], {"zzz": 1}, math.nan, math.inf, -math.inf, MAX_NUMBER,
               -(10**20), "a\u202eb", "a\x1bb", "x" * (MAX_TEXT + 1)]
HIDDEN_CHARACTERS = ["\u202e", "\u2066", "\x1b", "\x7f", "\x85"]
TAGS = ["!!python/object:os.system", "!!python/object/apply:os.system", "!!python/name:os.system", "!!binary",
        "!!set", "!!omap", "!foo", "!<tag:example.com,2000:x>"]
SNIPPETS = ["lol0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
            + "".join(f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)),
            "loop: &s [*s]\n", "evil: !!python/object/apply:os.system [echo pwned]\n", "? [complex]\n: key\n",
            "<<: {name: Merged}\n", "%TAG ! tag:example.com,2000:\n---\nname: X\n", "---\nname: Second\n",
            "name: \"\\0\"\n", "deep: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n"]

plain_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20)  # controls: in TRICKY_TEXT
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), plain_text, st.dates(),
                    st.sampled_from(TRICKY_TEXT))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(QUALIFIERS + sorted(KEYS["systems"])) | plain_text, inner, max_size=3), max_leaves=6)
comments = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cn", "Zl", "Zp")), max_size=30)


@dataclass
class Case:
    name: str  # the file's path inside entries/
    data: bytes
    expect: str | None  # "valid", "invalid", or None: only the independent judge has a say
    extra: dict[str, bytes] = field(default_factory=dict)  # more files, made for the case
    beside: dict[str, bytes] = field(default_factory=lambda: CORPUS, repr=False)  # the corpus files checked with it

    @property
    def files(self) -> dict[str, bytes]:
        return {**self.beside, self.name: self.data, **self.extra}


def flow(value) -> str:
    """`value` as one line of YAML flow style."""
    return dump([value], default_flow_style=True, width=10**9, allow_unicode=True).strip()[1:-1]


def dump(value, **style) -> str:
    return yaml.dump(value, Dumper=yaml.CSafeDumper, **style)


@st.composite
def written(draw, pairs: list[tuple]) -> list[str]:
    """Top-level (key, value) pairs as YAML, one chunk of text each, in one of many equivalent styles."""
    style = {"default_flow_style": draw(st.sampled_from([False, None])), "allow_unicode": draw(st.booleans()),
             "width": draw(st.sampled_from([12, 80, 10**6])), "indent": draw(st.integers(2, 5)),
             "default_style": draw(st.sampled_from([None, None, '"', "'"])), "sort_keys": False}
    # (flow style applies to a value's collections only: a top-level `{name: X}` would be a second document)
    chunks = [dump({k: v}, **{**style, "default_flow_style": style["default_flow_style"]
                              if isinstance(v, (list, dict)) else False}) for k, v in pairs]
    if chunks and draw(st.booleans()):  # an anchor that nothing uses
        key = dump({pairs[0][0]: None}, **style).split(":")[0]
        if chunks[0].startswith(key + ":"):
            chunks[0] = key + ": &first" + chunks[0][len(key) + 1:]
    for _ in range(draw(st.integers(0, 2))):
        chunks.insert(draw(st.integers(0, len(chunks))), "#" + draw(comments) + "\n")
    return chunks


def encoded(draw, text: str) -> bytes:
    """The text as a file: LF, CRLF or CR line ends, with or without a byte-order mark."""
    text = text.replace("\n", draw(st.sampled_from(["\n", "\n", "\r\n", "\r"])))
    return (draw(st.sampled_from(["", "", "\ufeff"])) + text).encode("utf-8")


BASE = {name: list(yaml.safe_load(data).items()) for name, data in CORPUS.items()}  # never changed in place


def base_pairs_of(name: str) -> list[tuple]:
    return list(BASE[name])


def base_pairs(draw) -> tuple[str, list[tuple]]:
    name = draw(st.sampled_from(sorted(CORPUS)))
    return name, draw(st.permutations(base_pairs_of(name)))


@st.composite
def rewritten(draw) -> Case:
    name, pairs = base_pairs(draw)
    chunks = draw(written(pairs))
    if draw(st.booleans()):  # the description as an alias of the name
        pairs = dict(pairs)
        chunks = [c for c in chunks if not c.startswith(("description", '"description', "'description"))]
        chunks = [f"name: &name {flow(pairs['name'])}\n" if c.startswith(("name", '"name', "'name")) else c
                  for c in chunks] + ["description: *name\n"]
    if draw(st.integers(0, 4)) == 0:  # the whole entry as one flow mapping
        chunks = [dump(dict(base_pairs_of(name)), default_flow_style=True, allow_unicode=draw(st.booleans()),
                       width=draw(st.sampled_from([12, 80, 10**6])))]
    start = draw(st.sampled_from(["", "", "---\n", "%YAML 1.1\n---\n"]))
    return Case(name, encoded(draw, start + "".join(chunks)), "valid")


BREAKS = ["value", "unknown key", "no name", "duplicate key", "tag", "hidden key", "snippet", "empty", "not a mapping",
          "two documents", "too deep", "too many", "duplicate id", "too large", "not utf-8"]


@st.composite
def broken(draw) -> Case:
    name, pairs = base_pairs(draw)
    folder = name.split("/")[0]
    how = draw(st.sampled_from(BREAKS))
    extra = {}
    i = draw(st.integers(0, len(pairs) - 1))
    if how == "value":
        pairs[i] = (pairs[i][0], draw(st.sampled_from(NEVER_VALID)))
    elif how == "unknown key":
        pairs.insert(i, (draw(st.text(max_size=20).filter(lambda k: k not in KEYS[folder])), draw(values)))
    elif how == "no name":
        pairs = [p for p in pairs if p[0] != "name"]
    elif how == "too deep":
        depth = draw(st.integers(MAX_DEPTH, 1200))  # lists inside the entry's mapping, which is level 1
    chunks = draw(written(pairs)) if pairs else []
    key_chunks = [n for n, c in enumerate(chunks) if not c.startswith("#")]
    j = key_chunks[min(i, len(key_chunks) - 1)] if key_chunks else 0
    if how == "duplicate key":
        chunks.insert(draw(st.integers(0, len(chunks))), chunks[j])
    elif how == "tag":
        chunks[j] = f"{flow(pairs[i][0])}: {draw(st.sampled_from(TAGS))} {flow(pairs[i][1])}\n"
    elif how == "hidden key":
        chunks.insert(j, flow(pairs[i][0] + draw(st.sampled_from(HIDDEN_CHARACTERS))) + ": x\n")
    elif how == "too deep":
        chunks[j] = f"{flow(pairs[i][0])}: {'[' * depth}1{']' * depth}\n"
    elif how == "too many":
        chunks[j] = f"{flow(pairs[i][0])}: [{', '.join(['1'] * MAX_NODES)}]\n"
    elif how == "snippet":
        chunks.append(draw(st.sampled_from(SNIPPETS)))
    text = "".join(chunks)
    if how == "empty":
        text = draw(st.sampled_from(["", "\n", "  \n\n", "# nothing\n", "---\n", "---\n...\n", "~\n"]))
    elif how == "not a mapping":
        text = draw(st.sampled_from([dump([dict(pairs)]), dump(pairs), flow(pairs[0][1]) + "\n",
                                     "- " + text.replace("\n", "\n  ")]))
    elif how == "two documents":
        text = text + "---\n" + text
    elif how == "duplicate id":
        other = draw(st.sampled_from(sorted(set(KEYS) - {folder})))
        extra[f"{other}/{name.split('/', 1)[1]}"] = CORPUS[name]
    elif how == "too large":
        text += "# " + "x" * MAX_FILE_BYTES + "\n"
    data = encoded(draw, text)
    if how == "not utf-8":
        at = draw(st.integers(0, len(data)))
        bad = draw(st.sampled_from([b"\xff", b"\x80", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf"]))
        data = data[:at] + bad + data[at:]
    return Case(name, data, "invalid", extra)


@st.composite
def retyped(draw) -> Case:
    """One or two values replaced by anything at all: wrong types, links to nothing, odd units, …"""
    name, pairs = base_pairs(draw)
    for i in draw(st.sets(st.integers(0, len(pairs) - 1), min_size=1, max_size=2)):
        pairs[i] = (pairs[i][0], draw(values))
    return Case(name, encoded(draw, "".join(draw(written(pairs)))), None)


@st.composite
def mangled(draw) -> Case:
    case = draw(rewritten() | broken())
    data = bytearray(case.data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        end = draw(st.integers(at, min(len(data), at + 40)))
        how = draw(st.integers(0, 5))
        if how == 0:
            data[at:at] = draw(st.text(max_size=10)).encode("utf-8")
        elif how == 1:
            data[at:at] = draw(st.binary(max_size=6))
        elif how == 2:
            del data[at:end]
        elif how == 3:
            data[at:at] = data[at:end]
        elif how == 4:
            data[at:at] = draw(st.sampled_from(list(":-[]{}#&*!|>'\"%@`,?\t\r\n\\ "))).encode()
        else:
            data[at:at] = draw(st.sampled_from(["[" * 70, "\t", "  ", "\n  - ", ": ", "&a ", "*a", "!!str ", "!!int ",
                                                "!!timestamp ", "!!bool ", "? ", "<<: "])).encode()
    return Case(case.name, bytes(data), None, case.extra)


@st.composite
def made_up(draw) -> Case:
    folder = draw(st.sampled_from(sorted(KEYS)))
    pairs = draw(st.lists(st.tuples(st.sampled_from(sorted(KEYS[folder])) | st.text(max_size=12), values), max_size=8))
    return Case(f"{folder}/made-up.yaml", encoded(draw, "".join(draw(written(pairs)))), None)


def _links(name: str) -> set[str]:
    """The corpus files that the entry `name` links to."""
    by_id = {n.split("/")[1].removesuffix(".yaml"): n for n in CORPUS}
    found, stack = set(), [yaml.safe_load(CORPUS[name])]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif value in by_id:
            found.add(by_id[value])
    return found


LINKS = {name: _links(name) for name in CORPUS}


def with_links(names: set[str]) -> set[str]:
    """`names` and every corpus file they link to, directly or not."""
    names, stack = set(names), list(names)
    while stack:
        for linked in LINKS.get(stack.pop(), ()):
            if linked not in names:
                names.add(linked)
                stack.append(linked)
    return names


@st.composite
def cases(draw) -> Case:
    """A case, with the corpus files it is checked beside: those it links to and a few others (checking
    with all of them every time would take twice as long)."""
    kinds = [rewritten(), rewritten(), broken(), broken(), broken(), retyped(), retyped(), retyped(), mangled(),
             mangled(), made_up()]
    case = draw(st.sampled_from(kinds).flatmap(lambda kind: kind))
    beside = with_links({case.name} | draw(st.sets(st.sampled_from(sorted(CORPUS)), max_size=1)))
    case.beside = {name: CORPUS[name] for name in beside if name in CORPUS}
    return case


# --- the independent judge -------------------------------------------------------------------------


class _Judge(yaml.CSafeLoader):
    """PyYAML's safe loader (the same libyaml parser: the pure-Python one departs from the YAML spec on tabs
    and `?` in flow collections); like milkb, it keeps as text a value its tag cannot read (`2022-02-30`)."""


def _lenient(construct):
    def construct_or_text(loader, node):
        try:
            return construct(loader, node)
        except (yaml.YAMLError, ValueError, TypeError, KeyError, IndexError, AttributeError):
            return node.value
    return construct_or_text


for _tag in ("int", "float", "bool", "timestamp"):
    _tag = f"tag:yaml.org,2002:{_tag}"
    _Judge.add_constructor(_tag, _lenient(yaml.SafeLoader.yaml_constructors[_tag]))


def surely_invalid(data: bytes, folder: str) -> str | None:
    """Why the file cannot be a valid entry, if it certainly cannot; None when this judge cannot tell."""
    if len(data) > MAX_FILE_BYTES:
        return "too large"
    try:
        documents = [d for d in yaml.load_all(data.decode("utf-8"), Loader=_Judge) if d is not None]
    except Exception as e:  # noqa: BLE001 - not UTF-8, not YAML, an unknown tag, too deep for the loader
        return f"PyYAML cannot load it: {type(e).__name__}"
    if len(documents) != 1 or not isinstance(documents[0], dict):
        return "not one mapping"
    entry = documents[0]
    if not all(isinstance(k, str) and k in KEYS[folder] for k in entry):
        return "a key that is not one of the class's"
    if not isinstance(entry.get("name"), str):
        return "no name"
    if any(v is None or v == [] for v in entry.values()):
        return "an empty value"
    seen, nodes, aliased, stack = set(), 0, 0, [(entry, 1)]  # aliases expanded, as milkb counts them
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            return "too many values"
        if isinstance(value, (list, dict)):
            aliased += id(value) in seen  # (milkb counts the values inside an alias too: it refuses sooner)
            if depth > MAX_DEPTH or aliased > MAX_ALIAS_NODES:
                return "too deep, or too many aliases"
            seen.add(id(value))
            items = list(value.items()) if isinstance(value, dict) else [(None, v) for v in value]
            stack.extend((v, depth + 1) for k, v in items)
            stack.extend((k, depth) for k, _ in items if k is not None)
        elif isinstance(value, bool) or value is None or isinstance(value, (dt.date, dt.datetime)):
            pass
        elif isinstance(value, (int, float)):
            if not math.isfinite(value) or abs(value) >= MAX_NUMBER:
                return "a number out of range"
        elif isinstance(value, str):
            if HIDDEN.search(value) or len(value) > MAX_TEXT:
                return "a hidden character or too long a text"
        else:
            return f"a {type(value).__name__}"
    return None


# --- the properties --------------------------------------------------------------------------------


def line_count(data: bytes) -> int:
    return len(LINE_BREAK.findall(data.decode("utf-8", "replace"))) + 1


def check_case(checker: EntryChecker, case: Case) -> list:
    """Run one case through the library; assert the properties; return its problems."""
    files = case.files
    problems = checker.check(files)
    for p in problems:
        text = p.format()
        assert PROBLEM.match(text), text
        assert 1 <= p.line <= line_count(files[p.path.removeprefix("entries/")]), text
    errors = [p.format() for p in problems if p.severity == "error"]
    if case.expect == "valid":
        assert errors == []
    reason = surely_invalid(case.data, case.name.split("/")[0]) if case.expect is None else None
    if case.expect == "invalid" or reason:
        assert errors, f"passed as valid, but {reason or 'it was broken on purpose'}"
    return problems


@pytest.fixture(scope="module")
def checker(tmp_path_factory) -> EntryChecker:
    return EntryChecker(make_root(tmp_path_factory.mktemp("fuzz")))


def test_the_bundled_test_corpus_is_valid(checker):
    assert checker.check(CORPUS) == []


def test_the_judge_has_a_say_on_the_broken_cases():
    assert surely_invalid(b"name: X\ncrew: .nan\n", "systems") == "a number out of range"
    assert surely_invalid(CORPUS["systems/t-80.yaml"], "systems") is None


# Each test runs its cases in one process per core, each share with its own seed: a case costs ~23 ms
# through the library (most of it the same for every case) and ~250 ms through the command.


def in_processes(share, roots: list[Path]) -> None:
    """Run `share(root, seed)` in a process for each root; fail with the reports of the shares that failed."""
    # (a process that dies, say in libyaml, fails the test as BrokenProcessPool rather than hanging it)
    with ProcessPoolExecutor(len(roots), mp_context=multiprocessing.get_context("spawn")) as pool:
        reports = list(pool.map(share, roots, range(len(roots))))
    assert not any(reports), "\n".join(reports)


def _report(fuzz) -> str:
    try:
        fuzz()
    except Exception:  # noqa: BLE001 - reported to the parent, with hypothesis's falsifying example
        return traceback.format_exc()
    return ""


def _library_share(root: Path, share: int) -> str:
    checker = EntryChecker(root)

    @settings(FUZZ, max_examples=EXAMPLES // WORKERS, derandomize=False)
    @seed(share)
    @given(case=cases())
    def fuzz(case):
        check_case(checker, case)

    return _report(fuzz)


def test_any_file_is_valid_or_reported_with_its_line(tmp_path):
    in_processes(_library_share, [make_root(tmp_path / str(n)) for n in range(WORKERS)])


# --- through the command ---------------------------------------------------------------------------


def run(root: Path, *args: str):
    """`kb ARGS` through the command's entry point; no exception, and nothing on stderr but problems."""
    result = CliRunner().invoke(app, ["--root", str(root), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for line in result.stderr.splitlines():
        assert PROBLEM.match(line) or SUMMARY.match(line), line
    return result


def check_command(checker: EntryChecker, root: Path, case: Case, build: bool) -> None:
    """`kb validate` (and `kb build`) on the case: exit 1 exactly when the library finds errors, and the
    very same problems printed."""
    case.beside = CORPUS  # the command checks every file of the knowledge base
    problems = check_case(checker, case)
    code = 1 if [p for p in problems if p.severity == "error"] else 0
    written_files = {case.name: case.data, **case.extra}
    try:
        for name, data in written_files.items():
            (root / "entries" / name).write_bytes(data)
        result = run(root, "validate")
        assert result.exit_code == code
        assert [line for line in result.stderr.splitlines() if PROBLEM.match(line)] == [p.format() for p in problems]
        if build:
            assert run(root, "build", "-o", str(root / "site"), "--no-search").exit_code == code
    finally:
        for name in written_files:
            if name in CORPUS:
                (root / "entries" / name).write_bytes(CORPUS[name])
            else:
                (root / "entries" / name).unlink()


def _command_share(root: Path, share: int) -> str:
    checker = EntryChecker(root)

    @settings(FUZZ, max_examples=CLI_EXAMPLES // WORKERS, derandomize=False)
    @seed(1000 + share)  # not the library's cases again
    @given(case=cases(), build=st.integers(0, 9).map(lambda n: n == 0))
    def fuzz(case, build):
        check_command(checker, root, case, build)

    return _report(fuzz)


def test_kb_validate_and_build_report_every_case(tmp_path):
    roots = [make_root(tmp_path / str(n)) for n in range(WORKERS)]
    for root in roots:
        shutil.copytree(REPO / "site_build", root / "site_build")
    in_processes(_command_share, roots)
