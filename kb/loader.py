"""Reading entries/**/*.yaml with libyaml, keeping the line of every key and value."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from .problems import Problem, did_you_mean, relative
from .schema import Schema

ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TAGS = {
    "tag:yaml.org,2002:str": "str", "tag:yaml.org,2002:int": "int",
    "tag:yaml.org,2002:float": "float", "tag:yaml.org,2002:bool": "bool",
    "tag:yaml.org,2002:null": "null", "tag:yaml.org,2002:timestamp": "timestamp",
}


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


class _Constructor(SafeConstructor):
    pass


_constructor = _Constructor()


def _scalar(node: yaml.ScalarNode, path: str, problems: list[Problem]) -> Node:
    kind = _TAGS.get(node.tag, "str")
    line = node.start_mark.line + 1
    try:
        value = _constructor.construct_object(node)
    except (ConstructorError, ValueError):
        # e.g. a date YAML recognises but that does not exist (2022-02-30): keep the text, and let
        # the key's own check say what is wrong with it
        return Node(node.value, line, "str", node.value)
    return Node(value, line, kind, node.value)


def _to_node(root: yaml.Node, path: str, problems: list[Problem]) -> Node:
    """Convert a composed YAML node tree to Nodes, rejecting duplicate and non-string keys."""
    if isinstance(root, yaml.ScalarNode):
        return _scalar(root, path, problems)
    line = root.start_mark.line + 1
    if isinstance(root, yaml.SequenceNode):
        return Node([_to_node(item, path, problems) for item in root.value], line, "seq")
    mapping: dict[str, Node] = {}
    for key_node, value_node in root.value:
        key_line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode) or _TAGS.get(key_node.tag) != "str":
            shown = getattr(key_node, "value", "?") if isinstance(key_node, yaml.ScalarNode) else "a collection"
            problems.append(Problem(path, key_line, f"key `{shown}` is not a plain name", "bad-key",
                                    "quote it or use a lowercase word such as `name`"))
            continue
        key = key_node.value
        if key in mapping:
            problems.append(Problem(path, key_line, f"duplicate key `{key}` (first on line {mapping[key].key_line})",
                                    "duplicate-key", "keep one of them"))
            continue
        value = _to_node(value_node, path, problems)
        value.key_line = key_line
        mapping[key] = value
    return Node(mapping, line, "map")


def parse_yaml(text: str, path: str) -> tuple[Node | None, list[Problem]]:
    """Parse one YAML document with positions. Returns (node, problems)."""
    problems: list[Problem] = []
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.CSafeLoader))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        detail = " ".join(x for x in (e.context, e.problem) if x)
        return None, [Problem(path, line, f"YAML syntax error: {detail}", "yaml-syntax",
                              "check indentation and quote values containing `:` or `#`")]
    except yaml.YAMLError as e:
        return None, [Problem(path, 1, f"YAML error: {e}", "yaml-syntax")]
    documents = [d for d in documents if d is not None]
    if not documents:
        return None, [Problem(path, 1, "the file is empty", "not-mapping", "an entry needs at least `name:`")]
    if len(documents) > 1:
        return None, [Problem(path, documents[1].start_mark.line + 1,
                              "more than one YAML document in the file", "not-mapping", "one entry per file")]
    node = _to_node(documents[0], path, problems)
    if node.kind != "map":
        problems.append(Problem(path, node.line, "the entry is not a mapping of keys to values",
                                "not-mapping", "write `key: value` lines, starting with `name:`"))
        return None, problems
    return node, problems


def discover(entries_dir: Path, root: Path, schema: Schema) -> tuple[list[tuple[Path, str, Any]], list[Problem]]:
    """Every entry file under entries/, with its id and class; problems for misplaced files."""
    found, problems = [], []
    if not entries_dir.is_dir():
        return found, [Problem(relative(entries_dir, root), 0, "there is no entries/ folder", "no-entries")]
    for path in sorted(entries_dir.rglob("*")):
        if path.is_dir() or path.suffix not in (".yaml", ".yml"):
            continue
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".yml":
            problems.append(Problem(rel, 1, "entry files must end in .yaml", "bad-file-name",
                                    f"rename it to {path.stem}.yaml"))
            continue
        folder = path.relative_to(entries_dir).parts[0] if len(path.relative_to(entries_dir).parts) > 1 else ""
        cls = schema.classes.get(folder)
        if cls is None:
            hint = did_you_mean(folder, schema.classes) or "entry folders are " + ", ".join(sorted(schema.classes))
            problems.append(Problem(rel, 1, f"`{folder or 'entries'}/` is not an entry folder", "bad-folder", hint))
            continue
        found.append((path, path.stem, cls))
    return found, problems


def check_id(entry_id: str) -> str | None:
    """None if the id is valid, else a suggested valid id."""
    if ID_PATTERN.match(entry_id):
        return None
    return re.sub(r"[^a-z0-9]+", "-", entry_id.lower()).strip("-") or "an-id"


def load_entries(root: Path, schema: Schema) -> tuple[list[Entry], list[Problem]]:
    """Load every entry file: parse, check ids and duplicates. Problems are collected, not raised."""
    files, problems = discover(root / "entries", root, schema)
    entries: list[Entry] = []
    seen: dict[str, list[str]] = {}
    for path, entry_id, cls in files:
        rel = path.relative_to(root).as_posix()
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(Problem(rel, 1, f"the file is not UTF-8 text (byte {e.start})", "encoding",
                                    "save it as UTF-8"))
            continue
        entry = Entry(entry_id, cls, rel)
        suggestion = check_id(entry_id)
        if suggestion:
            entry.problems.append(Problem(rel, 1, f"`{entry_id}` is not a valid id (the file name): use lowercase "
                                          "letters, digits and hyphens", "invalid-id", f"rename it to {suggestion}.yaml"))
        seen.setdefault(entry_id, []).append(rel)
        entry.data, parse_problems = parse_yaml(text, rel)
        entry.problems.extend(parse_problems)
        entries.append(entry)
    for entry in entries:
        others = [p for p in seen[entry.id] if p != entry.path]
        if others:
            entry.problems.append(Problem(entry.path, 1, f"duplicate id `{entry.id}`: {', '.join(others)} has it too",
                                          "duplicate-id", "ids are unique across all folders; rename one file"))
    return entries, problems
