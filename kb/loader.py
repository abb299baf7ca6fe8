"""Reading entries/**/*.yaml with libyaml, keeping the line of every key and value, within limits."""
from __future__ import annotations

import math
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from .problems import Problem, did_you_mean, relative
from .schema import Schema

ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TAGS = {
    "tag:yaml.org,2002:str": "str", "tag:yaml.org,2002:int": "int",
    "tag:yaml.org,2002:float": "float", "tag:yaml.org,2002:bool": "bool",
    "tag:yaml.org,2002:null": "null", "tag:yaml.org,2002:timestamp": "timestamp",
}
_SEQ_TAG, _MAP_TAG = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"

# Limits on one file, stated in README.md ("Limits"). An entry is a few kilobytes (the largest bundled
# one is 3 KB); these bound the time and memory a hostile file can take, far above any real entry.
MAX_FILE_BYTES = 64 * 1024  # checked before reading; the worst file this size is refused in 0.2 s, 13 MB
MAX_DEPTH = 64  # levels of nested lists and mappings, the entry's own mapping being level 1
MAX_NODES = 10_000  # keys, values and list items, with aliases expanded
MAX_ALIAS_NODES = 1_000  # of those, the ones reached through an alias (`*name`)
MAX_TEXT = 10_000  # characters in one key or value (a name has its own limit in the ontology: 300)
MAX_NUMBER = 10**15  # numbers must be finite and smaller than this in magnitude

# Control characters and the invisible bidirectional overrides and isolates (U+202A–U+202E,
# U+2066–U+2069): they can hide text or show it in a misleading order, on a page or a terminal.
_HIDDEN_CHARACTER = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what libyaml counts as a new line


@dataclass
class Node:
    """A YAML value with its line (1-based). `value` is a scalar, list[Node] or dict[str, Node]."""

    value: Any
    line: int
    kind: str  # str, int, float, bool, null, timestamp, map, seq
    source_text: str = ""  # the scalar as written, for messages
    key_line: int = 0  # for a mapping value: the line of its key

    def plain(self) -> Any:
        """The value with all positions dropped."""
        if self.kind == "map":
            return {k: v.plain() for k, v in self.value.items()}
        if self.kind == "seq":
            return [v.plain() for v in self.value]
        return self.value


@dataclass
class Entry:
    """One YAML file: its id, class, location and parsed content."""

    id: str
    cls: Any  # URIRef of its class
    path: str  # relative to the knowledge-base root, for messages
    data: Node | None = None
    problems: list[Problem] = field(default_factory=list)


_constructor = SafeConstructor()


# --- limits: checked on the composed nodes, before any value is built -----------------------------


def _check_limits(root: yaml.Node, path: str) -> Problem | None:
    """The first limit the document breaks, walking it with a stack (no recursion), aliases expanded."""
    nodes = aliased = 0
    seen: set[int] = set()
    open_collections: set[int] = set()  # the collections being walked: meeting one again is a loop
    stack = [(root, 1, 0, 0, False)]  # (node, depth, line of its parent, line of the alias it is in, leaving)
    while stack:
        node, depth, parent_line, alias_line, leaving = stack.pop()
        if leaving:
            open_collections.discard(id(node))
            continue
        if id(node) in seen and not alias_line:
            alias_line = parent_line  # expanding an alias: problems are blamed on where it is used
        line = alias_line or node.start_mark.line + 1
        if id(node) in open_collections:
            return Problem(path, line, "an alias refers to a list or mapping that contains it, an endless structure",
                           "too-large", "remove the alias")
        nodes += 1
        aliased += id(node) in seen
        seen.add(id(node))
        if aliased > MAX_ALIAS_NODES:
            return Problem(path, line, f"the aliases in this file expand to more than {MAX_ALIAS_NODES:,} values",
                           "too-large", "write the values out, or use fewer `*` aliases")
        if nodes > MAX_NODES:
            return Problem(path, line, f"the file holds more than {MAX_NODES:,} keys and values", "too-large",
                           "an entry describes one thing; split it")
        if isinstance(node, yaml.ScalarNode):
            if len(node.value) > MAX_TEXT:
                return Problem(path, line, f"a text of {len(node.value):,} characters (at most {MAX_TEXT:,})",
                               "too-large", "shorten it")
            continue
        if depth > MAX_DEPTH:
            return Problem(path, line, f"the entry is nested more than {MAX_DEPTH} levels deep", "too-large",
                           "flatten the lists and mappings")
        open_collections.add(id(node))
        stack.append((node, depth, parent_line, alias_line, True))
        children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
        stack.extend((child, depth + 1, line, alias_line, False) for child in reversed(children))
    return None


