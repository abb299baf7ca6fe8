"""`kb build`: the validated graph as a static reference site, written whole into a new folder, then swapped in."""
from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
import unicodedata
from array import array
from bisect import bisect_left
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from jinja2 import (BytecodeCache, Environment, FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound,
                    select_autoescape)
from markupsafe import Markup, escape
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS, VOID, XSD

from ..entity import entity_triples
from ..export import (DUMP_FORMATS, dump_frame, dump_pieces, export_graph, graph_lines, graph_runs,
                      jsonld as jsonld_text, jsonld_pieces, load_lines, nt_line, oxigraph_serialize, parse_lines,
                      sorted_triples, turtle as turtle_text)
from ..knowledge_base import KnowledgeBase
from ..problems import KBError, Problem, relative
from ..namespaces import KB, KBC, PREFIXES, SCHEMA
from ..uptodate import build_date, code_stamps, site_files
from ..query import saved_queries, saved_query_reads
from ..store_cache import raw_query
from ..schema import concept_ancestors
from .incremental import Packed, State, Tracker, Unit, tag, unreadable
from .model import Link, SiteModel, TreeNodeBuilder, concept_id, event_order, latest_reported, plain_number, safe_url
from ..faults import fault_point
from ..workers import cpus, forked_pool, shared, write_all
from .markdown import render_markdown
from .output import Links, atomic_folder
from .svg import family_tree_svg, timeline_svg
from .update import dump_identity

BORROWED = KB.caliber  # a compared figure a system without its own takes from its main weapon (`_compute_row`)
COMPARE_PROPERTIES = (KB.combatMass, KB.caliber, KB.crew, KB.maxSpeed, KB.maxRange, KB.launchTubes,
                      KB.enginePower, KB.inServiceSince)
DUMPS = (("milkb.ttl", "turtle", "Turtle"), ("milkb.nt", "nt", "N-Triples"), ("milkb.jsonld", "jsonld", "JSON-LD"),
         ("milkb.rdf", "xml", "RDF/XML"))


@dataclass
class BuildReport:
    out: Path
    pages: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    search_seconds: float | None = None
    search_later: bool = False  # no search index of its own (`index_later`): the previous site's, stale, or none yet
    units: int = 0  # parts of the site (kb/site/incremental.py)
    reused: int = 0  # of which linked unchanged from the previous build
    timings: dict[str, float] = field(default_factory=dict)
    listing: dict = field(default_factory=dict)  # path → (size, mtime) of every file (`uptodate.record`)
    stamp: str = ""  # of the inputs it was built from, taken before it rendered (`uptodate.inputs_stamp`)
    dump: list | None = None  # the identity of the dump it wrote (kb/site/update.py `dump_identity`), before the swap


def _template_problem(e: TemplateError, root: Path) -> KBError:
    """Where a template went wrong: the file and line jinja2 names for a syntax error, else the innermost
    template line of the traceback (jinja2 puts the templates' own lines there)."""
    filename, line = getattr(e, "filename", None), getattr(e, "lineno", None) or 0
    if not filename:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.endswith((".html", ".txt"))]
        if frames:
            filename, line = frames[-1].filename, frames[-1].lineno or 0
    path = relative(Path(filename), root) if filename else "site_build/templates"
    return KBError([Problem(path, line, f"template error: {e.message or type(e).__name__}", "template")])


def link_html(l, root: str) -> Markup:
    """A link to a page of the site (or the plain name when it has none), its text escaped.

    A global function rather than a template macro: it is called for every name in every table, and a
    jinja macro call costs ten times as much."""
    lang = f' lang="{escape(l.lang)}"' if l.lang else ""
    if l.href:
        return Markup(f'<a href="{escape(root)}{escape(l.href)}"{lang}>{escape(l.text)}</a>')
    return Markup(f"<span{lang}>{escape(l.text)}</span>")


def value_html(v: dict, root: str) -> Markup:
    """A value in a fact table: a link, an external link or the text, then its qualifiers and sources. In
    Python, as `link_html` (the `value` macro of macros.html calls it): 200,000 values at 10,000 systems."""
    text = escape(v["text"])
    if v["href"]:
        html = f'<a href="{escape(root)}{escape(v["href"])}">{text}</a>'
    elif v.get("external"):
        html = f'<a href="{escape(v["external"])}" rel="nofollow noopener">{text}</a>'
    else:
        lang = v.get("lang")
        html = f'<span lang="{escape(lang)}">{text}</span>' if lang else f"<span>{text}</span>"
    qualifiers, sources = v["qualifiers"], v["sources"]
    if qualifiers or sources:
        html += (f' <span class="qual">({"; ".join(_qualifier_html(q, root) for q in qualifiers)}'
                 f'{"; " if qualifiers and sources else ""}'
                 + (f"source: {', '.join(_source_html(s, root) for s in sources)}" if sources else "") + ")</span>")
    return Markup(html)


def _source_html(s: Link, root: str) -> str:
    """A cited source, with its kind when that is a weak one (`SiteModel.cited`)."""
    html = link_html(s, root)
    return f'{html} <span class="src-kind">[{escape(s.note)}]</span>' if s.note else html


def _qualifier_html(q, root: str) -> str:
    """A qualifier: text, or a note's text and links (`SiteModel._note`)."""
    if isinstance(q, str):
        return escape(q)
    return "".join(link_html(p, root) if isinstance(p, Link) else escape(p) for p in q)


def fact_table_html(rows: list, root: str) -> Markup:
    """An entity's table of facts (a row per property, its values listed), as the `fact_table` macro of
    macros.html writes it."""
    out = ['<table class="facts">\n<tbody>\n']
    for r in rows:
        values = r.values
        cell = (value_html(values[0], root) if len(values) == 1
                else "<ul>" + "".join(f"<li>{value_html(v, root)}</li>" for v in values) + "</ul>")
        out.append(f'<tr><th scope="row">{escape(r.label)}</th><td>{cell}</td></tr>\n')
    out.append("</tbody>\n</table>")
    return Markup("".join(out))


_NONE: dict = {}
_ROOT = "\x00root\x00"  # stands for the path to the site root in a row rendered once for every page


def number_cell(v, decimals: int | None, weak: bool = False) -> str:
    """A quantity's cell in a systems table, sortable by its full value; `weak`: marked as resting on a copy,
    a blog or a shop only (the table's caption says what the mark means)."""
    if v is None:
        return '<td class="num"><span class="none">–</span></td>'
    mark = '<span class="weak-mark" title="its only source is a copy, a blog or a shop">*</span>' if weak else ""
    return f'<td class="num" data-sort="{escape(plain_number(v))}">{escape(plain_number(v, decimals))}{mark}</td>'


class SignedBytecodeCache(BytecodeCache):
    """The templates as jinja compiles them, kept in `.kb-cache/templates/` and signed as the other caches
    (kb/signing.py): jinja runs the code it loads from here, so a file this user's milkb did not write is
    ignored. jinja keys each by the template's name and file and checks a checksum of its source; here the
    checksum also covers what else the code is compiled from: the installed libraries (jinja's version among
    them), milkb's code (its filters may run as a template compiles) and the environment's settings, so code
    compiled otherwise (without autoescape, say) is compiled again. Compiling the templates took 0.07 s of
    each build and of each process rendering pages; loading them takes 0.004 s."""

    SETTINGS = ("block_start_string", "block_end_string", "variable_start_string", "variable_end_string",
                "comment_start_string", "comment_end_string", "line_statement_prefix", "line_comment_prefix",
                "trim_blocks", "lstrip_blocks", "newline_sequence", "keep_trailing_newline", "optimized",
                "is_async")

    def __init__(self, folder: Path):
        from ..store_cache import libraries

        self.folder = folder
        self.stamp = repr((libraries(), code_stamps()))

    def get_bucket(self, environment, name, filename, source):
        autoescape = environment.autoescape(name) if callable(environment.autoescape) else environment.autoescape
        made_with = repr((self.stamp, [getattr(environment, setting) for setting in self.SETTINGS], autoescape,
                          sorted(environment.extensions), environment.finalize is None))
        return super().get_bucket(environment, name, filename, f"{made_with}\0{source}")

    def load_bytecode(self, bucket) -> None:
        from ..signing import verified

        try:
            bucket.bytecode_from_string(verified((self.folder / f"{bucket.key}.code").read_bytes()))
        except (OSError, ValueError, EOFError, TypeError):
            pass  # compiled again

    def dump_bytecode(self, bucket) -> None:
        from ..files import write_atomically
        from ..signing import signed

        try:
            write_atomically(self.folder / f"{bucket.key}.code", signed(bucket.bytecode_to_string()), durable=False)
        except OSError:
            pass  # a read-only root: compiled again next time


