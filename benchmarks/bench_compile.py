"""First-run cost of numba compilation for the whole book: every experiment at one profile
(``book`` by default) in a fresh process whose numba cache folder is empty, with numba's
compile events timed (outermost events only, so a kernel compiled inside another counts
once). Loading from the cache is not a compile event, so this is the time a reader pays on a
fresh machine, and other work on the machine inflates it far less than comparing a cold with
a warm run would.

Usage: ``python benchmarks/bench_compile.py [--profile smoke] [--only NAME ...]``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

RUN_ALL = """
import sys, time
from numba.core import event
from nfdlib import experiments
profile, names = sys.argv[1], sys.argv[2:] or list(experiments.registry())
for name in names:
    timer = event.TimingListener()
    t0 = time.perf_counter()
    with event.install_listener("numba:compile", timer):
        experiments.execute(name, profile=profile)
    compiled = timer.duration if timer.done else 0.0
    print(f"{name} {time.perf_counter() - t0:.2f} {compiled:.2f}", flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=[], help="experiments (default: all)")
    parser.add_argument("--profile", default="book", help="profile to run (default: book)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, MPLBACKEND="Agg",
                   NFD_RESULTS=os.path.join(cache, "results"), NFD_LEDGER=os.path.join(cache, "ledger"))
        out = subprocess.run([sys.executable, "-c", RUN_ALL, args.profile, *args.only], env=env,
                             check=True, capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    print(f"{'experiment':24s} {'run':>8s} {'compiling':>10s}   (profile {args.profile}, empty cache)")
    for name, run, compiled in rows:
        print(f"{name:24s} {float(run):7.1f}s {float(compiled):9.1f}s")
    total = sum(float(r[2]) for r in rows)
    print(f"{'whole book':24s} {sum(float(r[1]) for r in rows):7.1f}s {total:9.1f}s"
          f"   (goal: compilation under 30 s)")


if __name__ == "__main__":
    main()
