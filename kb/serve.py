"""`kb serve`: the built site for preview, a read-only SPARQL 1.1 endpoint at /sparql and a query editor at
/sparql.html; the site and the endpoint's graph are rebuilt when an entry changes."""
from __future__ import annotations

import asyncio
import errno
import functools
import json
import os
import re
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .config import Config
from .namespaces import PREFIXES
from .problems import KBError, Problem, UsageError, relative
from .query import GRAPH_FORMATS, saved_queries
from .query_workers import QueryDispatcher, QueryError, QueryTimeout, QueryWorkers, WorkersUnavailable
from .sparql_protocol import GRAPH_TYPES, Refused, check_query, negotiate, response_type, service_description

EDITOR = Path(__file__).parent / "editor"
WATCHED = ("entries", "ontology", "queries", "site_build", "kb.toml")  # what the site is built from
WORKERS = 2
MAX_QUERY_CHARS = 1_000_000
ENTITY_TYPES = {"text/html": "html", "text/turtle": "ttl", "application/ld+json": "jsonld", "application/json": "jsonld"}
# Parsing a query holds the GIL: one thread parses as fast as many, and leaves the event loop its turn to serve
# pages while queries pour in (with a thread per request, each page waited behind dozens of parsing threads).
_PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-parse")


class _EntityId(Convertor):
    """An entity id in /id/ID (no dot, so /id/ID.ttl stays a plain file)."""

    regex = "[A-Za-z0-9_-]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("entity_id", _EntityId())


@dataclass
class Endpoint:
    """What the running server answers from; replaced parts on each rebuild."""

    config: Config
    site: Path
    workers: QueryWorkers
    graphs: Graphs  # the graph the workers hold, and where it is kept
    timeout: float
    max_rows: int


# --- the site and the endpoint's graph ----------------------------------------------------------------


def update_apart(config: Config, site: Path, progress=nullcontext):
    """The site brought up to date as `kb build` does, with its search index made later (kb/site/update.py
    `index_later`), in a forked child (before the server starts any thread), so that the server, which runs
    for days, never holds the knowledge base the site is built from: Python keeps the memory it freed (3.1 GB
    resident at 100,000 systems when the start-up build ran in the server).
    Returns the build's `BuildReport` in brief (pages, seconds, search_later), or None if the site was up to
    date, and what its graph was made from (`Updated.made`); raises KBError or CannotWrite as `update_site`
    does."""
    import pickle
    import traceback
    from types import SimpleNamespace

    from .site.update import CannotWrite, update_site
    from .workers import Child

    def brief() -> tuple:
        updated = update_site(config, site, search=True, progress=progress, index_later=True)
        report = updated.report
        return None if report is None else (report.pages, report.seconds, report.search_later), updated.made()

    def job() -> bytes:
        try:
            return pickle.dumps(("built", brief()))
        except KBError as e:
            return pickle.dumps(("errors", e.problems))
        except CannotWrite as e:
            return pickle.dumps(("cannot write", e.error))
        except Exception:  # noqa: BLE001 - a fault of milkb's own: its traceback, as it would be shown here
            traceback.print_exc()
            return pickle.dumps(("failed", None))

    child = Child.fork(job, "the build of the site")
    kind, value = ("built", brief()) if child is None else pickle.loads(child.result())  # (None: no fork here)
    if kind == "errors":
        raise KBError(value)
    if kind == "cannot write":
        raise CannotWrite(value)
    if kind == "failed":
        raise KBError([Problem("", 0, "the site could not be built (the error is above)")])
    report, made = value
    return report and SimpleNamespace(pages=report[0], seconds=report[1], search_later=report[2]), made


