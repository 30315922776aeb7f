"""On a CUDA machine, in one run: the torch particle solvers on CUDA against numba on the CPU
(same draws; NFD, the true limit, the one-step depth limit; lean and float64 layouts), the
time and peak GPU memory of the NFD solve at P = 2^18 (both layouts) and 2^20 (lean), L = 64,
T = 16, and a finite network's forward pass with regenerated weights against stored ones
(bitwise, and the time). Writes ``$OUT/gpu.json``.

    python benchmarks/bench_cuda.py
"""
import json
import os
import time

import numpy as np
import torch

from nfdlib.limits import nfd, particles, true_depth_limit as tdl
from nfdlib.model import NetworkSpec
from nfdlib.network import Network

assert torch.cuda.is_available(), "no CUDA device visible to torch"
out = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0)}
print(out, flush=True)


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def timed(fn, repeat=3):
    fn()
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter(); r = fn(); torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return r, best, torch.cuda.max_memory_allocated() / 2**30

# 1. agreement of the particle solvers, CUDA vs numba, lean and float64 layouts
X, y = nfd.synthetic_task(8, 8, 0)
for dtype in ("float32", "float64"):
    noise = nfd.draw_noise(np.random.default_rng(0), 2**14, 16, 8, 8, dtype)
    a = nfd.solve(X, y, 0.5, noise, "tanh", "numba")
    b = nfd.solve(X, y, 0.5, noise, "tanh", "torch", "cuda")
    c = particles.solve(X, y, 0.5, noise, "tanh", True, "numba")
    d = particles.solve(X, y, 0.5, noise, "tanh", True, "torch", "cuda")
    out[f"nfd_f_rel_{dtype}"] = rel(b.f, a.f); out[f"true_f_rel_{dtype}"] = rel(d.f, c.f)
X2, y2 = X[:2], y[:2]
noise2 = nfd.draw_noise(np.random.default_rng(1), 2**14, 64, 2, 8)
a, b = tdl.solve(X2, y2, 0.5, noise2, "tanh", True, "numba"), tdl.solve(X2, y2, 0.5, noise2, "tanh", True, "torch", "cuda")
out["depth_limit_f_rel"] = rel(b.f, a.f)
print(out, flush=True)

# 2. speed and GPU memory of the two layouts at P = 2^18, L = 64, T = 16, and at P = 2^20
X, y = nfd.synthetic_task(16, 8, 0)
for P, dtypes in ((2**18, ("float64", "float32")), (2**20, ("float32",))):
    for dtype in dtypes:
        noise = nfd.draw_noise(np.random.default_rng(0), P, 64, 16, 8, dtype)
        r, s, gib = timed(lambda: nfd.solve(X, y, 0.5, noise, "tanh", "torch", "cuda"))
        out[f"nfd_cuda_P{P}_{dtype}"] = {"seconds": round(s, 4), "gpu_peak_gib": round(gib, 2)}
        print(P, dtype, out[f"nfd_cuda_P{P}_{dtype}"], flush=True)
        del noise

# 3. finite networks with regenerated weights on CUDA: bitwise the stored ones, and their time
for mode in ("stored", "regenerated"):
    spec = NetworkSpec.build(arch="depth_mup", backward="reused", backend="torch", dtype="float32",
                             width=1024, depth=64, d=8, n_out=1, device="cuda")
    net = Network(spec, rng=3, mode=mode)
    Xn = np.random.default_rng(0).standard_normal((8, 8))
    t0 = time.perf_counter(); fwd = net.forward(Xn); torch.cuda.synchronize()
    out[f"net_{mode}"] = {"f": np.asarray(fwd.f).tolist(), "seconds": round(time.perf_counter() - t0, 3)}
out["net_regenerated_bitwise"] = out["net_stored"]["f"] == out["net_regenerated"]["f"]
print({k: v for k, v in out.items() if not k.startswith("net_")}, out["net_regenerated_bitwise"],
      out["net_stored"]["seconds"], out["net_regenerated"]["seconds"], flush=True)
json.dump(out, open(os.path.join(os.environ.get("OUT", "."), "gpu.json"), "w"), indent=1)
