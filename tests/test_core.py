"""Parameters, result store, claim records and the command line."""
import json
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from nfdlib import claims
from nfdlib.__main__ import main, parse_value
from nfdlib.executor import run_grid
from nfdlib.metrics import linear_fit, power_law_fit
from nfdlib.params import ParamError, Params, spec
from nfdlib.store import RunStore


@dataclass(frozen=True)
class Demo(Params):
    profile: str = spec("book")
    width: int = spec(8, min=1)
    eta_c: float = spec(1.0, gt=0)
    widths: list[int] = spec([4, 8], min=1, nonempty=True)
    activation: str = spec("tanh", choices=("tanh", "relu"))
    PROFILE_DEFAULTS = {"smoke": {"widths": [2]}}


def test_params_profiles_and_coercion():
    assert Demo.build(profile="smoke").widths == [2]
    assert Demo.build(profile="smoke", widths=[3]).widths == [3]
    assert Demo.build(eta_c=2).eta_c == 2.0
    assert Demo.build(widths=(1, 2)).widths == [1, 2]


@pytest.mark.parametrize("values,needle", [
    (dict(colour=1), "unknown parameter"),
    (dict(width=0), "'width' = 0 is too small"),
    (dict(width=1.5), "'width' must be an integer"),
    (dict(width=True), "'width' must be an integer"),
    (dict(eta_c=0), "'eta_c'"),
    (dict(eta_c="fast"), "'eta_c' must be a number"),
    (dict(widths=[]), "'widths' must not be empty"),
    (dict(widths=[4, -1]), "'widths'"),
    (dict(widths=5), "'widths' must be a list"),
    (dict(activation="gelu"), "allowed: 'tanh', 'relu'"),
    (dict(profile="huge"), "'profile'"),
])
def test_params_errors_name_the_parameter(values, needle):
    with pytest.raises(ParamError, match=needle):
        Demo.build(**values)


def test_store_points_resume(tmp_path):
    store = RunStore("demo", {"a": 1}, root=tmp_path)
    calls = []

    def compute(x):
        calls.append(x)
        return {"y": x * x, "arr": np.arange(3) * x}

    points = [(f"x={x}", {"x": x}) for x in range(4)]
    first = run_grid(store, points[:2], compute, progress=False)
    again = run_grid(RunStore("demo", {"a": 1}, root=tmp_path), points, compute, progress=False)
    assert calls == [0, 1, 2, 3]  # the two stored points were not recomputed
    assert again["x=1"] == first["x=1"] == {"y": 1, "arr": [0, 1, 2]}
    store.save_arrays("big", a=np.eye(2))
    np.testing.assert_array_equal(store.load_arrays("big")["a"], np.eye(2))
    assert not list(store.folder.rglob("*.tmp"))


def test_store_depends_on_params(tmp_path):
    assert RunStore("demo", {"a": 1}, root=tmp_path).folder != RunStore("demo", {"a": 2}, root=tmp_path).folder


def test_fits_recover_known_slopes():
    rng = np.random.default_rng(0)
    x = np.array([64, 128, 256, 512, 1024, 2048])
    y = 3.0 * x**-1.0 * np.exp(0.02 * rng.standard_normal(x.size))
    fit = power_law_fit(x, y)
    assert fit.slope_within(-1.0) and not fit.slope_within(-0.5)
    line = linear_fit([1, 2, 3, 4], [1.0, 3.0, 5.0, 7.0])
    assert abs(line.slope - 2) < 1e-12 and abs(line.intercept + 1) < 1e-12
    with pytest.raises(ValueError):
        linear_fit([1, 2], [1, 2])


