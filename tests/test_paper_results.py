"""Paper-scale runs in the ledger and in the book: a paper record carries how the run was made
(the same run recorded again leaves it as it is; a new run replaces it), the compact export reads back and draws the
experiment's figure without pickle, a chapter without a paper run says so in one line, and a
damaged export is one error naming the file."""
import json
from pathlib import Path

import matplotlib
import pytest

from nfdlib import claims, ledger_compare, paper_export, paper_results
from nfdlib.__main__ import main
from nfdlib.store import RunStore, run_cost

matplotlib.use("Agg")

# a paper-profile run of seconds: every size set away from the profile's, so --record
SMALL_PAPER = ["--set", "profile=paper", "--set", "backend=numba", "--set", "width=8", "--set", "depth=2",
               "--set", "steps=2", "--set", "batch=8", "--set", "dtypes=['float64']", "--record"]


def _result(folder, profile="paper", measured=1.0, seconds=5.0):
    return {"experiment": "demo", "params": {"profile": profile}, "overrides": {},
            "claims": [claims.record("P4.2", "reproduced", measured, 1)],
            "provenance": {"date": "2026-01-01", "seconds": seconds}, "folder": str(folder)}


def test_run_cost_sums_stored_costs_and_falls_back_to_the_session_time(tmp_path):
    store = RunStore("demo", {"profile": "paper"}, root=tmp_path)
    assert run_cost(store.folder, _result(store.folder, seconds=7.25)) == {
        "seconds": 7.2, "peak_gib": None, "points": 1,
        "source": "the wall time of the session that finished it; no cost stored"}
    store.save_point("a", {"x": 1})
    store.save_point("b", {"x": 2})
    store.save_cost("a", {"seconds": 2.0, "peak_bytes": 2**30})  # nfd reproduce: its pool is not named
    assert run_cost(store.folder, _result(store.folder)) == {
        "seconds": 2.0, "peak_gib": 1.0, "points": 2, "source": "stored cost"}
    store.save_session({"seconds": 3.5, "peak_bytes": 3 * 2**30, "points": 1, "executor": "serial", "workers": 1})
    assert run_cost(store.folder, _result(store.folder)) == {
        "seconds": 5.5, "peak_gib": 3.0, "points": 2, "source": "stored costs"}
    (store.folder / "points" / "a.cost.json").unlink()
    assert run_cost(store.folder, _result(store.folder)) == {
        "seconds": 3.5, "peak_gib": 3.0, "points": 2, "source": "stored cost", "executor": "serial", "workers": 1}


def test_paper_records_carry_run_which_only_a_new_run_replaces(tmp_path):
    store = RunStore("demo", {"profile": "paper"}, root=tmp_path)
    store.save_session({"seconds": 10.0, "peak_bytes": 2**31, "points": 3, "executor": "serial"})
    claims.write_ledger(_result(store.folder))
    [path] = claims.ledger_dir().glob("demo.paper.*.json")
    first = path.read_bytes()
    assert json.loads(first)["run"] == {"seconds": 10.0, "peak_gib": 2.0, "points": 1, "source": "stored cost",
                                        "executor": "serial"}
    assert "| paper (10 s, 2.0 GiB) |" in (claims.ledger_dir() / "dashboard.md").read_text()
    store.save_session({"seconds": 99.0, "peak_bytes": 2**33, "points": 0, "executor": "serial"})
    claims.write_ledger(_result(store.folder))
    assert path.read_bytes() == first  # the same run recorded again: neither the cost nor the date moves
    claims.write_ledger(_result(store.folder, measured=2.0))  # changed claims: a new entry
    assert json.loads(path.read_text())["run"]["seconds"] == 109.0
    rerun = RunStore("demo", {"profile": "paper", "code": "new"}, root=tmp_path)  # the same run made again
    rerun.save_session({"seconds": 20.0, "peak_bytes": 2**30, "points": 1, "executor": "serial"})
    claims.write_ledger(dict(_result(rerun.folder, measured=2.0), provenance={"date": "2026-02-02"}))
    entry = json.loads(path.read_text())
    assert (entry["date"], entry["run"]["seconds"]) == ("2026-02-02", 20.0)  # same claims, the new run's cost
    book = RunStore("demo", {"profile": "book"}, root=tmp_path)
    claims.write_ledger(_result(book.folder, profile="book"))
    [book_path] = claims.ledger_dir().glob("demo.book.*.json")
    assert "run" not in json.loads(book_path.read_text())


def test_a_record_without_run_gets_it_once(tmp_path):
    store = RunStore("demo", {"profile": "paper"}, root=tmp_path)
    claims.write_ledger(dict(_result(store.folder), folder=None))
    [path] = claims.ledger_dir().glob("demo.paper.*.json")
    assert "run" not in json.loads(path.read_text())
    claims.write_ledger(_result(store.folder))
    assert json.loads(path.read_text())["run"]["seconds"] == 5.0


def test_ledger_comparison_ignores_run(tmp_path):
    ref, new = tmp_path / "ref", tmp_path / "new"
    entry = {"experiment": "demo", "profile": "paper", "setting": "", "date": "d",
             "claims": [claims.record("P4.2", "reproduced", 1.0, 1)], "run": {"seconds": 10.0, "peak_gib": 1.0}}
    for folder, seconds in ((ref, 10.0), (new, 30.0)):
        folder.mkdir()
        (folder / "demo.paper.00000000.json").write_text(json.dumps(dict(entry, run={"seconds": seconds})))
    compared, problems = ledger_compare.compare(ref, new)
    assert compared and not problems