class Graphs:
    """The graphs the query workers answer from, each the graph of the site as it was when taken (`take`), in
    a folder of this server's own under `.kb-cache`, so that a worker started later (after a timeout) answers
    from the same graph as the others, whatever build swapped in another site meanwhile, and the server holds
    none of it in memory (260 MB at 100,000 systems). A graph is

    - a hard link to the site's N-Triples dump (a copy where links cannot be made), which each worker loads
      into a store in memory: 0.5 s at 10,000 systems, 10 s at 100,000;
    - and, beside it, a copy of the query store the build saved (kb/store_cache.py `copy_saved`) if that holds
      the graph: the build says what it made the site from (`made`, kb/site/update.py `Updated.made`), the
      dump is still the one it wrote, and the store still holds those entries. A worker opens the copy
      read-only (0.03 s at 10,000 systems) and answers from it while it loads the dump, then from the store in
      memory, which answers the saved queries 3.5 times as fast (kb/query_workers.py `_worker_main`).

    A graph is identified by the dump file's identity (device, inode, size and mtime: kb/site/update.py
    `file_identity`), taken from the file opened."""

    def __init__(self, config: Config):
        self._config = config
        cache_dir = config.cache_dir
        cache_dir.mkdir(parents=True, exist_ok=True)
        from .workers import alive

        for stale in cache_dir.glob("serve-*.graphs"):  # of a server that was killed
            pid = stale.name.split("-")[1].split(".")[0]
            if pid.isdigit() and not alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        self.folder = Path(tempfile.mkdtemp(prefix=f"serve-{os.getpid()}-", suffix=".graphs", dir=cache_dir))
        self.identity: list | None = None  # of the graph last taken (`file_identity`)
        self.path: Path | None = None
        self._taken = 0

    def take(self, site: Path, made: list | None = None) -> Path | None:
        """The site's graph, kept here under a new name: the dump `graph-N.nt`, and, if the saved query store
        holds the graph, its copy `graph-N.store` beside it, which is what is returned then. None if it is the
        graph last taken. `made`: what the build that left the site made it from (`Updated.made`)."""
        from .site.update import file_identity
        from .store_cache import copy_saved

        with open(site / "milkb.nt", "rb") as dump:
            st = os.fstat(dump.fileno())
            identity = file_identity(st)
            if identity == self.identity:
                return None
            self._taken += 1
            path = self.folder / f"graph-{self._taken}.nt"
            try:
                os.link(site / "milkb.nt", path)
                same = os.stat(path).st_ino == st.st_ino  # (not a dump swapped in since it was opened)
            except OSError:  # another file system
                same = False
            if not same:
                path.unlink(missing_ok=True)
                with open(path, "wb") as copy:
                    shutil.copyfileobj(dump, copy)
        store = path.with_suffix(".store")
        if made is not None and made[1] == identity and copy_saved(self._config, made[0], store):
            path = store
        self.identity, self.path = identity, path
        return path

    def drop_older(self, in_use: set[Path]) -> None:
        """Remove the graphs taken before the last that no worker still running was given (`in_use`): a worker
        may read its graph's files as long as it runs (Oxigraph opens some files of a store on disk only when a
        query needs them, and a worker loads the dump beside it meanwhile). Those are removed by a later call."""
        keep = {path.stem for path in in_use} | {self.path.stem}  # a graph's dump and store have one stem
        for path in self.folder.glob("graph-*"):
            if path.stem in keep:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class Rebuilds:
    """The server's rebuilds, each a process of its own (kb/site/rebuild.py): after a change, the pages and
    the graph, waited for (`pages`); then, if that kept the previous search index, the index, in the
    background (`index`), stopped by the next change. Each runs in a process started ahead (`spare`), its
    imports done. At 10,000 systems an edit is answered about 3 s after it is saved, and found by the search
    about 15 s after."""

    STOP_WAIT = 10.0  # seconds a stopped rebuild has to clean up before it and its children are killed

    def __init__(self, root: Path, site: Path, say: Callable[[str], None]):
        self.root, self.site, self.say = root, site, say
        self._lock = threading.Lock()
        self._running: set = set()  # the rebuilds' processes
        self._stopped: set = set()  # … of which `_stop` stopped these
        self._indexing = None  # the search index's process, while it runs
        self._spare = None  # the next rebuild's process, started ahead (kb/site/rebuild.py `--spare`)
        self._closed = False

    def pages(self) -> dict:
        """The outcome of a rebuild of the pages and the graph, the search index kept (as kb/site/rebuild.py
        says it); a rebuild of the index still running is stopped first."""
        self.stop_index()
        return self._outcome(self._start(index_later=True))

    def index(self) -> None:
        """Bring the search index up to date in the background; says when it is."""
        process = self._start(index_later=False, indexing=True)
        self.start_spare()  # for the next change, which stops the index: at once, as the index is no hurry
        threading.Thread(target=self._report_index, args=(process, time.perf_counter()), daemon=True,
                         name="kb-index").start()

    def stop_index(self) -> None:
        with self._lock:
            process, self._indexing = self._indexing, None
        if process is not None:
            self._stop(process)

    def close(self) -> None:
        """Stop every rebuild still running, and start none from now on (the server stops)."""
        with self._lock:
            self._closed = True
            running, self._indexing = list(self._running), None
            spare, self._spare = self._spare, None
        for process in running:
            self._stop(process)
        if spare is not None:
            self._drop(spare)

    def _start(self, index_later: bool, indexing: bool = False):
        """The rebuild's process, or in its place the outcome of one that could not be started."""
        flags = ["--index-later"] if index_later else []
        with self._lock:  # (held until it is known: `close` stops it, a change stops the index)
            if self._closed:
                return {"status": "stopped"}
            process, self._spare = self._spare, None
            try:  # the spare reads them once its imports are done
                process.stdin.write((json.dumps(flags) + "\n").encode("utf-8"))
                process.stdin.close()
                process.stdin = None  # written and closed: nothing for `communicate` to send
            except (AttributeError, OSError):  # none, or it died: a process of its own
                process = self._process(flags)
                if isinstance(process, dict):
                    return process
            self._running.add(process)
            if indexing:
                self._indexing = process
        return process

    def _process(self, flags: list[str] | None):
        """A rebuild's process with `flags`, or with None a spare, waiting for them; or the outcome of one that
        could not be started."""
        # -P: not the current folder first on the module path, where a folder `kb` would stand for the package
        command = [sys.executable, "-P", "-m", "kb.site.rebuild", *(["--spare"] if flags is None else []),
                   str(self.root), str(self.site), *(flags or [])]
        try:
            return subprocess.Popen(command, stdin=subprocess.PIPE if flags is None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            return {"status": "failed", "reason": f"no process for the rebuild: {e.strerror or e}"}

    def start_spare(self) -> None:
        """Start a process for the next rebuild, unless there is one (or the server stops). Not while a rebuild
        runs or the query workers load a graph: its imports would take CPU time from them."""
        with self._lock:
            if self._closed or self._spare is not None:
                return
        spare = self._process(None)
        if isinstance(spare, dict):  # none to be had now: the next rebuild starts its own
            return
        with self._lock:
            if not self._closed and self._spare is None:
                self._spare, spare = spare, None
        if spare is not None:  # closed meanwhile, or another thread's came first
            self._drop(spare)

    def _drop(self, spare) -> None:
        """Stop a spare that will not be used."""
        self._stop(spare)
        spare.communicate()  # its pipes closed
        with self._lock:
            self._stopped.discard(spare)

    def _outcome(self, process) -> dict:
        if isinstance(process, dict):  # none was started
            return process
        out, err = process.communicate()
        with self._lock:
            self._running.discard(process)
            stopped = process in self._stopped
            self._stopped.discard(process)
        if stopped:
            return {"status": "stopped"}
        lines = out.decode("utf-8", "replace").strip().splitlines()
        try:
            outcome = json.loads(lines[-1])
            if isinstance(outcome, dict) and "status" in outcome:
                return outcome
        except (IndexError, ValueError):
            pass
        if process.returncode < 0:
            return {"status": "failed", "reason": f"the rebuild was killed by signal {-process.returncode}"}
        said = err.decode("utf-8", "replace").strip().splitlines()
        return {"status": "failed", "reason": said[-1] if said else f"exit status {process.returncode}"}

    def _stop(self, process) -> None:
        """SIGTERM, so that the rebuild removes its unfinished folder and ends its children (and SIGCONT, for a
        rebuild a test stopped); past STOP_WAIT, SIGKILL to the rebuild and every process it started (its
        group: not yet reaped, its id cannot have been taken by another)."""
        with self._lock:
            if process.returncode is not None:
                return
            self._stopped.add(process)
        try:
            process.terminate()
            os.killpg(process.pid, signal.SIGCONT)
            process.wait(self.STOP_WAIT)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()

    def _report_index(self, process, started: float) -> None:
        outcome = self._outcome(process)
        with self._lock:
            if self._indexing is process:
                self._indexing = None
        status = outcome["status"]
        if status in ("stopped", "up to date"):
            return
        if status == "built":
            self.say(f"search index made in {time.perf_counter() - started:.1f} s")
        else:
            self.say(f"search index not made ({_why(outcome)}): the previous one, if any, is still served")


def _why(outcome: dict) -> str:
    if outcome["status"] == "errors":
        return f"{len(outcome['problems'])} problems"
    if outcome["status"] == "cannot write":
        return f"cannot write the site: {outcome['reason']}"
    return outcome.get("reason") or outcome["status"]


def _watch_and_rebuild(endpoint: Endpoint, rebuilds: Rebuilds, stop: threading.Event,
                       say: Callable[[str], None]) -> None:
    """Bring the site up to date after each batch of changes (as `kb build` does, reusing what they do not
    touch, the search index made afterwards: `Rebuilds`) and give the workers its graph if it changed; a broken
    knowledge base leaves the previous site and graph in place. Then the next rebuild's process is started."""
    from watchfiles import watch

    root = endpoint.config.root
    paths = [root / name for name in WATCHED if (root / name).exists()]
    for changes in watch(*paths, stop_event=stop, raise_interrupt=False):
        names = sorted({relative(Path(path), root) for _, path in changes})
        say(f"changed: {', '.join(names[:5])}{' …' if len(names) > 5 else ''} — rebuilding")
        _rebuild(endpoint, rebuilds, stop, say)
        if stop.is_set():  # the server stops
            return
        rebuilds.start_spare()


def _rebuild(endpoint: Endpoint, rebuilds: Rebuilds, stop: threading.Event, say: Callable[[str], None]) -> None:
    """One rebuild after a change, and the new graph given to the workers; says how it went."""
    from .config import load_config

    root = endpoint.config.root
    started = time.perf_counter()
    outcome = rebuilds.pages()
    status = outcome["status"]
    if stop.is_set():
        return
    if status not in ("built", "up to date"):
        for problem in outcome.get("problems", []):
            say(problem)
        say(f"not rebuilt{'' if status == 'errors' else f' ({_why(outcome)})'}: the previous site and graph "
            "are still served")
        return
    try:
        endpoint.config = load_config(root)
        graph = endpoint.graphs.take(endpoint.site, outcome.get("made"))
    except (KBError, OSError) as e:  # changed again meanwhile: the next rebuild follows
        say(f"not reloaded ({e}): the next change rebuilds")
        return
    loaded = None
    if graph is not None:  # (a new base IRI is a new graph: the workers' prefix `id:` changes with it)
        endpoint.workers.reload(graph, endpoint.config.base_iri)
        # the old graph is answered until then; the search index is made after (no CPU taken from the load)
        if not endpoint.workers.wait_loaded():
            if stop.is_set():
                return
            endpoint.graphs.identity = None  # taken again by the next rebuild
            say("the query workers could not load the new graph: the previous one is still answered")
            return
        endpoint.graphs.drop_older(endpoint.workers.graphs_in_use())
        loaded = endpoint.workers.triples
    took = time.perf_counter() - started
    if status == "built":
        say(f"rebuilt in {took:.1f} s ({'the same graph' if loaded is None else f'{loaded} triples'})"
            + ("; the search index follows" if outcome.get("search") == "later" else ""))
        if outcome.get("search") == "later":
            rebuilds.index()
    else:  # (a site built meanwhile by a `kb build` brings its graph)
        say(f"the site was up to date ({took:.1f} s)"
            + (f"; its graph loaded ({loaded} triples)" if loaded is not None else ""))


# --- the SPARQL endpoint --------------------------------------------------------------------------


async def _protocol_params(request: Request) -> dict[str, list[str]]:
    """The protocol's parameters (query, update, default-graph-uri, named-graph-uri) from any request form."""
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    if request.method != "POST":
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        form = await request.form()
        for key, value in form.multi_items():
            params.setdefault(key, []).append(str(value))
    elif content_type in ("application/sparql-query", "application/sparql-update"):
        try:
            text = (await request.body()).decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, "the request body is not UTF-8")
        params.setdefault("query" if content_type.endswith("query") else "update", []).append(text)
    else:
        raise Refused(415, "POST a query as application/x-www-form-urlencoded (query=…) or as "
                           f"application/sparql-query, not {content_type or 'a body without Content-Type'}")
    return params


