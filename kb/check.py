"""Checking entry files held in memory, through the same stages as `kb validate` (loader, mapping, cycles,
SHACL): for tests and tools that check many versions of a few files without writing them to disk."""
from __future__ import annotations

from pathlib import Path

from rdflib import Graph

from .config import load_config
from .loader import Entry, load_entry, mark_duplicate_ids
from .mapping import map_entries
from .problems import Problem, problem_order
from .schema import Schema, load_ontology, read_schema
from .validate import check_cycles, check_shapes, load_shapes


class EntryChecker:
    """The vocabulary and shapes of one knowledge base, read once; `check` validates a set of entry files."""

    def __init__(self, root: Path):
        config = load_config(root)
        ontology = load_ontology(config.ontology_dir)
        self.schema: Schema = read_schema(ontology)
        self.shapes: Graph = load_shapes(config.ontology_dir)
        self.base_iri = config.base_iri
        self.vocabulary = list(ontology)  # its triples, listed once
        self._loaded: dict[tuple[str, bytes], Entry] = {}  # files met before: checked again, not parsed again

    def __repr__(self) -> str:
        return f"EntryChecker({self.base_iri!r})"

    def check(self, files: dict[str, bytes]) -> list[Problem]:
        """Every problem `kb validate` reports when entries/ holds exactly `files`, named by their path inside
        entries/ (`{"systems/t-80.yaml": b"name: T-80\\n…"}`)."""
        entries = [self._load(name, data) for name, data in sorted(files.items())]
        mark_duplicate_ids(entries)
        problems = [p for entry in entries for p in entry.problems]
        mapped = map_entries(entries, self.schema, self.base_iri)
        problems += mapped.problems
        mapped.graph.add_all(self.vocabulary)  # as in open_kb: links to categories resolve in the vocabulary
        problems += check_cycles(mapped, self.schema, self.base_iri)
        problems += check_shapes(mapped, self.schema, self.shapes)
        return sorted(set(problems), key=problem_order)

    def _load(self, name: str, data: bytes) -> Entry:
        if (name, data) not in self._loaded:
            if len(self._loaded) > 1000:
                self._loaded.clear()
            folder, file_name = name.split("/", 1)
            cls = self.schema.classes[folder]
            self._loaded[name, data] = load_entry(f"entries/{name}", Path(file_name).stem, cls, data)
        entry = self._loaded[name, data]
        return Entry(entry.id, entry.cls, entry.path, entry.data, list(entry.problems))  # later stages add problems
