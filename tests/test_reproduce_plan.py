"""The reproduce command's declared runs are the runs the chapters make: each notebook's code
is executed with ``experiments.execute`` replaced by a recorder (nothing is computed), for every
profile, and the recorded calls must equal :func:`nfdlib.reproduce_plan.book_runs`."""
import json
import re
from pathlib import Path

import pytest

from nfdlib import experiments
from nfdlib.params import PROFILES
from nfdlib.reproduce_plan import WHOLE_RUNS, book_runs, select
from nfdlib.params import ParamError

BOOK = Path(__file__).resolve().parent.parent / "book"


class Recorded(Exception):
    """Stops a cell right after its execute call was recorded."""


def notebook_calls(path: Path, profile: str, monkeypatch) -> list[tuple]:
    calls = []

    def recorder(name, root=None, record=None, **settings):
        params = experiments.get(name).Params.build(**settings)
        calls.append((name, params.to_dict(), record))
        raise Recorded

    monkeypatch.setattr(experiments, "execute", recorder)
    nb = json.loads(path.read_text())
    namespace: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        source = "\n".join(line for line in source.splitlines() if not re.match(r"\s*[%!]", line))
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source += f"\nprofile = {profile!r}\n"  # what papermill -p profile does
        try:
            exec(compile(source, str(path), "exec"), namespace)
        except Exception:  # a cell that needs a result: nothing to record there
            pass
    return calls


@pytest.mark.parametrize("profile", PROFILES)
def test_declared_runs_are_the_notebooks_runs(profile, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    monkeypatch.setattr("nfdlib.params.available_memory_bytes", lambda: 1 << 50)  # paper grids
    declared = [(r.chapter, r.experiment, r.params().to_dict(), r.record) for r in book_runs(profile)]
    found = []
    for path in sorted(BOOK.glob("*.ipynb")):
        found += [(path.stem, *call) for call in notebook_calls(path, profile, monkeypatch)]
    key = lambda t: (t[0], t[1], json.dumps(t[2], sort_keys=True))  # noqa: E731
    assert sorted(found, key=key) == sorted(declared, key=key)


def test_labels_are_unique_and_whole_runs_have_no_grid():
    labels = [r.label for r in book_runs("book")]
    assert len(labels) == len(set(labels))
    src = Path(experiments.__file__).parent
    for name in WHOLE_RUNS:
        assert "run_grid" not in (src / f"{name}.py").read_text()


def test_only_selects_and_rejects_unknown_names():
    runs = book_runs("smoke")
    assert {r.label for r in select(runs, ["ch5_nfd"])} == {"d53", "a54", "t56"}
    assert [r.label for r in select(runs, ["p52-depth"])] == ["p52-depth"]
    with pytest.raises(ParamError, match="nope"):
        select(runs, ["nope"])