class SiteWriter:
    """Renders templates into the build folder; every link in a page is relative to the page."""

    def __init__(self, kb: KnowledgeBase, work: Path | None, tracker: Tracker | None = None, lines=None,
                 links: Links | None = None):
        self.kb = kb
        self.work = work
        self.links = links  # of the reused files, made meanwhile (`Links`)
        self.model = SiteModel(kb, tracker)
        self.state: State | None = None  # the previous build's units, and this one's
        self._unit: tuple[list, list] | None = None  # (files as (path, size, mtime), pages) of the unit rendered
        self.loose: list[str] = []  # files written outside any unit (rendered on every build)
        self._folders: set = set()  # made in `work` so far, relative to it
        self._link_folders: dict[str, tuple[int, int]] = {}  # see `_link_folder`
        self._row_variants: dict = {}
        self._cells: dict = {}  # (type, value, decimals) -> its cell in a systems table
        self.date = build_date()
        self.pages: list[str] = []
        self.files = self.bytes = 0  # written so far (the report counts without walking the folder)
        templates = kb.config.root / "site_build" / "templates"
        # auto_reload off: a build reads each template once, not a stat of it for each of 10,000 pages
        self.env = Environment(loader=FileSystemLoader(templates), autoescape=select_autoescape(default=True),
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                               keep_trailing_newline=True, auto_reload=False,
                               bytecode_cache=SignedBytecodeCache(kb.config.cache_dir / "templates"))
        self.env.filters["markdown"] = lambda text: Markup(render_markdown(text or ""))
        self.env.filters["number"] = plain_number
        self.env.globals["link"] = link_html
        self.env.globals["value_html"] = value_html
        self.env.globals["fact_table_html"] = fact_table_html
        self.env.globals["system_rows"] = self.system_rows
        self.env.globals["system_row"] = self.system_row
        self._lines, self._ox = lines, None
        self.nt_dump: str | None = None  # the N-Triples dump, once this process has written it (`_downloads`)
        config = kb.config
        self.env.globals.update(site={
            "title": config.title, "license": config.license, "license_name": config.license_name or config.license,
            "base_url": config.base_url, "version": config.version, "date": self.date.isoformat(),
            "dataset_iri": config.dataset_iri,
        })

    def system_rows(self, rows: list[dict], columns: list[dict], root: str, show_category: bool) -> Markup:
        """The rows of a systems table, each a line: its name, category, origin and a cell per quantity column.

        Python rather than a template macro or loop, for the same reason as `link_html`: at 10,000 systems
        the index, category and comparison tables hold 75,000 rows (a macro took 3 s of the build, a call per
        row 30 us). The same system appears in many tables, at several depths of the site, so each variant of
        a row is made once, with a stand-in for the path to the site root put in for the whole table. The
        variants are kept in the row, and so for the next build with it (`keep_memos`)."""
        spec = (show_category, tuple(c["key"] for c in columns))
        key = self._row_variants.get(spec)
        if key is None:  # a variant is named by a string: each kept row is unpickled on its own (`Packed`), and
            # its 7 variants' names as tuples of tuples took 3/4 of that (0.3 s for 10,000 rows)
            columns_named = ",".join(spec[1])
            key = self._row_variants[spec] = ("1|" if show_category else "0|") + columns_named
        html = "".join([self._row_html(row, key, spec) for row in rows])
        return Markup(html.replace(_ROOT, root))

    def system_row(self, row: dict, columns: list[dict], root: str, show_category: bool) -> Markup:
        """One row of a systems table, without its line end: for templates that loop over the rows
        themselves (this one's before `system_rows`, which a knowledge base may have kept)."""
        return self.system_rows([row], columns, root, show_category)[:-1]

    def _row_html(self, row: dict, key: str, spec: tuple) -> str:
        variants = row.setdefault("html", {})
        html = variants.get(key)
        if html is None:
            show_category = spec[0]
            head = variants.get(show_category)  # the cells before the quantities, the same in every table
            if head is None:
                cells = [f'<tr><th scope="row" class="name">{link_html(row["link"], _ROOT)}</th>']
                if show_category:
                    cells.append(f'<td>{link_html(row["category"], _ROOT) if row["category"] else ""}</td>')
                cells.append(f'<td>{link_html(row["origin"], _ROOT) if row["origin"] else ""}</td>\n')
                head = variants[show_category] = "".join(cells)
            parts = [head]
            places = row.get("places", {})  # a figure converted from another unit: to its stated precision
            weak = row.get("weak", ())
            for k in spec[1]:
                v = row["values"][k]
                decimals, flagged = places.get(k), k in weak
                cell = self._cells.get((type(v), v, decimals, flagged))
                if cell is None:
                    cell = self._cells[type(v), v, decimals, flagged] = number_cell(v, decimals, flagged)
                parts.append(cell)
            parts.append("</tr>\n")
            html = variants[key] = "".join(parts)
        return html

    def keep_memos(self) -> None:
        """Start the model's memos (table rows, each category's systems) from those of the previous build
        that the change does not touch, and keep this build's for the next one."""
        m = self.model
        for name, cache in m.memos.items():
            cache.update(self.state.kept_memo(name))
        self.state.memos = m.memos
        m.tracker.kept = {id(cache): name for name, cache in m.memos.items()}

    def graph_lines(self) -> list[str]:
        """The graph's triples as sorted N-Triples lines, computed once per build, if at all: each entry's come
        with its mapping (kept in `.kb-cache/` with it), so only the ontology's are made here. What the dumps
        and the query page load, when they are made in full."""
        partial = getattr(self.kb.mapped, "kept_runs", None) is not None
        if partial and not isinstance(self._lines, list) and self.state is not None:
            self._lines = self.state.graph_lines() or self._lines  # after the edit path, the kept state holds the
            # unchanged entries' lines: they are not read again from the parse cache (all of its shards)
        if self._lines is None:  # the index itself, not the tracker: making the lines is not a read of a part
            self._lines = graph_lines(self.kb.mapped, self.kb.schema.ontology, self.model.tracker._index)
        elif callable(self._lines):
            self._lines = self._lines()
        return self._lines

    def graph_runs(self) -> dict[str, list[str]]:
        """The graph's N-Triples lines by what they come from (`export.graph_runs`): what the next build
        compares its graph with (`Change.between`), run by run, without sorting the whole graph's lines and
        cutting them by subject (0.3 s of a rebuild at 10,000 systems). All of them as one run when the graph
        is not the one the mapping made."""
        runs = graph_runs(self.kb.mapped, self.kb.schema.ontology, self.model.tracker._index, complete=False)
        return runs if runs is not None else {"": self.graph_lines()}

    def subject_lines(self, subject: str) -> list[str]:
        """The sorted N-Triples lines of `subject` (as N-Triples writes it) in the graph."""
        index, terms = self.model.tracker._index, {}
        s = URIRef(subject[1:-1])
        return sorted(nt_line((s, p, o), terms) for p, o in index.predicate_objects(s))

    def load_graph(self, store) -> None:
        """The graph into Oxigraph's `store`, its triples in the order of `graph_lines`: from the N-Triples dump
        this process has written, if it has (the same triples in that order), else from the lines. After a
        changed value at 10,000 systems the dump is there, put together from the previous one in 0.2 s, where
        the lines took 0.43 s to read from the kept state and sort."""
        if self.nt_dump is not None:
            load_lines(store, path=self.nt_dump)
        else:
            load_lines(store, self.graph_lines())

    def ox_graph(self) -> list:
        """The graph as Oxigraph triples in N-Triples order, parsed once for the dumps and the query page."""
        if self._ox is None:
            self._ox = parse_lines(self.graph_lines())
        return self._ox

    def absolute(self, path: str) -> str:
        base = self.kb.config.base_url
        if not base:
            return path
        return base + path if base.endswith("/") and _PLAIN_PATH.match(path) else urljoin(base, path)

    def _folder(self, path: str) -> None:
        """Make the folder of `path` (relative to the site) in `work` unless made already."""
        folder = os.path.dirname(path)
        if folder not in self._folders:
            os.makedirs(os.path.join(self.work, folder), exist_ok=True)
            self._folders.add(folder)

    def write(self, path: str, data: str | bytes) -> int:
        """Write `data` (text as UTF-8) to `path` in the site; its size in bytes."""
        return self.write_parts(path, [data.encode("utf-8") if isinstance(data, str) else data])

    def write_parts(self, path: str, parts: list, source=None) -> int:
        """Write to `path` in the site the bytes of `parts` one after the other: each bytes, or a `slice` of
        the open file `source` (a previous dump: copied by the kernel, `os.copy_file_range`, rather than read
        and written again by this process: 66 MB at 10,000 systems). Its size in bytes."""
        self._folder(path)
        # os.open and os.write rather than Path.write_bytes: 20 µs less a file, and a build writes 32,000
        target = os.path.join(self.work, path)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # written before by this build, or in the spare site it started from, where it
            os.unlink(target)  # may be a hard link to the site in place: a new file, never written over
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        size = 0
        try:
            for part in parts:
                if type(part) is slice:
                    _copy_range(source.fileno(), fd, part.start, part.stop)
                    size += part.stop - part.start
                else:
                    write_all(fd, part)
                    size += len(part)
            st = os.fstat(fd)  # what the kept state checks before the next build links the file
        finally:
            os.close(fd)
        self.files += 1
        self.bytes += size
        if self._unit is not None:
            self._unit[0].append((path, st.st_size, st.st_mtime_ns))
        else:
            self.loose.append(path)
        return size

    def page(self, template: str, path: str, root: str | None = None, **context) -> None:
        self.write(path, self.page_html(template, path, root, **context))
        self.pages.append(path)
        if self._unit is not None:
            self._unit[1].append(path)

    def page_html(self, template: str, path: str, root: str | None = None, **context) -> str:
        """The page at `path` in the site: `template` filled in with `context`, its links relative to it."""
        root = "../" * path.count("/") if root is None else root
        return self.render(template, root=root, path=path, canonical=self.absolute(path), **context)

    def render(self, template: str, **context) -> str:
        """Template `template` of the knowledge base's `site_build/templates`, filled in. A mistake in a
        template (they are the knowledge base's own) is a problem at its file and line, not a traceback."""
        try:
            return self.env.get_template(template).render(**context)
        except TemplateNotFound:  # an OSError: "cannot write the site to …: 'x.html' not found in search path …"
            raise
        except TemplateError as e:
            raise _template_problem(e, self.kb.config.root) from None

    # --- units of an incremental build (kb/site/incremental.py) ------------------------------

    def reused(self, key: str) -> bool:
        """Whether unit `key` is the same as in the previous build: then its files are linked from there, but
        for those the spare site this build started from holds as they are (`State.spare_files`)."""
        return self.reused_all([key])[0]

    def reused_all(self, keys: list[str]) -> list[bool]:
        """`reused` of each of `keys`, in one loop (32,000 files at 10,000 systems: kept lean)."""
        if self.state is None:
            return [False] * len(keys)
        add, folders = self.links.add, self._link_folders
        spare = self.state.spare_files or _NONE
        units, pages, done = self.state.units, self.pages, []
        for key, unit in zip(keys, self.state.reusable(keys)):
            done.append(unit is not None)
            if unit is None:
                continue
            for path, size, mtime in unit.files:
                if spare.get(path) != (size, mtime):
                    folder, _, name = path.rpartition("/")
                    add(folders.get(folder) or self._link_folder(path), name, path)
                self.bytes += size
            self.files += len(unit.files)
            pages.extend(unit.pages)
            units[key] = unit
            self.state.reused += 1
        return done

    def _link_folder(self, path: str) -> tuple[int, int]:
        """Descriptors of the folder of `path` in the previous site and in `work` (made if need be), opened
        once a build for the links into it; closed by `close`."""
        self._folder(path)
        folder = os.path.dirname(path)
        fds = self._link_folders[folder] = tuple(os.open(os.path.join(site, folder), os.O_RDONLY | os.O_DIRECTORY)
                                                 for site in (str(self.state.out), str(self.work)))
        return fds

    def close(self) -> None:
        for fds in self._link_folders.values():
            for fd in fds:
                os.close(fd)
        self._link_folders = {}

    @contextmanager
    def unit(self, key: str, whole_graph: bool = False):
        """Render unit `key`, recording what it reads and writes for the next build; `whole_graph`: it depends
        on all of the graph (or on every page), so any change renders it again."""
        self._unit = files, pages = [], []
        try:
            with self.model.tracker.capture() as reads:
                reads.everything = whole_graph
                yield
        finally:
            self._unit = None
        if self.state is not None:
            files = list({f[0]: f for f in files}.values())  # a path written twice: as it was written last
            self.state.units[key] = Unit(reads.keys(self.state.digests), files, pages)


