"""House rules of structure, beside test_layout.py's: no import cycle inside edge_asr (lazy
imports in functions count: they are where cycles hide), and no function too long to read
at once."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_layout import MODULES, ROOT, import_statements

MAX_FUNCTION_LINES = 80
# Functions allowed past MAX_FUNCTION_LINES, each with why it reads as it is.
LONG_FUNCTIONS = {
    "edge_asr.cli.parser.build_parser": "a declarative table: one add_argument per flag of every verb, read by scanning",
}


def _edges(name: str, path: Path) -> set[str]:
    """The edge_asr modules a module imports anywhere in it. `from P import m` where m is a
    submodule names m alone (P's __init__ runs first, but P's own imports are P's edges)."""
    found = set()
    for target, subs, n_names in import_statements(name, path):
        found |= subs if subs and len(subs) == n_names else subs | {target}
    return {m for m in found if m in MODULES and m != name}


def import_cycles(modules: dict[str, Path]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    graph = {name: _edges(name, path) & set(modules) for name, path in modules.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycle_inside_the_package():
    cycles = import_cycles(MODULES)
    assert not cycles, f"import cycles: {cycles}"


def test_the_cycle_check_finds_a_cycle(tmp_path):
    """The check itself: two modules importing each other in functions, as the training run and
    its launcher once did, make one cycle."""
    pkg = tmp_path / "edge_asr" / "training"
    pkg.mkdir(parents=True)
    (pkg / "train.py").write_text("def f():\n    from .distributed import launch\n")
    (pkg / "distributed.py").write_text("def launch():\n    from .train import f\n")
    (pkg / "nets.py").write_text("from . import distributed\n")
    modules = {"edge_asr.training.train": pkg / "train.py", "edge_asr.training.distributed": pkg / "distributed.py",
               "edge_asr.training.nets": pkg / "nets.py"}
    import tests.test_layout as layout
    saved = dict(layout.MODULES)
    layout.MODULES.update(modules)
    try:
        assert import_cycles(modules) == [["edge_asr.training.distributed", "edge_asr.training.train"]]
    finally:
        layout.MODULES.clear()
        layout.MODULES.update(saved)


def _long_functions(modules: dict[str, Path]) -> dict[str, int]:
    out = {}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    out[f"{name}.{node.name}"] = lines
    return out


def test_no_function_longer_than_a_screen():
    long = {k: v for k, v in _long_functions(MODULES).items() if k not in LONG_FUNCTIONS}
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them, or allow one with a reason): {long}"


def test_the_allowlist_names_only_long_functions_with_reasons():
    long = _long_functions(MODULES)
    for qualified, reason in LONG_FUNCTIONS.items():
        assert qualified in long, f"{qualified} is no longer long: take it off the allowlist"
        assert len(reason) > 20, qualified
    assert (ROOT / "edge_asr").is_dir()