async def sparql(request: Request) -> Response:
    endpoint: Endpoint = request.app.state.endpoint
    try:
        params = await _protocol_params(request)
        if params.get("update"):
            raise Refused(403, "updates are refused: this endpoint is read-only")
        queries = params.get("query", [])
        if not queries:
            if request.method == "GET":
                return _service_description(request, endpoint)
            raise Refused(400, "no query: send query=… (form or URL) or an application/sparql-query body")
        if len(queries) > 1:
            raise Refused(400, "give one query per request")
        if params.get("default-graph-uri") or params.get("named-graph-uri"):
            raise Refused(400, "this endpoint has one default graph and no named graphs: "
                               "leave out default-graph-uri and named-graph-uri")
        if len(queries[0]) > MAX_QUERY_CHARS:
            raise Refused(413, f"the query is longer than {MAX_QUERY_CHARS} characters")
        checked = await asyncio.get_running_loop().run_in_executor(_PARSER, _checked, queries[0],
                                                                    endpoint.config.base_iri)
        media, fmt = response_type(checked.form, request.headers.get("accept"))
        answer = await request.app.state.queries.run(checked.text, fmt)
    except Refused as e:
        return _message(str(e), e.status)
    except QueryError as e:
        return _message(str(e), 400)
    except (QueryTimeout, WorkersUnavailable) as e:
        return _message(str(e), 503)
    headers = {"Vary": "Accept"}
    if answer.truncated:
        headers["X-Result-Truncated"] = "true"
        headers["X-Result-Limit"] = str(endpoint.max_rows)
    return Response(answer.body, media_type=media, headers=headers)


