import pytest


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    """Every test writes its results and claim ledger under its own temporary folder."""
    monkeypatch.setenv("NFD_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("NFD_LEDGER", str(tmp_path / "ledger"))
    yield