# --- values: built with a stack; tags, numbers and hidden characters checked -------------------------


def _hidden_character(text: str, path: str, line: int) -> Problem | None:
    found = _HIDDEN_CHARACTER.search(text)
    if found is None:
        return None
    char = found.group()
    name = unicodedata.name(char, "")
    return Problem(path, line, f"the text contains the invisible control character U+{ord(char):04X}"
                   + (f" ({name})" if name else ""), "hidden-character",
                   "remove it: it can hide text or show it in a misleading order")


def _tag_problem(tag: str, path: str, line: int) -> Problem:
    shown = tag.replace("tag:yaml.org,2002:", "!!")
    return Problem(path, line, f"the YAML tag `{shown}` is not allowed", "yaml-tag",
                   "entries hold plain values: remove the tag (quote the value if it is text)")


def _scalar(node: yaml.ScalarNode, path: str, refused: list[Problem]) -> Node:
    line = node.start_mark.line + 1
    kind = _TAGS.get(node.tag)
    if kind is None:
        refused.append(_tag_problem(node.tag, path, line))
        return Node(node.value, line, "str", node.value)
    if problem := _hidden_character(node.value, path, line):
        refused.append(problem)
    if kind == "int" and len(node.value) > 64:  # Python will not even read an integer of 4,300 digits
        value = MAX_NUMBER
    else:
        try:
            value = SafeConstructor.yaml_constructors[node.tag](_constructor, node)
        except (yaml.YAMLError, ValueError, TypeError, KeyError, IndexError, AttributeError):
            # a date YAML recognises but that does not exist (2022-02-30), or `!!bool maybe`: keep the
            # text, and let the key's own check say what is wrong with it
            return Node(node.value, line, "str", node.value)
    if kind in ("int", "float") and not (math.isfinite(value) and abs(value) < MAX_NUMBER):
        shown = node.value if len(node.value) <= 40 else node.value[:40] + "…"
        message = (f"`{shown}` is too large a number (numbers are smaller than 10^15)" if math.isfinite(value)
                   else f"`{shown}` is not a finite number")
        refused.append(Problem(path, line, message, "bad-number", "check the value; quote it if it is text"))
        return Node(node.value, line, "str", node.value)
    return Node(value, line, kind, node.value)


def _start(source: yaml.Node, path: str, refused: list[Problem]) -> Node:
    """The Node for `source`: a scalar's value, or an empty list or mapping to fill."""
    if isinstance(source, yaml.ScalarNode):
        return _scalar(source, path, refused)
    line = source.start_mark.line + 1
    if source.tag not in (_SEQ_TAG, _MAP_TAG):
        refused.append(_tag_problem(source.tag, path, line))
    return Node([], line, "seq") if isinstance(source, yaml.SequenceNode) else Node({}, line, "map")


def _to_node(root: yaml.Node, path: str, problems: list[Problem], refused: list[Problem]) -> Node:
    """Convert a composed YAML node tree (within the limits) to Nodes, rejecting duplicate and non-string keys."""
    top = _start(root, path, refused)
    stack = [(root, top)]
    while stack:
        source, node = stack.pop()
        if node.kind == "seq":
            for item in source.value:
                node.value.append(_start(item, path, refused))
                stack.append((item, node.value[-1]))
        elif node.kind == "map":
            for key_node, value_node in source.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode) or _TAGS.get(key_node.tag) != "str":
                    shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
                    problems.append(Problem(path, key_line, f"key `{shown}` is not a plain name", "bad-key",
                                            "quote it or use a lowercase word such as `name`"))
                    continue
                key = key_node.value
                if problem := _hidden_character(key, path, key_line):
                    refused.append(problem)
                if key in node.value:
                    problems.append(Problem(path, key_line, f"duplicate key `{key}` (first on line "
                                            f"{node.value[key].key_line})", "duplicate-key", "keep one of them"))
                    continue
                value = _start(value_node, path, refused)
                value.key_line = key_line
                node.value[key] = value
                stack.append((value_node, value))
    return top