@functools.lru_cache(maxsize=256)
def _checked(text: str, base_iri: str):
    """check_query, kept for queries asked again (refusals are not kept: they raise)."""
    return check_query(text, base_iri)


def _message(text: str, status: int) -> Response:
    return PlainTextResponse(text + "\n", status_code=status)


def _service_description(request: Request, endpoint: Endpoint) -> Response:
    media = negotiate(request.headers.get("accept"), [*GRAPH_TYPES, "text/html"])
    if media == "text/html":  # a person with a browser: the editor
        return RedirectResponse("/sparql.html", status_code=303)
    if media is None:
        return _message(f"the service description is available as {', '.join(GRAPH_TYPES)}", 406)
    url = str(request.url.replace(query=""))
    graph = service_description(url, endpoint.config.dataset_iri, endpoint.workers.triples, endpoint.timeout,
                                endpoint.max_rows)
    return Response(graph.serialize(format=GRAPH_FORMATS[GRAPH_TYPES[media]]), media_type=media,
                    headers={"Vary": "Accept"})


# --- entities and the editor --------------------------------------------------------------------------


async def entity(request: Request) -> Response:
    """/id/ID: the entity's page, Turtle or JSON-LD file from the built site, by the Accept header."""
    endpoint: Endpoint = request.app.state.endpoint
    entity_id = request.path_params["entity"]
    media = negotiate(request.headers.get("accept"), list(ENTITY_TYPES)) or "text/html"
    suffix = ENTITY_TYPES[media]
    path = endpoint.site / "id" / f"{entity_id}.{suffix}"
    media = "application/ld+json" if suffix == "jsonld" else media
    try:
        return OpenedFile(path, media_type=media,
                          headers={"Vary": "Accept", "Content-Location": f"/id/{entity_id}.{suffix}"})
    except OSError:
        pass
    try:
        return OpenedFile(endpoint.site / "404.html", status_code=404, media_type="text/html")
    except OSError:
        return _message(f"no entity `{entity_id}`", 404)


