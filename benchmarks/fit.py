"""The fit on the shipped model: interval against DSP and BRAM over a sweep of budgets and
of one reuse factor for every layer, and the point convert chooses by default.

    .venv/bin/python benchmarks/fit.py [--model models/kws-digits] [--board pynq-z2]

Every figure is the cost model's estimate from hls4ml 1.3's rules (edge_asr/hw/cost.py),
not a synthesis result; benchmarks/cost_vs_reports.py gives its error against published
Vivado HLS reports. The design is converted once; the sweep re-runs the fit and the
cost model on it, which is what `convert --budget B` and `--reuse N` do after hls4ml.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_asr.errors import EdgeAsrError  # noqa: E402
from edge_asr.hw.boards import board as board_named  # noqa: E402
from edge_asr.hw.convert import FALLBACK_BITS, ConvertOptions, convert  # noqa: E402
from edge_asr.hw.cost import KERNEL_KINDS, design_costs, kernel_shape, summarize, valid_reuse_factors  # noqa: E402
from edge_asr.hw.fit import fifo_depths, fit  # noqa: E402
from edge_asr.ir import Design  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "models" / "kws-digits"))
    p.add_argument("--board", default="pynq-z2")
    a = p.parse_args()
    b = board_named(a.board)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(a.model)
        calib = model / "calib.npy"
        design = Design.load(convert(model, Path(tmp) / "d", ConvertOptions(board=a.board, calib=str(calib)
                                                                            if calib.is_file() else None),
                                     log=lambda m: None))
    chosen = design.data["cost"]
    print(f"{design.name} for {b.name}: estimated from hls4ml 1.3's rules, not synthesized")
    print(f"{'setting':<22} {'fits':>5} {'interval':>9} {'latency':>9} {'DSP':>5} {'BRAM18':>7} {'LUT':>7} {'FF':>7}")

    def row(label: str, rec: dict) -> None:
        t = rec["totals"]
        print(f"{label:<22} {'yes' if rec['fits'] else 'no':>5} {rec['interval_cycles']:>9} {rec['latency_cycles']:>9} "
              f"{t['dsp']:>5} {t['bram18']:>7} {t['lut']:>7} {t['ff']:>7}")

    for budget in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        try:
            row(f"fit, budget {budget:.0%}", fit(design, b, budget)["cost"])
        except EdgeAsrError as exc:
            print(f"{'fit, budget ' + format(budget, '.0%'):<22} {'no':>5}  {str(exc).split(': ', 1)[-1][:70]}")
    kernels = [layer for layer in design.layers if layer.class_name in KERNEL_KINDS]
    depths = fifo_depths(design)
    for rf in (1, 4, 16, 64, 256, 1024, 4096):
        choices = {}
        for layer in kernels:
            n_in, n_out, _ = kernel_shape(layer)
            valid = valid_reuse_factors(n_in, n_out)
            r = min(valid, key=lambda v: (abs(v - rf), v))          # hls4ml's closest valid reuse factor
            choices[layer.name] = ("latency" if r == 1 else "resource", r)
        rec = summarize(design_costs(design, choices, depths, b.family), design.clock_period_ns, b.available(), 0.7)
        row(f"reuse ~{rf} everywhere", rec)
    row("chosen (convert default)", chosen)
    print("\nwidths (convert --bits B, fit at the default budget; convert without --bits takes the widest that fits):")
    with tempfile.TemporaryDirectory() as tmp:
        for bits in FALLBACK_BITS:
            try:
                d = Design.load(convert(model, Path(tmp) / f"d{bits}", ConvertOptions(
                    board=a.board, bits=bits, calib=str(calib) if calib.is_file() else None), log=lambda m: None))
                row(f"{bits} bits", d.data["cost"])
            except EdgeAsrError as exc:
                print(f"{str(bits) + ' bits':<22} {'no':>5}  {str(exc).split(': ', 1)[-1][:70]}")


if __name__ == "__main__":
    main()
