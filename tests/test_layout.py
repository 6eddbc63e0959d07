"""The house rules, checked on the source: packages by stage and who may import whom, one
reader of design.json, one exception family, documented public definitions, modules of
one idea, and a package list that matches the folders."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
import tomllib
from pathlib import Path

import pytest

import edge_asr
from edge_asr.errors import EdgeAsrError

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edge_asr"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def import_statements(name: str, path: Path, module_level_only: bool = False):
    """(module named, the submodules among its imported names) of each import in a module:
    `import a.b` gives ("a.b", set()); `from . import x` in package p gives ("p", {"p.x"})
    when x is a submodule (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in (tree.body if module_level_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, set(), 1
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            yield target, {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES}, \
                len(node.names)


def _imports(name: str, path: Path, module_level_only: bool = False) -> set[str]:
    """Absolute names of what a module imports (relative imports resolved)."""
    found = set()
    for target, subs, _ in import_statements(name, path, module_level_only):
        found |= {target} | subs  # `from . import x` may import a submodule x
    return found


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _third_party(imported: set[str]) -> set[str]:
    return {m.split(".")[0] for m in imported if not m.startswith("edge_asr") and m.split(".")[0] not in STDLIB}


# stage -> (third-party imports allowed, edge_asr stages allowed); "" is the package root
RULES = {
    "ir": ({"numpy"}, {"ir", "errors"}),
    # threadpoolctl and onnxruntime only when installed (sim/blas.py, sim/int8.py): the board has neither
    "sim": ({"numpy", "threadpoolctl", "onnxruntime"}, {"sim", "ir", "errors", "atomic", "resources"}),
    "deploy": ({"numpy", "pynq"}, {"deploy", "ir", "sim", "errors", "atomic", "resources"}),
}


@pytest.mark.parametrize("stage", sorted(RULES))
def test_stage_imports_only_what_it_may(stage):
    allowed_third, allowed_stages = RULES[stage]
    for name, path in MODULES.items():
        if _stage(name) != stage:
            continue
        imported = _imports(name, path)
        assert _third_party(imported) <= allowed_third, f"{name} imports {_third_party(imported) - allowed_third}"
        inner = {_stage(m) for m in imported if m.startswith("edge_asr.")}
        assert inner <= allowed_stages, f"{name} imports edge_asr.{inner - allowed_stages}"


def test_runtime_never_imports_training_or_hw_and_nothing_imports_the_cli():
    for name, path in MODULES.items():
        imported = _imports(name, path)
        if _stage(name) == "runtime":
            bad = {m for m in imported if _stage(m) in ("training", "hw")}
            assert not bad, f"{name} imports {bad}"
        if not name.startswith("edge_asr.cli"):
            assert not {m for m in imported if m.startswith("edge_asr.cli")}, f"{name} imports the CLI"


def test_board_side_is_closed_at_import_time():
    """What a bundle ships (deploy.bundle's list) imports, when loaded, only itself and what a
    PYNQ image has (numpy, pynq; soundfile and soxr for audio files)."""
    from edge_asr.deploy.bundle import BOARD_PACKAGES, BOARD_ROOT_MODULES
    board = {n for n in MODULES if _stage(n) in BOARD_PACKAGES}
    board |= {f"edge_asr.{m[:-3]}" if m != "__init__.py" else "edge_asr" for m in BOARD_ROOT_MODULES}
    for name in board:
        imported = _imports(name, MODULES[name], module_level_only=True)
        outside = {m for m in imported if m.startswith("edge_asr.") and _stage(m) not in
                   {_stage(b) for b in board}}
        assert not outside, f"{name} imports {outside}, which a bundle does not carry"
        assert _third_party(imported) <= {"numpy", "pynq", "soundfile", "soxr", "threadpoolctl"}, name
    # the packages a bundle leaves out are the ones that need more than a board has
    packages = {_stage(n) for n, p in MODULES.items() if p.name == "__init__.py"}
    assert packages - set(BOARD_PACKAGES) - {""} == {"data", "hw", "rtl", "training"}


def _json_reads(path: Path) -> list[str]:
    """The source of every json.load(s)(...) call in a module."""
    calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr in ("load", "loads")
             and isinstance(n.func.value, ast.Name) and n.func.value.id == "json"]
    return [ast.unparse(c) for c in calls]


def test_only_ir_parses_design_json():
    design = re.compile(r"design\.json|DESIGN_FILE")
    readers = [name for name, path in MODULES.items() if any(design.search(c) for c in _json_reads(path))]
    assert not readers, f"{readers} parse design.json themselves; load it with edge_asr.ir.Design"
    assert "json.loads(file.read_text())" in _json_reads(MODULES["edge_asr.ir.design"])
    # the check sees the spelling the package used before it had one reader
    assert design.search("json.loads((design_dir / 'design.json').read_text())")


def test_every_exception_class_is_an_edge_asr_error():
    seen = 0
    for name in MODULES:
        if name.endswith("__main__"):  # importing it runs the CLI
            continue
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # the board-only modules need pynq: tests/board checks them
            assert exc.name == "pynq", f"{name}: {exc}"
            continue
        for cls in list(vars(module).values()):
            if inspect.isclass(cls) and cls.__module__ == name and issubclass(cls, BaseException):
                if f"{name}.{cls.__name__}" == "edge_asr.atomic.Terminated":
                    continue  # a signal (SIGTERM), not an error: like KeyboardInterrupt, a BaseException
                seen += 1
                assert issubclass(cls, EdgeAsrError), f"{name}.{cls.__name__} is not an EdgeAsrError"
    assert seen >= 10


def _public_definitions(path: Path):
    tree = ast.parse(path.read_text())

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)) and not child.name.startswith("_"):
                yield prefix + child.name, child
                if isinstance(child, ast.ClassDef):
                    yield from walk(child, prefix + child.name + ".")
    yield from walk(tree, "")


def test_every_public_definition_has_a_docstring():
    missing = [f"{name}.{qual}" for name, path in MODULES.items() for qual, node in _public_definitions(path)
               if not ast.get_docstring(node)]
    assert not missing, f"{len(missing)} public definitions without a docstring: {missing}"


def _api_objects():
    for name in edge_asr.__all__:
        if name == "__version__" or name == "EdgeAsrOverlay":  # the overlay needs pynq: tests/board
            continue
        yield name, getattr(edge_asr, name)


def test_public_api_is_lazy_and_documented():
    import subprocess
    code = "import sys, edge_asr; print(sorted(m for m in sys.modules if m.startswith('edge_asr')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['edge_asr']"  # nothing but the package itself until a name is used
    for name, obj in _api_objects():
        doc = inspect.getdoc(obj) or ""
        assert doc, name
        if inspect.isfunction(obj):
            params = [p for p in inspect.signature(obj).parameters.values() if p.kind != p.VAR_KEYWORD]
            for section in (["Args:"] if params else []) + ["Returns:", "Raises:"]:
                assert section in doc, f"{name}: docstring has no '{section}' section"
        elif inspect.isclass(obj) and not issubclass(obj, BaseException):
            assert "Args:" in doc or "Attributes:" in doc, f"{name}: docstring says neither Args nor Attributes"
            for attr, member in vars(obj).items():
                fn = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                if not attr.startswith("_") and inspect.isfunction(fn):
                    assert inspect.getdoc(fn), f"{name}.{attr} has no docstring"


def test_no_module_holds_two_ideas():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"


def test_pyproject_lists_every_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {n for n, p in MODULES.items() if p.name == "__init__.py"}
    assert listed - {"edge_asr.models", "edge_asr.hls"} == on_disk