def build_site(kb: KnowledgeBase, out: Path, *, search: bool = True, progress=None,
               lines=None, listing=None, previous=None,
               index_later: bool = False, keep=None) -> BuildReport:
    """Write the whole site into a new folder and swap it in place of `out` only when complete. `lines`: the
    graph's `export.graph_lines`, or a function giving them, when the caller has them; `listing`: the site
    now in `out`, its files with their size and modification time, when the caller has just found them, or
    a function giving them (`uptodate.unchanged`); `previous(state)` is called with the kept state (kb/site/incremental.py `State`)
    as soon as it is loaded: its `graph` names this build's graph, and its `change` (if there was a previous
    build) says how it differs from that build's graph, `kept_graph`. `index_later`: the pages are written as
    with the search index, but the index is made later, by another build: meanwhile the previous site's is
    kept as it is, if it has one (`kb serve` shows an edit, or a first site, at once and indexes it in the
    background; see kb/site/update.py). `keep(job)`: `job()` keeps the state the next build starts from, and
    sets the report's `listing`, once called (by default at once; kb/site/update.py: by a process of its own).

    Units of the site that no change since the previous build touches are hard-linked from it rather than
    rendered again (kb/site/incremental.py); the result is the same bytes as a build from scratch. A rebuild
    starts from the spare site, the one before the previous, when there is one: then only the files that
    differ from the previous site's are linked or written (kb/site/output.py `atomic_folder`)."""
    started = time.perf_counter()
    report = BuildReport(out=out)
    step = progress or (lambda name, done=0, total=0: None)
    out = out.resolve()
    index = kb.index
    kb.index = tracker = Tracker(index)  # every lookup of the graph while the site renders, recorded per unit
    w = None
    try:
        w = SiteWriter(kb, None, tracker, lines)
        t = time.perf_counter()
        w.state = State(kb, out, search, w.graph_runs(), listing)
        if w.state.change is None or w.state.change.everything:  # a build from scratch: the dumps, the
            w.graph_lines()  # query page and the query store load the lines, each in a child: made once here
        if previous is not None:
            previous(w.state)
        report.stamp = w.state.stamp
        w.keep_memos()
        report.timings["changes"] = time.perf_counter() - t
        with atomic_folder(out, w.state.spare) as building, Links(out, building.path) as links:
            w.work = work = building.path
            w.links = links
            t = time.perf_counter()
            start = partial(w.state.start_from, work, building.from_spare)
            # A rebuild renders few entity pages: the whole-graph parts start first, on the other CPU meanwhile
            # (before this process takes the spare: `start`), one after the other in one worker: the dumps,
            # put together from the previous ones, then the query page, which loads the graph from the new
            # N-Triples dump. A build from scratch: they start after the entity pages, as those take every CPU,
            # side by side.
            rebuild = w.state.change is not None and not w.state.change.everything
            whole = _whole_graph_parts(w, [("downloads", _downloads, True), ("queries.html", _query_page, False)],
                                       then=start if rebuild else None, chained=rebuild)
            with ExitStack() as meanwhile:
                if rebuild:
                    meanwhile.enter_context(whole)
                else:
                    start()
                _remove_tree(work / "static")  # (from the spare: copied afresh)
                shutil.copytree(kb.config.root / "site_build" / "static", work / "static")
                if kb.config.sparql_endpoint:  # the same editor as `kb serve`, for the queries page
                    shutil.copytree(Path(__file__).parent.parent / "editor" / "static" / "yasgui",
                                    work / "static" / "yasgui")
                entities = w.model.entities
                reused = w.reused_all([_entity_unit(w.model, iri) for iri in entities])
                todo = [iri for iri, kept in zip(entities, reused) if not kept]
                _entity_pages(w, todo, step)
                fault_point("entity-pages-written")
                report.timings["entity pages"] = time.perf_counter() - t
                t = time.perf_counter()
                if not rebuild:
                    meanwhile.enter_context(whole)
                _index_pages(w, search)
                _category_pages(w)
                _compare_pages(w)
                _vocabulary_page(w)
                report.timings["index pages"] = time.perf_counter() - t
                w.state.settle_memos()  # while the whole-graph parts run (without the CPUs for them, they
                # render after this and may add entries: `State.save` puts those in their kept form)
                t = time.perf_counter()
            _whole_graph_part(w, "publishing files", _publishing_files)  # the sitemap lists every page
            report.timings["dumps"] = time.perf_counter() - t  # what they took beyond the index pages
            fault_point("pages-written")
            links.finish()  # every file is in the new folder from here on
            _remove_tree(work / "pagefind")  # (from the spare: made or copied afresh)
            if building.from_spare:  # before the search index reads the pages
                _remove_stale(work, w.state, {*w.loose, *site_files(work / "static", prefix="static/")})
            if search and index_later:
                if (out / "pagefind").is_dir():
                    shutil.copytree(out / "pagefind", work / "pagefind", symlinks=True, copy_function=_link_or_copy)
                report.search_later = True
            elif search:
                step("search index")
                fault_point("search-index")
                t = time.perf_counter()
                _pagefind(work, kb.config.root / "site_build" / "templates")
                report.search_seconds = time.perf_counter() - t
            report.pages = len(w.pages)
            report.files, report.bytes = w.files, w.bytes
            report.units, report.reused = len(w.state.units), w.state.reused
            others = {}  # copied or written by others
            for folder in ("static", "pagefind"):
                if (work / folder).is_dir():
                    others.update(site_files(work / folder, prefix=f"{folder}/"))
            report.files += len(others)
            report.bytes += sum(size for size, _ in others.values())
            others.update((path, ((st := os.stat(work / path)).st_size, st.st_mtime_ns)) for path in w.loose)
            building.keep = w.state.worth_keeping()
            report.dump = dump_identity(work)  # the swap moves the folder: the files keep their identity
        state, spare = w.state, building.kept

        def keep_state() -> None:
            state.save()
            state.keep_spare(spare)
            # every file of the site with its size and modification time, as `uptodate.site_files` finds them
            report.listing = {path: (size, mtime) for unit in state.units.values() for path, size, mtime in unit.files}
            report.listing.update(others)

        (keep or _at_once)(keep_state)
    finally:
        kb.index = index
        if w is not None:
            w.close()
    report.seconds = time.perf_counter() - started
    return report


