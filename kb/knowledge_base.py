"""A knowledge base opened from its root: config, schema, entries and the one graph built from them."""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from pathlib import Path

from rdflib import Graph, URIRef
from rdflib.namespace import RDF, SKOS

from .index import Index, prefixed_graph
from .namespaces import interned
from .config import Config, find_root, load_config
from .problems import KBError, Problem, problem_order
from .schema import Schema, load_ontology, read_schema

# rdflib warns on stderr of an IRI made from an invalid id (`<script>.yaml`), which validation reports as
# path:line: message already; no IRI of an invalid knowledge base is ever written
logging.getLogger("rdflib.term").setLevel(logging.ERROR)

if TYPE_CHECKING:  # imported where entries are loaded: `kb show` and `kb query` on a saved store need none
    from .loader import Entry
    from .mapping import MappedGraph


@dataclass
class KnowledgeBase:
    config: Config
    schema: Schema
    entries: list[Entry]
    mapped: MappedGraph
    index: Index  # entries + vocabulary + category scheme: what queries see and exports write
    problems: list[Problem]
    _graph: Graph | None = None
    sources: dict = field(default_factory=dict)  # entry file → (size, mtime, when seen, digest): `EntryCache.sources`
    cache_saver: object = None  # `open_kb(save_apart=True)`: the child saving the parse cache (`cache_saved`)

    @property
    def graph(self) -> Graph:
        """The same triples as an rdflib Graph (made on first use: the site and checks use `index`)."""
        if self._graph is None:
            self._graph = self.index.to_rdflib()
        return self._graph

    def cache_saved(self) -> None:
        """Wait for the child saving the parse cache, if one does (`open_kb(save_apart=True)`); say if it failed
        (the next run parses every file again)."""
        saver, self.cache_saver = self.cache_saver, None
        if saver is not None:
            try:
                saver.result()
            except OSError as e:
                sys.stderr.write(f"milkb: the parse cache was not saved ({e})\n")

    def iri(self, entry_id: str) -> URIRef:
        return interned(self.config.base_iri + entry_id)

    def id_of(self, iri) -> str | None:
        text = str(iri)
        base = self.config.base_iri
        if text.startswith(base) and "#" not in text[len(base):]:
            return text[len(base):]
        return None

    _ids: set[str] | None = None
    _names: list[tuple] | None = None
    _saved_names: list | None = None  # (iri, kind, text) as saved with the store, made into terms when needed

    @property
    def entity_ids(self) -> set[str]:
        """The id of every entry (with readable content)."""
        if self._ids is None:
            if self.mapped is not None:
                self._ids = {i for i, e in self.mapped.index.items() if e.data is not None}
            else:
                self._ids = {i for c in self.schema.classes.values() for s in self.index.subjects(RDF.type, c)
                             if (i := self.id_of(s)) is not None}
        return self._ids

    @property
    def names(self) -> list[tuple]:
        """(iri, "name" or "alias", text) of every entity name and alias: what `kb show` and `kb search` match."""
        if self._names is None and self._saved_names is not None:
            self._names = [(URIRef(iri), kind, text) for iri, kind, text in self._saved_names]
        if self._names is None:
            g = self.index
            self._names = [(s, "name", str(label)) for s, label in g.subject_objects(SKOS.prefLabel) if self.id_of(s)]
            self._names += [(s, "alias", str(label)) for s, label in g.subject_objects(SKOS.altLabel) if self.id_of(s)]
        return self._names

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def new_graph() -> Graph:
    return prefixed_graph()


