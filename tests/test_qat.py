"""Quantization-aware training -> QONNX -> convert -> simulator -> recognize (issue 27),
on the small corpus and a few epochs, with real Brevitas, QONNX, hls4ml and g++ C-sim."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper

from edge_asr.cli import main
from edge_asr.errors import InputError
from edge_asr.hw import qonnx_types
from edge_asr.hw.convert import ConvertOptions, convert
from edge_asr.hw.verify import load_inputs, verify
from edge_asr.ir.design import Design
from edge_asr.runtime.backends.onnx import OnnxBackend
from edge_asr.runtime.modeldir import load_model_dir
from edge_asr.sim.fixed import FixedType

QUIET = dict(log=lambda m: None)


@pytest.fixture(scope="session")
def qat_run(tmp_path_factory, small_data, small_run):
    from edge_asr.training.train import TrainConfig, train
    out = tmp_path_factory.mktemp("runs") / "qat"
    cfg = TrainConfig(epochs=3, batch_size=32, lr=1e-3, init=str(small_run),
                      qat={"weight_bits": 4, "act_bits": 4, "bias_bits": 16, "first_last_bits": None})
    train(small_data, out, cfg, progress=False, **QUIET)
    return out


@pytest.fixture(scope="session")
def qat_model(tmp_path_factory, qat_run, small_data):
    from edge_asr.training.export import export
    out = tmp_path_factory.mktemp("models") / "qat"
    export(qat_run, out, data_dir=small_data, progress=False, **QUIET)
    return out


@pytest.fixture(scope="session")
def qat_design(tmp_path_factory, qat_model):
    out = tmp_path_factory.mktemp("designs") / "qat"
    convert(qat_model, out, ConvertOptions(), **QUIET)
    return out


def _quant_widths(path: Path) -> list[int]:
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return sorted(int(inits[n.input[3]]) for n in model.graph.node if n.op_type == "Quant")


def test_qat_run_starts_from_the_float_run(qat_run, small_run):
    meta = json.loads((qat_run / "train.json").read_text())
    float_meta = json.loads((small_run / "train.json").read_text())
    assert meta["quantization"]["weight_bits"] == 4 and meta["quantization"]["act_bits"] == 4
    assert meta["train_config"]["init"] == str(small_run)
    # the float run's front end, statistics included, since its weights expect those inputs
    assert meta["feature"] == float_meta["feature"] and meta["net_kwargs"] == float_meta["net_kwargs"]


def test_export_writes_qonnx_with_the_trained_widths(qat_model):
    meta = json.loads((qat_model / "model.json").read_text())
    assert meta["qonnx"] == "model_qonnx.onnx"
    q = meta["quantization"]
    assert (q["weight_bits"], q["act_bits"], q["input_bits"], q["output_bits"]) == (4, 4, 8, 8)
    assert "power-of-two" in q["scheme"]
    widths = _quant_widths(qat_model / "model_qonnx.onnx")
    # 6 weight tensors and 5 ReLUs on 4 bits, input and logits on 8, 6 biases on 16
    assert widths.count(4) == 11 and widths.count(8) == 2 and widths.count(16) == 6, widths
    # model.onnx is the same model in standard ops: onnxruntime loads it, no Quant left
    assert not any(n.op_type == "Quant" for n in onnx.load(str(qat_model / "model.onnx")).graph.node)
    parity = meta["metrics"]["qonnx_parity"]
    assert parity["n"] > 0 and parity["max_abs_vs_lowered"] == 0.0


def test_qonnx_executor_equals_pytorch_within_one_step(qat_run, qat_model, small_data):
    from edge_asr.training.export import WithSoftmax, load_run
    from edge_asr.training.qonnx_export import output_step
    model, _ = load_run(qat_run)
    x, _ = load_inputs_for(qat_model, small_data)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    got = qonnx_types.run_qonnx(qat_model / "model_qonnx.onnx", x, logits=True)
    step = output_step(WithSoftmax(model))
    assert np.abs(got - logits).max() <= step
    # the logits sit on the output grid: whole multiples of its step
    assert np.allclose(got / step, np.round(got / step))


def load_inputs_for(model_dir: Path, data: Path, n: int = 120):
    from edge_asr.data.loading import inputs_from
    from edge_asr.frontend.features import FeatureConfig
    meta = json.loads((model_dir / "model.json").read_text())
    return inputs_from(str(data), tuple(meta["input"]["shape"][1:]), FeatureConfig.from_dict(meta["feature"]),
                       meta["labels"], n, "valid")


def test_convert_takes_the_types_from_the_quant_nodes(qat_design):
    design = Design.load(qat_design)
    assert design.data["calibration"]["bits"] is None and design.data["calibration"]["source"] is None
    assert design.input_type == FixedType(8, design.input_type.integer, True, "AP_RND_CONV", "AP_SAT")
    kernels = [layer for layer in design.layers if layer.class_name in ("Conv1D", "Dense")]
    assert len(kernels) == 6
    for layer in kernels:
        assert layer.type("weight_t").width == 4, layer.name
    relus = [layer for layer in design.layers if layer.attributes.get("activation", "").lower() == "relu"]
    assert len(relus) == 5 and all(r.result_type().width == 4 and not r.result_type().signed for r in relus)
    assert kernels[-1].result_type().width == 8  # the logits quantizer
    assert design.data["cost"]["fits"]


def test_design_equals_the_qonnx_executor_and_csim(qat_design, small_data):
    # random inputs 4x wider than the features reach the input grid's saturation; the
    # corpus's own windows cover the usual range
    res = verify(qat_design, against="qonnx", n=1500)
    assert res["n"] == 1500 and res["mismatches"] == 0, res
    res = verify(qat_design, against="qonnx", n=300, data=str(small_data))
    assert res["mismatches"] == 0 and res["top1_agreement"] == 1.0, res
    design = Design.load(qat_design)
    x = 4 * np.random.default_rng(1).standard_normal((400,) + design.onnx_input_shape).astype(np.float32)
    from edge_asr.hw.verify import verify_qonnx
    res = verify_qonnx(design, x)
    assert res["mismatches"] == 0, res
    res = verify(qat_design, against="csim", n=200, data=str(small_data), bitexact=True)
    assert res["mismatches"] == 0 and res["top1_agreement"] >= 0.99, res


def test_recognize_runs_the_qat_design(qat_design, qat_model, small_data, capsys):
    wav = sorted((small_data / "wav").rglob("*.wav"))[0]
    assert main(["recognize", "--design", str(qat_design), "--backend", "sim", "--json", str(wav)]) == 0
    sim_out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["recognize", "--model", str(qat_model), "--json", str(wav)]) == 0
    onnx_out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert isinstance(sim_out, dict) and sim_out.keys() == onnx_out.keys()
    # the float side of the QAT model is its quantized graph: eval runs it like any model
    x, _ = load_inputs(Design.load(qat_design), str(small_data), 50)
    assert OnnxBackend(load_model_dir(qat_model)).run(x).shape == (len(x), 12)


def test_a_qonnx_model_refuses_bits_and_ignores_calibration(tmp_path, qat_model, small_data):
    with pytest.raises(InputError, match="carries its own types"):
        convert(qat_model, tmp_path / "d", ConvertOptions(bits=8), **QUIET)
    assert not (tmp_path / "d").exists()
    said = []
    convert(qat_model, tmp_path / "d2", ConvertOptions(board="none", calib=str(small_data)), log=said.append)
    assert any("--calib is not used" in m for m in said)


def test_qat_flags_need_qat(tmp_path, small_data, small_run, capsys):
    assert main(["train", str(small_data), "--out", str(tmp_path / "r"), "--weight-bits", "3"]) == 2
    assert "--weight-bits applies to quantization-aware training: add --qat" in capsys.readouterr().err
    assert main(["train", str(small_data), "--out", str(tmp_path / "r"), "--qat", "--init",
                 str(tmp_path / "nothing")]) == 2
    assert "not a training run" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_init_takes_an_exported_model_directory(small_model, small_run):
    from edge_asr.training.rundir import float_kernels
    from_model, meta = float_kernels(small_model)
    from_run, _ = float_kernels(small_run)
    assert len(from_model) == len(from_run) == 6 and meta["net"] == "conv1d"
    for (wm, bm), (wr, br) in zip(from_model, from_run, strict=True):
        assert wm.shape == wr.shape and np.allclose(wm, wr, atol=1e-6) and np.allclose(bm, br, atol=1e-6)


def _quant_graph(path: Path, scale: float, zero: float, bits: int, signed: int, narrow: int, mode: str) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 64])
    inits = [numpy_helper.from_array(np.array(v, np.float32), n)
             for n, v in (("s", scale), ("z", zero), ("b", bits))]
    node = helper.make_node("Quant", ["x", "s", "z", "b"], ["y"], domain="qonnx.custom_op.general",
                            signed=signed, narrow=narrow, rounding_mode=mode)
    graph = helper.make_graph([node], "q", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                     helper.make_opsetid("qonnx.custom_op.general", 1)])
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("scale, zero, bits, signed, narrow, mode", [
    (0.25, 0.0, 4, 1, 0, "ROUND"), (0.125, 0.0, 3, 1, 1, "ROUND"), (0.5, 0.0, 4, 0, 0, "ROUND"),
    (0.3, 2.0, 5, 0, 1, "FLOOR"), (1 / 3, -1.0, 6, 1, 0, "ROUND")])
def test_lowered_quant_equals_qonnx_executor(tmp_path, scale, zero, bits, signed, narrow, mode):
    import onnxruntime as ort
    path = _quant_graph(tmp_path / "q.onnx", scale, zero, bits, signed, narrow, mode)
    rng = np.random.default_rng(0)
    # ties (k + 0.5 steps), values beyond both ends, and plain draws
    ties = (np.arange(-40, 40) + 0.5) * scale
    x = np.concatenate([ties, rng.uniform(-30, 30, 3000).astype(np.float32) * scale])
    x = np.resize(x.astype(np.float32), (len(x) // 64 + 1) * 64).reshape(-1, 64)
    want = qonnx_types.run_qonnx(path, x)
    lowered = qonnx_types.lower_quant_nodes(onnx.load(str(path)))
    sess = ort.InferenceSession(lowered.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x})[0]
    assert np.array_equal(got, want)
    model = ModelWrapper(onnx.load(str(path)))
    t = qonnx_types.quant_type(model, model.graph.node[0])
    if zero == 0 and mode == "ROUND" and np.log2(scale) == round(np.log2(scale)):
        # a power-of-two scale is an ap_fixed type: the same grid, ends and rounding
        assert t is not None and t.width == bits and t.signed == bool(signed)
        assert np.isclose(2.0 ** -t.fractional, scale)
        from edge_asr.sim.fixed import cast
        assert np.array_equal(cast(x, t), want)
    else:
        assert t is None


def test_a_qdq_model_from_onnxruntime_converts_through_qonnx(tmp_path, small_model, small_data):
    """onnxruntime's quantize_static (QuantizeLinear/DequantizeLinear, 8 bits, scales that are
    not powers of two) -> QONNX Quant nodes -> a design: bit-exact to C-sim, and within a
    measured tolerance of the QDQ graph (hls4ml's ApplyAlpha layers rescale on fixed<32,12>)."""
    import shutil

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    calib = np.load(small_model / "calib.npy").astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rows = iter([{"features": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.rows, None)

    qdq = tmp_path / "qdq"
    qdq.mkdir()
    shutil.copyfile(small_model / "model.json", qdq / "model.json")
    quantize_static(str(small_model / "model.onnx"), str(qdq / "model.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=False, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(qdq / "model.onnx")).graph.node)
    design_dir = tmp_path / "design"
    convert(qdq, design_dir, ConvertOptions(board="none"), **QUIET)
    design = Design.load(design_dir)
    assert any(layer.class_name == "ApplyAlpha" for layer in design.layers)  # the non-power-of-two scales
    assert 8 in _quant_widths(design_dir / "model_qonnx.onnx")
    res = verify(design_dir, against="csim", n=150, data=str(small_data), bitexact=True)
    assert res["mismatches"] == 0, res
    res = verify(design_dir, against="qonnx", n=300, data=str(small_data))
    assert res["top1_agreement"] >= 0.95 and res["max_abs"] < 0.25, res


def test_every_net_of_the_zoo_trains_quantized_and_converts_exactly(tmp_path, small_data):
    """The MLP from scratch (no --init) at 3-bit weights and activations with 8-bit first and
    last layers: train -> QONNX -> design equal to QONNX's executor."""
    from edge_asr.training.export import export
    from edge_asr.training.nets import NETS
    from edge_asr.training.train import TrainConfig, train
    assert set(NETS) == {"conv1d", "mlp"}  # conv1d: the fixtures above
    cfg = TrainConfig(net="mlp", epochs=1, batch_size=32,
                      qat={"weight_bits": 3, "act_bits": 3, "bias_bits": 12, "first_last_bits": 8})
    train(small_data, tmp_path / "run", cfg, progress=False, **QUIET)
    export(tmp_path / "run", tmp_path / "model", data_dir=small_data, progress=False, **QUIET)
    assert _quant_widths(tmp_path / "model" / "model_qonnx.onnx") == [3, 3, 3, 8, 8, 8, 8, 12, 12, 12]
    convert(tmp_path / "model", tmp_path / "design", ConvertOptions(board="none"), **QUIET)
    weights = [layer.type("weight_t").width for layer in Design.load(tmp_path / "design").layers
               if layer.class_name == "Dense"]
    assert weights == [8, 3, 8]
    res = verify(tmp_path / "design", against="qonnx", n=1000)
    assert res["mismatches"] == 0, res


def test_the_shipped_low_bit_model_converts_shorter_and_exact(tmp_path, shipped_design, capsys, monkeypatch):
    """models/kws-digits-w4a4: the sweep's chosen point. Its pynq-z2 design takes its trained
    types, fits, has a shorter estimated interval than the 16-bit flow's design of the
    float model, equals QONNX's executor, and `demo --model kws-digits-w4a4` runs it."""
    from edge_asr.resources import shipped_model
    model = shipped_model("kws-digits-w4a4")
    meta = json.loads((model / "model.json").read_text())
    assert (meta["quantization"]["weight_bits"], meta["quantization"]["act_bits"]) == (4, 4)
    assert meta["name"] == "kws-digits-w4a4" and meta["metrics"]["human_n"] == 465
    design = tmp_path / "design"
    convert(model, design, ConvertOptions(), **QUIET)
    low, high = Design.load(design).data["cost"], Design.load(shipped_design).data["cost"]
    assert low["fits"] and low["interval_cycles"] < high["interval_cycles"]
    calib = tmp_path / "calib.npy"
    np.save(calib, np.load(model / "calib.npy").astype(np.float32))
    res = verify(design, against="qonnx", n=128, data=str(calib))
    assert res["n"] == 128 and res["mismatches"] == 0
    monkeypatch.setenv("EDGE_ASR_CACHE", str(tmp_path / "cache"))
    assert main(["demo", "--model", "kws-digits-w4a4", "--report", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    assert "simulator vs C-sim, differing bits 0 values" in out and "at its trained widths" in out