# --- parsing one file ------------------------------------------------------------------------------


def _line_after(text: str) -> int:
    """The line on which whatever follows `text` stands."""
    return len(_LINE_BREAK.findall(text)) + 1


def _syntax_problem(e: yaml.YAMLError, text: str, path: str) -> Problem:
    if isinstance(e, yaml.reader.ReaderError):  # a character YAML does not allow; the offset is in UTF-8 bytes
        prefix = text.encode("utf-8", "surrogatepass")[:e.position].decode("utf-8", "replace")
        char = f"U+{e.character:04X}" if isinstance(e.character, int) else repr(e.character)
        return Problem(path, _line_after(prefix), f"the character {char} is not allowed in YAML "
                       f"({e.reason})", "yaml-syntax", "remove it")
    if not isinstance(e, yaml.MarkedYAMLError):
        return Problem(path, 1, f"YAML error: {e}", "yaml-syntax")
    mark = e.problem_mark or e.context_mark
    lines = _LINE_BREAK.split(text)
    line = min(mark.line + 1, len(lines)) if mark else 1  # at the end, libyaml counts a line the file lacks
    if "maximum nesting depth" in (e.problem or ""):
        return Problem(path, line, f"the entry is nested more than {MAX_DEPTH} levels deep", "too-large",
                       "flatten the lists and mappings")
    detail = " ".join(x for x in (e.context, e.problem) if x)
    hint = ("YAML does not allow tabs for indentation: indent with spaces" if "\t" in lines[line - 1]
            else "check indentation and quote values containing `:` or `#`")
    return Problem(path, line, f"YAML syntax error: {detail}", "yaml-syntax", hint)


def parse_yaml(text: str, path: str) -> tuple[Node | None, list[Problem]]:
    """Parse one YAML document with positions. Returns (node, problems); node is None if it cannot be used."""
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError as e:
        return None, [_syntax_problem(e, text, path)]
    documents = [d for d in documents if d is not None]
    if not documents:
        return None, [Problem(path, 1, "the file is empty", "not-mapping", "an entry needs at least `name:`")]
    if len(documents) > 1:
        return None, [Problem(path, documents[1].start_mark.line + 1,
                              "more than one YAML document in the file", "not-mapping", "one entry per file")]
    too_large = _check_limits(documents[0], path)
    if too_large:
        return None, [too_large]
    problems: list[Problem] = []
    refused: list[Problem] = []  # values no later stage should see
    node = _to_node(documents[0], path, problems, refused)
    if refused:
        return None, refused + problems
    if node.kind != "map":
        problems.append(Problem(path, node.line, "the entry is not a mapping of keys to values",
                                "not-mapping", "write `key: value` lines, starting with `name:`"))
        return None, problems
    return node, problems


# --- finding and reading the files -------------------------------------------------------------------


def discover(entries_dir: Path, root: Path, schema: Schema) -> tuple[list[tuple[str, str, str, Any]], list[Problem]]:
    """Every entry file under entries/ as (its path, its path from the root with `/`, its id, its class);
    problems for misplaced files and links."""
    found, problems = [], []
    if not entries_dir.is_dir():
        return found, [Problem(relative(entries_dir, root), 0, "there is no entries/ folder", "no-entries")]
    base, prefix = str(entries_dir), entries_dir.relative_to(root).as_posix()
    listed = sorted(((e.path[len(base) + 1:].split(os.sep), e) for e in _listing(base)), key=lambda pe: pe[0])
    for parts, e in listed:
        rel = prefix + "/" + "/".join(parts)
        if e.is_symlink():  # never followed: it could point outside entries/
            problems.append(Problem(rel, 1, "is a symbolic link; entries must be files inside entries/", "symlink",
                                    "replace the link with the file (or folder) itself"))
            continue
        if e.is_dir() or not e.name.endswith((".yaml", ".yml")):
            continue
        if e.name.endswith(".yml"):
            problems.append(Problem(rel, 1, "entry files must end in .yaml", "bad-file-name",
                                    f"rename it to {e.name[:-len('.yml')]}.yaml"))
            continue
        folder = parts[0] if len(parts) > 1 else ""
        cls = schema.classes.get(folder)
        if cls is None:
            hint = did_you_mean(folder, schema.classes) or "entry folders are " + ", ".join(sorted(schema.classes))
            problems.append(Problem(rel, 1, f"`{folder or 'entries'}/` is not an entry folder", "bad-folder", hint))
            continue
        found.append((e.path, rel, e.name[:-len(".yaml")], cls))
    return found, problems