class OpenedFile(Response):
    """A file sent from the one handle opened here: its length, validators and bytes are those of one file,
    even if a rebuild swaps in a new site while it is sent. (Starlette's FileResponse takes the size from
    the path, then opens the path again: a page swapped in between went out with the other page's length,
    and the connection broke.) A request for one range of bytes of a 200 answer gets that range (206), or 416
    if it lies past the end; a request for several ranges, or one whose `If-Range` names another version,
    gets the whole file. Raises OSError if the file cannot be opened."""

    chunk_size = 256 * 1024

    def __init__(self, path: Path, status_code: int = 200, media_type: str | None = None,
                 headers: dict | None = None):
        import hashlib
        from email.utils import formatdate
        from mimetypes import guess_type

        self.file = open(path, "rb")
        try:
            st = os.fstat(self.file.fileno())
            tag = hashlib.md5(f"{st.st_mtime}-{st.st_size}".encode(), usedforsecurity=False).hexdigest()
            super().__init__(None, status_code, {**(headers or {}), "content-length": str(st.st_size),
                                                 "last-modified": formatdate(st.st_mtime, usegmt=True),
                                                 "etag": f'"{tag}"', "accept-ranges": "bytes"},
                             media_type or guess_type(path.name)[0] or "application/octet-stream")
        except BaseException:
            self.file.close()
            raise

    async def __call__(self, scope, receive, send) -> None:
        import anyio

        status, headers, start, left = self._span(scope)

        async def send_file() -> None:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            remaining = left if scope.get("method") != "HEAD" else 0
            if remaining and start:
                await anyio.to_thread.run_sync(self.file.seek, start)
            while remaining:
                chunk = await anyio.to_thread.run_sync(self.file.read, min(self.chunk_size, remaining))
                remaining = remaining - len(chunk) if chunk else 0
                await send({"type": "http.response.body", "body": chunk, "more_body": bool(remaining)})
            if scope.get("method") == "HEAD" or not left:
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        try:
            spec = tuple(map(int, scope.get("asgi", {}).get("spec_version", "2.0").split(".")))
            if spec >= (2, 4):  # the server's send raises when the client has gone
                await send_file()
                return
            async with anyio.create_task_group() as group:  # else, as Starlette does: stop when it has gone
                async def listen() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(listen)
                await send_file()
                group.cancel_scope.cancel()
        finally:
            self.file.close()

    def _span(self, scope) -> tuple[int, list, int, int]:
        """(status, headers, first byte, bytes) of the answer to the request `scope`: the whole file, or the
        one range it asks for."""
        from starlette.datastructures import Headers

        size = int(self.headers["content-length"])
        asked = Headers(scope=scope)
        whole = (self.status_code, self.raw_headers, 0, size)
        wanted, condition = asked.get("range", ""), asked.get("if-range")
        if self.status_code != 200 or not wanted.startswith("bytes=") or "," in wanted:
            return whole
        if condition is not None and condition not in (self.headers["etag"], self.headers["last-modified"]):
            return whole
        first, _, last = wanted[len("bytes="):].strip().partition("-")
        try:
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            else:  # the last `last` bytes
                start, end = max(size - int(last), 0), size - 1
        except ValueError:
            return whole
        others = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        if start > end or start >= size:
            return 416, others + [(b"content-range", f"bytes */{size}".encode()), (b"content-length", b"0")], 0, 0
        return (206, others + [(b"content-range", f"bytes {start}-{end}/{size}".encode()),
                               (b"content-length", str(end - start + 1).encode())], start, end - start + 1)


