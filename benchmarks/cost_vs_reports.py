"""The cost model's error against published Vivado HLS reports of hls4ml kernels.

    .venv/bin/python benchmarks/cost_vs_reports.py

The reports and their sources are in edge_asr/hw/hls4ml_reports.json (function-level
csynth.rpt of one dense kernel each, with its parameters.h); tests/test_cost_reports.py
holds the model to bounds on these errors. Errors are the estimate minus the report's
figure, relative to the report's.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_asr.hw.cost_check import CHECKED, estimate_report, model_error, published_reports, relative_error  # noqa: E402


def main() -> None:
    table = published_reports()
    print(f"{'kernel':<27} {'rf':>4} " + " ".join(f"{k + ' est/rep':>19}" for k in CHECKED))
    for k in table["kernels"]:
        est = estimate_report(k)
        cells = [f"{getattr(est, key):>7}/{k['measured'][key]:<7} "
                 f"{relative_error(getattr(est, key), k['measured'][key]):+5.0%}" for key in CHECKED]
        print(f"{k['layer']:<27} {k['reuse_factor']:>4} " + " ".join(f"{c:>19}" for c in cells))
    print()
    for key, e in model_error().items():
        print(f"{key:<8} median |error| {e['median']:6.1%}   max |error| {e['max']:6.1%}")
    for name, src in table["sources"].items():
        print(f"source {name}: {src['repository']} @ {src['commit'][:12]} ({src['tool']}, {src['part']}, "
              f"{src['io_type']})")


if __name__ == "__main__":
    main()
