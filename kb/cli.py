"""The `kb` command line: parses arguments, calls the library, prints, exits. No logic of its own."""
from __future__ import annotations

import functools
import gc
import os
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from .problems import KBError, Problem, UsageError

app = typer.Typer(
    help="milkb: an open military-equipment knowledge base. YAML entries → validated RDF graph → SPARQL.",
    no_args_is_help=True, add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _Console:
    """rich's Console, made when first used: importing rich takes 45 ms, which `kb query --format csv` (a
    fresh process for each query) does without."""

    def __init__(self, **options):
        self._options, self._console = options, None

    @property
    def real(self):
        """The Console itself, for rich code that uses it as more than its attributes (rich's progress bar
        enters it as a context manager, which looks on the type, not through `__getattr__`)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name):
        return getattr(self.real, name)


# Piped output is not wrapped at 80 columns, so tables stay one row per line for other programs.
out = _Console(highlight=False, soft_wrap=True, markup=False, emoji=False,
               width=None if sys.stdout.isatty() else 100_000)
err = _Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


def _import_rich_meanwhile() -> None:
    """Import what printing a table needs (40 ms) in a thread, while this one waits on Oxigraph, which lets
    go of the GIL while it opens a store or answers a query. Measured at 10,000 systems: `kb show` and
    `kb query` print a table about 20 ms sooner (of about 0.27 s)."""
    import threading

    def load():
        import rich.console  # noqa: F401
        import rich.table  # noqa: F401

    threading.Thread(target=load, daemon=True).start()


def Text(*args, **kwargs):
    """rich's Text, imported when first used (see _Console)."""
    from rich.text import Text

    return Text(*args, **kwargs)


def Table(*args, **kwargs):
    """rich's Table, imported when first used (see _Console)."""
    from rich.table import Table

    return Table(*args, **kwargs)
_state: dict = {"root": None}


def _print_table(table: Table) -> None:
    """Print a table without the padding rich adds at the end of each line."""
    with out.capture() as captured:
        out.print(table)
    sys.stdout.write("\n".join(line.rstrip() for line in captured.get().splitlines()) + "\n")
    sys.stdout.flush()


def _report(problems: list[Problem]) -> None:
    for p in problems:
        err.print(Text(p.format()))


def command(func):
    """Turn library errors into messages and exit codes, in this one place.

    The cyclic garbage collector is off while a command runs: it would scan the whole graph again and
    again as the millions of objects of a large knowledge base are made (a third of a rebuild's time at
    10,000 systems), and a command that runs to completion makes almost no cyclic garbage (its peak
    memory is the same). `kb serve`, which runs for days, turns it back on."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        collecting = gc.isenabled()
        gc.disable()
        try:
            return func(*args, **kwargs)
        except KBError as e:
            _report(e.problems)
            errors = [p for p in e.problems if p.severity == "error"]
            if len(errors) > 1:
                err.print(Text(f"{len(errors)} problems"))
            raise typer.Exit(1)
        except UsageError as e:
            err.print(Text(f"error: {e}"))
            raise typer.Exit(2)
        except BrokenPipeError as e:
            if not _reader_gone():  # a server or a worker that went away: say so
                raise _fail(_os_reason(e))
            raise typer.Exit(_quiet_stdout())
        except OSError as e:  # a full disk, a read-only folder, a file gone: say which, no traceback
            raise _fail(_os_reason(e))
        finally:
            if collecting:
                gc.enable()

    return wrapper


def _reader_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (`kb query … | head`)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
    except (AttributeError, ValueError, OSError):  # no standard output (`kb … >&-`), or no poll here
        return False
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _quiet_stdout() -> int:
    """Point standard output at /dev/null, so that what is still buffered for a closed pipe is dropped
    quietly; the exit status then, 1, as rich's Console and Python's documentation end on EPIPE."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)
    return 1


def _fail(message: str) -> typer.Exit:
    err.print(Text(f"error: {message}"))
    return typer.Exit(1)


def _os_reason(e: OSError) -> str:
    """What failed and where (`No space left on device: /site/x.html`), not Python's `[Errno 28] …`."""
    reason = e.strerror or f"{type(e).__name__}: {e}"
    return f"{reason}: {e.filename}" if e.filename else reason


def _root() -> Optional[Path]:
    return _state["root"]


def _kept(kb):
    """`kb`, referenced until the process ends: `run()` leaves by os._exit, and freeing a large graph object
    by object when the command returns takes longer than that (1.3 s at 10,000 systems)."""
    _state["kb"] = kb
    return kb


def _kb(shacl: bool = False):
    from .knowledge_base import load_valid_kb

    return _kept(load_valid_kb(_root(), shacl=shacl))


def _saved_kb():
    from .knowledge_base import saved_kb

    return _kept(saved_kb(_root()))


@app.callback()
def main(root: Optional[Path] = typer.Option(None, "--root", help="Knowledge-base root (the folder holding kb.toml); "
                                             "default: found upwards from the current folder.")):
    if root is not None and not (root / "kb.toml").is_file():
        err.print(Text(f"error: {root} is not a knowledge base (no kb.toml there)"))
        raise typer.Exit(2)
    _state["root"] = root.resolve() if root else None


@app.command()
@command
def validate():
    """Check every entry; print each problem as path:line: message. Exit 1 if there is any."""
    from .knowledge_base import open_kb

    started = time.perf_counter()
    kb = _kept(open_kb(_root()))
    _report(kb.problems)
    if kb.errors:
        err.print(Text(f"{len(kb.errors)} problem{'s' if len(kb.errors) != 1 else ''} in {len(kb.entries)} entries"))
        raise typer.Exit(1)
    out.print(Text(f"ok: {len(kb.entries)} entries, {len(kb.index)} triples, no problems "
                   f"({time.perf_counter() - started:.2f} s)"))


class ShowFormat(str, Enum):
    text = "text"
    json = "json"
    turtle = "turtle"


@app.command()
@command
def show(name: str = typer.Argument(..., help="An id, name or alias (any script, any case)."),
         format: ShowFormat = typer.Option(ShowFormat.text, "--format", "-f", help="text, json (JSON-LD) or turtle.")):
    """Show one entity: its facts with units and resolved names, its sources and incoming links."""
    from .config import find_root, load_config
    from .store_cache import on_current_store

    if format == ShowFormat.text:
        _import_rich_meanwhile()

    def work(saved):
        from .describe import describe, pick_entity

        iri = pick_entity(saved, name)
        if format == ShowFormat.text:
            return describe(saved.store, saved.prefixes, saved.summary, iri)
        from rdflib import URIRef

        from .entity import entity_triples
        from .export import export_graph, jsonld, sorted_triples
        from .oxstore import StoreView

        triples = entity_triples(StoreView(saved.store), URIRef(iri))
        return export_graph(triples, "turtle") if format == ShowFormat.turtle else jsonld(sorted_triples(triples))

    d = on_current_store(load_config(_root() or find_root()), _kb, work)
    if isinstance(d, str):
        out.print(Text(d), end="" if format == ShowFormat.turtle else "\n")
        return
    out.print(Text().append(d.name, "bold").append(f"  ({d.id}) — {d.cls}"))
    out.print(Text(d.iri, style="dim"))
    table = Table(show_header=False, box=None, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column(style="cyan", no_wrap=True)
    table.add_column()
    for fact in d.facts:
        table.add_row(fact.label, _values_text(fact.values))
    if d.incoming:
        table.add_row("", "")
        for fact in d.incoming:
            table.add_row(fact.label, _values_text(fact.values))
    _print_table(table)


def _values_text(values) -> Text:
    text = Text()
    for i, v in enumerate(values):
        if i:
            text.append("\n")
        text.append(v.text)
        if v.link and v.link != v.text:
            text.append(f" ({v.link})", style="dim")
        if v.qualifiers:
            text.append(" [" + "; ".join(v.qualifiers) + "]", style="dim")
    return text


@app.command()
@command
def search(text: str = typer.Argument(..., help="Words to look for in names, aliases and descriptions."),
           limit: int = typer.Option(20, help="Show at most this many.")):
    """Find entities by name, alias or description, best match first."""
    from rdflib.namespace import RDF

    from .lookup import label_of, search as run_search

    kb = _saved_kb()
    matches = run_search(kb, text, limit)
    if not matches:
        err.print(Text(f"nothing matches `{text}`"))
        raise typer.Exit(1)
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0))
    for column in ("id", "name", "class", "matched"):
        table.add_column(column)
    for m in matches:
        cls = kb.index.value(m.iri, RDF.type)
        table.add_row(kb.id_of(m.iri), label_of(kb, m.iri), kb.schema.class_label(cls), m.why)
    _print_table(table)


