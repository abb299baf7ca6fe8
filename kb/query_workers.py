"""SPARQL queries run in worker processes that hold the graph, so a query past its time can be stopped by
killing its process (a thread running rdflib cannot be interrupted)."""
from __future__ import annotations

import functools
import itertools
import multiprocessing
import queue
import threading
from dataclasses import dataclass
from typing import Callable

LOAD_SECONDS = 120  # the most a new worker may take to parse the graph
BUSY_SECONDS = 30  # the most a query waits for a free worker


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


def _worker_main(conn, ntriples: str, base_iri: str) -> None:
    """A worker: load the graph once, then answer (query, format, max_rows) jobs until the pipe closes."""
    import rdflib.plugins.sparql as sparql
    from rdflib import Graph

    from .namespaces import PREFIXES

    sparql.SPARQL_LOAD_GRAPHS = False  # FROM <url> must never fetch from the network
    graph = Graph()
    graph.parse(data=ntriples, format="nt")
    del ntriples
    for prefix, ns in PREFIXES.items():
        graph.bind(prefix, ns, override=True, replace=True)
    conn.send(("ready", len(graph)))
    while True:
        try:
            text, fmt, max_rows = conn.recv()
        except (EOFError, OSError):  # the server has gone
            return
        conn.send(_answer(graph, base_iri, text, fmt, max_rows))


@functools.lru_cache(maxsize=256)
def _prepared(text: str, base_iri: str):
    """The parsed query, kept: parsing (pyparsing) costs more than answering most queries on this graph."""
    from rdflib.plugins.sparql import prepareQuery

    from .namespaces import PREFIXES

    return prepareQuery(text, initNs=dict(PREFIXES, id=base_iri))  # the namespaces kb.query.run_query binds


def _answer(graph, base_iri: str, text: str, fmt: str, max_rows: int) -> tuple:
    from .problems import KBError
    from .query import run_query, serialize_result

    try:
        try:
            query = _prepared(text, base_iri)
        except Exception:  # noqa: BLE001 - let run_query word the error as `kb query` does
            run_query(graph, text, "query", base_iri=base_iri)
            raise
        result, truncated = _cap(graph.query(query), max_rows)
        return ("ok", serialize_result(result, fmt).encode("utf-8"), truncated)
    except KBError as e:
        return ("error", "; ".join(p.message + (f" — {p.hint}" if p.hint else "") for p in e.problems))
    except Exception as e:  # noqa: BLE001 - rdflib raises plain exceptions while evaluating
        return ("error", f"SPARQL evaluation error: {e}")


def _cap(result, max_rows: int):
    """The result with at most `max_rows` rows (SELECT) or triples (CONSTRUCT/DESCRIBE), and whether it was cut."""
    from rdflib import Graph, Variable
    from rdflib.query import Result

    if result.type == "SELECT":
        rows = list(itertools.islice(result, max_rows + 1))  # stops evaluating once past the cap
        cut = Result("SELECT")
        cut.vars = result.vars
        cut.bindings = [{Variable(k): v for k, v in row.asdict().items()} for row in rows[:max_rows]]
        return cut, len(rows) > max_rows
    if result.type in ("CONSTRUCT", "DESCRIBE") and len(result.graph) > max_rows:
        graph = Graph()
        for triple in itertools.islice(result.graph, max_rows):
            graph.add(triple)
        cut = Result(result.type)
        cut.graph = graph
        return cut, True
    return result, False


class _Worker:
    def __init__(self, context, ntriples: str, base_iri: str, generation: int):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, ntriples, base_iri), daemon=True,
                                       name="kb-query-worker")
        self.process.start()
        child.close()
        self.generation = generation

    def stop(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)


class QueryWorkers:
    """A pool of worker processes, each holding the whole graph; one query at a time per worker.

    `run` blocks (call it from a thread). A query past `timeout` seconds gets its worker killed and a new
    one started; `reload` swaps in a new graph (old workers finish their query, then stop).
    """

    def __init__(self, ntriples: str, base_iri: str, *, size: int = 2, timeout: float = 10.0,
                 max_rows: int = 10_000, say: Callable[[str], None] = lambda message: None):
        self.timeout = timeout
        self.max_rows = max_rows
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._base_iri = base_iri
        self._ntriples = ntriples
        self._size = size
        self._say = say
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._generation = 0
        self._all: set[_Worker] = set()
        self._closed = False
        self._ready = threading.Semaphore(0)
        self._failed = 0
        for _ in range(size):
            self._start_worker()

    def wait_ready(self, seconds: float = LOAD_SECONDS) -> bool:
        """Block until the first workers have loaded the graph; False if one failed or took too long."""
        for _ in range(self._size):
            if not self._ready.acquire(timeout=seconds):
                return False
        return self._failed == 0

    def run(self, text: str, fmt: str) -> Answer:
        try:
            worker = self._idle.get(timeout=BUSY_SECONDS)
        except queue.Empty:
            raise WorkersUnavailable(f"every query worker stayed busy for {BUSY_SECONDS} s; try again")
        try:
            worker.conn.send((text, fmt, self.max_rows))
            if not worker.conn.poll(self.timeout):
                self._replace(worker)
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

    def reload(self, ntriples: str) -> None:
        """Answer from now on with a new graph."""
        with self._lock:
            self._generation += 1
            self._ntriples = ntriples
            old = []
            while True:
                try:
                    old.append(self._idle.get_nowait())
                except queue.Empty:
                    break
        for worker in old:
            self._discard(worker)
        for _ in range(self._size):
            self._start_worker()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
        for worker in workers:
            worker.stop()

    # --- keeping the pool full -----------------------------------------------------------------

    def _start_worker(self) -> None:
        with self._lock:
            if self._closed:
                return
            worker = _Worker(self._context, self._ntriples, self._base_iri, self._generation)
            self._all.add(worker)
        threading.Thread(target=self._await_load, args=(worker,), daemon=True).start()

    def _await_load(self, worker: _Worker) -> None:
        try:
            loaded = worker.conn.poll(LOAD_SECONDS) and worker.conn.recv()[0] == "ready"
        except (EOFError, OSError):
            loaded = False
        if not loaded:
            self._failed += 1
            self._say("a query worker failed to load the graph")
            self._discard(worker)
        self._ready.release()
        if loaded:
            self._release(worker)

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            current = worker.generation == self._generation and not self._closed
            if current:
                self._idle.put(worker)
        if not current:
            self._discard(worker)

    def _replace(self, worker: _Worker) -> None:
        self._discard(worker)
        with self._lock:
            current = worker.generation == self._generation
        if current:
            self._start_worker()

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.stop()
