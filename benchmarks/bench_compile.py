"""First-run cost of numba compilation for the whole book: every experiment at one profile
(smoke by default: every kernel the book calls is compiled there), run twice in fresh processes that share one numba cache folder: first with the
folder empty (everything compiles and is cached), then again (everything loads from the
cache). The difference is the compilation a reader pays on a fresh machine.

Usage: ``python benchmarks/bench_compile.py [--profile book] [--only NAME ...]``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

RUN_ALL = """
import sys, time
from nfdlib import experiments
profile, names = sys.argv[1], sys.argv[2:] or list(experiments.registry())
for name in names:
    t0 = time.perf_counter()
    experiments.execute(name, profile=profile)
    print(f"{name} {time.perf_counter() - t0:.2f}", flush=True)
"""


def run(names: list[str], cache: str, profile: str) -> tuple[float, dict[str, float]]:
    """Wall time of one fresh process running ``names`` (all experiments if empty), and the
    time of each experiment in it."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, MPLBACKEND="Agg",
               NFD_RESULTS=tempfile.mkdtemp(), NFD_LEDGER=tempfile.mkdtemp())
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", RUN_ALL, profile, *names], env=env, check=True,
                         capture_output=True, text=True).stdout
    wall = time.perf_counter() - t0
    per = {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.strip()}
    return wall, per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=[], help="experiments (default: all)")
    parser.add_argument("--profile", default="smoke", help="profile to run (default: smoke)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        cold, cold_per = run(args.only, cache, args.profile)
        warm, warm_per = run(args.only, cache, args.profile)
    print(f"{'experiment':24s} {'empty cache':>12s} {'warm cache':>11s} {'compilation':>12s}")
    for name in cold_per:
        print(f"{name:24s} {cold_per[name]:11.1f}s {warm_per[name]:10.1f}s "
              f"{cold_per[name] - warm_per[name]:11.1f}s")
    print(f"{'whole book (processes)':24s} {cold:11.1f}s {warm:10.1f}s {cold - warm:11.1f}s"
          f"   (goal: compilation under 30 s)")


if __name__ == "__main__":
    main()
