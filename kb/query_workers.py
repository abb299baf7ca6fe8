"""SPARQL queries run in worker processes that hold the graph, so a query past its time can be stopped by
killing its process (a thread running rdflib cannot be interrupted)."""
from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import multiprocessing
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

LOAD_SECONDS = 120  # the most a new worker may take to parse the graph
BUSY_SECONDS = 30  # the most a query waits for a free worker
STOPPED_SECONDS = 300  # a query stopped by the timeout is refused at once if asked again this soon
STOPPED_KEPT = 256  # … remembering this many such queries


@dataclass(frozen=True)
class Answer:
    body: bytes
    truncated: bool  # rows (or triples) past the cap were cut


class QueryError(Exception):
    """The query is wrong (a 400): the message says why."""


class QueryTimeout(Exception):
    """The query ran past the timeout; its worker was killed and replaced."""


class WorkersUnavailable(Exception):
    """No worker could take the query (all busy for too long, or one died)."""


def _worker_main(conn) -> None:
    """A worker: started ahead (a spare, `QueryWorkers`), it imports what it needs and writes an answer in each
    result format (`_warm_up`) while it waits to be told its graph, ("load", graph, base_iri, generation); a
    worker the server waits for at its start says it is ready first and warms up after. It opens the graph
    once, then answers (query, format, max_rows) jobs until the pipe closes.
    The graph is an N-Triples file, loaded into a store in memory before the first answer; or an Oxigraph
    store (a folder, kb/serve.py `Graphs`), opened read-only, which answers as soon as the worker has counted
    the triples, while a thread loads the N-Triples file of the same name beside it into a store in memory
    (Oxigraph lets go of Python's lock meanwhile), which answers from then on: 3.5 times as fast as the store
    on disk. The store never fetches
    anything: FROM names only graphs it holds."""
    import pyoxigraph as ox

    from .faults import fault_point
    from .namespaces import PREFIXES

    spare = not conn.poll()  # started ahead, told its graph later: it has time for `_warm_up` now
    if spare:
        _warm_up()
    try:
        _, graph, base_iri, generation = conn.recv()
    except (EOFError, OSError):  # stopped before it was needed
        return
    if generation:
        fault_point("worker-reload")  # a worker loading a rebuilt graph (tests stop it here)

    def in_memory(dump: str):
        store = ox.Store()
        store.bulk_load(path=dump, format=ox.RdfFormat.N_TRIPLES, lenient=True)  # the site's own dump
        return store

    if os.path.isdir(graph):
        stores = [ox.Store.read_only(graph)]

        def load() -> None:
            try:
                stores.append(in_memory(os.path.splitext(graph)[0] + ".nt"))
            except (OSError, SyntaxError, ValueError):  # (the dump gone): the store on disk answers
                pass

        threading.Thread(target=load, daemon=True, name="kb-graph-load").start()
    else:
        stores = [in_memory(graph)]
    prefixes = dict({k: str(v) for k, v in PREFIXES.items()}, id=base_iri)  # as `kb query` binds them
    conn.send(("ready", _triples(graph, stores[0]) if os.path.isdir(graph) else len(stores[0])))
    if not spare:  # (a worker the server waits for at its start: ready first)
        _warm_up()
    while True:
        try:
            text, fmt, max_rows = conn.recv()
        except (EOFError, OSError):  # the server has gone
            return
        if len(stores) > 1:  # loaded: the store on disk is closed (its files, kb/serve.py `Graphs` removes)
            del stores[0]
        conn.send(_answer(stores[-1], prefixes, text, fmt, max_rows))


def _warm_up() -> None:
    """What answering imports (rdflib's result writers and its SPARQL package), by an answer in each result
    format on an empty store: 0.13-0.6 s of a new worker's first answer otherwise. A SELECT, which every
    result format writes (CSV and TSV cannot write an ASK)."""
    import pyoxigraph as ox

    from .query import RESULT_FORMATS

    for fmt in RESULT_FORMATS:
        _answer(ox.Store(), {}, "SELECT * {}", fmt, 1)


def _triples(graph: str, store) -> int:
    """The number of triples of the store on disk `graph`: the lines of the N-Triples dump beside it, one
    triple each (0.2 s for 1.9 million, where the store counts them in 0.5 s)."""
    dump = os.path.splitext(graph)[0] + ".nt"
    try:
        with open(dump, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 22), b""))
    except OSError:
        return len(store)


