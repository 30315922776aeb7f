"""Peak memory and time of finite networks with stored and with regenerated weights
(:class:`nfdlib.model.LayerWeights`), in one run: the P4.2 GIA pair (one network, tanh and
ReLU on the same draws, numba, float32, B = 8 inputs) at width 4096 × depth 256 and the
P5.2 one-step gap (one weight draw, both step sizes, numba, float32) at width 2048 × depth
256; ``--quick``: 512 × 32 and 256 × 16.

Each measurement runs in a fresh child process (``python bench_network_memory.py --child``),
which reports its wall time and its peak resident set (``getrusage``'s ``ru_maxrss``, the
interpreter and its imports included; their share, measured before the work, is printed
too). A "before" (stored) case whose held weights exceed what this machine allows
(:func:`nfdlib.params.require_memory`'s 70% of the available memory) is not run: its computed
requirement is printed instead, and the ratio is taken against it; its time is that of the
stored run at a depth that fits, scaled linearly in depth (the work per layer is the same).

    python benchmarks/bench_network_memory.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

GiB = 2**30


def _rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(case: str, mode: str, width: int, depth: int) -> None:
    """Run one case in this process; print ``{"seconds", "peak", "baseline", "check"}``."""
    import numpy as np

    import nfdlib.model as model
    from nfdlib.experiments import p42_gia_init as p42
    from nfdlib.experiments.p52_compute import compute_point
    from nfdlib.experiments.p52_params import GapParams

    model.STORED_MAX_BYTES = float("inf") if mode == "stored" else 0
    if case == "p42":
        fn = lambda: p42.gia_point(width, depth, 0, ["tanh", "relu"], "numba", "cpu", "float32", 32, 8)  # noqa: E731
        p42.gia_point(16, 2, 0, ["tanh", "relu"], "numba", "cpu", "float32", 32, 8)   # compile
    else:
        P = GapParams.build(profile="paper").to_dict()
        fn = lambda: compute_point(width, depth, 0, P)  # noqa: E731
        compute_point(16, 2, 0, P)                                                       # compile
    baseline = _rss()
    t0 = time.perf_counter()
    rec = fn()
    seconds = time.perf_counter() - t0
    check = (float(np.max(rec["tanh"]["mse"])) if case == "p42" else float(rec["gap_f"]))
    print(json.dumps({"seconds": seconds, "peak": _rss(), "baseline": baseline, "check": check}))


def stored_requirement(case: str, width: int, depth: int) -> int:
    """Bytes that the stored path holds: P4.2, one stack and the passes; P5.2, the draws
    (W, W̃) and one decoupled network's copy of them, and the passes."""
    from nfdlib.model import NetworkSpec
    if case == "p42":
        return depth * width**2 * 4 + 7 * (depth + 1) * 8 * width * 8
    spec = NetworkSpec(width=width, depth=depth, backward="decoupled")
    return 2 * spec.weight_bytes("stored") + 4 * 6 * (depth + 1) * 2 * width * 8 * 2


def measure(case: str, mode: str, width: int, depth: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", case, mode, str(width), str(depth)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="P4.2 at 512 × 32, P5.2 at 256 × 16")
    ap.add_argument("--child", nargs=4, metavar=("CASE", "MODE", "WIDTH", "DEPTH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        case, mode, width, depth = a.child
        child(case, mode, int(width), int(depth))
        return
    from nfdlib.params import available_memory_bytes
    limit = 0.7 * available_memory_bytes()
    cases = [("p42", "P4.2 GIA pair (tanh + ReLU)", 512, 32), ("p52", "P5.2 one-step gap", 256, 16)] if a.quick \
        else [("p42", "P4.2 GIA pair (tanh + ReLU)", 4096, 256), ("p52", "P5.2 one-step gap", 2048, 256)]
    print(f"peak resident set (GB = 1e9 bytes) and wall time; numba, float32, this machine allows "
          f"{limit / 1e9:.1f} GB")
    for case, title, n, L in cases:
        need = stored_requirement(case, n, L)
        after = measure(case, "regenerated", n, L)
        if need <= limit:
            before = measure(case, "stored", n, L)
            same = "same" if before["check"] == after["check"] else "DIFFERENT"
            b_mem, b_time = before["peak"], before["seconds"]
            b_text = (f"{b_mem / 1e9:6.2f} GB  {b_time:8.1f} s  (imports {before['baseline'] / 1e9:.2f} GB; "
                      f"check value {same})")
        else:
            short = L // 2
            while short > 1 and stored_requirement(case, n, short) > limit / 2:
                short //= 2
            part = measure(case, "stored", n, short)
            b_mem, b_time = need, part["seconds"] * L / short
            b_text = (f"{need / 1e9:6.2f} GB  {b_time:8.1f} s  (memory: computed requirement, not run "
                      f"here; time: stored at depth {short}, {part['seconds']:.1f} s, times {L // short})")
        print(f"{title}, width {n} x depth {L}")
        print(f"  before (stored)      {b_text}")
        print(f"  after (regenerated)  {after['peak'] / 1e9:6.2f} GB  {after['seconds']:8.1f} s  "
              f"(imports {after['baseline'] / 1e9:.2f} GB)")
        ratio_t = f"{after['seconds'] / b_time:.2f}" if b_time else "n/a"
        print(f"  after/before         memory {after['peak'] / b_mem:.3f}   time {ratio_t}   "
              f"(goal: after < 8 GB: {'met' if after['peak'] < 8e9 else 'NOT met'})")


if __name__ == "__main__":
    main()
