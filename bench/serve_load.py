"""Load on `kb serve`: many concurrent clients asking a mix of queries for a fixed time, with a few clients
running a query that must time out. Run from the repository: `.venv/bin/python bench/serve_load.py`.

Starts the real `kb serve` on the bundled corpus (building `_site/` first if it is stale), then for --seconds
(each client a thread with its own httpx.Client and kept-alive connection):
--clients clients in all, of which --heavy ask only SLOW (a triple cross join, far past the server's --timeout)
again and again, and the others pick at random (fixed seed) among lookups by IRI, DESCRIBE, the entity's Turtle
file, and the saved queries variants-of-t-80 (a path lookup), main-battle-tanks (a join of optional values) and
systems-per-category (a grouped count). Meanwhile a probe asks for the home page each second, and the memory of
the server's process tree is sampled.

Prints requests/s, latency percentiles per kind, answers by status, the longest probe, and the peak memory; then
checks the requirements (no 5xx for a valid query, 503 for SLOW, the server still answering, memory under
--memory-mib) and exits 1 if one fails.
"""
from __future__ import annotations

import argparse
import collections
import os
import random
import resource
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kb.query import saved_queries  # noqa: E402
from tests.server_helpers import start_kb_serve, stop  # noqa: E402

SLOW = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
WEIGHTS = {"lookup": 30, "describe": 10, "entity file": 10, "variants-of-t-80": 20, "main-battle-tanks": 20,
           "systems-per-category": 10}
RESULTS = "application/sparql-results+json"


# --- memory of the server's process tree ---------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, ValueError, IndexError):
        return 0.0


def _status(pid: int) -> dict[str, int]:
    fields = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0])  # kB
    except (OSError, ValueError):
        pass
    return fields


def process_tree(root: int) -> list[int]:
    children = collections.defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" ", 1)
            children[int(rest.rsplit(")", 1)[1].split()[1])].append(int(pid))
        except (OSError, ValueError, IndexError):
            continue
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