def _answer(store, prefixes: dict[str, str], text: str, fmt: str, max_rows: int) -> tuple:
    from .problems import KBError
    from .query import serialize_result
    from .store_cache import raw_query

    try:
        result, truncated = _cap(raw_query(store, text, "query", prefixes), max_rows)
        return ("ok", serialize_result(result, fmt).encode("utf-8"), truncated)
    except KBError as e:
        return ("error", "; ".join(p.message + (f" — {p.hint}" if p.hint else "") for p in e.problems))
    except Exception as e:  # noqa: BLE001 - the store raises plain errors while evaluating
        return ("error", f"SPARQL evaluation error: {e}")


def _cap(answer, max_rows: int):
    """Oxigraph's answer as an rdflib result of at most `max_rows` rows (SELECT) or triples (CONSTRUCT,
    DESCRIBE), and whether it was cut: evaluation stops once past the cap."""
    import pyoxigraph as ox
    from rdflib import Graph, Variable
    from rdflib.query import Result

    from .oxstore import rdf_term

    if isinstance(answer, ox.QueryBoolean):
        result = Result("ASK")
        result.askAnswer = bool(answer)
        return result, False
    if isinstance(answer, ox.QuerySolutions):
        names = [v.value for v in answer.variables]
        rows = list(itertools.islice(answer, max_rows + 1))
        result = Result("SELECT")
        result.vars = [Variable(n) for n in names]
        result.bindings = [{Variable(n): rdf_term(row[n]) for n in names if row[n] is not None}
                           for row in rows[:max_rows]]
        return result, len(rows) > max_rows
    triples = list(itertools.islice(answer, max_rows + 1))
    graph = Graph()
    graph.addN((rdf_term(t.subject), rdf_term(t.predicate), rdf_term(t.object), graph) for t in triples[:max_rows])
    result = Result("CONSTRUCT")
    result.graph = graph
    return result, len(triples) > max_rows


class _Worker:
    def __init__(self, context):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child,), daemon=True, name="kb-query-worker")
        self.process.start()
        child.close()
        self.generation = -1  # of the graph it was told to load (`load`)
        self.graph: Path | None = None
        self.loaded = False  # it has loaded its graph

    def load(self, graph: Path, base_iri: str, generation: int) -> None:
        """Tell the worker its graph; OSError if it has died."""
        self.generation, self.graph = generation, graph
        self.conn.send(("load", str(graph), base_iri, generation))

    def stop(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)


