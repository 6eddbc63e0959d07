"""RTL without vendor tools (issue 28): each kernel of a low-bit design written as Verilog
by da4ml from design.json, built with Verilator, equal to the simulator code for code."""

import json

import numpy as np
import pytest

from edge_asr.cli import main
from edge_asr.hw.convert import ConvertOptions, convert
from edge_asr.ir.design import Design
from edge_asr.ir.manifest import verify_manifest
from edge_asr.rtl import kernels as K
from edge_asr.rtl.flow import verify_rtl

QUIET = dict(log=lambda m: None)


@pytest.fixture(scope="session")
def tiny_qat_design(tmp_path_factory, small_data):
    """A small conv net (2 blocks of 8 channels) trained 1 epoch at 4-bit weights and
    activations: kernels of a few hundred products, built in seconds."""
    from edge_asr.training.export import export
    from edge_asr.training.train import TrainConfig, train
    root = tmp_path_factory.mktemp("rtl")
    cfg = TrainConfig(epochs=1, batch_size=32, net_options={"channels": 8, "hidden": 8, "blocks": 2},
                      qat={"weight_bits": 4, "act_bits": 4, "bias_bits": 12, "first_last_bits": None})
    train(small_data, root / "run", cfg, progress=False, **QUIET)
    export(root / "run", root / "model", data_dir=small_data, progress=False, **QUIET)
    convert(root / "model", root / "design", ConvertOptions(board="none"), **QUIET)
    return root / "design"


def test_rtl_writes_one_verilog_module_per_kernel(tiny_qat_design, tmp_path, capsys):
    out = tmp_path / "rtl"
    assert main(["rtl", str(tiny_qat_design), "--out", str(out)]) == 0
    verify_manifest(out, "rtl")
    record = json.loads((out / "rtl.json").read_text())
    names = [k["name"] for k in record["kernels"]]
    assert names == ["conv1d_conv_0", "conv1d_conv_1", "dense_matmul_0", "dense_matmul_1"]
    first = record["kernels"][0]
    # the ReLU after the convolution is fused in: 4-bit unsigned outputs, 3 x 40 window inputs
    assert first["layers"] == ["Conv1D_Conv_0", "Relu_0"] and first["window"] and first["n_in"] == 120
    assert first["out_type"].startswith("ap_ufixed<4,")
    top = (out / "top" / "edge_asr_top.v").read_text()
    assert "module edge_asr_top" in top and "edge_asr_linebuf" in top and "edge_asr_maxpool" in top
    assert record["top"]["ports"]["beats_per_inference"] == 98
    for k in names:
        sources = list((out / k / "src").glob("*.v"))
        assert sources and any(f"module {k}" in p.read_text() for p in sources), k
    assert main(["rtl", str(tiny_qat_design), "--out", str(out)]) == 2  # never over an existing folder
    assert "--force" in capsys.readouterr().err