def open_kb(root: Path | None = None, *, shacl: bool = True, engine: str = "direct",
            save_apart: bool = False, seen: dict | None = None) -> KnowledgeBase:
    """Load, map and check a knowledge base. Problems are collected in `.problems`, never raised.
    `save_apart`: the parse cache may be saved by a forked child (`.cache_saver`) while the caller goes on.
    `seen`: path → (size, mtime) of the entry files as the caller saw them before (kb/parse_cache.py)."""
    from .mapping import map_entries
    from .parse_cache import EntryCache
    from .quantities import quantity_cache
    from .validate import check_cycles, check_shapes, focus_nodes, load_shapes

    root = find_root() if root is None else root
    config = load_config(root)
    ontology = load_ontology(config.ontology_dir)
    schema = read_schema(ontology)
    tried = EntryCache(root, schema, config.cache_dir, config.base_iri, config.ontology_dir, seen)
    with quantity_cache(config.cache_dir):
        edited = _edited(config, schema, engine, tried, save_apart)
    if edited is not None:
        return edited
    cache = tried.afresh()  # (what the edit path read of the cache is not read again)
    with quantity_cache(config.cache_dir):  # the workers that map fresh entries use it too
        entries, problems = cache.load()
        mapped = map_entries(entries, schema, config.base_iri, cache.kept)
    for entry in entries:
        problems.extend(entry.problems)
    problems.extend(mapped.problems)
    index = mapped.graph  # the entries' triples, joined by the vocabulary: one graph for every stage
    index.add_all(ontology)
    mapped.edits = index.edits
    problems.extend(check_cycles(mapped, schema, config.base_iri))
    if shacl:  # only the focus nodes a change since the last clean check can affect, when there was one
        changed = cache.changed_lines(mapped)
        problems.extend(check_shapes(mapped, schema, load_shapes(config.ontology_dir), engine,
                                     None if changed is None else focus_nodes(changed, index)))
    shapes_ok = (not problems and mapped.all_clean) if shacl else None
    saver = cache.save_apart(mapped, shapes_ok) if save_apart else cache.save(mapped, shapes_ok)
    if shapes_ok and sum(map(len, mapped.runs.values())) + len(ontology) == len(index):  # for the edit path
        _keep_packed(config, cache.content(mapped), index)  # of the next run, while each line is in one run
    try:
        problems = sorted(set(problems), key=problem_order)
        return KnowledgeBase(config, schema, entries, mapped, index, problems, sources=cache.sources,
                             cache_saver=saver)
    except BaseException:
        if saver is not None:
            saver.join()
        raise


EDITS_AT_MOST = 64  # changed entry files the edit path takes; more: every entry is loaded


def _edited(config: Config, schema: Schema, engine: str, cache, save_apart: bool = False) -> KnowledgeBase | None:
    """The edit path of `open_kb`: the knowledge base as the last run kept it (`cache`, kb/parse_cache.py
    `EntryCache.edited`), its graph the packed graph kept with it (kb/packed.py) changed by the triples of the
    few entries edited since. Taken only if those entries map, link and meet the shapes cleanly (the shapes
    checked at the nodes the change can affect, and the cycles if a link that can close one changed); None
    otherwise, and the entries are loaded in full, which finds and reports every problem. At 10,000 systems
    0.4 s instead of 1.1 s (the packed graph loads in 0.1 s where loading and indexing every entry took 0.9 s).

    The graph is the same as the one loading every entry makes (tests/test_edit_path.py); its lookups give
    the triples in another order, on which nothing depends (tests/test_graph_order.py). `save_apart`: what
    changed is kept (the changed entries' shards, the head, the packed graph: 0.07 s at 10,000 systems) by a
    forked child meanwhile, as `open_kb` says."""
    from rdflib import URIRef

    from .mapping import MappedGraph, Mapper, _Triples
    from .packed import PackedGraph
    from .parse_cache import content
    from .validate import CYCLE_PROPERTIES, check_cycles, check_shapes, focus_nodes, load_shapes

    edit = cache.edited(EDITS_AT_MOST)
    if edit is None:
        return None
    graph = PackedGraph.load(config.cache_dir, edit.content)
    if graph is None:
        return None
    index = {entry.id: entry for entry in edit.entries}
    mapper = Mapper(schema, config.base_iri, index)
    scratch = MappedGraph(graph=_Triples(), index=index)
    removed, added, lines = [], [], set()
    for entry, _, before in edit.changed:
        if entry.problems or entry.data is None:
            return None
        mapper.map_entry(entry, scratch)
        after = scratch.clean.get(entry.id)
        if after is None or scratch.problems:
            return None
        old, new = set(before.triples), set(after.triples)
        subject = mapper.iri(entry.id)
        own = subject + "#"
        if any(s != subject and not (type(s) is URIRef and s.startswith(own)) for s, _, _ in old ^ new):
            return None  # (a triple another entry may also make)
        removed += old - new
        added += new - old
        lines.update(set(before.lines) ^ set(after.lines))
        edit.digests[entry.id] = after.digest
    if any(triple in graph for triple in added) or not graph.change(removed, added):
        return None  # (an entry's triple the ontology also states: the runs would not be disjoint)
    mapped = MappedGraph(graph=graph, index=index, clean=scratch.clean, runs=scratch.runs, digests=edit.digests,
                         entry_files=scratch.entry_files, key_line_parts=scratch.key_line_parts,
                         edits=graph.edits, kept_runs=cache.kept_lines)
    if any(p in CYCLE_PROPERTIES for _, p, _ in (*removed, *added)) and check_cycles(mapped, schema,
                                                                                      config.base_iri):
        return None
    if lines and check_shapes(mapped, schema, load_shapes(config.ontology_dir), engine, focus_nodes(lines, graph)):
        return None
    mapped.kept_key_lines = lambda: cache.kept_key_lines(set(scratch.clean))  # (the checks' lines are not shown)

    def save() -> None:  # (the shards it writes again are those of the changed entries: read already, and so
        cache.save_edit(edit, mapped)  # never read again by this process once the child removes their files)
        now = content(cache.stamp, edit.digests)
        if now != edit.content:  # (a key moved changes the order of the lines, not the triples)
            try:
                graph.save(config.cache_dir, now)
            except OSError:
                pass

    saver = None
    if save_apart and cache.keeps_edit(edit):  # (nothing to keep: no child for it)
        from . import files, signing  # noqa: F401 - what the saves use, imported before the fork
        from .workers import Child

        saver = Child.fork(save, "the parse cache's saver")
    if saver is None:
        save()
    return KnowledgeBase(config, schema, edit.entries, mapped, graph, [], sources=cache.sources, cache_saver=saver)


