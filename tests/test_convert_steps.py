"""The converter's parts, one at a time: onnxprep's passes leave their input alone, the
calibration follows tensors through the passes that rename them, accumulators stay exact or
are refused, our hls4ml repairs say what they are and for which hls4ml, and hls4ml's own
errors keep their traceback while ours surface as ours."""

from __future__ import annotations

import json
import traceback

import hls4ml
import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from edge_asr.cli import main
from edge_asr.errors import EdgeAsrError, FixedPointError, InputError
from edge_asr.hw import hls4ml_fixes, hls4ml_passes, onnxprep, precision
from edge_asr.hw.convert import ConvertOptions, convert
from edge_asr.hw.hls4ml_repair import Hls4mlVersionError, check_version

from .conftest import torch_to_onnx
from .test_convert import _AvgPoolNet

QUIET = dict(log=lambda m: None)


def _proto_bytes(model) -> bytes:
    return model.model.SerializeToString()


def _float_net(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv1d(4, 3, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(3 * 6, 5), torch.nn.Softmax(dim=1))
    return onnxprep.load(torch_to_onnx(net, (1, 4, 8), tmp_path / "f.onnx"))


def _quant_graph():
    """x -> Quant -> Softmax -> Quant: the last Quant is one simplify_quant_nodes removes."""
    consts = [numpy_helper.from_array(np.array(v, np.float32), n)
              for n, v in (("s", 0.125), ("z", 0.0), ("b", 8.0), ("s2", 1 / 128))]
    quant = dict(domain="qonnx.custom_op.general", signed=1, narrow=0, rounding_mode="ROUND")
    nodes = [helper.make_node("Quant", ["x", "s", "z", "b"], ["q"], name="q_in", **quant),
             helper.make_node("Softmax", ["q"], ["p"], name="sm", axis=1),
             helper.make_node("Quant", ["p", "s2", "z", "b"], ["y"], name="q_out", **quant)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])], consts)
    from qonnx.core.modelwrapper import ModelWrapper
    return ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


def _qdq_graph():
    """x -> QuantizeLinear -> DequantizeLinear -> Relu, as onnxruntime's tools write it."""
    consts = [numpy_helper.from_array(np.array(0.0625, np.float32), "s"),
              numpy_helper.from_array(np.array(0, np.int8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="ql"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], name="dl"),
             helper.make_node("Relu", ["d"], ["y"], name="r")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 6])], consts)
    from qonnx.core.modelwrapper import ModelWrapper
    return ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


@pytest.mark.parametrize("name", ["fix_batch_size", "qdq_to_quant", "cleanup", "simplify_quant_nodes",
                                  "describe_initializers", "to_channels_last", "gemm_to_matmul"])
def test_every_onnxprep_pass_returns_a_new_model_and_leaves_its_input(tmp_path, name):
    step = getattr(onnxprep, name)
    if name == "simplify_quant_nodes":
        model = _quant_graph()
    elif name == "qdq_to_quant":
        model = onnxprep.fix_batch_size(_qdq_graph())
    elif name in ("to_channels_last", "gemm_to_matmul"):
        model = onnxprep.cleanup(onnxprep.fix_batch_size(_float_net(tmp_path)))
    else:
        model = _float_net(tmp_path)
    before = _proto_bytes(model)
    result = step(model)
    assert result is not model and result.model is not model.model
    assert _proto_bytes(model) == before, f"{name} changed the model it was given"
    changed = {"simplify_quant_nodes": lambda m: sum(n.op_type == "Quant" for n in m.graph.node) == 1,
               "qdq_to_quant": lambda m: [n.op_type for n in m.graph.node][0] == "Quant",
               "fix_batch_size": lambda m: m.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1,
               "gemm_to_matmul": lambda m: "MatMul" in {n.op_type for n in m.graph.node}}
    if name in changed:
        assert changed[name](result), f"{name} did not do its work"