# --- entity pages ------------------------------------------------------------------------------


def _entity_pages(w: SiteWriter, todo: list, step) -> None:
    """The page (with its .ttl and .jsonld) of each entity in `todo`, shared out over the CPUs by forked
    workers: each inherits the model as it stands, writes its own pages and reports what it wrote."""
    w.links.start()  # the reused pages' files are linked meanwhile
    total = len(todo)
    jobs = _jobs(total)
    chunks = [(lo, min(lo + ENTITY_CHUNK, total)) for lo in range(0, total, ENTITY_CHUNK)]
    if jobs == 1:
        for lo, hi in chunks:
            _entity_chunk(w, todo[lo:hi])
            step("entity pages", hi, total)
        return
    with forked_pool(jobs, (w, todo)) as pool:
        for hi, done in pool.map(_forked_chunk, chunks):
            _merge(w, done)
            step("entity pages", hi, total)


def _done_since(w: SiteWriter, before: tuple, keys, memos: dict) -> tuple:
    """What a worker did since `before` (its writer's counts when it started): pages, files, bytes, the
    units `keys`, the entries of the kept memos it made and the dumps' offsets if it wrote the dumps, for
    `_merge` in the building process. The reads of new memo entries are made into digests here, in the
    worker: they cost the building process neither the conversion when it saves nor unpickling terms."""
    m = w.model
    # new keys, and entries made again in place of kept ones that could not be unpickled (`Tracker.memoised`)
    new_memos = {name: {k: w.state.digested(entry) for k, entry in cache.items() if memos[name].get(k) is not entry}
                 for name, cache in m.memos.items()}
    return (w.pages[before[0]:], w.files - before[1], w.bytes - before[2],
            {key: w.state.units[key] for key in keys}, new_memos,
            (w.state.offsets is not before[3], w.state.offsets))


def _started(w: SiteWriter) -> tuple:
    m = w.model
    return ((len(w.pages), w.files, w.bytes, w.state.offsets),
            {name: dict(cache) for name, cache in m.memos.items()})


def _merge(w: SiteWriter, done: tuple) -> None:
    pages, files, size, units, memos, (wrote, offsets) = done
    if wrote:  # the worker wrote the dumps
        w.state.offsets = offsets
    w.pages.extend(pages)
    w.files += files
    w.bytes += size
    w.state.units.update(units)
    for name, found in memos.items():
        cache = w.model.memos[name]
        for key, entry in found.items():  # one this process made meanwhile stays: it holds its rendered variants
            kept = cache.get(key)
            if kept is None or unreadable(kept):
                cache[key] = entry


ENTITY_CHUNK = 250


def _jobs(pages: int) -> int:
    """Worker processes for the entity pages: one per usable CPU (kb/workers.py), one for small sites."""
    if pages < 2 * ENTITY_CHUNK and not os.environ.get("MILKB_JOBS"):
        return 1
    return cpus()


def _forked_chunk(bounds: tuple[int, int]) -> tuple:
    w, todo = shared()
    before, memos = _started(w)
    rendered = todo[bounds[0]:bounds[1]]
    _entity_chunk(w, rendered)
    m = w.model
    for iri in rendered:  # their table rows too, here on every CPU rather than for the index pages in one
        if iri in m.system_concepts and iri not in m.row_cache:  # (a kept row is not unpickled for nothing)
            _system_row(m, iri)
    return bounds[1], _done_since(w, before, [_entity_unit(m, iri) for iri in rendered], memos)


def _entity_unit(m: SiteModel, iri) -> str:
    return f"id/{m.id_of(iri)}"


def _entity_chunk(w: SiteWriter, entities: list) -> None:
    m = w.model
    families = TreeNodeBuilder(m)
    for iri in entities:
        entity_id = m.id_of(iri)
        with w.unit(_entity_unit(m, iri)):
            template, context, turtle, jsonld = entity_page_parts(w, families, iri)
            w.write(f"id/{entity_id}.ttl", turtle)
            w.write(f"id/{entity_id}.jsonld", jsonld)
            w.page(template, f"id/{entity_id}.html", **context)