# the first segments of the routes served before the site's files (`create_app`)
ROUTES = ("sparql", "sparql.html", "id", "_kb")


def published_path(config: Config) -> str:
    """The path `base_url` publishes the site under, decoded (`/milkb` for https://example.org/milkb/), or ""
    at the root of its host."""
    return unquote(urlsplit(config.base_url or "").path).rstrip("/")


def site_path(config: Config, site: Path | None = None) -> str:
    """`published_path`, where the site is served as well, or "" when its first segment is a route or a file or
    folder of the site (`/static`, `/id`): the site served there would hide those."""
    path = published_path(config)
    first = path.split("/")[1] if path else ""
    if first in ROUTES or (site is not None and first and (site / first).exists()):
        return ""
    return path


class SiteFiles(StaticFiles):
    """The site's files, each sent as an `OpenedFile`, the page `404.html` too."""

    def file_response(self, full_path, stat_result, scope, status_code: int = 200) -> Response:
        from starlette.datastructures import Headers
        from starlette.staticfiles import NotModifiedResponse

        try:
            response = OpenedFile(Path(full_path), status_code=status_code)
        except OSError:  # gone with a site swapped in since it was found
            return _message("not found", 404)
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            response.file.close()
            return NotModifiedResponse(response.headers)
        return response

    async def get_response(self, path: str, scope) -> Response:
        from starlette.responses import FileResponse

        response = await super().get_response(path, scope)
        if isinstance(response, FileResponse):  # the page 404.html, which Starlette sends without `file_response`
            try:
                return OpenedFile(Path(response.path), status_code=response.status_code)
            except OSError:
                return _message("not found", 404)
        return response


