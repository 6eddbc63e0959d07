"""The cost model against published Vivado HLS reports of hls4ml kernels.

hls4ml_reports.json (beside this module) holds each report's kernel configuration (from the
project's parameters.h) and figures (its function-level csynth.rpt), with the repository,
commit and paths they come from. Errors are the estimate minus the report's figure,
relative to it. tests/test_cost_reports.py holds the model to bounds on them and
benchmarks/cost_vs_reports.py prints them.
"""

from __future__ import annotations

import json
import statistics
from functools import cache
from pathlib import Path

from .cost import LayerCost, kernel_cost, kernel_depth

REPORTS = Path(__file__).with_name("hls4ml_reports.json")
CHECKED = ("dsp", "bram18", "lut", "ff", "latency")


@cache
def published_reports() -> dict:
    """The table: `sources` (name -> repository, commit, tool, part, io_type, paths) and
    `kernels` (configuration and `measured` figures of each)."""
    return json.loads(REPORTS.read_text())


def estimate_report(kernel: dict) -> LayerCost:
    """The cost model's estimate of one kernel of the table (its latency in `latency`)."""
    est = LayerCost(kernel["layer"], "Dense")
    kernel_cost(est, kernel["n_in"], kernel["n_out"], kernel["in_bits"], kernel["w_bits"], kernel["acc_bits"],
                kernel["strategy"], kernel["reuse_factor"], kernel["family"])
    est.latency = kernel_depth(kernel["strategy"], kernel["n_in"], kernel["reuse_factor"])
    return est


def relative_error(estimate: float, measured: float) -> float:
    """(estimate - measured) / measured; 0 when both are 0, infinite when only the estimate is not."""
    if measured:
        return (estimate - measured) / measured
    return 0.0 if estimate == measured else float("inf")


@cache
def model_error() -> dict[str, dict[str, float]]:
    """Per resource (and latency): the median and largest |relative error| over the table,
    and how many reports it holds (`n`)."""
    kernels = published_reports()["kernels"]
    errors = {k: [] for k in CHECKED}
    for kernel in kernels:
        est = estimate_report(kernel)
        for key in CHECKED:
            errors[key].append(abs(relative_error(getattr(est, key), kernel["measured"][key])))
    return {key: {"median": statistics.median(v), "max": max(v), "n": len(v)} for key, v in errors.items()}


def error_line() -> str:
    """One line for a cost table: the model's median error against the published reports."""
    e = model_error()
    parts = ", ".join(f"{key.upper() if key != 'latency' else 'latency'} {e[key]['median']:.0%}"
                      for key in ("dsp", "bram18", "lut", "ff", "latency"))
    return (f"cost model error against {e['lut']['n']} published Vivado HLS reports of hls4ml kernels "
            f"(median): {parts}")
