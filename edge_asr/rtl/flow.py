"""`edge-asr rtl` (Verilog of a design's kernels) and `edge-asr verify --against rtl`
(each kernel built with Verilator and compared with the simulator, code for code).

    DESIGN_DIR/design.json -> kernels.design_kernels -> da4ml (distributed arithmetic)
        -> RTL_DIR/<kernel>/src/*.v, RTL_DIR/rtl.json, RTL_DIR/manifest.json
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir, refuse_existing
from ..errors import InputError
from ..ir.design import Design
from ..ir.manifest import write_manifest
from . import kernels as K

RTL_FILE = "rtl.json"


def _describe(k: K.Kernel) -> dict:
    return {"name": k.name, "layers": [layer.name for layer in k.layers], "n_in": k.n_in, "n_out": k.n_out,
            "in_type": k.in_type.cpp(), "out_type": k.out_type.cpp(), "weight_type": k.w_type.cpp(),
            "products": k.products, "window": k.layers[0].class_name == "Conv1D"}


def write_rtl(design_dir: str | Path, out: str | Path, force: bool = False, log=print) -> Path:
    """Write one Verilog module per kernel of a design (da4ml), with rtl.json and a manifest.

    Raises:
        InputError: a design that does not load, or a kernel the flow cannot build yet;
        OutputExistsError: out exists without force.
    """
    from .stream import write_kernels, write_top
    out = Path(out)
    refuse_existing(out, force)
    design = Design.load(design_dir, kind="design")
    found = K.design_kernels(design)
    if not found:
        raise InputError(f"{design_dir}: no Dense or Conv1D layer to write as RTL")
    with atomic_dir(out) as tmp:
        listed = []
        for k in found:
            t0 = time.time()
            K.trace(k)
            listed.append({**_describe(k), "seconds_trace": round(time.time() - t0, 2)})
            log(f"{k.name}: {k.n_in} -> {k.n_out}, {k.products} constant products ({time.time() - t0:.1f} s)")
        kernel_sources = write_kernels(found, tmp)
        try:
            top_sources, ports = write_top(design, found, tmp)
            top = {"sources": [str(p.relative_to(tmp)) for p in kernel_sources + top_sources], "ports": ports}
        except K.UnsupportedKernelError as exc:
            shutil.rmtree(tmp / "top", ignore_errors=True)
            top = {"not_built": str(exc)}
        record = {"design": str(design_dir), "part": design.data.get("part"), "kernels": listed, "top": top}
        (tmp / RTL_FILE).write_text(json.dumps(record, indent=2) + "\n")
        write_manifest(tmp, "rtl")
    return out


def verify_rtl(design_dir: str | Path, n: int = 2000, max_products: int | None = None, data: str | None = None,
               log=print) -> dict:
    """Build each kernel with Verilator (cached by its Verilog's hash) and compare its output
    codes with the simulator's on `n` inputs: the input type's full range at random, small
    codes, and all-largest / all-smallest rows (ties and saturation).

    Kernels with more than max_products constant products are listed as skipped. When none
    is, the whole design also runs in Verilator (stream.verify_stream: the streaming top
    level under random input gaps and output backpressure) on n inputs: `data`'s test split,
    audio or .npy, or random ones.

    Returns:
        dict with n, mismatches (over every built kernel and the whole design), kernels (per
        kernel: name, n, mismatches, products, seconds_build, seconds_rtl, or skipped), whole
        (the whole design's figures, or the reason it was not run), seconds_build, seconds_rtl.
    """
    from .verilator import built_model
    design = Design.load(design_dir, kind="design")
    found = K.design_kernels(design)
    rows, total_build, total_rtl, bad = [], 0.0, 0.0, 0
    for i, k in enumerate(found):
        if max_products is not None and k.products > max_products:
            rows.append({**_describe(k), "skipped": f"more than {max_products} products"})
            continue
        comb = K.trace(k)
        widest = _io_bits(comb)
        if widest > 32:
            rows.append({**_describe(k), "skipped": f"{widest}-bit values at its ports: da4ml's Verilator binder "
                                                    "takes 32 at most (the whole design covers it)", "wide": True})
            continue
        model, seconds_build = built_model(comb, k.name, log=log)
        codes = K.test_codes(k.in_type, n, k.n_in, seed=i)
        t0 = time.time()
        got = model.predict((codes * 2.0 ** -k.in_type.fractional).astype(np.float64))
        seconds_rtl = time.time() - t0
        got_codes = np.round(np.asarray(got, np.float64) * 2.0 ** k.out_type.fractional).astype(np.int64)
        want = K.reference(k, codes).reshape(got_codes.shape)
        wrong = int(np.count_nonzero(got_codes != want))
        bad += wrong
        total_build += seconds_build
        total_rtl += seconds_rtl
        rows.append({**_describe(k), "n": int(n), "mismatches": wrong, "seconds_build": round(seconds_build, 2),
                     "seconds_rtl": round(seconds_rtl, 3)})
    skipped = [r["name"] for r in rows if "skipped" in r and not r.get("wide")]
    if skipped:
        whole = {"skipped": f"kernels {', '.join(skipped)} were not built"}
    else:
        from ..hw.verify import load_inputs
        from .stream import verify_stream
        x, _ = load_inputs(design, data, n)
        whole = verify_stream(design_dir, x, kernels=found, log=log)
        bad += whole["mismatches"]
        total_build += whole["seconds_build"]
        total_rtl += whole["seconds_rtl"]
    return {"design": str(design_dir), "against": "rtl", "n": int(n), "mismatches": bad, "kernels": rows,
            "whole": whole, "seconds_build": round(total_build, 2), "seconds_rtl": round(total_rtl, 3)}


def _io_bits(comb) -> int:
    """The widest input or output value of a kernel's logic, in bits."""
    from da4ml.codegen.rtl.rtl_model import get_io_kifs
    return int(max(max(k + i + f for k, i, f in zip(*kifs, strict=True)) for kifs in get_io_kifs(comb)))


def format_result(res: dict) -> str:
    """verify --against rtl's result as lines for a terminal."""
    lines = [f"{res['design']}: each kernel in Verilator against the simulator, {res['n']} inputs each"]
    for r in res["kernels"]:
        if "skipped" in r:
            lines.append(f"  {r['name']:<24} {r['products']:>6} products   skipped ({r['skipped']})")
        else:
            lines.append(f"  {r['name']:<24} {r['products']:>6} products   {r['mismatches']} differing of "
                         f"{r['n'] * r['n_out']}   build {r['seconds_build']:.1f} s, run {r['seconds_rtl']:.2f} s")
    w = res["whole"]
    if "skipped" in w:
        lines.append(f"  whole design: not run ({w['skipped']})")
    else:
        lines.append(f"  whole design, AXI stream with {w['gap']:.0%} input gaps and {w['stall']:.0%} backpressure: "
                     f"{w['mismatches']} differing of {w['n']} inferences' {w['compared']}")
        lines.append(f"    latency {w['latency_cycles']} cycles, interval {w['interval_cycles']} cycles (fully unrolled "
                     f"RTL; the cost model's hls4ml design: {w['cost_model']['latency_cycles']} / "
                     f"{w['cost_model']['interval_cycles']})")
    lines.append(f"  total: {res['mismatches']} differing values")
    return "\n".join(lines)
