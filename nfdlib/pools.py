"""Where ``nfd reproduce`` computes its points: in this process, in a local process pool, or
on a Dask cluster. Each pool takes tasks with a size (estimated seconds: the largest starts
first) and a memory (bytes: on a Dask cluster whose workers declare ``MEMORY`` resources, a
task asks for that much, so that a worker never runs more than it holds) and hands finished
ones back one at a time.

A Dask worker that dies while it computes a point loses nothing: the scheduler gives the task
to another worker (Dask's own retry), and a point is stored only once its record is back.
"""
from __future__ import annotations

import concurrent.futures as cf
import heapq
import itertools
import multiprocessing
import os
from typing import Any, Callable

from .executor import EXECUTOR_DOC, check_executor, dask_client
from . import params as _params
from .params import ParamError

MEMORY_RESOURCE = "MEMORY"  # the Dask worker resource a point's memory is declared in
WORKER_WAIT_S = 20  # how long a scheduler without workers is given for one to join


class SerialPool:
    """Computes each task in this process when it is asked for the next finished one."""

    def __init__(self):
        self._heap: list = []
        self._order = itertools.count()
        self.workers = 1

    def describe(self) -> str:
        return "serial (this process)"

    def memory_limit(self) -> tuple[float, str]:
        return 0.7 * _params.available_memory_bytes(), "70% of this machine's available memory"

    def submit(self, fn: Callable, args: tuple, size: float, memory: float, tag: Any) -> None:
        heapq.heappush(self._heap, (-size, next(self._order), fn, args, tag))

    def busy(self) -> bool:
        return bool(self._heap)

    def next_done(self) -> tuple[Any, Any]:
        _, _, fn, args, tag = heapq.heappop(self._heap)
        return tag, fn(*args)

    def close(self) -> None:
        pass


class ProcessPool(SerialPool):
    """A local process pool (spawned: numba's and torch's OpenMP runtimes do not survive a
    fork), one worker per core, fed largest first."""

    def __init__(self):
        super().__init__()
        self.workers = os.cpu_count() or 1
        self._pool = cf.ProcessPoolExecutor(max_workers=self.workers,
                                            mp_context=multiprocessing.get_context("spawn"))
        self._running: dict = {}

    def describe(self) -> str:
        return f"processes ({self.workers} local workers)"

    def _fill(self) -> None:
        while self._heap and len(self._running) < self.workers:
            _, _, fn, args, tag = heapq.heappop(self._heap)
            self._running[self._pool.submit(fn, *args)] = tag

    def busy(self) -> bool:
        return bool(self._heap or self._running)

    def next_done(self) -> tuple[Any, Any]:
        self._fill()
        done, _ = cf.wait(self._running, return_when=cf.FIRST_COMPLETED)
        fut = next(iter(done))
        tag = self._running.pop(fut)
        self._fill()
        return tag, fut.result()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


class DaskPool:
    """A Dask scheduler's workers (``tcp://host:port``) or a LocalCluster (``dask-local``):
    every task is submitted at once, with its size as priority and, where every worker
    declares a ``MEMORY`` resource, its memory as a resource request."""

    def __init__(self, target: str):
        from dask.distributed import LocalCluster, as_completed
        self._cluster = LocalCluster(n_workers=os.cpu_count(), threads_per_worker=1, processes=True,
                                     dashboard_address=None) if target == "dask-local" else None
        self.client = dask_client(self._cluster if self._cluster is not None else target)
        self.target = target
        self._done = as_completed()
        self._tags: dict = {}
        try:
            self.client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except TimeoutError:
            pass
        workers = list(self.client.scheduler_info(n_workers=-1)["workers"].values())
        if not workers:
            raise ParamError(f"parameter 'executor' = {target!r}: the scheduler has no workers; "
                             "start some (dask worker " + target + ")")
        self.workers = sum(w.get("nthreads", 1) for w in workers)
        mems = [w.get("resources", {}).get(MEMORY_RESOURCE) for w in workers]
        self.declares = all(m is not None for m in mems)
        self._limit = (max(mems), f"the largest worker's {MEMORY_RESOURCE} resource") if self.declares \
            else (max(w.get("memory_limit") or 0 for w in workers) or float("inf"),
                  "the largest worker's memory limit (the workers declare no MEMORY resource)")

    def describe(self) -> str:
        how = "points declare their memory (MEMORY resource)" if self.declares else \
            "workers declare no MEMORY resource: points do not declare memory"
        return f"Dask at {self.target} ({self.workers} worker threads; {how})"

    def memory_limit(self) -> tuple[float, str]:
        return self._limit

    def submit(self, fn: Callable, args: tuple, size: float, memory: float, tag: Any) -> None:
        extra = {"resources": {MEMORY_RESOURCE: min(memory, self._limit[0])}} if self.declares else {}
        fut = self.client.submit(fn, *args, pure=False, priority=int(size * 1000), **extra)
        self._tags[fut.key] = tag
        self._done.add(fut)

    def busy(self) -> bool:
        return not self._done.is_empty()

    def next_done(self) -> tuple[Any, Any]:
        fut = next(self._done)
        return self._tags.pop(fut.key), fut.result()

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_pool(executor: str):
    """The pool of an executor name (see EXECUTOR_DOC); ParamError for an unknown one or an
    unreachable scheduler, before anything is computed."""
    check_executor(executor)
    if executor == "serial":
        return SerialPool()
    if executor == "processes":
        return ProcessPool()
    if executor == "dask-local" or executor.startswith("tcp://"):
        return DaskPool(executor)
    raise ParamError(f"--executor {executor!r} is not allowed; allowed: {EXECUTOR_DOC}")