class QueryFormat(str, Enum):
    table = "table"
    csv = "csv"
    tsv = "tsv"
    json = "json"
    xml = "xml"
    turtle = "turtle"
    nt = "nt"
    jsonld = "jsonld"


@app.command()
@command
def query(text: Optional[str] = typer.Argument(None, help="The SPARQL query (prefixes kb:, kbc:, skos:, dcterms:, schema:, geo:, … and id: for entities are pre-bound)."),
          file: Optional[Path] = typer.Option(None, "--file", "-f", help="Read the query from this file."),
          saved: Optional[str] = typer.Option(None, "--saved", "-s", help="Run queries/NAME.rq."),
          format: QueryFormat = typer.Option(QueryFormat.table, "--format", help="table, or a W3C result format: "
                                             "csv, tsv, json, xml; CONSTRUCT/DESCRIBE: turtle, nt, jsonld.")):
    """Ask the knowledge base a SPARQL question."""
    from .config import find_root, load_config
    from .query import saved_queries

    given = [x for x in (text, file, saved) if x is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of: a query, --file FILE, --saved NAME")
    origin = "query"
    if file is not None:
        try:
            text, origin = file.read_text(encoding="utf-8"), str(file)
        except OSError as e:
            raise UsageError(f"cannot read {file}: {e.strerror}")
    config = load_config(_root() or find_root())
    if saved is not None:
        queries = saved_queries(config.queries_dir)
        if saved not in queries:
            from .problems import did_you_mean
            raise UsageError(f"no saved query `{saved}` in queries/"
                             + (f" — {did_you_mean(saved, queries)}" if did_you_mean(saved, queries) else
                                f" (saved: {', '.join(queries) or 'none'})"))
        text, origin = queries[saved].text, f"queries/{saved}.rq"
    from .store_cache import on_current_store

    def work(saved):
        if format == QueryFormat.table:
            _import_rich_meanwhile()
        return _answer(saved.store, text, origin, saved.prefixes, format.value)

    on_current_store(config, _kb, work)()
    sys.stdout.flush()


def _answer(store, text: str, origin: str, prefixes: dict[str, str], fmt: str):
    """`text` answered on `store` (errors raised now), and a function that prints the answer in `fmt`."""
    from .store_cache import raw_query

    answer = raw_query(store, text, origin, prefixes)
    kind = type(answer).__name__  # QuerySolutions (SELECT), QueryBoolean (ASK), QueryTriples
    if kind == "QueryTriples":
        if fmt in ("csv", "tsv", "json"):
            raise UsageError(f"--format {fmt} is for SELECT/ASK; use turtle, nt, jsonld or xml")
        from .oxstore import _result
        from .query import serialize_result

        written = serialize_result(_result(answer), "turtle" if fmt == "table" else fmt)
        return lambda: sys.stdout.write(written)
    if fmt == "table":
        if kind == "QueryBoolean":
            yes = bool(answer)
            return lambda: out.print("yes" if yes else "no")
        names, rows = [v.value for v in answer.variables], list(answer)
        return lambda: _print_results(names, rows, prefixes)
    if fmt not in ("csv", "tsv", "json", "xml"):
        raise UsageError(f"--format {fmt} is for CONSTRUCT/DESCRIBE; use csv, tsv, json or xml")
    import pyoxigraph as ox

    formats = {"csv": ox.QueryResultsFormat.CSV, "tsv": ox.QueryResultsFormat.TSV,
               "json": ox.QueryResultsFormat.JSON, "xml": ox.QueryResultsFormat.XML}
    written = answer.serialize(format=formats[fmt]).decode("utf-8")
    return lambda: sys.stdout.write(written)


def _short(iri: str, prefixes: dict[str, str]) -> str:
    """An entity's id, else `prefix:local` for an IRI under a known prefix, else `<iri>`."""
    base = prefixes.get("id", "")
    if base and iri.startswith(base) and "#" not in iri[len(base):]:
        return iri[len(base):]
    for prefix, ns in sorted(prefixes.items(), key=lambda kv: -len(kv[1])):
        if prefix != "id" and iri.startswith(ns) and len(iri) > len(ns):
            return f"{prefix}:{iri[len(ns):]}"
    return f"<{iri}>"


def _print_results(names: list[str], rows: list, prefixes: dict[str, str]) -> None:
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0))
    for name in names:
        table.add_column(name)
    for row in rows:
        cells = []
        for name in names:
            value = row[name]
            if value is None:
                cells.append("")
            elif type(value).__name__ == "Literal":
                cells.append(value.value)
            elif type(value).__name__ == "NamedNode":
                cells.append(_short(value.value, prefixes))
            else:
                cells.append(str(value))
        table.add_row(*cells)
    _print_table(table)
    err.print(Text(f"{len(rows)} row{'s' if len(rows) != 1 else ''}"))


