"""The cost model against published Vivado HLS reports of hls4ml kernels (the table in
tests/data/hls4ml_reports.json, with its sources). The bounds are the model's stated error
(docs/cost-model.md; benchmarks/cost_vs_reports.py prints it): DSP and BRAM18 within one
block or 5 %, latency within 3 cycles, the interval exact, LUT and FF within 50 %."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_asr.hw.cost import LayerCost, kernel_cost, kernel_depth, valid_reuse_factors

TABLE = json.loads((Path(__file__).parent / "data" / "hls4ml_reports.json").read_text())
KERNELS = TABLE["kernels"]


def _estimate(k: dict) -> LayerCost:
    cost = LayerCost(k["layer"], "Dense")
    kernel_cost(cost, k["n_in"], k["n_out"], k["in_bits"], k["w_bits"], k["acc_bits"], k["strategy"],
                k["reuse_factor"], k["family"])
    cost.latency = kernel_depth(k["strategy"], k["n_in"], k["reuse_factor"])
    return cost


def test_every_report_names_its_source():
    for k in KERNELS:
        source = TABLE["sources"][k["source"]]
        assert source["repository"] and len(source["commit"]) == 40 and source["paths"] and source["tool"]


@pytest.mark.parametrize("k", KERNELS, ids=[k["layer"] for k in KERNELS])
def test_the_reported_reuse_factor_is_one_hls4ml_takes(k):
    assert k["reuse_factor"] in valid_reuse_factors(k["n_in"], k["n_out"])


@pytest.mark.parametrize("k", KERNELS, ids=[k["layer"] for k in KERNELS])
def test_cost_model_against_a_published_report(k):
    est, m = _estimate(k), k["measured"]
    for key in ("dsp", "bram18"):
        assert abs(getattr(est, key) - m[key]) <= max(1, 0.05 * m[key]), (key, getattr(est, key), m[key])
    for key in ("lut", "ff"):
        assert abs(getattr(est, key) - m[key]) <= 0.5 * m[key], (key, getattr(est, key), m[key])
    assert est.ii == m["ii"]
    assert abs(est.latency - m["latency"]) <= 3, (est.latency, m["latency"])