def test_every_kernel_in_verilator_equals_the_simulator(tiny_qat_design, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGE_ASR_CACHE", str(tmp_path / "cache"))
    res = verify_rtl(tiny_qat_design, n=3000, **QUIET)
    assert res["mismatches"] == 0 and len(res["kernels"]) == 4, res
    assert all(k["mismatches"] == 0 and k["n"] == 3000 for k in res["kernels"])
    assert res["seconds_build"] > 0
    # the whole design as an AXI stream, with input gaps and output backpressure
    whole = res["whole"]
    assert whole["n"] == 3000 and whole["mismatches"] == 0 and whole["gap"] > 0 and whole["stall"] > 0
    assert whole["compared"].startswith("Dense_MatMul_1")
    # one input frame per cycle: an inference every 98 cycles (the frames of a window)
    assert whole["interval_cycles"] == 98 and 98 <= whole["latency_cycles"] < 200
    again = verify_rtl(tiny_qat_design, n=500, **QUIET)  # the builds come from the cache now
    assert again["seconds_build"] == 0.0 and again["mismatches"] == 0


def test_verify_against_rtl_cli(tiny_qat_design, capsys):
    assert main(["verify", str(tiny_qat_design), "--against", "rtl", "--n", "300", "--max-products", "200",
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) >= {"n", "mismatches", "kernels", "seconds_build", "seconds_rtl"}
    skipped = [k for k in res["kernels"] if "skipped" in k]
    assert skipped and all(k["products"] > 200 for k in skipped)
    assert main(["verify", str(tiny_qat_design), "--max-products", "5"]) == 2


def test_a_wrong_kernel_is_caught(tiny_qat_design):
    """The comparison can fail: a kernel whose weights differ by one code in one place."""
    from edge_asr.rtl.verilator import built_model
    design = Design.load(tiny_qat_design)
    k = K.design_kernels(design)[-1]
    k.matrix = k.matrix.copy()
    k.matrix[0, 0] += 1
    model, _ = built_model(K.trace(k), "wrong_kernel", **QUIET)
    codes = K.test_codes(k.in_type, 400, k.n_in)
    got = np.round(model.predict(codes * 2.0 ** -k.in_type.fractional) * 2.0 ** k.out_type.fractional)
    good = K.design_kernels(design)[-1]
    assert np.count_nonzero(got.reshape(-1) != K.reference(good, codes).reshape(-1)) > 0


def test_test_codes_reach_ties_and_both_ends():
    from edge_asr.sim.fixed import FixedType
    t = FixedType(8, 4, True, "AP_RND_CONV", "AP_SAT")
    codes = K.test_codes(t, 400, 16)
    assert codes.max() == 127 and codes.min() == -128
    assert (np.abs(codes) <= 3).all(axis=1).sum() >= 100  # the small rows


def test_synth_counts_each_kernels_cells(tiny_qat_design, capsys):
    """Yosys (Debian's, from scripts/install-system-packages.sh) maps the small kernels."""
    assert main(["synth", str(tiny_qat_design), "--max-products", "400", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) >= {"lut", "ff", "dsp", "bram36", "per_kernel"}
    done = [k for k in res["per_kernel"] if "skipped" not in k]
    assert done and all(k["lut"] > 0 for k in done)
    assert res["lut"] == sum(k["lut"] for k in done)
    # combinational kernels: no flip-flops; 4-bit weights: no DSP slices
    assert res["ff"] == 0 and res["dsp"] == 0
    assert all(k["estimate_reuse1"]["lut"] > 0 for k in res["per_kernel"])


def test_cell_counts_from_yosys_stat():
    from edge_asr.rtl.synth import count_cells
    stat = """
   Number of cells:               2482
     CARRY4                        453
     FDRE                           12
     LUT2                          968
     LUT6                          225
     DSP48E1                         2
     RAMB18E1                        3
"""
    assert count_cells(stat) == {"lut": 1193, "ff": 12, "dsp": 2, "carry": 453, "bram36": 1.5}


def test_the_whole_design_check_catches_a_wrong_bias(tiny_qat_design, tmp_path):
    """RTL built from a design with one bias moved streams logits that differ from
    the simulator's of the true design: the comparison can fail."""
    import shutil

    from edge_asr.ir.manifest import write_manifest
    from edge_asr.rtl.stream import build_top, run_top
    from edge_asr.sim.engine import code_input, simulate
    wrong = tmp_path / "wrong"
    shutil.copytree(tiny_qat_design, wrong)
    record = json.loads((wrong / "design.json").read_text())
    layer = next(x for x in record["layers"] if x["name"] == "Dense_MatMul_1")
    # one output's bias moved by 5 steps of the output grid: every inference's logit 0 moves
    bias = layer["weights"]["bias"]
    step = 2 ** (bias["type"]["width"] - bias["type"]["integer"] - (layer["output_type"]["width"]
                                                                     - layer["output_type"]["integer"]))
    top = (1 << (bias["type"]["width"] - 1)) - 1
    bias["codes"][0] = bias["codes"][0] + 5 * step if bias["codes"][0] + 5 * step <= top else bias["codes"][0] - 5 * step
    (wrong / "design.json").write_text(json.dumps(record))
    write_manifest(wrong, "design")
    design, true = Design.load(wrong), Design.load(tiny_qat_design)
    x = np.random.default_rng(3).standard_normal((100,) + true.onnx_input_shape).astype(np.float32) * 2
    exe, ports, _ = build_top(design, **QUIET)
    frames = np.transpose(code_input(true, x).ints.reshape((100,) + true.onnx_input_shape), (0, 2, 1))
    got = run_top(exe, ports, frames, 0.2, 0.2)["codes"]
    frac = next(x for x in true.layers if x.name == "Dense_MatMul_1").result_type().fractional
    want = simulate(true, x, trace=True).trace["Dense_MatMul_1"] * 2.0 ** frac
    assert got.shape == (100, 12) and np.count_nonzero(got != np.round(want)) > 0


@pytest.mark.parametrize("rounding, saturation", [
    *[(r, "AP_SAT") for r in ("AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_INF", "AP_RND_MIN_INF",
                              "AP_RND_CONV")],
    *[("AP_RND_CONV", s) for s in ("AP_WRAP", "AP_SAT_SYM", "AP_SAT_ZERO")]])
def test_every_cast_mode_of_the_simulator_is_built_exactly(rounding, saturation, monkeypatch, tmp_path):
    """A small kernel whose result type rounds and overflows by each ap_fixed mode: Verilator
    equals the simulator's arithmetic on every code, ties and both ends included."""
    from edge_asr.rtl.verilator import built_model
    from edge_asr.sim.fixed import FixedType
    monkeypatch.setenv("EDGE_ASR_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(7)
    t_in = FixedType(6, 3, True, "AP_RND_CONV", "AP_SAT")
    t_w = FixedType(4, 1, True, "AP_RND_CONV", "AP_SAT")
    t_b = FixedType(8, 3, True, "AP_RND_CONV", "AP_SAT")
    acc = FixedType(16, 7, True)  # exact: 3 + 3 fractional bits of products, 5 of the bias
    res = FixedType(5, 3, True, rounding, saturation)  # 2 fractional bits: 4 of 6 dropped, ties common
    k = K.Kernel(f"modes_{rounding[3:]}_{saturation[3:]}".lower(), [], t_in, res, 3, 4,
                 rng.integers(-7, 8, size=(3, 4)).astype(np.float64), t_w, rng.integers(-100, 100, 4).astype(np.float64),
                 t_b, acc, res)
    model, _ = built_model(K.trace(k), k.name, **QUIET)
    codes = np.concatenate([K.test_codes(t_in, 3000, 3, seed=1),
                            np.array(np.meshgrid(*[np.arange(-32, 32)] * 2, [0])).reshape(3, -1).T])
    got = np.round(model.predict(codes * 2.0 ** -t_in.fractional) * 2.0 ** res.fractional).astype(np.int64)
    want = K.reference(k, codes).reshape(got.shape)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} differ"


@pytest.mark.parametrize("width, signed", [(4, False), (8, True), (13, True), (41, True)])
def test_stream_words_pack_and_unpack_codes(width, signed):
    """The testbench's beats: each value `width` bits of two's complement at [i * width] of
    little-endian 32-bit words, back to the same codes."""
    from edge_asr.rtl.stream import _pack, _unpack
    rng = np.random.default_rng(width)
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    codes = rng.integers(lo, hi, size=(50, 7), endpoint=True)
    codes[0], codes[1] = lo, hi
    words = -(-7 * width // 32)
    packed = _pack(codes, width, words + 1)
    assert packed.dtype == np.uint32 and packed.shape == (50, words + 1) and not packed[:, -1].any()
    for row, word_row in zip(codes, packed, strict=True):  # against Python's own integers
        value = sum(int(c) % (1 << width) << (i * width) for i, c in enumerate(row))
        assert [int(w) for w in word_row] == [(value >> (32 * j)) & 0xFFFFFFFF for j in range(words + 1)]
    assert np.array_equal(_unpack(packed, 7, width, signed), codes)
