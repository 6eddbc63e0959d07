"""The whole design in Verilator: the streaming top level driven as an AXI stream.

Builds top.py's module, its kernels and the templates with hls/rtl/edge_asr_tb.cpp
(random input gaps, random output backpressure, TLAST per inference) into one program,
cached by the hash of every source; runs it on input codes; and compares the logits it
streams out with the simulator's, code for code, and its cycle counts with the cost model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import ToolMissingError
from ..ir.design import Design
from ..resources import cache_root
from . import kernels as K
from . import top as T
from .verilator import on_path


def write_kernels(kernels: list[K.Kernel], folder: Path) -> list[Path]:
    """Each kernel's da4ml project under folder/<kernel>/; the Verilog sources of all of
    them (da4ml's helper modules, the same for every kernel, once)."""
    from da4ml.codegen import VerilogModel
    sources: list[Path] = []
    for k in kernels:
        VerilogModel(K.trace(k), k.name, folder / k.name, print_latency=False).write()
        sources.append(folder / k.name / "src" / f"{k.name}.v")
    if kernels:
        static = folder / kernels[0].name / "src" / "static"
        sources += [p for p in sorted(static.glob("*.v")) if p.name != "lookup_table.v"]
    return sources


def write_top(design: Design, kernels: list[K.Kernel], folder: Path) -> tuple[list[Path], dict]:
    """The top level and the templates it uses into folder/top/; (their sources, the port
    description). The kernels' own sources are write_kernels's."""
    text, ports = T.top_verilog(design, kernels)
    top = folder / "top"
    top.mkdir(parents=True, exist_ok=True)
    sources = []
    for src in T.template_sources():
        shutil.copyfile(src, top / src.name)
        sources.append(top / src.name)
    (top / f"{T.TOP}.v").write_text(text)
    return sources + [top / f"{T.TOP}.v"], ports


def build_top(design: Design, kernels: list[K.Kernel] | None = None, log=print) -> tuple[Path, dict, float]:
    """The testbench program of a design's top level (built once per set of sources):
    (its path, the port description, seconds spent building, 0.0 from the cache).
    `kernels`: the design's, when the caller has traced them already."""
    from ..resources import hls_source
    if shutil.which("make") is None or shutil.which("g++") is None:
        raise ToolMissingError("building with Verilator needs make and g++; install them (build-essential)")
    kernels = K.design_kernels(design) if kernels is None else kernels
    with tempfile.TemporaryDirectory() as tmp:
        top_sources, ports = write_top(design, kernels, Path(tmp))
        sources = write_kernels(kernels, Path(tmp)) + top_sources
        h = hashlib.sha256()
        for p in sources + [hls_source("rtl", "edge_asr_tb.cpp")]:
            h.update(p.name.encode() + p.read_bytes())
        folder = cache_root() / "rtl" / f"top-{h.hexdigest()[:16]}"
        exe = folder / "obj_dir" / "edge_asr_tb"
        if exe.is_file():
            return exe, ports, 0.0
        log(f"building the whole design's top level with Verilator (once per design) in {folder} ...")
        t0 = time.time()
        work = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(tmp, work)
        local = [work / p.relative_to(tmp) for p in sources]
        shutil.copyfile(hls_source("rtl", "edge_asr_tb.cpp"), work / "edge_asr_tb.cpp")
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", str(os.cpu_count() or 1), "-Wno-fatal", "-Wno-lint",
               "--top-module", T.TOP, "-o", "edge_asr_tb", *map(str, local), "edge_asr_tb.cpp"]
        with on_path():
            r = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        if r.returncode != 0:
            last = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise ToolMissingError(f"the top level's Verilator build failed: {' | '.join(last)}")
        shutil.rmtree(folder, ignore_errors=True)
        work.rename(folder)
        return exe, ports, time.time() - t0


def _pack(codes: np.ndarray, width: int, words: int) -> np.ndarray:
    """Rows of integer codes (n, values) as little-endian 32-bit words, each value `width`
    bits of two's complement at [i * width]."""
    n, values = codes.shape
    bits = (codes.astype(np.int64)[:, :, None] >> np.arange(width)) & 1       # (n, values, width)
    flat = np.zeros((n, words * 32), np.uint64)
    flat[:, :values * width] = bits.reshape(n, -1)
    return (flat.reshape(n, words, 32) << np.arange(32, dtype=np.uint64)).sum(axis=2).astype(np.uint32)


