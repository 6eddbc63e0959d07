"""The cost model against published Vivado HLS reports of hls4ml kernels (the table in
edge_asr/hw/hls4ml_reports.json, with its sources). The bounds are the model's stated error
(docs/cost-model.md; benchmarks/cost_vs_reports.py prints it): DSP and BRAM18 within one
block or 5 %, latency within 3 cycles, the interval exact, LUT and FF within 50 %."""

from __future__ import annotations

import json

import pytest

from edge_asr.cli import main
from edge_asr.hw.cost import valid_reuse_factors
from edge_asr.hw.cost_check import estimate_report, model_error, published_reports

TABLE = published_reports()
KERNELS = TABLE["kernels"]


def test_every_report_names_its_source():
    for k in KERNELS:
        source = TABLE["sources"][k["source"]]
        assert source["repository"] and len(source["commit"]) == 40 and source["paths"] and source["tool"]


@pytest.mark.parametrize("k", KERNELS, ids=[k["layer"] for k in KERNELS])
def test_the_reported_reuse_factor_is_one_hls4ml_takes(k):
    assert k["reuse_factor"] in valid_reuse_factors(k["n_in"], k["n_out"])


@pytest.mark.parametrize("k", KERNELS, ids=[k["layer"] for k in KERNELS])
def test_cost_model_against_a_published_report(k):
    est, m = estimate_report(k), k["measured"]
    for key in ("dsp", "bram18"):
        assert abs(getattr(est, key) - m[key]) <= max(1, 0.05 * m[key]), (key, getattr(est, key), m[key])
    for key in ("lut", "ff"):
        assert abs(getattr(est, key) - m[key]) <= 0.5 * m[key], (key, getattr(est, key), m[key])
    assert est.ii == m["ii"]
    assert abs(est.latency - m["latency"]) <= 3, (est.latency, m["latency"])


def test_cost_prints_the_models_measured_error(shipped_design, capsys):
    assert main(["cost", str(shipped_design)]) == 0
    text = capsys.readouterr().out
    assert f"against {len(KERNELS)} published Vivado HLS reports" in text
    assert main(["cost", str(shipped_design), "--json"]) == 0
    err = json.loads(capsys.readouterr().out)["model_error"]
    assert set(err) == {"dsp", "bram18", "lut", "ff", "latency"}
    assert err == json.loads(json.dumps(model_error()))
    assert all(0 <= e["median"] <= e["max"] for e in err.values())
    assert max(err[key]["max"] for key in ("lut", "ff", "latency")) <= 0.5