def _keep_packed(config: Config, content: str | None, index: Index) -> None:
    """Keep the graph packed (kb/packed.py) as the graph of `content`, unless it is kept so already: in a
    forked process that goes on after this one (0.5 s at 10,000 systems)."""
    from . import files, signing  # noqa: F401 - what saving uses, imported before the fork
    from .packed import PackedGraph
    from .site.output import folder_identity
    from .workers import detached

    def job() -> None:
        if PackedGraph.load(config.cache_dir, content) is None:
            graph = PackedGraph.of(index)
            if graph is not None and folder_identity(config.cache_dir) == folder:  # (not one made again since)
                graph.save(config.cache_dir, content)

    folder = folder_identity(config.cache_dir)
    if content is not None and folder is not None:
        detached(job)


def load_valid_kb(root: Path | None = None, *, shacl: bool = True, save_apart: bool = False,
                  seen: dict | None = None) -> KnowledgeBase:
    """The knowledge base, or KBError listing every problem if it has errors.

    Reading commands pass shacl=False: the entries must still load and link, but the shapes are
    left to `kb validate` and to the commands that publish (export, build).
    """
    kb = open_kb(root, shacl=shacl, save_apart=save_apart, seen=seen)
    if kb.errors:
        kb.cache_saved()
        raise KBError(kb.errors)
    return kb


def saved_kb(root: Path | None = None) -> KnowledgeBase:
    """For `kb search`: the graph in the store saved by an earlier command when no input has changed since,
    else the entries loaded as `load_valid_kb(shacl=False)` does (and the store saved for the next command)."""
    from . import store_cache

    root = find_root() if root is None else root
    config = load_config(root)
    saved = store_cache.Saved(config)
    try:
        lookups = saved.lookups if saved.current() else None
    except store_cache.StaleCache:
        lookups = None
    if lookups is None:
        print_ = saved.fingerprint  # before the entries are read (`store_cache.on_current_store`)
        kb = load_valid_kb(root, shacl=False)
        store_cache.save(config, kb, print_)
        return kb
    from .oxstore import StoreView

    schema = read_schema(load_ontology(config.ontology_dir))
    return KnowledgeBase(config, schema, [], None, StoreView(saved.store), [], _ids=set(lookups["ids"]),
                         _saved_names=lookups["names"])
