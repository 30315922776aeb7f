"""Grid sweeps that resume and scale out.

:func:`run_grid` computes the missing points of a grid, stores each finished point at once
(atomically, through :class:`nfdlib.store.RunStore`), and returns all records. Points are
computed by ``executor``:

``"serial"``           in this process (the default)
``"processes"``        a local process pool (one worker per core)
``"tcp://host:port"``  a Dask distributed scheduler at that address
``"dask-local"``       a Dask LocalCluster started for the sweep

The function computing a point must be importable (a module-level function) for the
parallel executors; every point carries its own seed, so results do not depend on the
executor.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from typing import Any, Callable, Sequence

from tqdm import tqdm

from .params import ParamError
from .store import RunStore, to_jsonable

EXECUTORS = ("serial", "processes", "dask-local")


def check_executor(executor: str) -> None:
    if executor not in EXECUTORS and not executor.startswith("tcp://"):
        raise ParamError(f"parameter 'executor' = {executor!r} is not allowed; allowed: "
                         + ", ".join(map(repr, EXECUTORS)) + ", or a Dask scheduler address 'tcp://host:port'")


def _postfix(record: dict) -> dict:
    for key in ("loss", "final_train_loss", "train_loss"):
        value = record.get(key)
        if isinstance(value, (int, float)):
            return {key: f"{value:.3g}"}
    return {}


def run_grid(store: RunStore | None, points: Sequence[tuple[str, dict[str, Any]]],
             compute: Callable[..., dict], executor: str = "serial", progress: bool = True,
             desc: str = "points") -> dict[str, dict]:
    """Records ``{name: compute(**kwargs)}`` for ``points = [(name, kwargs), ...]``, loading
    those already stored and storing each new one as soon as it finishes."""
    check_executor(executor)
    records: dict[str, dict] = {}
    todo = []
    for name, kwargs in points:
        if store is not None and store.has_point(name):
            records[name] = store.load_point(name)
        else:
            todo.append((name, kwargs))
    bar = tqdm(total=len(points), initial=len(records), desc=desc, disable=not progress, leave=False)

    def finish(name: str, record: dict) -> None:
        record = to_jsonable(record)
        if store is not None:
            store.save_point(name, record)
        records[name] = record
        bar.set_postfix(_postfix(record))
        bar.update(1)

    if executor == "serial" or not todo:
        for name, kwargs in todo:
            finish(name, compute(**kwargs))
    elif executor == "processes":
        # spawn, not fork: numba's and torch's OpenMP runtimes do not survive a fork
        context = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=context) as pool:
            futures = {pool.submit(compute, **kwargs): name for name, kwargs in todo}
            for fut in cf.as_completed(futures):
                finish(futures[fut], fut.result())
    else:
        from dask.distributed import Client, LocalCluster, as_completed
        cluster = LocalCluster(n_workers=os.cpu_count(), threads_per_worker=1, processes=True,
                               dashboard_address=None) if executor == "dask-local" else None
        with Client(cluster if cluster is not None else executor) as client:
            futures = [client.submit(compute, pure=False, **kwargs) for _, kwargs in todo]
            names = {fut.key: name for fut, (name, _) in zip(futures, todo)}
            for fut in as_completed(futures):
                finish(names[fut.key], fut.result())
        if cluster is not None:
            cluster.close()
    bar.close()
    return {name: records[name] for name, _ in points}
