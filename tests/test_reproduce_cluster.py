"""``nfd reproduce`` on a Dask cluster started by the test (a scheduler and two worker processes,
each declaring its memory): the smoke profile gives the same claims and data as a serial run,
and a worker killed while it computes a point loses nothing (the point is computed again on the
other worker and the results are still those of the serial run)."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from nfdlib import reproduce  # noqa: E402
from nfdlib.params import ParamError  # noqa: E402

DASK = Path(sys.executable).parent / "dask"
if not DASK.exists():
    pytest.skip("the dask command line is not installed beside this Python", allow_module_level=True)
TIMING_KEYS = {"ms_per_step"}  # wall-clock measurements inside a result's data


def _without_timings(x):
    if isinstance(x, dict):
        return {k: _without_timings(v) for k, v in x.items() if k not in TIMING_KEYS}
    if isinstance(x, list):
        return [_without_timings(v) for v in x]
    return x


def _results(root: Path) -> dict:
    """experiment/params-hash → (claims, data without timings) of every stored result."""
    out = {}
    for path in sorted(root.glob("*/*/result.json")):
        res = json.loads(path.read_text())
        out[f"{path.parent.parent.name}/{path.parent.name}"] = (res["claims"], _without_timings(res["data"]))
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The address of a scheduler with two single-thread workers (MEMORY=4 GB each), and the
    worker processes."""
    tmp = tmp_path_factory.mktemp("cluster")
    sched_file = tmp / "scheduler.json"
    procs = [subprocess.Popen([str(DASK), "scheduler", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)]
    try:
        for _ in range(200):
            if sched_file.exists() and sched_file.stat().st_size:
                break
            time.sleep(0.05)
        address = json.loads(sched_file.read_text())["address"]
        workers = [subprocess.Popen([str(DASK), "worker", address, "--nthreads", "1", "--no-nanny",
                                     "--no-dashboard", "--resources", "MEMORY=4000000000",
                                     "--memory-limit", "0", "--local-directory", str(tmp / f"w{i}")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
                   for i in range(2)]
        procs += workers
        yield address, workers
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    root = tmp_path_factory.mktemp("serial")
    assert reproduce.main("smoke", None, "serial", False, root=root, progress=False, out=lambda s: None) == 0
    return _results(root)


def test_cluster_run_equals_serial_run(cluster, serial, tmp_path):
    address, _ = cluster
    lines = []
    assert reproduce.main("smoke", None, address, False, root=tmp_path, progress=False, out=lines.append) == 0
    got = _results(tmp_path)
    assert len(got) == len(reproduce.book_runs("smoke")) and got.keys() == serial.keys()
    for key in serial:
        assert got[key] == serial[key], key
    assert "claim" in lines[0] and any("P5.2" in line for line in lines)


def test_a_killed_worker_loses_nothing(cluster, serial, tmp_path):
    from dask.distributed import Client
    address, workers = cluster
    victim = workers[0]
    killed = {}

    finished = threading.Event()

    def kill_mid_point():
        with Client(address, timeout=10) as client:
            addr = next(a for a, pid in client.run(os.getpid).items() if pid == victim.pid)
            while not finished.is_set():
                busy = client.processing(workers=[addr]).get(addr)
                stored = len(list(tmp_path.glob("*/*/points/*.cost.json")))
                if stored >= 20 and busy:
                    killed["tasks"] = busy
                    os.kill(victim.pid, signal.SIGKILL)
                    return
                time.sleep(0.01)

    thread = threading.Thread(target=kill_mid_point)
    thread.start()
    try:
        assert reproduce.main("smoke", None, address, False, root=tmp_path, progress=False,
                              out=lambda s: None) == 0
    finally:
        finished.set()
        thread.join()
    assert killed.get("tasks"), "the worker was not killed while it computed a point"
    assert victim.wait(timeout=10) == -signal.SIGKILL
    assert _results(tmp_path) == serial


def test_a_plan_whose_largest_point_does_not_fit_is_refused(cluster, capsys):
    # T5.6 at the paper scale keeps 2^18 particles over 256 layers: several GiB, more than the worker has
    address, _ = cluster
    with pytest.raises(ParamError, match="largest point .* more than the 3.7 GiB of the largest worker's MEMORY"):
        reproduce.main("paper", ["t56"], address, True, progress=False)
