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
import contextlib
import contextvars
import multiprocessing
import os
from importlib.util import find_spec
from typing import Any, Callable, Sequence

from tqdm import tqdm

from .params import ParamError
from .store import RunStore, to_jsonable

EXECUTORS = ("serial", "processes", "dask-local")


EXECUTOR_DOC = ("'serial', 'processes' (a local process pool), 'dask-local' (a Dask LocalCluster) "
                "or 'tcp://host:port' (a running Dask scheduler)")
SCHEDULER_TIMEOUT_S = 4  # how long a Dask scheduler may take to answer before the run stops


def check_executor(executor: str) -> None:
    """Raise ParamError for an unknown executor, or a Dask one where Dask is not installed."""
    if executor not in EXECUTORS and not executor.startswith("tcp://"):
        raise ParamError(f"parameter 'executor' = {executor!r} is not allowed; allowed: {EXECUTOR_DOC}")
    if (executor == "dask-local" or executor.startswith("tcp://")) and find_spec("distributed") is None:
        raise ParamError(f"parameter 'executor' = {executor!r} needs Dask, which is not installed; "
                         "install it with pip install 'nfdlib[dask]', or use 'serial' or 'processes'")


def dask_client(target):
    """A Dask client of a LocalCluster or of the scheduler at the address ``target``; a
    scheduler that does not answer within SCHEDULER_TIMEOUT_S is a ParamError naming it."""
    from dask.distributed import Client
    if not isinstance(target, str):
        return Client(target)
    try:
        return Client(target, timeout=SCHEDULER_TIMEOUT_S)
    except (OSError, TimeoutError):
        raise ParamError(f"parameter 'executor' = {target!r}: no Dask scheduler answered at {target} "
                         f"within {SCHEDULER_TIMEOUT_S} s; start one there (dask scheduler) or use "
                         "'serial', 'processes' or 'dask-local'") from None


_COLLECTING: contextvars.ContextVar[list | None] = contextvars.ContextVar("nfd_collecting", default=None)


class PointsPending(BaseException):
    """Raised by :func:`run_grid` inside :func:`collecting` instead of computing: the grid's
    points that are not stored yet (``todo``: ``[(name, kwargs)]``), their ``compute`` function
    and the ``store`` they belong to. A BaseException, so that no ``except Exception`` of an
    experiment swallows it."""

    def __init__(self, store, todo, compute, desc: str):
        super().__init__(f"{len(todo)} {desc} not stored yet")
        self.store, self.todo, self.compute, self.desc = store, todo, compute, desc


@contextlib.contextmanager
def collecting():
    """Within this context :func:`run_grid` computes nothing: it returns a grid that is stored
    whole, and raises :class:`PointsPending` for one that is not (``nfd reproduce`` sends those
    points, of every experiment at once, to its executor and runs the experiment again).
    Yields a list to which each grid met appends its number of points."""
    grids: list[int] = []
    token = _COLLECTING.set(grids)
    try:
        yield grids
    finally:
        _COLLECTING.reset(token)


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
        stored = store.load_point(name) if store is not None else None
        if stored is not None:
            records[name] = stored
        else:
            todo.append((name, kwargs))
    grids = _COLLECTING.get()
    if grids is not None:
        grids.append(len(points))
        if todo:
            raise PointsPending(store, todo, compute, desc)
        progress = False  # a stored grid, read back: nothing to show
    use_dask = bool(todo) and executor not in ("serial", "processes")
    if use_dask:  # connect before anything is shown: an unreachable scheduler is one clear error
        from dask.distributed import LocalCluster, as_completed
        cluster = LocalCluster(n_workers=os.cpu_count(), threads_per_worker=1, processes=True,
                               dashboard_address=None) if executor == "dask-local" else None
        client = dask_client(cluster if cluster is not None else executor)
    bar = tqdm(total=len(points), initial=len(records), desc=desc, disable=not progress, leave=False)

    def finish(name: str, record: dict) -> None:
        record = to_jsonable(record)
        if store is not None:
            store.save_point(name, record)
        records[name] = record
        bar.set_postfix(_postfix(record))
        bar.update(1)

    if use_dask:
        with client:
            futures = [client.submit(compute, pure=False, **kwargs) for _, kwargs in todo]
            names = {fut.key: name for fut, (name, _) in zip(futures, todo)}
            for fut in as_completed(futures):
                finish(names[fut.key], fut.result())
        if cluster is not None:
            cluster.close()
    elif executor == "serial" or not todo:
        for name, kwargs in todo:
            finish(name, compute(**kwargs))
    else:
        # spawn, not fork: numba's and torch's OpenMP runtimes do not survive a fork
        context = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=context) as pool:
            futures = {pool.submit(compute, **kwargs): name for name, kwargs in todo}
            for fut in cf.as_completed(futures):
                finish(futures[fut], fut.result())
    bar.close()
    return {name: records[name] for name, _ in points}
