"""The modules of nfdlib import each other without a cycle.

The graph is read from the source with ``ast``. Every import statement counts, at module
level or inside a function: a lazy import that closes a circle still ties two modules
together (each needs the other to work), it only hides the circle from the interpreter.
An edge goes to the module a statement names: ``from .x import y`` points to ``x``, or to
``x.y`` when ``y`` is itself a module; ``import a.b`` points to ``a.b``. Only modules of
nfdlib are nodes.
"""
from __future__ import annotations

import ast
from pathlib import Path

import nfdlib

ROOT = Path(nfdlib.__file__).resolve().parent


def module_files() -> dict[str, Path]:
    """Dotted name -> source file, for every module and package of nfdlib."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The nfdlib modules that the module ``name`` (source ``path``) imports anywhere."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                prefixes = [".".join(parts[:k]) for k in range(len(parts), 0, -1)]
                targets.update(next(([p] for p in prefixes if p in known), []))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in known:
                    targets.add(sub)
                elif source in known:
                    targets.add(source)
    targets.discard(name)
    return targets


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {name: imported(name, path, known) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_find_cycle_detects_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_relative_and_lazy_imports_are_edges():
    graph = import_graph()
    assert "nfdlib.limits.particles" in graph["nfdlib.limits.nfd"]
    assert "nfdlib.limits.particles" in graph["nfdlib.limits.true_limit"]
    assert "nfdlib.experiments.p31_check" in graph["nfdlib.experiments.p31_plot"]
    # an import inside a function body (torch's device helper, imported lazily)
    assert "nfdlib.backends.torch_backend" in graph["nfdlib.limits.particles"]


def test_nfdlib_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 30
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
