"""The command line's help, who writes the book's claim ledger, and two failures that must be
clear: an unreachable Dask scheduler and a damaged stored point."""
import json
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from nfdlib import claims, experiments
from nfdlib.__main__ import main
from nfdlib.executor import run_grid
from nfdlib.params import ParamError
from nfdlib.store import CorruptPointWarning, RunStore

ROOT = Path(__file__).resolve().parents[1]
# a book-profile run of seconds: every grid parameter set away from the profile's defaults
SMALL_BOOK = ["--set", "profile=book", "--set", "backend=numba", "--set", "width=8", "--set", "depth=2",
              "--set", "steps=2", "--set", "batch=8", "--set", "dtypes=['float64']"]


def test_console_script_is_the_module_cli():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["scripts"]["nfd"] == "nfdlib.__main__:main"
    assert {"torch", "dask", "book", "test"} <= set(meta["optional-dependencies"])
    assert meta["optional-dependencies"]["torch"] == ["torch==2.13.0"]


def test_help_lists_experiments_profiles_and_parameters(capsys):
    proc = subprocess.run([sys.executable, "-m", "nfdlib", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for name in list(experiments.registry()) + ["smoke", "book", "paper"]:
        assert name in proc.stdout
    assert main(["run", "p52_one_step_gap", "--help"]) == 0
    text = capsys.readouterr().out
    assert "widths (list[int]): default [1024] (smoke: [64, 128]; paper: [256, 512, 1024, 2048, 4096])" in text
    assert "train (str): default 'all'; allowed: 'all', 'hidden'. all: U, W, v; hidden: W only" in text
    assert "executor: 'serial', 'processes'" in text
    assert main(["run", "no_such_experiment", "--help"]) == 2


def test_belongs_in_ledger():
    book = {"params": {"profile": "book"}, "overrides": {}}
    assert claims.belongs_in_ledger(book)
    assert claims.belongs_in_ledger(dict(book, overrides={"backend": "torch", "executor": "processes"}))
    assert not claims.belongs_in_ledger(dict(book, overrides={"seed": 1}))
    assert claims.belongs_in_ledger(dict(book, overrides={"seed": 1}), record=True)
    assert not claims.belongs_in_ledger(book, record=False)
    assert not claims.belongs_in_ledger({"params": {"profile": "smoke"}, "overrides": {}}, record=True)


def test_only_default_or_recorded_runs_write_the_ledger(tmp_path, capsys):
    ledger = claims.ledger_dir()
    assert main(["run", "backends_agreement", *SMALL_BOOK, "--results", str(tmp_path / "r")]) == 0
    assert not ledger.exists() or not list(ledger.glob("*.json"))
    assert list((tmp_path / "r").rglob("result.json"))  # stored under the results folder only
    assert main(["run", "backends_agreement", *SMALL_BOOK, "--record", "--results", str(tmp_path / "r")]) == 0
    [row] = claims.collect_ledger()
    assert row["setting"] == "activation=tanh, arch=depth_mup, width=8, depth=2, batch=8, steps=2, dtypes=['float64']"
    assert f"({row['setting']})" in (ledger / "dashboard.md").read_text()


def _result(setting_params, overrides, verdict="reproduced", measured=1.0, date="2026-01-01"):
    return {"experiment": "demo", "params": dict(setting_params, profile="book"), "overrides": overrides,
            "claims": [claims.record("P4.2", verdict, measured, 1)], "provenance": {"date": date}}


def test_a_rerun_replaces_its_row_and_an_unchanged_one_keeps_its_date():
    claims.write_ledger(_result({"backend": "numba"}, {}))
    claims.write_ledger(_result({"backend": "torch"}, {"backend": "torch"}, measured=1.0000001, date="2026-02-02"))
    [row] = claims.collect_ledger()  # same claim, profile and setting: one row, the newer run
    assert (row["measured"], row["date"]) == (1.0000001, "2026-02-02")
    claims.write_ledger(_result({"backend": "torch"}, {"backend": "torch"}, measured=1.0000001, date="2026-03-03"))
    assert [r["date"] for r in claims.collect_ledger()] == ["2026-02-02"]
    claims.write_ledger(_result({"backend": "numba", "seed": 1}, {"seed": 1}, verdict="inconclusive"))
    assert sorted(r["setting"] for r in claims.collect_ledger()) == ["", "seed=1"]


def test_row_setting_shows_the_whole_setting():
    row = {"activation": "relu", "setting": "activation=tanh, widths=[1, 2], seeds=3"}
    assert claims.row_setting(row) == "activation=relu, widths=[1, 2], seeds=3"
    assert claims.row_setting({"setting": "train=all, widths=[4]"}) == "train=all, widths=[4]"


def test_book_dashboard_rows_that_share_claim_and_profile_say_how_they_differ():
    rows = claims.collect_ledger(ROOT / "book" / "_claims")
    seen = {}
    for r in rows:
        key = (r["id"], r["profile"], claims.row_setting(r))
        assert key not in seen, f"two rows for {key[:2]} with one setting: {key[2]!r}"
        seen[key] = r["verdict"]


def test_unreachable_scheduler_is_one_line_within_10_s(tmp_path):
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nfdlib", "run", "p52_one_step_gap", "--set", "profile=smoke",
                           "--set", "executor=tcp://nohost:1", "--results", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "tcp://nohost:1" in lines[0] and lines[0].startswith("error: ")
    assert seconds < 10, f"took {seconds:.1f} s"
    with pytest.raises(ParamError, match="tcp://nohost:1"):
        run_grid(None, [("a", {"x": 1})], dict, executor="tcp://nohost:1", progress=False)


def test_damaged_stored_points_are_recomputed_with_a_warning(tmp_path):
    first = experiments.execute("p52_one_step_gap", root=tmp_path, profile="smoke")
    points = sorted(Path(first["folder"]).glob("points/*.json"))
    truncated, not_an_object = points[0], points[-1]
    truncated.write_bytes(truncated.read_bytes()[:40])
    not_an_object.write_text("[1, 2]")
    with pytest.warns(CorruptPointWarning) as caught:
        again = experiments.execute("p52_one_step_gap", root=tmp_path, profile="smoke")
    named = " ".join(str(w.message) for w in caught)
    assert str(truncated) in named and str(not_an_object) in named
    assert again["data"] == first["data"] and again["claims"] == first["claims"]
    assert isinstance(json.loads(truncated.read_text()), dict)  # stored again, whole


def test_missing_point_is_no_warning(tmp_path, recwarn):
    assert RunStore("demo", {"a": 1}, root=tmp_path).load_point("nothing") is None
    assert not [w for w in recwarn if re.search("stored point", str(w.message))]
