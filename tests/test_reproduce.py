"""``nfd reproduce`` in one process: the dry run's plan and its refusals, a reproduction that
resumes after an interruption, and a notebook's ``execute`` that then loads the stored result."""
import dataclasses
import subprocess
import sys

import pytest

from nfdlib import experiments, reproduce
from nfdlib.params import ParamError


def _run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "nfdlib", "reproduce", *args], capture_output=True,
                          text=True, timeout=120, **kw)


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    proc = _run("--profile", "smoke", "--dry-run", "--results", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"plan: profile smoke, {len(reproduce.book_runs('smoke'))} runs")
    for label in ("p31", "p52-depth", "figG", "e1"):
        assert any(line.split()[0] == label for line in lines[2:]), label
    assert lines[-2].startswith("total:") or any(line.startswith("total:") for line in lines)
    assert not (tmp_path / "r").exists()


def test_dry_run_refuses_a_plan_that_does_not_fit_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr("nfdlib.params.available_memory_bytes", lambda: 1 << 28)
    with pytest.raises(ParamError, match=r"largest point \(.*\) needs .* GiB, more than the 0.2 GiB"):
        reproduce.main("book", ["p42"], "serial", True, root=tmp_path, out=lambda s: None)
    proc = _run("--profile", "nope", "--dry-run")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "nope" in proc.stderr
    proc = _run("--profile", "smoke", "--only", "p99", "--dry-run")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "p99" in proc.stderr


def test_an_interrupted_reproduction_resumes_and_a_notebook_then_loads_the_result(tmp_path, monkeypatch):
    only = ["p52-width", "p41", "a54"]
    calls = []
    real = reproduce.measured

    def interrupted(fn, kwargs):
        calls.append(fn)
        if len(calls) == 5:
            raise KeyboardInterrupt  # killed in the middle of the fifth point
        return real(fn, kwargs)

    monkeypatch.setattr(reproduce, "measured", interrupted)
    with pytest.raises(KeyboardInterrupt):
        reproduce.main("smoke", only, "serial", False, root=tmp_path, progress=False, out=lambda s: None)
    first = len(calls) - 1
    calls.clear()
    monkeypatch.setattr(reproduce, "measured", lambda fn, kw: (calls.append(fn), real(fn, kw))[1])
    lines = []
    assert reproduce.main("smoke", only, "serial", False, root=tmp_path, progress=False, out=lines.append) == 0
    total = 6 + 1 + 22  # p52-width's grid, p41 as one point, a54's two grids
    assert len(calls) == total - first  # the stored points were not computed again
    table = "\n".join(lines).splitlines()
    assert any(line.startswith("P5.2 ") for line in table) and any(line.startswith("A5.4 ") for line in table)

    # a notebook's execute with the same settings finds the stored result and runs nothing
    plan = {r.label: r for r in reproduce.book_runs("smoke")}

    def no_run(*a, **k):
        raise AssertionError("the experiment ran again")

    registry = experiments.registry()
    monkeypatch.setattr(experiments, "get", lambda name: dataclasses.replace(registry[name], run=no_run))
    for label in only:
        r = plan[label]
        res = experiments.execute(r.experiment, root=tmp_path, record=r.record, **r.settings)
        assert res["claims"]


def test_an_exported_paper_run_makes_the_dry_run_estimate_measured(tmp_path):
    """A finished paper run's point costs go to costs.json under the label whose parameters it
    has (p52-width, not p52-depth or p52-hidden), dated by the run, and the dry run then reads them."""
    from nfdlib import costs
    from nfdlib.store import RunStore, atomic_write_json
    jobs = {job.run.label: job for job in reproduce.plan_jobs("paper", ["p52_one_step_gap"], create=False)}
    width = jobs["p52-width"]
    data = costs.load()  # the test's own copy of costs.json, without any measurement of p52-width
    data["profiles"].setdefault("paper", {}).pop("p52-width", None)
    atomic_write_json(costs.COSTS_PATH, data)
    before = data["profiles"]["paper"]
    assert costs.estimate("paper", "p52-width", width.declared, 1, costs.load()).source == "extrapolated"
    store = RunStore(width.run.experiment, width.params.to_dict(), root=tmp_path / "other-code")
    for name, seconds in (("a", 2.0), ("b", 3.5)):
        store.save_point(name, {"x": 1})
        store.save_cost(name, {"seconds": seconds, "peak_bytes": 2 ** 30 if name == "b" else 1})
    result = {"experiment": width.run.experiment, "params": store.params, "folder": str(store.folder),
              "provenance": {"date": "2026-11-30T12:00:00Z"}}
    assert reproduce.save_paper_costs(result) == ["p52-width"]
    entry = costs.load()["profiles"]["paper"]["p52-width"]
    assert (entry["points"], entry["core_seconds"], entry["peak_bytes"], entry["date"]) == (2, 5.5, 2 ** 30, "2026-11-30")
    assert entry["per_point"] == {"a": [2.0, 1], "b": [3.5, 2 ** 30]}
    est = costs.estimate("paper", "p52-width", width.declared, 1, costs.load())
    assert (est.source, est.points, est.core_seconds) == ("measured", 2, 5.5)
    after = costs.load()["profiles"]["paper"]
    assert {k: v for k, v in after.items() if k != "p52-width"} == before  # the other runs' entries untouched
    # a run made without stored point costs (``nfd run``) writes nothing
    bare = RunStore(width.run.experiment, jobs["p52-hidden"].params.to_dict(), root=tmp_path / "bare")
    bare.save_point("a", {"x": 1})
    assert reproduce.save_paper_costs(dict(result, params=bare.params, folder=str(bare.folder))) == []
    assert costs.load()["profiles"]["paper"] == after
