"""Sweeps give the same records whatever executes them: serial, a local process pool, or a
Dask LocalCluster (issue: scale-out)."""
import pytest

from nfdlib.executor import run_grid
from nfdlib.experiments.figG_gia_restoration import GIAParams, grid, train_pair_member
from nfdlib.params import ParamError


def small_sweep():
    p = GIAParams.build(profile="smoke", widths=[16], depths=[2, 3], archs=["depth_mup"],
                        epochs=1, n_train=256, n_test=64, baseline=False, dtype="float64")
    return grid(p)


@pytest.mark.parametrize("executor", ["processes", "dask-local"])
def test_parallel_sweep_equals_serial(executor):
    points = small_sweep()
    serial = run_grid(None, points, train_pair_member, executor="serial", progress=False)
    parallel = run_grid(None, points, train_pair_member, executor=executor, progress=False)
    assert list(parallel) == list(serial)
    assert parallel == serial


def test_unknown_executor_is_a_parameter_error():
    with pytest.raises(ParamError, match="'executor'"):
        run_grid(None, small_sweep(), train_pair_member, executor="slurm")