def test_paper_run_exports_what_its_plot_needs_and_draws_it_again(tmp_path, capsys):
    results = tmp_path / "r"
    assert main(["run", "backends_agreement", *SMALL_PAPER, "--results", str(results)]) == 0
    [result_file] = results.rglob("result.json")
    result = json.loads(result_file.read_text())
    [record] = claims.ledger_dir().glob("backends_agreement.paper.*.json")
    run = json.loads(record.read_text())["run"]
    [session] = [json.loads(f.read_text()) for f in results.rglob("sessions/*.json")]  # the nfd run session
    assert run["seconds"] == round(session["seconds"], 1) and run["peak_gib"] == round(session["peak_bytes"] / 2**30, 2)
    assert run["peak_gib"] > 0 and (run["executor"], run["points"]) == ("serial", 1)
    [export] = paper_export.paper_dir().glob("backends_agreement.*.json")
    assert export.name.split(".")[1] == record.name.split(".")[2]  # the ledger's key
    doc = paper_export.load(export)
    assert doc["run"] == run and doc["provenance"]["code"] == result["provenance"]["code"]
    assert doc["params"] == result["params"] and doc["provenance"]["git"] == result["provenance"]["git"]
    assert doc["data"] and all(doc["data"][k] == result["data"][k] for k in doc["data"])  # unrounded
    assert set(doc["data"]) <= set(result["data"])
    written = export.read_bytes()
    # re-export from the stored run: nothing computed, the same bytes
    sessions = list(results.rglob("sessions/*.json"))
    export.unlink()
    assert main(["export-paper", "backends_agreement", "--results", str(results), "--record"]) == 0
    assert export.read_bytes() == written and list(results.rglob("sessions/*.json")) == sessions
    capsys.readouterr()
    import matplotlib.pyplot as plt
    plt.close("all")
    paper_results.show("backends_agreement")
    [num] = plt.get_fignums()  # drawn by the experiment's own plot (Agg: show leaves it open)
    assert plt.figure(num).axes
    out = capsys.readouterr().out
    assert f"code {result['provenance']['code']}, git {result['provenance']['git']}" in out
    assert "Paper scale (activation=tanh, arch=depth_mup, width=8, depth=2" in out
    [verdict] = json.loads(record.read_text())["claims"]  # the run's verdict, from its ledger entry
    assert "  NB-BK (activation=tanh, arch=depth_mup, width=8, depth=2" in out
    assert f": {verdict['verdict']} at paper scale; measured {claims.measured_text(verdict['measured'])}" in out
    record.unlink()
    assert paper_results.verdicts(doc) == [f"no ledger entry {record.name} for this run: its verdicts are not recorded"]


def test_no_paper_result_is_one_honest_line(capsys):
    paper_results.show("a54_nondegeneracy")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("No paper-scale run of a54_nondegeneracy stored yet; "
                               "`nfd run a54_nondegeneracy --set profile=paper` makes one (")
    assert "est. " in lines[0] or "no estimate" in lines[0]


@pytest.mark.parametrize("content", ["{\"format\": 1, \"data\": {", "[1, 2]", "{\"format\": 1}"])
def test_a_damaged_export_is_one_error_naming_the_file(content):
    folder = paper_export.paper_dir()
    folder.mkdir(parents=True)
    path = folder / "a54_nondegeneracy.0000abcd.json"
    path.write_text(content)
    with pytest.raises(paper_export.PaperResultError) as err:
        paper_results.show("a54_nondegeneracy")
    message = str(err.value)
    assert str(path) in message and "nfd export-paper a54_nondegeneracy" in message
    assert "\n" not in message


def test_export_paper_without_a_stored_run_is_one_clear_error(tmp_path, capsys):
    assert main(["export-paper", "a54_nondegeneracy", "--results", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert "no finished paper-profile run of a54_nondegeneracy" in err and "--set profile=paper" in err


def test_time_table_shows_measured_numbers_only():
    ledger = [{"experiment": "a54_nondegeneracy", "setting": "activation=tanh", "date": "2026-12-04T06:02:37Z",
               "run": {"seconds": 149.1, "peak_gib": 4.5}},
              {"experiment": "t56_convergence", "setting": "particles=131072", "date": "2026-11-30T07:09:04Z"}]
    costs = {"profiles": {"book": {"p31": {"core_seconds": 14.0, "peak_bytes": 2**30, "date": "2026-12-04"}}}}
    table = paper_results.time_table(ledger, costs)
    rows = {line.split(" | ")[0].strip("| ").split(" ")[0]: line for line in table.splitlines()[2:]}
    assert rows["ch3_post_activation"] == ("| ch3_post_activation (P3.1, P3.1-pre, F4, F4-train) | "
                                           "14 s, 1.00 GiB (2026-12-04) | not yet run |")
    assert "a54\\_nondegeneracy" not in rows["ch5_nfd"]
    assert "a54_nondegeneracy (activation=tanh), run 2026-12-04: 2.5 min, 4.5 GiB (wall time of its last session)" \
        in rows["ch5_nfd"]
    assert "t56_convergence (particles=131072): run 2026-11-30, time not recorded" in rows["ch5_nfd"]
    assert "| not measured |" in rows["ch5_nfd"]  # d53, a54, t56 at book: no costs given


def test_committed_paper_results_read_back():
    """Every compact paper result committed under book/_paper reads back and names its run."""
    folder = Path(__file__).resolve().parents[1] / "book" / "_paper"
    for path in sorted(folder.glob("*.json")):
        doc = paper_export.load(path)
        assert path.name == f"{doc['experiment']}.{doc['key']}.json"
        assert doc["profile"] == "paper" and doc["run"]["seconds"] > 0 and doc["provenance"]["code"]