def test_claim_records_and_table(tmp_path):
    with pytest.raises(ValueError):
        claims.record("P9.9", "reproduced", 1, 1)
    with pytest.raises(ValueError):
        claims.record("P4.2", "sort of", 1, 1)
    rec = claims.record("P4.2", "reproduced", {"slope": -1.01}, "-1")
    store = RunStore("x", {"profile": "smoke"}, root=tmp_path)
    store.save_result({"experiment": "x", "params": {"profile": "smoke"}, "claims": [rec],
                       "provenance": {"date": "2026-01-01T00:00:00Z"}})
    found = claims.collect(tmp_path)
    assert [r["id"] for r in found] == ["P4.2"]
    assert "P4.2" in claims.table(found) and "reproduced" in claims.table(found)


def test_checks_of_the_book_get_verified_claims_of_the_paper_reproduced():
    """D5.3 (a definition) and NB-BK (the book's backends) are checks: verified or not; a
    statement of the paper is reproduced or not. Neither takes the other's verdicts."""
    assert claims.record("D5.3", "verified", 1, 1)["verdict"] == "verified"
    with pytest.raises(ValueError):
        claims.record("D5.3", "reproduced", 1, 1)
    with pytest.raises(ValueError):
        claims.record("P4.2", "verified", 1, 1)
    assert set(claims.VERDICTS) == {v for vs in claims.KIND_VERDICTS.values() for v in vs}
    assert all(c.kind in claims.KIND_VERDICTS for c in claims.CLAIMS.values())


def test_book_ids_cannot_collide_with_the_papers_numbering():
    """The book's own results carry the prefix NB-; the paper's numbering (P, T, C, D, A, E,
    F, G followed by a number or a dot) is left to the paper."""
    book_own = {"NB-E1", "NB-BK"}
    assert book_own <= set(claims.CLAIMS)
    assert "E.1" not in claims.CLAIMS and "BK" not in claims.CLAIMS


def test_table_shows_the_whole_measured_figure_scale_and_setting():
    long = {f"key{i}": {"slope": -1.0 - i / 100, "ci": [-1.2, -0.8]} for i in range(12)}
    rows = [{"id": "C5.7", "verdict": "not reproduced", "measured": long, "profile": "book",
             "expected": "|gap_f| ∝ L^-1", "date": "2026-01-01",
             "setting": "activation=tanh, train=all, widths=[512], depths=[1, 2, 4]",
             "record_setting": "tanh, train=all, eta_c=1.0, width=512, L>=4"}]
    text = claims.table(rows)
    assert "key11=slope=-1.11" in text and "…" not in text               # never cut
    assert "\\|gap_f\\| ∝ L^-1" in text and "/gap_f/" not in text            # | escaped
    assert "not reproduced at book scale" in text
    assert "(activation=tanh, train=all, widths=[512], depths=[1, 2, 4], eta_c=1.0, width=512, L>=4)" in text
    # every line has the table's 8 cells: no unescaped | inside a cell
    line = text.splitlines()[-1]
    assert len([c for c in line.replace("\\|", "").split("|")]) == 10


def test_dashboard_cells_render_as_written():
    """Rendered as the book renders it, a cell shows its text: | as |, and no emphasis made out
    of the underscores of h'_{ℓ-1} = C_{ℓ-1}."""
    markdown_it = pytest.importorskip("markdown_it")
    rows = [{"id": "P5.2-Eq17", "verdict": "not reproduced", "profile": "book", "date": "",
             "measured": {"b_on_adjacent": 12.5}, "expected": "b_ℓ = |x|, h'_{ℓ-1} = C_{ℓ-1}/L; 2*3*4",
             "setting": "activation=tanh, arch=depth_mup"}]
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(claims.table(rows))
    assert "<em>" not in html and "<strong>" not in html
    assert "b_ℓ = |x|, h'_{ℓ-1} = C_{ℓ-1}/L; 2*3*4" in html and "depth_mup" in html
    assert html.count("<td>") == 8


def test_set_values_are_json_or_literal_or_string():
    assert parse_value("tanh") == "tanh"
    assert parse_value('"tanh"') == "tanh"
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("(1, 2)") == (1, 2)
    assert parse_value("0.5") == 0.5