class QueryWorkers:
    """A pool of worker processes, each holding the whole graph; one query at a time per worker.

    `run` blocks (call it from a thread). A query past `timeout` seconds gets its worker killed and a new
    one started; `reload` swaps in a new graph: one of the old workers answers until a worker holding it is
    ready (`wait_loaded`), then stops when it is free (one, not all: each holds the whole graph in memory).

    A new worker is one of the spares started ahead, as many as the pool's size, which have Python and
    Oxigraph imported (0.3 s of the 0.36 s a new process takes to answer from a copy of the saved store at
    10,000 systems) and wait for their graph. The spares are started again when a new worker is ready.
    """

    def __init__(self, graph: Path, base_iri: str, *, size: int = 2, timeout: float = 10.0,
                 max_rows: int = 10_000, say: Callable[[str], None] = lambda message: None):
        self.timeout = timeout
        self.max_rows = max_rows
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._base_iri = base_iri
        self._graph = graph  # the N-Triples file a new worker loads
        self.triples = 0  # in the graph, as the first worker to load it counted them
        self._size = size
        self._say = say
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._generation = 0
        self._all: set[_Worker] = set()
        self._spares: list[_Worker] = []  # started ahead, told no graph yet
        self._closed = False
        self._ready = threading.Semaphore(0)
        self._loaded = threading.Condition(self._lock)
        self._loaded_generation = -1  # the newest generation a worker of which has loaded its graph
        self._failed_generation = -1  # the newest generation every worker of which failed to load it
        self._failed = 0
        self._stopped: collections.OrderedDict[str, float] = collections.OrderedDict()  # text -> when
        for _ in range(size):
            self._start_worker()

    def wait_ready(self, seconds: float = LOAD_SECONDS) -> bool:
        """Block until the first workers have loaded the graph; False if one failed or took too long."""
        for _ in range(self._size):
            if not self._ready.acquire(timeout=seconds):
                return False
        return self._failed == 0

    def run(self, text: str, fmt: str) -> Answer:
        self.refuse_if_stopped_lately(text)
        try:
            worker = self._idle.get(timeout=BUSY_SECONDS)
        except queue.Empty:
            raise WorkersUnavailable(f"every query worker stayed busy for {BUSY_SECONDS} s; try again")
        try:
            worker.conn.send((text, fmt, self.max_rows))
            if not worker.conn.poll(self.timeout):
                self._replace(worker)
                with self._lock:
                    self._stopped[text] = time.monotonic()
                    while len(self._stopped) > STOPPED_KEPT:
                        self._stopped.popitem(last=False)
                raise QueryTimeout(f"the query was stopped after {self.timeout:g} s (the server's --timeout); "
                                   "narrow it, or add a LIMIT")
            reply = worker.conn.recv()
        except (EOFError, OSError):
            self._replace(worker)
            raise WorkersUnavailable("the query worker died while answering (out of memory?); it was restarted")
        self._release(worker)
        if reply[0] == "error":
            raise QueryError(reply[1])
        return Answer(reply[1], reply[2])

    def reload(self, graph: Path, base_iri: str | None = None) -> None:
        """Answer with a new graph (and the prefix `id:` for a new base IRI) as soon as a worker has loaded it;
        until then the old workers answer with the old graph."""
        with self._lock:
            self._generation += 1
            self._graph = graph
            self._base_iri = base_iri or self._base_iri
            self._stopped.clear()  # on another graph a query may well finish in time
            superseded = [w for w in self._all if not w.loaded]  # still loading a graph no longer wanted
            idle = self._take_idle()
            if idle:  # one answers meanwhile
                self._idle.put(idle.pop())
            superseded += idle
        for worker in superseded:
            self._discard(worker)
        for _ in range(self._size):
            self._start_worker()

    def wait_loaded(self, seconds: float = LOAD_SECONDS) -> bool:
        """Block until a worker holding the graph of the last `reload` answers; False if none could load it
        (the previous graph is still answered) or the pool was closed."""
        with self._loaded:
            self._loaded.wait_for(lambda: max(self._loaded_generation, self._failed_generation) >= self._generation
                                  or self._closed, seconds)
            return self._loaded_generation >= self._generation and not self._closed

    def graphs_in_use(self) -> set[Path]:
        """The graphs of the workers still running: a worker may read its graph's files while it runs (a store
        on disk opens some of its files only when a query needs them)."""
        with self._lock:
            return {w.graph for w in self._all if w.graph is not None}

    def _retire_older(self, generation: int) -> None:
        """A worker of `generation` is ready: the idle workers of older graphs stop (the busy ones when free)."""
        with self._lock:
            idle = self._take_idle()
            for worker in idle:
                if worker.generation >= generation:
                    self._idle.put(worker)
        for worker in idle:
            if worker.generation < generation:
                self._discard(worker)

    def _take_idle(self) -> list[_Worker]:
        """Every idle worker, taken out of the queue (with the lock held)."""
        taken = []
        while True:
            try:
                taken.append(self._idle.get_nowait())
            except queue.Empty:
                return taken

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._loaded.notify_all()
            workers = list(self._all) + self._spares
            self._spares = []
        for worker in workers:
            worker.stop()

    def refuse_if_stopped_lately(self, text: str) -> None:
        """A query the timeout stopped a moment ago would run past it again: keep the workers for others."""
        with self._lock:
            when = self._stopped.get(text)
        if when is not None and time.monotonic() - when < STOPPED_SECONDS:
            raise QueryTimeout(f"the query was stopped after {self.timeout:g} s (the server's --timeout) less than "
                               f"{STOPPED_SECONDS // 60} minutes ago, and is not run again so soon; narrow it, or "
                               "add a LIMIT")

    # --- keeping the pool full -----------------------------------------------------------------

    def _start_worker(self) -> None:
        """A worker of the newest graph: a spare, or a new process if there is none (or the spare died)."""
        with self._lock:
            if self._closed:
                return
            worker = None
            if self._spares:
                worker = self._spares.pop()
                try:
                    worker.load(self._graph, self._base_iri, self._generation)
                except OSError:
                    worker.stop()
                    worker = None
            if worker is None:
                worker = _Worker(self._context)
                try:
                    worker.load(self._graph, self._base_iri, self._generation)
                except OSError:  # died at once: `_await_load` reports it as one that failed to load
                    pass
            self._all.add(worker)
        threading.Thread(target=self._await_load, args=(worker,), daemon=True).start()

    def _start_spares(self) -> None:
        """Spares up to the pool's size (none if a process cannot be started: workers are then started anew)."""
        while True:
            with self._lock:
                if self._closed or len(self._spares) >= self._size:
                    return
            try:
                spare = _Worker(self._context)
            except OSError:
                return
            with self._lock:
                if self._closed:
                    spare.stop()
                    return
                self._spares.append(spare)

    def _await_load(self, worker: _Worker) -> None:
        try:
            reply = worker.conn.recv() if worker.conn.poll(LOAD_SECONDS) else None
            loaded = reply is not None and reply[0] == "ready"
        except (EOFError, OSError):
            loaded = False
        with self._lock:
            gone = worker not in self._all  # stopped by `reload` while it loaded (perhaps just after): no failure
            superseded = gone or (worker.generation < self._generation and not loaded)
        if superseded:
            self._discard(worker)
            self._ready.release()
            return
        if loaded:
            with self._lock:
                worker.loaded = True
                if worker.generation == self._generation:
                    self.triples = reply[1]
                if worker.generation > self._loaded_generation:
                    self._loaded_generation = worker.generation
                self._loaded.notify_all()
            self._retire_older(worker.generation)
        if not loaded:
            self._failed += 1
            self._say("a query worker failed to load the graph")
            self._discard(worker)
            with self._lock:
                if not any(w.generation == worker.generation for w in self._all):
                    self._failed_generation = max(self._failed_generation, worker.generation)
                    self._loaded.notify_all()
        self._ready.release()
        if loaded:
            self._release(worker)
            self._start_spares()

    def _release(self, worker: _Worker) -> None:
        with self._lock:  # kept while no worker holds a newer graph (see `reload`)
            current = worker.generation >= self._loaded_generation and not self._closed
            if current:
                self._idle.put(worker)
        if not current:
            self._discard(worker)

    def _replace(self, worker: _Worker) -> None:
        """A worker killed (past the timeout) or dead: another, with the newest graph, unless the pool has its
        size of those or `worker` held a graph no longer answered."""
        self._discard(worker)
        with self._lock:
            newest = sum(w.generation == self._generation for w in self._all)
            wanted = worker.generation >= self._loaded_generation and newest < self._size
        if wanted:
            self._start_worker()

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.stop()