def with_prefixes(text: str, namespaces: dict[str, str]) -> str:
    """`text` with PREFIX lines for the pre-bound prefixes it uses, after its leading comments, so that it
    runs on any endpoint and the editor's syntax check knows them."""
    used = [p for p in namespaces
            if re.search(rf"(?<![\w<#]){re.escape(p)}:", text) and not re.search(rf"(?i)PREFIX\s+{p}:", text)]
    lines = text.splitlines()
    head = 0
    while head < len(lines) and lines[head].startswith("#"):
        head += 1
    declarations = [f"PREFIX {p}: <{namespaces[p]}>" for p in used]
    return "\n".join(lines[:head] + declarations + lines[head:]) + "\n"


def _editor_environment() -> Environment:
    return Environment(loader=FileSystemLoader(EDITOR), autoescape=select_autoescape(default=True))


async def editor(request: Request) -> Response:
    endpoint: Endpoint = request.app.state.endpoint
    config = endpoint.config
    namespaces = {k: str(v) for k, v in PREFIXES.items()} | {"id": config.base_iri}
    examples = [{"name": q.name, "description": q.description, "text": with_prefixes(q.text, namespaces)}
                for q in saved_queries(config.queries_dir).values()]
    # JSON inside <script>: escape what could end the element early
    data = json.dumps(examples, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    html = request.app.state.templates.get_template("editor.html").render(
        title=config.title, examples=examples, examples_json=Markup(data), prefixes=sorted(namespaces),
        timeout=f"{endpoint.timeout:g}", max_rows=endpoint.max_rows)
    return HTMLResponse(html)


def create_app(endpoint: Endpoint) -> Starlette:
    site = SiteFiles(directory=endpoint.site, html=True, check_dir=False)
    published = site_path(endpoint.config, endpoint.site)
    app = Starlette(routes=[
        Route("/sparql", sparql, methods=["GET", "POST"]),
        Route("/sparql.html", editor, methods=["GET"]),
        Route("/id/{entity:entity_id}", entity, methods=["GET"]),
        Mount("/_kb", StaticFiles(directory=EDITOR / "static")),
        # also where `base_url` publishes it: the page 404.html links from that path, as it must on the host
        *([Mount(published, site)] if published else []),
        Mount("/", site),
    ])
    app.state.endpoint = endpoint
    app.state.queries = QueryDispatcher(endpoint.workers, WORKERS)
    app.state.templates = _editor_environment()
    return app


# --- running --------------------------------------------------------------------------------------


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, opened here so that a port in use is a clear error before anything starts."""
    sock = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                              proto=socket.IPPROTO_TCP)[0]
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on such sockets, and without it every
        # response on a kept-alive connection waits ~40 ms for the client's delayed ACK
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        if sock is not None:
            sock.close()
        reason = os.strerror(e.errno) if isinstance(e.errno, int) and e.errno > 0 else str(e)
        raise UsageError(f"cannot listen on {host}:{port}: {reason}"
                         + (" — pass another --port" if e.errno == errno.EADDRINUSE else ""))
    return sock


@contextmanager
def _stop_quietly():
    """Ctrl-C and SIGTERM stop the server (uvicorn handles them) and then end `kb serve` normally: uvicorn
    raises the signal again once it has shut down, and this handler takes it instead of the default one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda number, frame: None) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(config: Config, site: Path, *, host: str = "127.0.0.1", port: int = 8000,
          timeout: float = 10.0, max_rows: int = 10_000, say: Callable[[str], None] = lambda message: None,
          index_pending: bool = False, made: list | None = None) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM) the site in `site` and its graph;
    `index_pending`: the site's search index is the previous one, to be made again (`Rebuilds.index`);
    `made`: what the site's graph was made from, if it was just found up to date or built (`Updated.made`)."""
    import uvicorn

    sock = _listen(host, port)
    graphs = Graphs(config)
    try:
        workers = QueryWorkers(graphs.take(site, made), config.base_iri, size=WORKERS, timeout=timeout, max_rows=max_rows,
                               say=say)
    except BaseException:
        graphs.close()
        sock.close()
        raise
    stop = threading.Event()
    rebuilds = Rebuilds(config.root, site, say)
    try:
        if not workers.wait_ready():
            raise KBError("the query workers could not load the graph")
        endpoint = Endpoint(config, site, workers, graphs, timeout, max_rows)
        threading.Thread(target=_watch_and_rebuild, args=(endpoint, rebuilds, stop, say), daemon=True,
                         name="kb-rebuild").start()
        if index_pending:
            rebuilds.index()
        rebuilds.start_spare()  # (the workers have loaded the graph)
        shown = f"[{host}]" if ":" in host else host
        say(f"serving {site} at http://{shown}:{sock.getsockname()[1]}/ — SPARQL endpoint /sparql, "
            "query editor /sparql.html; Ctrl-C stops")
        published = published_path(config)
        if published and not site_path(config, site):
            say(f"the site is served at / only: base_url's path {published}/ would hide its own {published}/ "
                "(its 404 page's links, which start there, miss)")
        server = uvicorn.Server(uvicorn.Config(create_app(endpoint), log_level="warning", lifespan="off",
                                               access_log=False))
        with _stop_quietly():
            server.run(sockets=[sock])
    finally:
        stop.set()
        try:
            rebuilds.close()
        finally:
            workers.close()
            graphs.close()
            sock.close()