def _unpack(words: np.ndarray, values: int, width: int, signed: bool) -> np.ndarray:
    n = len(words)
    bits = (words.astype(np.uint64)[:, :, None] >> np.arange(32, dtype=np.uint64)) & 1  # (n, words, 32)
    fields = bits.reshape(n, -1)[:, :values * width].reshape(n, values, width).astype(np.int64)
    out = (fields << np.arange(width)).sum(axis=2)
    return out - ((out >> (width - 1)) << width) if signed else out


def run_top(exe: Path, ports: dict, frames: np.ndarray, gap: float, stall: float, seed: int = 1) -> dict:
    """Stream input codes (n, beats, values) through the testbench program; the output codes
    (n, out_values) and the cycles (first input beat taken, each output beat, total)."""
    n, beats, _ = frames.shape
    in_words, out_words = ports["in_port"] // 32, ports["out_port"] // 32
    data = _pack(frames.reshape(n * beats, -1), ports["in_width"], in_words)
    head = np.array([n, beats, in_words, out_words, int(gap * 1000), int(stall * 1000), seed], np.uint32)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        src.write_bytes(head.tobytes() + data.tobytes())
        r = subprocess.run([str(exe), str(src), str(dst)], capture_output=True, text=True)
        raw = np.frombuffer(dst.read_bytes(), np.uint32) if dst.is_file() else np.zeros(0, np.uint32)
    if r.returncode != 0 or raw.size < 2:
        raise ToolMissingError(f"{exe}: the testbench stopped before every inference came out (exit {r.returncode})")
    first_in, total = int(raw[-2]), int(raw[-1])
    rows = raw[:-2].reshape(-1, out_words + 1)
    return {"codes": _unpack(rows[:, :out_words], ports["out_values"], ports["out_width"], ports["out_signed"]),
            "out_cycles": rows[:, -1].astype(np.int64), "first_in": first_in, "cycles": total}


def verify_stream(design_dir: str | Path, x: np.ndarray, gap: float = 0.3, stall: float = 0.3,
                  kernels: list[K.Kernel] | None = None, log=print) -> dict:
    """The whole design in Verilator against the simulator on inputs x (floats, the model's
    input shape): the logits code for code under random gaps and backpressure, then the
    cycle counts of a run without either (latency of the first inference, interval).
    `kernels`: the design's, when the caller has traced them already."""
    from ..sim.engine import code_input, simulate
    design = Design.load(design_dir, kind="design")
    exe, ports, seconds_build = build_top(design, kernels, log=log)
    codes = code_input(design, x).ints.reshape((len(x),) + design.onnx_input_shape)
    frames = np.transpose(codes, (0, 2, 1))  # channels-last: one frame per beat
    t0 = time.time()
    got = run_top(exe, ports, frames, gap, stall)
    seconds_rtl = time.time() - t0
    sim = simulate(design, x, trace=True)
    t_out = next(layer for layer in design.layers if layer.name == ports["output_layer"]).result_type()
    want = np.round(sim.trace[ports["output_layer"]].reshape(len(x), -1) * 2.0 ** t_out.fractional).astype(np.int64)
    mismatches = int(np.count_nonzero(got["codes"] != want))
    clean = run_top(exe, ports, frames[: min(len(frames), 20)], 0.0, 0.0)
    steps = np.diff(clean["out_cycles"])
    cost = design.data.get("cost", {})
    return {"n": int(len(x)), "mismatches": mismatches, "compared": f"{ports['output_layer']} ({ports['output_type']})",
            "gap": gap, "stall": stall, "cycles_with_gaps": got["cycles"],
            "latency_cycles": int(clean["out_cycles"][0] - clean["first_in"]),
            "interval_cycles": int(np.median(steps)) if len(steps) else None,
            "cost_model": {"latency_cycles": cost.get("latency_cycles"), "interval_cycles": cost.get("interval_cycles"),
                           "note": "hls4ml's design at the fit's reuse factors, not this fully unrolled RTL"},
            "seconds_build": round(seconds_build, 2), "seconds_rtl": round(seconds_rtl, 3)}
