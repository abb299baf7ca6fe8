#!/usr/bin/env python3
"""Profile one `kb build --no-search` of a synthetic knowledge base with cProfile.

    .venv/bin/python bench/profile.py [N] [--top 25] [--keep DIR] > bench/profile-baseline.txt

Generates N systems (default 10,000) with bench/generate.py into a temporary folder, runs the `kb`
command under cProfile in a fresh process (from scratch: no .kb-cache, no previous site), and prints the
top functions by cumulative time, then by own time. cProfile slows Python code down (often 1.5–2×), so
read the shares, not the absolute seconds; bench/run gives the real times.
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=10_000, help="number of systems (default 10000)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep the knowledge base, site and .prof")
    args = parser.parse_args()
    kb_exe = Path(sys.executable).parent / "kb"
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="milkb-profile-")
    work = args.keep or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    try:
        root, site, prof = work / f"kb-{args.n}", work / f"site-{args.n}", work / f"build-{args.n}.prof"
        counts = generate.generate(args.n, root, args.seed, quiet=True)
        command = [sys.executable, "-m", "cProfile", "-o", str(prof), str(kb_exe), "--root", str(root),
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
        for order in ("cumulative", "tottime"):
            buffer = io.StringIO()
            stats = pstats.Stats(str(prof), stream=buffer)
            stats.strip_dirs().sort_stats(order).print_stats(args.top)
            text = buffer.getvalue()
            body = text[text.index("   ncalls"):] if "   ncalls" in text else text
            print(f"\n=== top {args.top} by {order} time ===")
            print(body.rstrip())
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