def _listing(folder: str) -> list:
    """Every file, folder and link under `folder`, as os.DirEntry (whose type needs no further system call),
    without following links and without entering hidden folders (editors' lock and backup files)."""
    out = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                if e.name.startswith("."):
                    continue
                out.append(e)
                if e.is_dir(follow_symlinks=False):
                    out += _listing(e.path)
    except OSError:
        pass
    return out


def _too_large(rel: str, size: int) -> Problem:
    return Problem(rel, 1, f"the file is {size:,} bytes, more than the limit of {MAX_FILE_BYTES:,}", "too-large",
                   "an entry is a few kilobytes: shorten it")


def read_entry_file(path: str | Path, rel: str) -> tuple[bytes | None, Problem | None]:
    """The bytes of one entry file, or a problem: not a regular file, unreadable, or over the size limit
    (checked before reading, so a huge file costs nothing)."""
    try:  # no following a link put in place after discovery; no waiting on a pipe
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        return None, Problem(rel, 1, f"cannot read the file: {e.strerror}", "unreadable")
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None, Problem(rel, 1, "is not a regular file", "unreadable", "entries are plain text files")
        if info.st_size > MAX_FILE_BYTES:
            return None, _too_large(rel, info.st_size)
        return f.read(MAX_FILE_BYTES + 1), None  # one byte more: load_entry notices a file that grew


def check_id(entry_id: str) -> str | None:
    """None if the id is valid, else a suggested valid id."""
    if ID_PATTERN.match(entry_id):
        return None
    return re.sub(r"[^a-z0-9]+", "-", entry_id.lower()).strip("-")[:100] or "an-id"


def load_entry(rel: str, entry_id: str, cls: Any, data: bytes) -> Entry:
    """One entry from its file's bytes: decoded, its id checked, parsed. Problems are kept on the entry."""
    entry = Entry(entry_id, cls, rel)
    if len(data) > MAX_FILE_BYTES:
        entry.problems.append(_too_large(rel, len(data)))
        return entry
    suggestion = check_id(entry_id)
    if suggestion:
        entry.problems.append(Problem(rel, 1, f"`{entry_id}` is not a valid id (the file name): use lowercase "
                                      "letters, digits and hyphens", "invalid-id", f"rename it to {suggestion}.yaml"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = _line_after(data[:e.start].decode("utf-8", "replace"))
        utf16 = ": it is UTF-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        entry.problems.append(Problem(rel, line, f"the file is not UTF-8 text (byte {e.start + 1}){utf16}", "encoding",
                                      "save it as UTF-8"))
        return entry
    entry.data, problems = parse_yaml(text, rel)
    entry.problems.extend(problems)
    return entry


def mark_duplicate_ids(entries: list[Entry]) -> None:
    """Ids are unique across all folders: each file sharing one gets a problem naming the others."""
    paths: dict[str, list[str]] = {}
    for entry in entries:
        paths.setdefault(entry.id, []).append(entry.path)
    for entry in entries:
        others = [p for p in paths[entry.id] if p != entry.path]
        if others:
            entry.problems.append(Problem(entry.path, 1, f"duplicate id `{entry.id}`: {', '.join(others)} has it too",
                                          "duplicate-id", "ids are unique across all folders; rename one file"))


def load_entries(root: Path, schema: Schema) -> tuple[list[Entry], list[Problem]]:
    """Load every entry file: read, parse, check ids and duplicates. Problems are collected, not raised."""
    files, problems = discover(root / "entries", root, schema)
    entries: list[Entry] = []
    for path, rel, entry_id, cls in files:
        data, problem = read_entry_file(path, rel)
        if problem:  # still an entry, so that links to it are not reported as well
            entries.append(Entry(entry_id, cls, rel, problems=[problem]))
            continue
        entries.append(load_entry(rel, entry_id, cls, data))
    mark_duplicate_ids(entries)
    return entries, problems
