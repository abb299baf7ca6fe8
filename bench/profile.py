#!/usr/bin/env python3
"""Profile one `kb build --no-search` of a synthetic knowledge base with cProfile.

    .venv/bin/python bench/profile.py [N] [--top 25] [--keep DIR] > bench/profile-baseline.txt

Generates N systems (default 10,000) with bench/generate.py into a temporary folder, runs the `kb`
command under cProfile in a fresh process (from scratch: no .kb-cache, no previous site), and prints the
top functions by cumulative time, the same restricted to milkb's own code (kb/), and by own time; then
it times each saved query (queries/*.rq) on the loaded graph without the profiler, since the build runs
them all for the site's query page. cProfile slows Python code down (often 1.5–2×), so
read the shares, not the absolute seconds; bench/run gives the real times.
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import generate  # noqa: E402


# The `kb` command ends with os._exit (no teardown), so `python -m cProfile kb …` never writes its file:
# this runs the same Typer app under the profiler and writes the stats before leaving.
PROFILED = """
import cProfile, sys
from kb.cli import app
out, sys.argv = sys.argv[1], ["kb", *sys.argv[2:]]
profile, code = cProfile.Profile(), 0
try:
    profile.runcall(app)
except SystemExit as e:
    code = e.code
finally:
    profile.dump_stats(out)
sys.exit(code)
"""


def print_query_times(root: Path) -> None:
    """Each saved query on the loaded graph, in this process (the build runs them all for queries.html)."""
    sys.path.insert(0, str(REPO))
    from kb.knowledge_base import load_valid_kb
    from kb.query import run_query, saved_queries

    kb = load_valid_kb(root, shacl=False)
    rows = []
    for name, q in saved_queries(kb.config.queries_dir).items():
        started = time.perf_counter()
        result = run_query(kb.graph, q.text, name, base_iri=kb.config.base_iri)
        n = len(list(result))
        rows.append((time.perf_counter() - started, name, n))
    print(f"\n=== saved queries on the {len(kb.graph):,}-triple graph (rdflib, in process, no profiler) ===")
    for seconds, name, n in sorted(rows, reverse=True):
        print(f"{seconds:8.2f} s  {name} ({n} rows)")
    print(f"{sum(r[0] for r in rows):8.2f} s  all {len(rows)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=10_000, help="number of systems (default 10000)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep the knowledge base, site and .prof")
    parser.add_argument("--no-queries", dest="queries", action="store_false",
                        help="skip timing each saved query afterwards (without the profiler)")
    args = parser.parse_args()
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="milkb-profile-")
    work = args.keep or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    try:
        root, site, prof = work / f"kb-{args.n}", work / f"site-{args.n}", work / f"build-{args.n}.prof"
        counts = generate.generate(args.n, root, args.seed, quiet=True)
        command = [sys.executable, "-c", PROFILED, str(prof), "--root", str(root),
                   "build", "--no-search", "-o", str(site)]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"kb build failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
        print(f"cProfile of `kb build --no-search` on {args.n:,} synthetic systems — {dt.datetime.now():%Y-%m-%d %H:%M}, "
              f"nproc {os.cpu_count()}")
        print(f"{counts['distinct quantities']:,} distinct quantity strings; kb said: {result.stdout.strip()}")
        print(f"wall time under cProfile: {seconds:.1f} s (cProfile adds overhead; bench/run has the real times)")
        kb_dir = re.escape(str(REPO / "kb") + os.sep)
        sections = (("cumulative", None, f"top {args.top} by cumulative time"),
                    ("cumulative", kb_dir, f"top {args.top} of milkb's own functions (kb/) by cumulative time"),
                    ("tottime", None, f"top {args.top} by own time (tottime)"))
        for order, only, title in sections:
            buffer = io.StringIO()
            stats = pstats.Stats(str(prof), stream=buffer)
            if only is None:
                stats.strip_dirs()
            stats.sort_stats(order)
            stats.print_stats(*([only] if only else []), args.top)
            text = buffer.getvalue()
            body = text[text.index("   ncalls"):] if "   ncalls" in text else text
            if only:
                body = body.replace(str(REPO) + os.sep, "")
            print(f"\n=== {title} ===")
            print(body.rstrip())
        if args.queries:
            print_query_times(root)
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