class _RenamedDense(torch.nn.Module):
    """An explicit MatMul + Add, then a Linear: after the passes both are MatMul + Add, and the
    second Add (Add_1) has no float node of its name or of the Gemm_k it came from."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(12, 6))
        self.b = torch.nn.Parameter(torch.randn(6))
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, x):
        return torch.softmax(self.fc(torch.relu(torch.flatten(x, 1) @ self.w + self.b)), 1)


def test_calibration_follows_tensors_where_names_change(tmp_path):
    torch.manual_seed(3)
    net = _RenamedDense().eval()
    model = onnxprep.load(torch_to_onnx(net, (1, 3, 4), tmp_path / "r.onnx"))
    prepared, float_model = onnxprep.prepare(model, "r")
    assert {n.op_type for n in float_model.graph.node} >= {"MatMul", "Add", "Gemm"}
    x = np.random.default_rng(0).standard_normal((40, 3, 4)).astype(np.float32)
    cal = precision.calibrate(float_model, prepared, x)
    with torch.no_grad():
        t = torch.from_numpy(x)
        hidden = torch.flatten(t, 1) @ net.w + net.b
        logits = net.fc(torch.relu(hidden))
    adds = [n for n in prepared.graph.node if n.op_type == "Add"]
    assert [n.name for n in adds] == ["Add_0", "Add_1"]
    for node, ref in zip(adds, (hidden, logits), strict=True):
        lo, hi = cal.ranges[node.output[0]]
        assert lo == pytest.approx(float(ref.min()), rel=1e-4) and hi == pytest.approx(float(ref.max()), rel=1e-4)
    # the types follow: the second dense layer's result is sized from its own range, not the default
    _, rows = precision.choose_precision(prepared, cal, 16)
    row = next(r for r in rows if r["layer"] == "Add_1")
    assert row["range"] == cal.ranges[adds[1].output[0]]
    assert row["result"].integer == precision.result_type(float(logits.abs().max()), 16).integer


def test_accumulators_stay_exact_at_32_bits_or_are_refused(tmp_path):
    assert precision.exact_accumulator(20, 44, "layer L").width == 64
    with pytest.raises(FixedPointError, match=r"layer L: an exact accumulator needs 65 bits"):
        precision.exact_accumulator(20, 45, "layer L")
    prepared, _ = onnxprep.prepare(_float_net(tmp_path), "f")
    _, rows = precision.choose_precision(prepared, None, 32)
    kernels = [r for r in rows if r["op"] in ("Conv", "MatMul")]
    narrowed = 0
    for r, t_x in zip(kernels, [rows[0]["result"], next(x["result"] for x in rows if x["op"] == "Flatten")],
                      strict=True):
        acc, t_w = r["accum"], r["weight"]
        assert acc.width <= precision.MAX_ACCUM_WIDTH, r["layer"]
        # exact: the sum's fraction is the input's plus the weight's, its integer bits the bound's
        assert acc.fractional >= t_x.fractional + t_w.fractional, r["layer"]
        narrowed += t_w.width < 32
    assert narrowed >= 1  # at 32 bits the weights gave up fractional bits to keep the sums exact
    _, rows16 = precision.choose_precision(prepared, None, 16)  # 16 bits: nothing to narrow
    assert all(r["weight"].width == 16 for r in rows16 if r["op"] in ("Conv", "MatMul"))


def test_every_repair_names_its_hls4ml_version_and_upstream():
    assert len(hls4ml_fixes.REPAIRS) >= 6
    for repair in hls4ml_fixes.REPAIRS:
        assert repair.hls4ml == hls4ml.__version__, repair.name
        assert repair.kind in ("parser", "pass", "writer"), repair.name
        assert repair.upstream and ("hls4ml#" in repair.upstream or "none found" in repair.upstream
                                    or "not a fault" in repair.upstream), repair.name
    assert {r.kind for r in hls4ml_fixes.REPAIRS} == {"parser", "pass", "writer"}


def test_another_hls4ml_is_refused_in_one_line():
    with pytest.raises(Hls4mlVersionError, match=r"hls4ml 1\.4\.0 is installed.*pip install 'hls4ml==1\.3\.0'"):
        check_version(hls4ml_fixes.REPAIRS, "1.4.0")
    assert issubclass(Hls4mlVersionError, EdgeAsrError)
    check_version(hls4ml_fixes.REPAIRS, hls4ml.__version__)


def test_softmax_types_are_a_pass_in_a_flow_every_conversion_runs(small_design):
    from hls4ml.model.flow.flow import get_flow
    hls4ml_fixes.apply()
    assert hls4ml_passes.PASS in get_flow(hls4ml_passes.FLOW).optimizers
    assert hls4ml_fixes.flows("Vitis") == ["vitis:ip", hls4ml_passes.FLOW]
    design = json.loads((small_design / "design.json").read_text())
    softmax = next(layer for layer in design["layers"] if layer["class_name"] == "Softmax")
    # hls4ml's own defaults are fixed<18,8,RND,SAT>; the configuration's are unsigned with 1 integer bit
    for key in ("exp_table_t", "inv_table_t"):
        t = softmax["types"][key]
        assert (t["width"], t["integer"], t["signed"]) == (18, 1, False), key


def test_a_bug_of_ours_inside_hls4ml_is_not_reported_as_hls4ml_refusing(tmp_path, monkeypatch, small_model):
    # an unhashable key makes our pass's own code raise TypeError inside hls4ml's conversion
    monkeypatch.setattr(hls4ml_passes, "SOFTMAX_TYPE_KEYS", ([],))
    with pytest.raises(TypeError):
        convert(small_model, tmp_path / "d", ConvertOptions(board="none"), **QUIET)
    assert not (tmp_path / "d").exists()


def test_debug_shows_hls4ml_s_own_traceback(tmp_path, capsys):
    path = torch_to_onnx(_AvgPoolNet(), (1, 3, 12), tmp_path / "avg.onnx")
    with pytest.raises(InputError) as info:
        main(["--debug", "convert", str(path), "--out", str(tmp_path / "d"), "--board", "none"])
    assert "hls4ml 1.3 cannot convert this graph" in str(info.value)
    cause = info.value.__cause__
    assert cause is not None
    frames = traceback.extract_tb(cause.__traceback__)
    assert "/hls4ml/" in frames[-1].filename, frames[-1].filename  # raised by hls4ml itself
    text = "".join(traceback.format_exception(info.value))
    assert "The above exception was the direct cause" in text
    assert not (tmp_path / "d").exists()


def test_a_model_onnx_cannot_read_keeps_its_cause(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07not a protobuf")
    with pytest.raises(InputError, match="not a readable ONNX model") as info:
        onnxprep.load(bad)
    assert isinstance(info.value.__cause__, Exception)