class MemorySampler(threading.Thread):
    """Every quarter second: the sum over the server's live processes of their peak RSS (VmHWM), an upper
    bound of what they held at once; the largest sum is the figure. Workers killed by the timeout and their
    replacements are counted while they live. Also the CPU time of each process (as last seen)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self.peak_processes = 0
        self.cpu: dict[int, float] = {}
        self.done = threading.Event()

    def mark(self) -> None:
        """Count CPU time from now on."""
        pids = process_tree(self.pid)
        self.cpu_before = _cpu_seconds(self.pid)
        self.workers_cpu_before = sum(_cpu_seconds(pid) for pid in pids if pid != self.pid)
        own = resource.getrusage(resource.RUSAGE_SELF)
        self.client_cpu_before = own.ru_utime + own.ru_stime

    def run(self):
        while not self.done.wait(0.25):
            pids = process_tree(self.pid)
            self.cpu.update({pid: _cpu_seconds(pid) for pid in pids})
            total = sum(_status(pid).get("VmHWM", 0) for pid in pids)
            if total > self.peak_kib:
                self.peak_kib, self.peak_processes = total, len(pids)


# --- the clients ---------------------------------------------------------------------------------------------


def requests_for(base: str, systems: list[str]) -> dict[str, callable]:
    """For each kind, a function (rng) -> (method, url, keyword arguments) of one request."""
    saved = saved_queries(REPO / "queries")

    def sparql(text, accept=RESULTS):
        return "POST", f"{base}/sparql", {"data": {"query": text}, "headers": {"Accept": accept}}

    return {
        "lookup": lambda rng: sparql(f"SELECT ?p ?o WHERE {{ <{rng.choice(systems)}> ?p ?o }}"),
        "describe": lambda rng: sparql(f"DESCRIBE <{rng.choice(systems)}>", "text/turtle"),
        "entity file": lambda rng: ("GET", f"{base}/id/{rng.choice(systems).rsplit('/', 1)[1]}",
                                    {"headers": {"Accept": "text/turtle"}}),
        **{name: (lambda rng, text=saved[name].text: sparql(text))
           for name in ("variants-of-t-80", "main-battle-tanks", "systems-per-category")},
        "slow": lambda rng: sparql(SLOW),
    }


def client(kinds, requests, seed: int, until: float, log: list, notes: dict) -> None:
    """One client: its own connection (kept alive), one request at a time until `until`."""
    rng = random.Random(seed)
    names, weights = zip(*kinds.items()) if isinstance(kinds, dict) else ((kinds,), (1,))
    with httpx.Client(timeout=120) as http:
        while time.monotonic() < until:
            kind = rng.choices(names, weights)[0]
            method, url, options = requests[kind](rng)
            started = time.monotonic()
            try:
                response = http.request(method, url, **options)
                outcome = response.status_code
                if outcome >= 300:  # the first few distinct messages of each kind and status
                    seen = notes.setdefault((kind, outcome), [])
                    if len(seen) < 3 and response.text.strip() not in seen:
                        seen.append(response.text.strip())
            except httpx.HTTPError as e:
                outcome = type(e).__name__
            log.append((kind, outcome, time.monotonic() - started, started))


def probe(base: str, until: float, seconds: float, waits: list) -> None:
    """The home page once a second: does the server keep answering?"""
    with httpx.Client(timeout=120) as http:
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                ok = http.get(f"{base}/index.html").status_code == 200
            except httpx.HTTPError:
                ok = False
            waits.append((time.monotonic() - started, started - until + seconds, ok))
            time.sleep(1)


def load(base: str, systems: list[str], clients: int, heavy: int, seconds: float):
    """Threads, each with its own httpx.Client: httpx's AsyncClient, sharing one pool among 50 connections,
    spent more time on itself than the server did on the requests (75 requests/s for a static file)."""
    requests = requests_for(base, systems)
    log, waits, notes = [], [], {}
    started = time.monotonic()
    until = started + seconds
    with ThreadPoolExecutor(clients + 1) as pool:
        done = [pool.submit(probe, base, until, seconds, waits)]
        done += [pool.submit(client, "slow" if i < heavy else WEIGHTS, requests, i, until, log,
                             notes) for i in range(clients)]
        for future in done:
            future.result()
    return log, waits, notes, time.monotonic() - started


# --- the report ----------------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def report(log: list, waits: list, notes: dict, elapsed: float, seconds: float, sampler: MemorySampler,
           args) -> bool:
    valid = [(k, o) for k, o, _, _ in log if k != "slow"]
    print(f"{len(log)} requests in {elapsed:.1f} s (clients start no request after {seconds:g} s) = "
          f"{len(log) / elapsed:.0f} requests/s; {args.clients} clients, {args.heavy} of them asking only SLOW; "
          f"the valid ones: {len(valid)} = {len(valid) / elapsed:.0f} requests/s")
    print()
    print(f"{'kind':<22}{'requests':>9}{'per s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}  answers")
    by_kind = collections.defaultdict(list)
    for kind, outcome, seconds_taken, _ in log:
        by_kind[kind].append((outcome, seconds_taken))
    for kind in [*WEIGHTS, "slow"]:
        rows = by_kind.get(kind, [])
        if not rows:
            continue
        times = sorted(1000 * t for _, t in rows)
        answers = collections.Counter(str(o) for o, _ in rows)
        print(f"{kind:<22}{len(rows):>9}{len(rows) / elapsed:>8.1f}{percentile(times, 50):>9.0f}"
              f"{percentile(times, 90):>9.0f}{percentile(times, 99):>9.0f}{times[-1]:>9.0f}  "
              + ", ".join(f"{status} × {n}" for status, n in sorted(answers.items())))
    started = min(t for _, _, _, t in log)
    took, when = max((t, at) for k, _, t, at in log if k != "slow")
    print(f"the slowest valid answer took {1000 * took:.0f} ms, asked {when - started:.1f} s into the load")
    for (kind, status), texts in sorted(notes.items()):
        for text in texts:
            print(f"  {kind} {status}: {text[:200]}")
    print()
    longest, at, _ = max(waits, default=(0, 0, True))
    failed_probes = sum(1 for _, _, ok in waits if not ok)
    print(f"home page probe: {len(waits)} asked once a second, {failed_probes} failed, longest wait "
          f"{1000 * longest:.0f} ms (at {at:.0f} s)")
    mib = sampler.peak_kib / 1024
    print(f"memory: peak {mib:.0f} MiB summed over the server's process tree ({sampler.peak_processes} processes "
          f"then: kb serve, its query workers, multiprocessing's resource tracker; {len(sampler.cpu)} processes "
          f"seen in all, as timed-out workers are replaced)")
    main_cpu = sampler.cpu.get(sampler.pid, 0) - sampler.cpu_before
    others = sum(cpu for pid, cpu in sampler.cpu.items() if pid != sampler.pid) - sampler.workers_cpu_before
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(f"CPU during the load: kb serve {main_cpu:.1f} s, its query workers {others:.1f} s, these clients "
          f"{own.ru_utime + own.ru_stime - sampler.client_cpu_before:.1f} s, of {os.cpu_count() * elapsed:.0f} s "
          f"({os.cpu_count()} cores × {elapsed:.0f} s)")
    print()
    server_errors = [o for _, o in valid if not (isinstance(o, int) and o < 500)]
    slow = [o for k, o, _, _ in log if k == "slow"]
    checks = [
        (f"no 5xx or failed request for a valid query ({len(server_errors)} of {len(valid)})", not server_errors),
        (f"SLOW answered 503 every time ({sum(1 for o in slow if o == 503)} of {len(slow)})",
         bool(slow) and all(o == 503 for o in slow)),
        ("the server kept answering (every probe answered)", bool(waits) and not failed_probes),
        (f"memory within {args.memory_mib} MiB ({mib:.0f} MiB)", mib <= args.memory_mib),
    ]
    for text, ok in checks:
        print(f"{'ok    ' if ok else 'FAILED'} {text}")
    return all(ok for _, ok in checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--heavy", type=int, default=2, help="clients asking only the slow query (default 2)")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--timeout", type=float, default=10, help="the server's --timeout (default 10, as kb serve)")
    parser.add_argument("--memory-mib", type=int, default=1024, help="the memory bound checked (default 1 GiB)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="milkb-load-") as tmp:
        started = time.perf_counter()
        process, base = start_kb_serve(REPO, "--timeout", f"{args.timeout:g}", log=Path(tmp) / "serve.log")
        print(f"kb serve on the bundled corpus, --timeout {args.timeout:g}: ready in "
              f"{time.perf_counter() - started:.1f} s; {os.cpu_count()} cores, load average "
              f"{Path('/proc/loadavg').read_text().split()[0]} before the load (other work on the machine)")
        sampler = MemorySampler(process.pid)
        sampler.start()
        try:
            answer = httpx.post(f"{base}/sparql", headers={"Accept": RESULTS}, timeout=60, data={
                "query": "SELECT ?s WHERE { ?s a kb:System } ORDER BY ?s"})
            systems = [b["s"]["value"] for b in answer.json()["results"]["bindings"]]
            print(f"{len(systems)} systems to look up")
            sampler.mark()
            log, waits, notes, elapsed = load(base, systems, args.clients, args.heavy, args.seconds)
            alive = httpx.get(f"{base}/index.html", timeout=30).status_code == 200
        finally:
            sampler.done.set()
            sampler.join()
            code = stop(process)
        ok = report(log, waits, notes, elapsed, args.seconds, sampler, args) and alive
        print(f"{'ok    ' if alive else 'FAILED'} answering after the load; kb serve stopped with exit code {code}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