class ExportFormat(str, Enum):
    turtle = "turtle"
    nt = "nt"
    jsonld = "jsonld"
    xml = "xml"


@app.command()
@command
def export(format: ExportFormat = typer.Option(ExportFormat.turtle, "--format", "-f", help="turtle, nt, jsonld or xml."),
           output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file (default: standard output).")):
    """Write the whole graph (entries, vocabulary and categories); the same entries give the same bytes."""
    from .export import export_lines, graph_lines
    from .files import write_atomically

    kb = _kb(shacl=True)
    data = export_lines(graph_lines(kb.mapped, kb.schema.ontology, kb.index), format.value)
    if output is None:
        sys.stdout.write(data)
        sys.stdout.flush()
    else:
        try:
            write_atomically(output, data)
        except OSError as e:
            raise UsageError(f"cannot write {output}: {e.strerror}")
        err.print(Text(f"wrote {output} ({len(kb.index)} triples)"))


@app.command()
@command
def stats():
    """Counts per class and category, and the share of weapon systems that have each field."""
    from .stats import compute_stats

    kb = _kb()
    s = compute_stats(kb)
    out.print(Text(f"{len(kb.entries)} entries, {s.triples} triples; {s.weapon_systems} weapon systems "
                   f"and {s.components} components (guns, munitions, support vehicles)"))
    table = Table(title="entries per class", box=None, pad_edge=False, title_justify="left")
    table.add_column("class")
    table.add_column("count", justify="right")
    for name, n in s.classes.items():
        table.add_row(name, str(n))
    _print_table(table)
    table = Table(title="systems per category", box=None, pad_edge=False, title_justify="left")
    table.add_column("category")
    table.add_column("count", justify="right")
    for name, n in s.categories.items():
        table.add_row(name, str(n))
    _print_table(table)
    table = Table(title="weapon systems having each field", box=None, pad_edge=False, title_justify="left")
    table.add_column("field")
    table.add_column("share", justify="right")
    table.add_column("systems", justify="right")
    rows = sorted(s.coverage.items(), key=lambda kv: (-kv[1][0], kv[0]))
    rows += [("crew (where the category has a crew)", s.crew),
             ("key quantity of the category", s.key_quantity),
             ("named by a reported event", s.events)]
    for key, (have, total) in rows:
        table.add_row(key, f"{100 * have / total:.0f} %" if total else "–", f"{have}/{total}")
    _print_table(table)
    table = Table(title="sources", box=None, pad_edge=False, title_justify="left")
    table.add_column("")
    table.add_column("share", justify="right")
    table.add_column("count", justify="right")
    for key, (have, total) in (("sources whose kind is given", s.source_kinds),
                               ("weapon systems' sourced values citing only copies, blogs or shops", s.weak_only)):
        table.add_row(key, f"{100 * have / total:.0f} %" if total else "–", f"{have}/{total}")
    _print_table(table)


@app.command()
@command
def build(output: Optional[Path] = typer.Option(None, "--output", "-o", help="Site folder (default: _site/ in the root)."),
          no_search: bool = typer.Option(False, "--no-search", help="Skip the pagefind search index (quick previews).")):
    """Validate, then write the static site into a new folder and swap it into place when complete."""
    from .config import find_root, load_config
    from .site.update import CannotWrite, update_site

    config = load_config(_root() or find_root())
    target = output if output is not None else config.root / "_site"
    try:
        updated = update_site(config, target, search=not no_search, progress=_progress)
    except CannotWrite as e:
        raise _fail(f"cannot write the site to {target}: {_os_reason(e.error)} — the previous site is unchanged")
    _kept(updated)
    report, figures = updated.report, updated.figures
    if report is None:
        print(f"{target} is up to date: nothing changed since the last build ({figures['pages']} pages, "  # no rich: 30-60 ms
              f"{figures['files']} files, {figures['bytes'] / 1_000_000:.1f} MB)")
        return
    print(f"built {report.pages} pages ({report.files} files, {figures['bytes'] / 1_000_000:.1f} MB) into {target} "  # no rich: 30 ms
          f"in {report.seconds:.2f} s"
          + (f", search index {report.search_seconds:.2f} s" if report.search_seconds is not None else "")
          + (f"; {report.reused} of {report.units} parts unchanged since the last build, reused"
             if report.reused else ""))


def _progress():
    """A progress bar on a terminal; silent otherwise."""
    from contextlib import contextmanager

    @contextmanager
    def bar():
        if not sys.stderr.isatty() or not err.is_terminal:  # isatty first: rich's import is 30 ms
            yield lambda *a, **k: None
            return
        from rich.progress import Progress
        with Progress(console=err.real, transient=True) as progress:
            tasks = {}

            def step(name, done=0, total=0):
                if name not in tasks:
                    tasks[name] = progress.add_task(name, total=total or None)
                progress.update(tasks[name], completed=done, total=total or None)
            yield step

    return bar()


@app.command()
@command
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (127.0.0.1: this machine only)."),
          port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
          timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Stop a query after this many seconds (answered 503)."),
          max_rows: int = typer.Option(10_000, "--max-rows", min=1, help="Cut results after this many rows (header X-Result-Truncated).")):
    """Preview the site, with a read-only SPARQL endpoint at /sparql and a query editor at /sparql.html.

    Brings the site up to date first, as `kb build` does, and again whenever a file it is built from changes:
    the new pages are served at once, and the search index is made after them, in the background.
    """
    from .config import find_root, load_config
    from .serve import serve as run_server, update_apart
    from .site.update import CannotWrite

    config = load_config(_root() or find_root())
    site = config.root / "_site"
    try:  # a site whose search index is out of date or not made yet is served at once, its index made meanwhile
        report, made = update_apart(config, site, progress=_progress)
    except CannotWrite as e:
        raise _fail(f"cannot write the site to {site}: {_os_reason(e.error)} — the previous site is unchanged")
    if report is not None:
        err.print(Text(f"built {report.pages} pages into {site} in {report.seconds:.1f} s"
                       + ("; the search index follows" if report.search_later else "")))
    index_pending = report is not None and report.search_later
    gc.enable()  # a server's garbage must be collected (see `command`)
    run_server(config, site, host=host, port=port, timeout=timeout, max_rows=max_rows,
               say=lambda m: err.print(Text(m)), index_pending=index_pending, made=made)