def entity_page_parts(w: SiteWriter, families: TreeNodeBuilder, iri) -> tuple[str, dict, str, str]:
    """What the files of entity `iri` are made from: its page's template and context, its Turtle and its
    JSON-LD (bench/run times this apart from the rendering and the writing)."""
    m = w.model
    triples = sorted_triples(entity_triples(w.kb.index, iri))
    jsonld = jsonld_text(triples)
    page = m.entity_page(iri, jsonld)
    family = families.family(iri) if iri in m.system_concepts else None
    if family is not None:
        root_iri, tree = family
        page.family = {"root": m.link(root_iri),
                       "svg": family_tree_svg(tree, f"Variant family of {m.labels[root_iri]}", "../")}
        variants = families.descendants(iri)
        if variants:  # (a family's leaves have none)
            page.variant_events = m.variant_events_of(iri, variants)
    template = "redirect.html" if page.replaced_by else "entity.html"
    script = Markup(jsonld.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    return template, {"e": page, "jsonld_script": script}, turtle_text(triples), jsonld


# --- index pages -------------------------------------------------------------------------------


def _system_row(m: SiteModel, s) -> dict:
    """The system's row in tables, comparisons and the CSV: computed once per build (and what it read
    counted for every unit that shows it)."""
    return m.tracker.memoised(m.row_cache, s, lambda: _compute_row(m, s))


def _compute_row(m: SiteModel, s) -> dict:
    category = m.g.value(s, KB.category)
    origin = m.g.value(s, KB.origin)
    notes = m.figure_notes(s)
    found = {key: m.value_and_places(s, p, via_armament=p == BORROWED, notes=notes) for key, p in _compare_keys(m)}
    row = {
        "link": m.link(s), "category": m.link(category) if category is not None else None,
        "origin": m.link(origin) if origin is not None else None,
        "values": {key: value for key, (value, _, _) in found.items()},
        # the decimals shown of a figure given in another unit: its stated precision (`stated_places`)
        "places": {key: places for key, (_, places, _) in found.items() if places is not None},
        "weak": [key for key, (_, _, weak) in found.items() if weak],  # resting on a copy, blog or shop only
    }
    row["csv"] = _csv_line([m.id_of(s), _cell(row["link"].text), _cell(row["category"].text) if row["category"] else "",
                            _cell(row["origin"].text) if row["origin"] else ""]
                           + ["" if v is None else str(v) if isinstance(v, URIRef) else plain_number(v)
                              for v in row["values"].values()] + [str(s), " ".join(row["weak"])])
    return row


def _csv_of(m: SiteModel, s) -> str:
    """The system's line of systems.csv: of a row kept from the previous build, the line kept beside it
    (`Packed.plain`), without unpickling the row. Not tracked as a use of the row: the downloads read the
    whole graph (`whole_graph`), so any change renders them again."""
    found = m.row_cache.get(s)
    if found is not None and type(found[0]) is Packed:
        return found[0].plain
    return _system_row(m, s)["csv"]


def _csv_line(cells: list[str]) -> str:
    """One line of systems.csv: made with the system's row, and so kept with it for the next build."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def _compare_keys(m: SiteModel) -> list[tuple[str, URIRef]]:
    """(YAML key, property) of the compared quantities, read from the ontology once per build."""
    if m.compare_keys is None:
        m.compare_keys = [(str(m.ontology.value(p, KB.yamlKey)), p) for p in COMPARE_PROPERTIES]
    return m.compare_keys


def _index_pages(w: SiteWriter, search: bool) -> None:
    m = w.model
    g = m.g
    kb = w.kb
    if not w.reused("index.html"):
        with w.unit("index.html"):
            # the systems under "component" are a kept list (a change of any other system's category reads
            # nothing here): not a category lookup per system, which cost every rebuild 0.2 s at 10,000
            weapon_systems = len(m.systems) - len(m.systems_in(KBC.component))
            entities = set(m.entities)
            counts = {kb.schema.class_label(c): len(entities.intersection(g.subjects(RDF.type, c)))
                      for c in kb.schema.classes.values()}
            top = [c for c in m.concepts if g.value(c, SKOS.broader) is None]
            w.page("index.html", "index.html", counts=counts, weapon_systems=weapon_systems, triples=len(g),
                   categories=_concept_tree(m, sorted(top, key=str)),
                   recent=sorted((m.event(e) for e in g.subjects(RDF.type, KB.Event)), key=latest_reported)[-5:][::-1])
    if not w.reused("systems.html"):
        with w.unit("systems.html"):
            rows = [_system_row(m, s) for s in m.systems]
            w.page("systems.html", "systems.html", rows=rows, columns=_columns(w, rows))

    if not w.reused("countries.html"):
        with w.unit("countries.html"):
            countries = []
            for c in sorted(g.subjects(RDF.type, KB.Country), key=lambda c: (m.labels.get(c, "").casefold(), str(c))):
                countries.append({"link": m.link(c), "designed": len(set(g.subjects(KB.origin, c))),
                                  "operates": len(set(g.subjects(KB.operator, c))),
                                  "organizations": len(set(g.subjects(KB.country, c)))})
            w.page("countries.html", "countries.html", countries=countries)

    if not w.reused("organizations.html"):
        with w.unit("organizations.html"):
            organizations = []
            for o in sorted(g.subjects(RDF.type, KB.Organization), key=lambda o: (m.labels.get(o, "").casefold(), str(o))):
                country = g.value(o, KB.country)
                organizations.append({"link": m.link(o), "country": m.link(country) if country is not None else None,
                                      "designed": len(set(g.subjects(KB.designer, o))),
                                      "manufactured": len(set(g.subjects(KB.manufacturer, o)))})
            w.page("organizations.html", "organizations.html", organizations=organizations)

    if not w.reused("events.html"):
        with w.unit("events.html"):
            events = sorted((m.event(e) for e in g.subjects(RDF.type, KB.Event)), key=event_order)
            w.page("events.html", "events.html", events=events)

    if not w.reused("sources.html"):
        with w.unit("sources.html"):
            sources = []
            for s in sorted(g.subjects(RDF.type, KB.Source), key=lambda s: (m.labels.get(s, "").casefold(), str(s))):
                citing = {e for e in g.subjects(DCTERMS.source, s) if m.id_of(e)}
                citing |= {URIRef(str(st).split("#")[0]) for st in g.subjects(DCTERMS.source, s) if "#" in str(st)}
                sources.append({"link": m.link(s), "publisher": str(g.value(s, DCTERMS.publisher) or ""),
                                "kind": m.source_kind(s)[0],
                                "url": safe_url(g.value(s, SCHEMA.url)), "published": str(g.value(s, DCTERMS.issued) or ""),
                                "cited_by": sorted((m.link(e) for e in citing if e in m.labels),
                                                   key=lambda l: (l.text.casefold(), l.href or ""))})
            w.page("sources.html", "sources.html", sources=sources)
    if not w.reused("names"):
        with w.unit("names"):
            for path, text in _names_files(m).items():
                w.write(path, text)
    for name in ("search.html", "404.html"):
        if not w.reused(name):
            with w.unit(name):
                # the host serves 404.html at any depth (/id/x/y): its links go from the site's root path
                root = (urlsplit(kb.config.base_url).path.rstrip("/") + "/") if name == "404.html" else None
                w.page(name, name, root=root, search_index=search)


NAMED_CLASSES = (KB.System, KB.Organization, KB.Country, KB.Place)  # what a misspelt query is matched against


def name_key(text: str) -> str:
    """A name as the search page compares it (search.js `nameKey`): "T-80", "t80" and "T 80" are one."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).lower()
                   if not c.isspace() and unicodedata.category(c)[0] not in "PZ")


def name_keys(text: str) -> set[str]:
    """The keys search.js matches a misspelt query against: the name's, and each of its words' of three letters
    or more ("M142 HIMARS": m142himars, m142, himars)."""
    whole = name_key(text)
    words = (name_key(w) for w in re.split(r"[\s\-–/]+", text))
    return {k for k in words if len(k) > 2} | ({whole} if whole else set())


def _names_files(m: SiteModel) -> dict[str, str]:
    """names/XXXX.json: the name, id (its page is id/ID.html) and other names of every system, organization,
    country and place, which the search page matches a query against when no page is named by it, allowing for
    typing errors ("hymars": HIMARS). One file per first letter of their keys (XXXX its code point in hex), listed
    in names/index.json: a query is only compared with keys of its own first letter, so the page reads one small
    file, not every name (at 10,000 systems 600 KB in one). Sources and events are left out: their names are
    titles, not what a reader misspells."""
    shards: dict[str, list] = {}
    for e in m.entities:
        if m.g.value(e, RDF.type) in NAMED_CLASSES:
            aliases = sorted({str(a) for a in m.g.objects(e, SKOS.altLabel)} - {m.labels[e]})
            page = {"n": m.labels[e], "i": m.id_of(e), "a": aliases}
            for first in {k[0] for name in (page["n"], *aliases) for k in name_keys(name)}:
                shards.setdefault(f"names/{ord(first):04x}.json", []).append(page)
    files = {path: json.dumps(sorted(pages, key=lambda n: (n["n"].casefold(), n["i"])), ensure_ascii=False,
                              separators=(",", ":")) + "\n"
             for path, pages in sorted(shards.items())}
    # which letters have a file: the page asks for no other (a missing file is an error in the browser's console)
    files["names/index.json"] = json.dumps([path[6:-5] for path in files]) + "\n"
    return files