def test_cli_round_trips_json(tmp_path, capsys):
    out = tmp_path / "bk.json"
    rc = main(["run", "backends_agreement", "--set", "profile=smoke", "--set", "backend=numba",
               "--set", "dtypes=['float64']", "--json", str(out), "--results", str(tmp_path / "r")])
    assert rc == 0
    result = json.loads(out.read_text())
    assert set(result) >= {"experiment", "params", "claims", "data"}
    assert result["params"]["backend"] == "numba" and result["params"]["profile"] == "smoke"
    assert result["claims"][0]["id"] == "NB-BK"
    assert set(result["claims"][0]) >= {"id", "verdict", "measured", "expected"}
    main(["claims", "--results", str(tmp_path / "r")])
    assert "NB-BK" in capsys.readouterr().out


def test_cli_bad_parameter_is_one_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nfdlib", "run", "backends_agreement",
                           "--set", "width=-4", "--results", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "'width'" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("result.json"))
    proc = subprocess.run([sys.executable, "-m", "nfdlib", "run", "no_such_experiment"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "available" in proc.stderr


def test_cli_lists_experiments(capsys):
    main(["list"])
    assert "backends_agreement" in capsys.readouterr().out


def test_dashboard_is_the_cli_table(monkeypatch, capsys):
    """The book's first page includes book/_claims/dashboard.md; `python -m nfdlib claims`
    prints the table of the same ledger: they must be identical."""
    monkeypatch.delenv("NFD_LEDGER")
    main(["claims"])
    printed = capsys.readouterr().out
    committed = (claims.ledger_dir() / "dashboard.md").read_text()
    assert printed == committed
    for cid in claims.CLAIMS:
        assert f"| {cid} |" in committed


def test_ledger_written_for_book_profile_only(tmp_path):
    result = {"experiment": "demo", "params": {"profile": "smoke"},
              "claims": [claims.record("P4.2", "reproduced", 1, 1)], "provenance": {"date": "d"}}
    claims.write_ledger(result)
    assert not claims.ledger_dir().exists() or not list(claims.ledger_dir().glob("*.json"))
    claims.write_ledger(dict(result, params={"profile": "book"}))
    assert [r["id"] for r in claims.collect_ledger()] == ["P4.2"]
    claims.write_ledger(dict(result, params={"profile": "book", "activation": "relu"}))
    assert len(claims.collect_ledger()) == 2  # another parameter set keeps its own record
    assert "| P4.2 |" in (claims.ledger_dir() / "dashboard.md").read_text()


def test_ledger_setting_names_what_departs_from_the_profile(tmp_path):
    """A paper-profile run with a smaller size than the profile's says so in the dashboard."""
    from nfdlib.experiments.e1_true_limit import E1Params
    p = E1Params.build(profile="smoke", deep_width=16, backend="numpy")
    assert p.overrides() == {"deep_width": 16, "backend": "numpy"}
    assert E1Params.build(profile="smoke").overrides() == {}
    result = {"experiment": "demo", "params": dict(p.to_dict(), profile="book"), "overrides": p.overrides(),
              "claims": [claims.record("NB-E1", "not reproduced", 1, 1)], "provenance": {"date": "d"}}
    claims.write_ledger(result)
    [row] = claims.collect_ledger()
    assert row["setting"] == "deep_width=16"
    assert "(deep_width=16)" in (claims.ledger_dir() / "dashboard.md").read_text()


def test_one_version_everywhere():
    """nfdlib.__version__, CITATION.cff and the book's footer carry the same version."""
    import re
    from pathlib import Path

    import nfdlib
    root = Path(__file__).resolve().parents[1]
    cff = re.search(r"^version:\s*(\S+)", (root / "CITATION.cff").read_text(), re.M).group(1)
    footer = re.search(r"version (\d+\.\d+\.\d+)", (root / "_config.yml").read_text()).group(1)
    assert cff == footer == nfdlib.__version__