@app.command()
@command
def publish(store: Optional[str] = typer.Option(None, "--store", help="The store's Graph Store Protocol endpoint "
                                                "(Oxigraph: http://HOST:7878/store, Fuseki: http://HOST:3030/DATASET/data)."),
            update: Optional[str] = typer.Option(None, "--update", help="Instead of --store: the store's SPARQL Update "
                                                 "endpoint (Oxigraph: …/update, Fuseki: …/DATASET/update)."),
            graph: Optional[str] = typer.Option(None, "--graph", help="The named graph to replace (default: dataset_iri in kb.toml)."),
            query_url: Optional[str] = typer.Option(None, "--query", help="The store's SPARQL query endpoint, for the "
                                                    "triple count afterwards (else the graph is read back from --store)."),
            timeout: float = typer.Option(300.0, "--timeout", min=0.1, help="Give up on the store after this many seconds without an answer.")):
    """Replace a named graph in a SPARQL 1.1 triple store with the whole graph, then check the store's triple count.

    Credentials come from KB_STORE_USER and KB_STORE_PASSWORD, or from ~/.netrc; never from the command line.
    """
    from .publish import credentials, publish as run_publish

    if (store is None) == (update is None):
        raise UsageError("give one of --store URL (Graph Store Protocol) or --update URL (SPARQL Update)")
    if update is not None and query_url is None:
        raise UsageError("--update needs --query URL (the store's query endpoint) to check the triple count")
    from .export import graph_lines

    kb = _kb(shacl=True)
    target = graph or kb.config.dataset_iri
    auth = credentials()
    lines = graph_lines(kb.mapped, kb.schema.ontology, kb.index)
    err.print(Text(f"publishing {len(lines)} triples into <{target}> at {store or update} …"))
    with _progress() as step:
        report = run_publish(lines, target, store=store, update=update, query=query_url, auth=auth,
                             timeout=timeout, progress=step)
    out.print(Text(f"published {report.triples} triples into <{target}> in {report.seconds:.2f} s "
                   f"({report.megabytes:.1f} MB, {report.method}); the store holds {report.stored} triples there"))