def _columns(w: SiteWriter, rows) -> list[dict]:
    """The quantity columns that at least one of `rows` fills, with their units."""
    m = w.model
    columns = []
    for key, p in _compare_keys(m):
        if any(r["values"][key] is not None for r in rows):
            columns.append({"key": key, "label": str(m.ontology.value(p, RDFS.label)), "unit": m.unit_of(p)})
    return columns


def _concept_tree(m: SiteModel, concepts) -> list[dict]:
    return [{"link": m.link(c), "count": len(m.systems_in(c)), "children": _concept_tree(m, m.narrower(c))}
            for c in concepts]


def _category_pages(w: SiteWriter) -> None:
    m = w.model
    for concept in sorted(m.concepts, key=str):
        key = f"category/{concept_id(concept)}.html"
        if w.reused(key):
            continue
        with w.unit(key):
            systems = m.systems_in(concept)
            rows = [_system_row(m, s) for s in systems]
            timeline_items = [(int(r["values"]["in_service"]), r["link"].text, r["link"].href) for r in rows
                              if r["values"]["in_service"] is not None]
            timeline = timeline_svg(timeline_items, f"Entry into service: {m.concepts[concept]}", "../")
            w.page("category.html", key, concept=m.link(concept),
                   definition=str(m.g.value(concept, SKOS.definition) or ""),
                   broader_path=m.category_path(concept)[:-1], narrower=_concept_tree(m, m.narrower(concept)),
                   rows=rows, columns=_columns(w, rows), timeline=Markup(timeline),
                   compare=len(rows) >= 2)
    if not w.reused("categories.html"):
        with w.unit("categories.html"):
            top = [c for c in m.concepts if m.g.value(c, SKOS.broader) is None]
            w.page("categories.html", "categories.html", categories=_concept_tree(m, sorted(top, key=str)))


def _compare_pages(w: SiteWriter) -> None:
    """A comparison table for each category with at least two systems, and the list of them."""
    m = w.model
    concepts = sorted(m.concepts, key=lambda c: m.concepts[c])
    for concept in concepts:
        key = f"compare/{concept_id(concept)}.html"
        if w.reused(key):
            continue
        with w.unit(key):
            systems = m.systems_in(concept)
            if len(systems) >= 2:
                rows = [_system_row(m, s) for s in systems]
                w.page("compare.html", key, concept=m.link(concept), rows=rows, columns=_columns(w, rows))
    if not w.reused("compare/index.html"):
        with w.unit("compare/index.html"):
            listed = [{"link": m.link(c), "href": f"compare/{concept_id(c)}.html", "count": len(m.systems_in(c))}
                      for c in concepts if len(m.systems_in(c)) >= 2]
            w.page("compare-index.html", "compare/index.html", comparisons=listed)


_PLAIN_PATH = re.compile(r"^(?!.*\.\.)(?!.*/\./)[\w-][\w./-]*$")  # urljoin(base + "/", path) is base + path
QUERY_ROWS_SHOWN = 50  # of each saved query's answer on the queries page


