"""Queries per second of `kb serve` for a typical saved query, and the time `kb publish` takes to put the
bundled corpus into a fresh Oxigraph server. Run from the repository: `.venv/bin/python bench/serve_qps.py`.

Everything runs on this machine (127.0.0.1) and stops by itself: a fixed number of requests, then the servers
are stopped.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kb.query import saved_queries  # noqa: E402
from tests.conftest import kb_executable  # noqa: E402
from tests.server_helpers import start_kb_serve, start_oxigraph, stop  # noqa: E402


def measure_serve(names: list[str], requests: int, concurrency: int, log: Path) -> None:
    queries = saved_queries(REPO / "queries")
    started = time.perf_counter()
    process, base = start_kb_serve(REPO, "--timeout", "30", log=log)
    print(f"kb serve ready in {time.perf_counter() - started:.1f} s (building the site first if it was stale)")
    try:
        with httpx.Client(timeout=60) as client:
            for name in names:
                text = queries[name].text

                def ask(_):
                    t = time.perf_counter()
                    response = client.post(f"{base}/sparql", data={"query": text},
                                           headers={"Accept": "application/sparql-results+json"})
                    response.raise_for_status()
                    return time.perf_counter() - t, len(response.json()["results"]["bindings"])

                for _ in range(5):  # warm-up: both workers, the connection pool, the parsed-query caches
                    ask(None)
                started = time.perf_counter()
                with ThreadPoolExecutor(concurrency) as pool:
                    results = list(pool.map(ask, range(requests)))
                seconds = time.perf_counter() - started
                latencies = sorted(t for t, _ in results)
                print(f"saved query `{name}` ({results[0][1]} rows): {requests} requests, {concurrency} at a time, "
                      f"in {seconds:.2f} s = {requests / seconds:.0f} queries/s; latency median "
                      f"{1000 * statistics.median(latencies):.0f} ms, "
                      f"95th percentile {1000 * latencies[int(0.95 * len(latencies)) - 1]:.0f} ms")
    finally:
        stop(process)


def measure_publish(folder: Path) -> None:
    process, base = start_oxigraph(folder / "oxigraph")
    try:
        for args in (("--store", f"{base}/store"),
                     ("--update", f"{base}/update", "--query", f"{base}/query", "--graph", "urn:x-bench:update")):
            started = time.perf_counter()
            result = subprocess.run([kb_executable(), "publish", *args], cwd=REPO, capture_output=True, text=True)
            wall = time.perf_counter() - started
            if result.returncode != 0:
                raise SystemExit(f"kb publish failed: {result.stderr}")
            found = re.search(r"published (\d+) triples .* in ([\d.]+) s \(([\d.]+) MB, ([^)]+)\)", result.stdout)
            triples, seconds, megabytes, method = found.groups()
            print(f"kb publish ({method}): {triples} triples, {megabytes} MB, {seconds} s to send and verify; "
                  f"{wall:.1f} s for the whole command (loading and validating the corpus included)")
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--query", action="append", help="saved query to ask (queries/NAME.rq); repeatable "
                        "(default: variants-of-t-80, a light lookup, and main-battle-tanks, a typical table)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="milkb-bench-") as tmp:
        folder = Path(tmp)
        measure_serve(args.query or ["variants-of-t-80", "main-battle-tanks"], args.requests, args.concurrency, folder / "serve.log")
        measure_publish(folder)


if __name__ == "__main__":
    main()
