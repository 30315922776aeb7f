import shutil

import pytest


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    """Every test writes its results, claim ledger and measured costs under its own temporary
    folder (the costs start as a copy of the repository's)."""
    from nfdlib import costs
    monkeypatch.setenv("NFD_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("NFD_LEDGER", str(tmp_path / "ledger"))
    monkeypatch.setattr(costs, "COSTS_PATH", tmp_path / "costs.json")
    shutil.copyfile(costs._PACKAGE_DIR / "costs.json", tmp_path / "costs.json")
    yield


@pytest.fixture
def traced_peak():
    """``traced_peak(fn, *args)``: ``fn(*args)`` and the peak of the memory that Python and
    numpy allocated while it ran (tracemalloc), in bytes."""
    import tracemalloc

    def run(fn, *args, **kwargs):
        tracemalloc.start()
        try:
            out = fn(*args, **kwargs)
            return out, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return run