class QueryDispatcher:
    """The endpoint's way to the workers, from the event loop. A request waits here for a free worker without
    holding a thread, so pages and files are served meanwhile; and a query asked while the same query is
    running shares that run's answer instead of taking a second worker (many clients asking one slow query
    occupy one worker, not all)."""

    def __init__(self, workers: QueryWorkers, size: int):
        self.workers = workers
        self._slots = asyncio.Semaphore(size)
        self._running: dict[tuple[str, str], asyncio.Task] = {}

    async def run(self, text: str, fmt: str) -> Answer:
        key = (text, fmt)
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(self._run(text, fmt))
            self._running[key] = task
            task.add_done_callback(functools.partial(self._done, key))
        return await asyncio.shield(task)  # a client that goes away does not stop the others' query

    def _done(self, key: tuple[str, str], task: asyncio.Task) -> None:
        self._running.pop(key, None)
        if not task.cancelled():
            task.exception()  # raised to each waiter; marked seen in case they have all gone

    async def _run(self, text: str, fmt: str) -> Answer:
        self.workers.refuse_if_stopped_lately(text)  # at once, without queueing for a worker
        try:
            await asyncio.wait_for(self._slots.acquire(), BUSY_SECONDS)
        except asyncio.TimeoutError:
            raise WorkersUnavailable(f"every query worker stayed busy for {BUSY_SECONDS} s; try again")
        try:
            return await asyncio.to_thread(self.workers.run, text, fmt)
        finally:
            self._slots.release()
