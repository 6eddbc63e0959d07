"""The cost model's rules against hand-computed cases and hls4ml's own, the fit on the
shipped model and on nets too big for the board, `edge-asr cost`, and `check` of a design
whose recorded cost no longer matches its layers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from edge_asr.cli import main
from edge_asr.hw.boards import BOARDS
from edge_asr.hw.convert import ConvertOptions, convert
from edge_asr.hw.cost import UNROLL_LIMIT, bram18_for, dsp_per_product, fifo_cost, lut_per_product, valid_reuse_factors
from edge_asr.hw.fit import Choice, candidates
from edge_asr.ir import Design, write_manifest

from .conftest import SHIPPED_INPUT, torch_to_onnx

QUIET = dict(log=lambda m: None)


@pytest.mark.parametrize("n_in, n_out", [(192, 64), (39, 64), (256, 32), (32, 12), (7, 5)])
def test_valid_reuse_factors_are_hls4mls(n_in, n_out):
    from hls4ml.backends import get_backend
    assert valid_reuse_factors(n_in, n_out) == get_backend("Vivado").get_valid_reuse_factors(n_in, n_out)


def test_products_map_to_dsps_or_luts():
    assert dsp_per_product(16, 16, "7series") == 1                 # within 25 x 18
    assert dsp_per_product(25, 18, "7series") == 1
    assert dsp_per_product(27, 18, "7series") == 2                 # DSP48E1 is 25 x 18
    assert dsp_per_product(27, 18, "ultrascale+") == 1             # DSP48E2 is 27 x 18
    assert dsp_per_product(36, 16, "7series") == 2
    assert dsp_per_product(8, 16, "7series") == 0 and lut_per_product(8, 16) == 64   # narrow: fabric


def test_block_ram_packing():
    assert bram18_for(512, 36) == 1 and bram18_for(513, 36) == 2     # 512 x 36, then 1K x 18
    assert bram18_for(1024, 18) == 1 and bram18_for(2048, 9) == 1
    assert bram18_for(192, 64 * 16) == 29                            # shallow and wide: width decides
    assert bram18_for(16384, 1) == 1 and bram18_for(0, 16) == 0
    assert fifo_cost(1024, 2)["bram18"] == 0 and fifo_cost(1024, 96)["bram18"] == 29


def test_the_unroll_limit_decides_the_candidates():
    wide = candidates(192, 64)                                       # 12,288 products
    assert all(c.strategy == "resource" for c in wide)
    assert min(c.reuse_factor for c in wide) == 3                    # 12,288 / 3 = 4,096
    assert Choice("latency", 1) in candidates(64, 64)                # exactly 4,096
    assert Choice("latency", 1) not in candidates(65, 64)
    assert all(-(-192 * 64 // c.reuse_factor) <= UNROLL_LIMIT for c in wide)


def test_boards_table():
    z2, zcu = BOARDS["pynq-z2"], BOARDS["zcu104"]
    assert (z2.lut, z2.ff, z2.dsp, z2.bram18) == (53_200, 106_400, 220, 280)
    assert (zcu.lut, zcu.ff, zcu.dsp, zcu.bram36, zcu.uram) == (230_400, 460_800, 1_728, 312, 96)


def test_shipped_design_fits_its_board(shipped_design, capsys):
    design = Design.load(shipped_design)
    cost = design.data["cost"]
    assert cost["fits"] and cost["board"] == "pynq-z2" and cost["budget"] == 0.7
    for key, used in cost["totals"].items():
        assert used <= 0.7 * BOARDS["pynq-z2"].available()[key], key
    kernels = [c for c in cost["layers"] if c["strategy"]]
    assert all(c["unrolled"] <= UNROLL_LIMIT for c in kernels) and len(kernels) == 6
    assert max(c["cycles"] for c in cost["layers"]) == cost["interval_cycles"]
    # the choices are in the hls4ml project: the layers' attributes, and the stream depths
    for layer in design.layers:
        c = next((c for c in kernels if c["name"] == layer.name), None)
        if c:
            assert (layer.attributes["strategy"], layer.attributes["reuse_factor"]) == (c["strategy"], c["reuse_factor"])
    cpp = (shipped_design / "hls" / "firmware" / "edge_asr_net.cpp").read_text()
    assert "depth=2" in cpp and "depth=96" not in cpp
    assert main(["cost", str(shipped_design), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    for key in ("board", "fits", "budget", "totals", "available", "interval_cycles", "latency_cycles", "clock_ns",
                "layers"):
        assert key in printed
    assert set(printed["totals"]) == set(printed["available"]) == {"dsp", "bram18", "lut", "ff"}
    assert {"name", "strategy", "reuse_factor", "multipliers", "dsp", "bram18", "lut", "ff", "ii",
            "cycles"} <= set(printed["layers"][0])
    assert main(["cost", str(shipped_design)]) == 0
    assert "not synthesized" in capsys.readouterr().out


def test_check_refuses_an_edited_cost(shipped_design, tmp_path, capsys):
    d = tmp_path / "d"
    shutil.copytree(shipped_design, d)
    record = json.loads((d / "design.json").read_text())
    layer = next(x for x in record["layers"] if x["attributes"].get("strategy") == "resource")
    layer["attributes"]["reuse_factor"] *= 2                        # edited, the recorded cost left as it was
    (d / "design.json").write_text(json.dumps(record))
    write_manifest(d, "design")
    assert main(["check", str(d)]) == 2
    assert "recorded cost" in capsys.readouterr().err


def _mlp(tmp_path, hidden: int):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(np.prod(SHIPPED_INPUT)), hidden),
                              torch.nn.ReLU(), torch.nn.Linear(hidden, 12), torch.nn.Softmax(dim=1))
    return torch_to_onnx(net, (1, *SHIPPED_INPUT), tmp_path / "mlp.onnx")


def test_a_net_fits_by_a_high_reuse_factor_and_stays_bit_exact(tmp_path):
    from edge_asr.hw.verify import verify
    design = Design.load(convert(_mlp(tmp_path, 64), tmp_path / "d", ConvertOptions(), **QUIET))
    dense = next(x for x in design.data["cost"]["layers"] if x["strategy"] and x["multiplications"] > UNROLL_LIMIT)
    assert dense["strategy"] == "resource" and dense["reuse_factor"] >= 20 and design.data["cost"]["fits"]
    assert verify(design.path, n=30, bitexact=True, **QUIET)["mismatches"] == 0   # the simulator against C-sim


def test_a_million_parameter_net_is_refused_in_one_line(tmp_path, capsys):
    path = _mlp(tmp_path, 768)                                        # 979,212 parameters
    assert main(["convert", str(path), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.splitlines()[-1]                   # after the chosen types' table
    assert err.startswith("edge-asr convert: error: ") and "does not fit pynq-z2" in err and "BRAM18" in err
    assert not (tmp_path / "d").exists()


def test_an_override_that_cannot_be_built_is_an_error(tmp_path, capsys):
    from .conftest import SHIPPED_MODEL
    assert main(["convert", str(SHIPPED_MODEL), "--out", str(tmp_path / "d"), "--reuse", "1"]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("edge-asr convert: error: ") and f"limit of {UNROLL_LIMIT}" in err
    assert not (tmp_path / "d").exists()