def _query_page(w: SiteWriter) -> None:
    """Every saved query with its answer on this graph, run by Oxigraph; the answers are read as Oxigraph
    terms (turning 25,000 rows into rdflib terms took longer than the queries). Each answer is a memo kept
    for the next build, with what it read: after an edit only the queries that read the change run again, and
    the graph is loaded into a store only if one does (at 10,000 systems: 0.6 s to load, 0.8 s for all)."""
    m = w.model
    prefixes = dict({k: str(v) for k, v in PREFIXES.items()}, id=w.kb.config.base_iri)
    saved = saved_queries(w.kb.config.queries_dir)
    reads = saved_query_reads(saved, prefixes, w.kb.config.cache_dir)
    store = []  # the graph in an Oxigraph store, loaded for the first query that runs

    def answer(name: str, q) -> dict:
        import pyoxigraph as ox

        # what the answer depends on (the triples with the predicates of its patterns): it is kept by the
        # next build unless a changed triple has one of them (or a label it shows changed)
        m.tracker.named(None if reads[name] is None else [tag(kind, term) for kind, term in reads[name]])
        if not store:  # Oxigraph reads the graph itself: no Python object per triple
            store.append(ox.Store())
            w.load_graph(store[0])
        found = raw_query(store[0], q.text, name, prefixes)
        names = [v.value for v in found.variables] if isinstance(found, ox.QuerySolutions) else []
        cell = _QueryCell(m)  # one per answer: a label read for another answer is read again for this one
        rows, count = [], 0
        for row in (found if names else ()):
            count += 1
            if count <= QUERY_ROWS_SHOWN:  # the rest are counted, not shown
                rows.append([cell(row[n]) for n in names])
        return {"name": name, "description": q.description, "text": q.text, "vars": names, "rows": rows,
                "count": count}

    queries = [m.tracker.memoised(m.query_cache, name, lambda: answer(name, q)) for name, q in saved.items()]
    endpoint = w.kb.config.sparql_endpoint
    examples = json.dumps([{"name": q["name"], "text": q["text"]} for q in queries], ensure_ascii=False)
    w.page("queries.html", "queries.html", queries=queries, endpoint=endpoint,
           examples_json=Markup(examples.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")))


class _QueryCell:
    """A query answer's term as a table cell: numbers as the pages write them, entities as links."""

    def __init__(self, m: SiteModel):
        self.m = m
        self.cells: dict = {}

    def __call__(self, term) -> dict:
        import pyoxigraph as ox

        if term is None:
            return {"text": "", "href": None}
        found = self.cells.get(term)
        if found is None:
            if isinstance(term, ox.Literal):
                text = (plain_number(Decimal(term.value)) if term.datatype.value == str(XSD.decimal)
                        else term.value)
                found = {"text": text, "href": None}
            else:
                node = URIRef(term.value) if isinstance(term, ox.NamedNode) else BNode(term.value)
                link = self.m.link(node) if self.m.href(node) else None
                found = {"text": link.text if link else self.m.g.namespace_manager.normalizeUri(node),
                         "href": link.href if link else None}
            self.cells[term] = found
        return found


def _whole_graph_part(w: SiteWriter, key: str, write) -> None:
    """A part of the site that reads the whole graph (or lists every page): rendered again on any change."""
    if not w.reused(key):
        with w.unit(key, whole_graph=True):
            write(w)


def _at_once(job) -> None:
    job()


@contextmanager
def _whole_graph_parts(w: SiteWriter, parts: list, then=None, chained: bool = False):
    """Parts (key, write, whole_graph) that need nothing from the pages rendered inside the `with`, in forked
    workers meanwhile when there are CPUs for it: the query page (every saved query) and the downloads (the
    graph written four ways) take seconds each at 10,000 systems, as long as the index pages this process
    renders. Each in a worker of its own, or, if `chained`, one after the other in one worker, in their order
    (a later one may use what an earlier one made in that process). Without the CPUs, they are rendered here
    after the `with` block, in their order.

    A part that is not `whole_graph` (see `_whole_graph_part`) reads the graph by other means than the model
    (Oxigraph) and names what it reads itself (`Tracker.named`). `then()`, if given, is called once the
    workers are forked, before the parts kept from the previous build are linked (it is `State.start_from`,
    which they need, and the workers do not)."""
    kept = w.state.reusable([key for key, _, _ in parts]) if w.state is not None else [None] * len(parts)
    todo = [part for part, unit in zip(parts, kept) if unit is None]

    def reuse() -> None:
        if then is not None:
            then()
        w.reused_all([key for (key, _, _), unit in zip(parts, kept) if unit is not None])

    if not todo or _jobs(len(w.model.entities)) < 2:
        reuse()
        yield
        for key, write, whole_graph in todo:
            with w.unit(key, whole_graph=whole_graph):
                write(w)
        return
    groups = [todo] if chained else [[part] for part in todo]
    with forked_pool(min(len(groups), cpus()), (w, groups)) as pool:
        done = pool.map(_forked_parts, range(len(groups)))  # the workers are forked now, with the model as it is
        reuse()
        yield
        for part in done:
            _merge(w, part)


def _forked_parts(i: int) -> tuple:
    w, groups = shared()
    before, memos = _started(w)
    for key, write, whole_graph in groups[i]:
        with w.unit(key, whole_graph=whole_graph):
            write(w)
    return _done_since(w, before, [key for key, _, _ in groups[i]], memos)


def _vocabulary_page(w: SiteWriter) -> None:
    m = w.model
    top = [c for c in m.concepts if m.g.value(c, SKOS.broader) is None]
    w.page("vocabulary.html", "vocabulary.html", vocab=m.vocabulary(),
           categories=_concept_tree(m, sorted(top, key=str)))


# --- downloads and publishing files --------------------------------------------------------------


def _downloads(w: SiteWriter) -> None:
    kb, m = w.kb, w.model
    files = []
    sources: dict = {}  # the previous dump files, open while the new ones are written from them
    try:
        dumps = _dumps(w, sources)
        for name, fmt, label in DUMPS:
            files.append({"name": name, "label": label, "size": w.write_parts(name, dumps[fmt], sources.get(fmt))})
            if fmt == "nt":
                w.nt_dump = os.path.join(w.work, name)
    finally:
        for source in sources.values():
            source.close()
    columns = _systems_columns(m)
    table = _csv_line([c["name"] for c in columns]) + "".join(_csv_of(m, s) for s in m.systems)
    files.append({"name": "systems.csv", "label": "CSV (systems table)", "size": w.write("systems.csv", table)})
    metadata = _csvw(kb, "systems.csv", "milkb systems table", columns)
    files.append({"name": "systems.csv-metadata.json", "label": "CSVW metadata of systems.csv (columns, units)",
                  "size": w.write("systems.csv-metadata.json", metadata)})
    events = _events_csv(m)
    files.append({"name": "events.csv", "label": "CSV (reported events)", "size": w.write("events.csv", events)})
    void = _void(w, files)
    w.write("void.ttl", void)
    files.append({"name": "void.ttl", "label": "VoID description", "size": len(void.encode())})
    w.page("downloads.html", "downloads.html", files=files, triples=len(kb.index), entities=len(m.entities),
           columns=columns)


def _systems_columns(m: SiteModel) -> list[dict]:
    """The columns of systems.csv, in order, each with its datatype, unit and meaning: the figures' from the
    ontology (label, comment, range, unit), so that a new compared quantity documents itself."""
    def plain(name, meaning, datatype="string", separator=None):
        return {"name": name, "meaning": meaning, "datatype": datatype, "unit": "", "property": None,
                "separator": separator}

    columns = [plain("id", "The entry's id (its page is id/ID.html)."), plain("name", "The system's name."),
               plain("category", "Its category, by name."), plain("origin", "Its country of origin, by name.")]
    for key, p in _compare_keys(m):
        meaning = str(m.ontology.value(p, RDFS.comment) or "")
        borrowed = p == BORROWED  # not always the system's own kb:caliber: no propertyUrl
        if borrowed:
            meaning += " The main weapon's, for a system that gives none of its own."
        datatype = m.ontology.value(p, RDFS.range)
        columns.append({"name": key, "meaning": meaning,
                        "datatype": str(datatype).rpartition("#")[2] if datatype is not None else "string",
                        "unit": m.unit_of(p), "property": None if borrowed else str(p), "separator": None})
    columns.append(plain("iri", "The system's IRI.", "anyURI"))
    columns.append(plain("weak_only", "The columns of this row whose figure rests only on weak sources (a copy, "
                                      "a blog or a shop), separated by spaces; the tables mark them with *.",
                         separator=" "))
    return columns


def _csvw(kb: KnowledgeBase, name: str, title: str, columns: list[dict]) -> str:
    """W3C CSV on the Web metadata of the CSV file `name`: what each column holds, its datatype and unit, and the
    vocabulary property a figure column gives, so that a tool reading the table knows 46 is in tonnes."""
    def column(c):
        found = {"name": c["name"], "titles": c["name"], "datatype": c["datatype"],
                 "dc:description": c["meaning"] + (f" Unit: {c['unit']}." if c["unit"] else "")}
        if c["property"]:
            found["propertyUrl"] = c["property"]
        if c["separator"]:
            found["separator"] = c["separator"]
        return found

    metadata = {"@context": "http://www.w3.org/ns/csvw", "url": name, "dc:title": title}
    if kb.config.license:
        metadata["dc:license"] = {"@id": kb.config.license}
    metadata["tableSchema"] = {"columns": [column(c) for c in columns], "primaryKey": "id", "aboutUrl": "{+iri}"}
    return json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"


def _events_csv(m: SiteModel) -> str:
    """events.csv: a line per reported event in the order of the timeline, with the ids of what it links
    (systems, actor, place, sources: space-separated) and the actor's role for its action (`lost by`)."""
    g = m.g
    events = sorted(((m.event(e), e) for e in g.subjects(RDF.type, KB.Event)), key=lambda pair: event_order(pair[0]))

    def ids(nodes) -> str:
        return " ".join(sorted(filter(None, (m.id_of(n) for n in nodes))))

    out = [_csv_line(["id", "name", "date", "reported", "action", "evidence", "actor", "actor_role", "systems",
                      "weapons", "place", "place_latitude", "place_longitude", "sources", "iri"])]  # the place's
    for ev, e in events:
        lat, lon = ev["coordinates"] or ("", "")
        out.append(_csv_line([ev["id"], _cell(ev["name"]), ev["date"], ev["reported"], ev["action"], ev["evidence"],
                              ids([g.value(e, KB.actor)]), ev["actor_label"] if ev["actor"] else "",
                              ids(g.objects(e, KB.involves)), ids(g.objects(e, KB.weapon)), ids([g.value(e, KB.place)]),
                              str(lat), str(lon),
                              ids(g.objects(e, DCTERMS.source)), str(e)]))
    return "".join(out)


def _dumps(w: SiteWriter, sources: dict) -> dict[str, list]:
    """The whole graph in each dump format, put together from one piece per subject (`export.dump_pieces`):
    the pieces of the subjects none of whose triples changed since the last build are where they were in that
    build's dump files (`State.kept_dumps`), and only the triples of the others are written again (all of
    them in a first build). The result is the same text as writing the whole graph at once
    (`tests/test_lines.py`). By format, its parts (`_assemble`); `sources` gets by format the previous dump
    file they cut slices of, open (the caller closes it)."""
    names = {fmt: name for name, fmt, _ in DUMPS}
    files, kept = w.state.kept_dumps("downloads", [names[fmt] for fmt in DUMP_FORMATS]) or ([], None)
    sources.update(zip(DUMP_FORMATS, files))
    if kept is not None and kept.keys() != set(DUMP_FORMATS):
        kept = None
    if kept is not None:  # the changed subjects still in the graph are written again, the others kept
        changed = {s: found for s in w.state.change.subjects if (found := w.subject_lines(s))}
        todo = sorted(changed, key=_line_order)  # the order of the lines, in which Oxigraph writes them
        triples = parse_lines([line for s in todo for line in changed[s]])
    else:
        todo = list(dict.fromkeys(line[:line.index(" ")] for line in w.graph_lines()))
        triples = w.ox_graph()
    frames = {fmt: dump_frame(fmt) for fmt in DUMP_FORMATS}
    try:
        cut = {fmt: dict(zip(todo, dump_pieces(oxigraph_serialize(triples, fmt), fmt, frames[fmt]), strict=True))
               if todo else {} for fmt in DUMP_FORMATS if fmt != "jsonld"}  # none: only subjects removed
        cut["jsonld"] = {f"<{iri}>": piece for iri, piece in jsonld_pieces(triples).items()}
        if cut["jsonld"].keys() != cut["nt"].keys():
            raise ValueError("not one JSON-LD node per subject")
    except ValueError:  # Oxigraph wrote something unforeseen: write the whole graph, keep no pieces
        w.state.offsets = Packed.of({})
        return {fmt: [(jsonld_text(w.ox_graph()) if fmt == "jsonld" else oxigraph_serialize(w.ox_graph(), fmt))
                      .encode("utf-8")] for fmt in DUMP_FORMATS}
    dumps, offsets, orders = {}, {}, {}
    for fmt in DUMP_FORMATS:
        order = _node_order if fmt == "jsonld" else _line_order  # JSON-LD's nodes by @id
        dumps[fmt], (subjects, starts, ends) = _assemble(frames[fmt], cut[fmt], order,
                                                         kept[fmt] if kept is not None else None, w.state.change)
        shared = orders.setdefault(order, subjects)  # the formats in line order keep one list of subjects
        offsets[fmt] = (shared if shared == subjects else subjects, starts, ends)
    # pickled here, in the worker that wrote the dumps: the building process hands them on to the kept state
    # as they are (at 10,000 systems, 0.04 s to unpickle them there and 0.02 s to pickle them again)
    w.state.offsets = Packed.of(offsets)
    return dumps


def _line_order(s: str) -> str:
    return s + " "


def _node_order(s: str) -> str:
    return s[1:-1]


def _assemble(frame: tuple[str, str, str], new: dict[str, str], order, kept: tuple | None,
              change) -> tuple[list, tuple]:
    """One dump, as the parts it is made of (`_joined`), and where each subject's piece is in it: (subjects in
    order, starts, ends).

    Its pieces are those of `new` (by subject), and, when the previous dump is `kept` (its subjects in order,
    starts, ends), those of its subjects that the `change` did not touch, each run of them between two changes
    taken as one `slice` of the previous dump and their offsets moved by one number each (C loops: at 10,000
    systems, 18,500 subjects in 4 dumps, a loop of Python per subject took 0.2 s of every rebuild). Subjects
    are in `order` (a key). Bytes, not text: 66 MB of dumps are neither decoded nor encoded again, nor even
    read (`SiteWriter.write_parts`)."""
    header, separator, footer = (part.encode("utf-8") for part in frame)
    pieces = {s: piece.encode("utf-8") for s, piece in new.items()}
    subjects, starts, ends, chunks = [], array("q"), array("q"), []
    at = len(header)

    def put(s: str) -> None:
        nonlocal at
        piece = pieces[s]
        subjects.append(s)
        starts.append(at)
        ends.append(at + len(piece))
        chunks.append(piece)
        at += len(piece) + len(separator)

    def keep(a: int, b: int) -> None:  # the previous dump's subjects a to b - 1, as they are there
        nonlocal at
        old_subjects, old_starts, old_ends = kept
        moved = at - old_starts[a]
        subjects.extend(old_subjects[a:b])
        starts.extend(map(moved.__add__, old_starts[a:b]))
        ends.extend(map(moved.__add__, old_ends[a:b]))
        chunks.append(slice(old_starts[a], old_ends[b - 1]))
        at += old_ends[b - 1] - old_starts[a] + len(separator)

    if kept is None:
        for s in sorted(pieces, key=order):
            put(s)
    else:
        old_subjects = kept[0]
        place = dict(zip(old_subjects, range(len(old_subjects))))
        keys = [order(s) for s in old_subjects] if pieces.keys() - place.keys() else None  # for added subjects
        # each new piece goes before the previous dump's subject at its place there (a changed subject's own
        # place); each changed subject of the previous dump is left out there
        events = sorted([(place[s] if s in place else bisect_left(keys, order(s)), 0, order(s), s) for s in pieces]
                        + [(place[s], 1, "", s) for s in change.subjects if s in place])
        done = 0  # the previous dump's subjects before this one are placed
        for index, dropped, _, s in events:
            if index > done:
                keep(done, index)
                done = index
            if dropped:
                done = index + 1
            else:
                put(s)
        if done < len(old_subjects):
            keep(done, len(old_subjects))
    parts = [header]
    for chunk in chunks:
        parts += (chunk, separator)
    parts[-1:] = [footer] if chunks else [header, footer]
    return parts, (subjects, starts, ends)


def _joined(parts: list, old: bytes) -> bytes:
    """The dump `_assemble` gives as `parts`, its slices cut from the previous dump `old`."""
    return b"".join(old[part] if type(part) is slice else part for part in parts)


def _copy_range(source: int, target: int, start: int, stop: int) -> None:
    """Append bytes `start` to `stop` of file `source` to file `target` (descriptors, `target` at its end): by
    the kernel where it can (`os.copy_file_range`), else read and written."""
    copy = getattr(os, "copy_file_range", None)
    while start < stop:
        done = 0
        if copy is not None:
            try:
                done = copy(source, target, stop - start, start)
            except OSError:  # (not on this file system)
                copy = None
        if not done:  # (or the kernel copied nothing: read and write, which tells the end of the file)
            data = os.pread(source, min(stop - start, 1 << 24), start)
            if not data:
                raise OSError(errno.EIO, "the previous dump is shorter than the offsets kept of it")
            write_all(target, data)
            done = len(data)
        start += done


def _cell(text: str) -> str:
    """A name as a CSV cell that a spreadsheet shows as text: one starting with = + - @ (or a tab or CR) would
    be read as a formula, so it gets a leading apostrophe (the OWASP advice for CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _void(w: SiteWriter, files) -> str:
    kb = w.kb
    g = Graph()
    g.bind("void", VOID)
    g.bind("dcterms", DCTERMS)
    g.bind("owl", OWL)
    ds = URIRef(kb.config.dataset_iri)
    g.add((ds, RDF.type, VOID.Dataset))
    g.add((ds, DCTERMS.title, Literal(kb.config.title, lang="en")))
    if kb.config.license:
        g.add((ds, DCTERMS.license, URIRef(kb.config.license)))
    g.add((ds, DCTERMS.modified, Literal(w.date.isoformat(), datatype=XSD.date)))
    g.add((ds, OWL.versionInfo, Literal(kb.config.version)))
    g.add((ds, VOID.triples, Literal(len(kb.index), datatype=XSD.integer)))
    g.add((ds, VOID.entities, Literal(len(w.model.entities), datatype=XSD.integer)))
    g.add((ds, VOID.uriSpace, Literal(kb.config.base_iri)))
    g.add((ds, VOID.vocabulary, URIRef(str(KB._NS))))
    for f in files:
        if f["name"].startswith("milkb."):
            g.add((ds, VOID.dataDump, URIRef(w.absolute(f["name"]))))
    return export_graph(g, "turtle")


def _publishing_files(w: SiteWriter) -> None:
    kb = w.kb
    base_path = "/" + kb.config.base_url.split("://", 1)[-1].split("/", 1)[-1] if kb.config.base_url else "/"
    base_path = base_path if base_path.endswith("/") else base_path + "/"
    urls = "".join(f"  <url><loc>{w.absolute(p)}</loc></url>\n" for p in sorted(w.pages) if p != "404.html")
    w.write("sitemap.xml", '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n' + urls + "</urlset>\n")
    w.write("robots.txt", f"User-agent: *\nAllow: /\nSitemap: {w.absolute('sitemap.xml')}\n")
    w.write(".htaccess", w.render("htaccess.txt", base_path=base_path))
    w.write("nginx.conf", w.render("nginx.conf.txt", base_path=base_path))


def _remove_tree(folder: Path) -> None:
    """Remove `folder` if it is there; any other failure is raised (a file left in it could be a hard link to
    the site in place, which the build would then write over)."""
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        pass


def _remove_stale(work: Path, state: State, others) -> None:
    """Remove from a build folder started from the spare site the files in it that this build did not write
    or link (a page gone, a file a unit no longer writes, a file put there by hand), and the folders they
    leave empty. `others`: the paths of the files written outside the units."""
    made = {path for unit in state.units.values() for path, _, _ in unit.files}
    folders = set()
    for path in state.spare_names - made - set(others):
        try:
            os.unlink(work / path)
        except FileNotFoundError:  # (in pagefind/, made afresh)
            pass
        folders.add(os.path.dirname(path))
    for folder in sorted(folders, key=len, reverse=True):
        while folder:
            try:
                os.rmdir(work / folder)
            except OSError:  # not empty
                break
            folder = os.path.dirname(folder)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # a filesystem without hard links
        shutil.copy2(source, target)


def _pagefind(work: Path, templates: Path) -> None:
    """The client-side search index, written into the new version before the swap. Pagefind indexes only the
    pages with a `data-pagefind-body` element when any has one: when the only template that writes one is
    entity.html (the entity pages, `id/*.html`), pagefind reads only those, not the index and table pages (a
    fifth of its time at 10,000 systems: 11.1 s instead of 14.3 s, the same index)."""
    marked = {p.name for p in templates.rglob("*") if p.is_file() and b"data-pagefind-body" in p.read_bytes()}
    pages = ["--glob", "id/*.html"] if marked == {"entity.html"} else []
    result = subprocess.run([sys.executable, "-m", "pagefind", "--site", str(work), "--output-subdir", "pagefind",
                             "--silent", *pages], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pagefind failed: {result.stderr.strip() or result.stdout.strip()}")