class Kind(str, Enum):
    system = "system"
    organization = "organization"
    country = "country"
    place = "place"
    event = "event"
    source = "source"


@app.command()
@command
def new(kind: Kind = typer.Argument(..., help="system, organization, country, place, event or source."),
        name: str = typer.Argument(..., help="The entry's name (label)."),
        id: Optional[str] = typer.Option(None, "--id", help="The id (file name); default: NAME slugified."),
        source: Optional[str] = typer.Option(None, "--source", help="Id of the source the entry cites."),
        category: str = typer.Option("weapon-system", "--category", help="A system's category id."),
        system: Optional[str] = typer.Option(None, "--system", help="An event's system id.")):
    """Write a new entry skeleton that validates as it is; fill in the commented keys."""
    from .config import find_root
    from .new import new_entry

    root = _root() or find_root()
    path = new_entry(root, kind.value, name, id, source, category, system)
    out.print(Text(f"wrote {path.relative_to(root)}"))


def run() -> None:
    """The `kb` command. It ends without the interpreter's teardown: freeing a large graph object by object
    takes seconds (2 s at 10,000 systems), and by then every file is written and closed."""
    try:
        app()
        code = 0
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # the reader stopped reading: what could be said was said
            code = code or _quiet_stdout()
        except OSError:
            code = code or 1
    os._exit(code)
