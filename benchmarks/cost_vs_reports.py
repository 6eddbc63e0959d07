"""The cost model's error against published Vivado HLS reports of hls4ml kernels.

    .venv/bin/python benchmarks/cost_vs_reports.py

The reports and their sources are in tests/data/hls4ml_reports.json (function-level
csynth.rpt of one dense kernel each, with its parameters.h); tests/test_cost_reports.py
holds the model to the bounds this prints. The errors are the model's estimates minus the
reports' figures, relative to the reports'.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_asr.hw.cost import LayerCost, kernel_cost, kernel_depth  # noqa: E402

KEYS = ("dsp", "bram18", "lut", "ff", "latency")


def main() -> None:
    table = json.loads((ROOT / "tests" / "data" / "hls4ml_reports.json").read_text())
    errors = {k: [] for k in KEYS}
    print(f"{'kernel':<27} {'rf':>4} " + " ".join(f"{k + ' est/rep':>19}" for k in KEYS))
    for k in table["kernels"]:
        est = LayerCost(k["layer"], "Dense")
        kernel_cost(est, k["n_in"], k["n_out"], k["in_bits"], k["w_bits"], k["acc_bits"], k["strategy"],
                    k["reuse_factor"], k["family"])
        est.latency = kernel_depth(k["strategy"], k["n_in"], k["reuse_factor"])
        cells = []
        for key in KEYS:
            e, m = getattr(est, key), k["measured"][key]
            rel = (e - m) / m if m else 0.0 if e == m else float("inf")
            errors[key].append(rel)
            cells.append(f"{e:>7}/{m:<7} {rel:+5.0%}")
        print(f"{k['layer']:<27} {k['reuse_factor']:>4} " + " ".join(f"{c:>19}" for c in cells))
    print()
    for key in KEYS:
        finite = [abs(r) for r in errors[key] if r != float("inf")]
        print(f"{key:<8} median |error| {statistics.median(finite):6.1%}   max |error| {max(finite):6.1%}")
    for name, src in table["sources"].items():
        print(f"source {name}: {src['repository']} @ {src['commit'][:12]} ({src['tool']}, {src['part']}, "
              f"{src['io_type']})")


if __name__ == "__main__":
    main()
