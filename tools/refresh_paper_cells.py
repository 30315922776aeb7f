"""Re-draw the *At the paper's scale* cells of the book's chapters after a paper run.

A chapter's paper-scale cell (``from nfdlib.paper_results import show``) depends only on the
compact results in ``book/_paper`` and the ledger, not on the chapter's book-profile cells, so
after ``nfd reproduce --profile paper`` (or ``nfd export-paper``) only those cells need
executing again. This runs each of them in a fresh kernel, started in ``book/`` like the
book's own execution, and writes their outputs back into the notebook; every other cell's
outputs stay as they are, and the code cells are numbered 1, 2, … as one execution of the
whole notebook numbers them (a cell just added gets its number, which nbval requires of a
cell with outputs).

    python tools/refresh_paper_cells.py book/ch5_nfd.ipynb [more notebooks]

Run it with MPLBACKEND unset, so that the figures are drawn inline as in the book.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

MARKER = "from nfdlib.paper_results import show"


def refresh(path: Path) -> int:
    """Execute the paper-scale cells of the notebook at ``path`` and store their outputs;
    return how many cells were refreshed."""
    nb = nbformat.read(path, as_version=4)
    index = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and MARKER in c.source]
    if not index:
        return 0
    part = nbformat.v4.new_notebook(metadata=copy.deepcopy(nb.metadata))
    part.cells = [copy.deepcopy(nb.cells[i]) for i in index]
    NotebookClient(part, timeout=600, resources={"metadata": {"path": str(path.parent)}}).execute()
    for i, cell in zip(index, part.cells):
        nb.cells[i].outputs = cell.outputs
    code = [c for c in nb.cells if c.cell_type == "code"]
    for count, cell in enumerate(code, start=1):
        cell.execution_count = count
        for out in cell.outputs:
            if out.get("output_type") == "execute_result":
                out["execution_count"] = count
    nbformat.write(nb, path)
    return len(index)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {refresh(Path(name))} paper-scale cell(s) refreshed")
