"""convert / check / verify / build, with real hls4ml and real g++ C simulation."""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml
from onnx import TensorProto, helper

from edge_asr.cli import main
from edge_asr.errors import InputError, OutputExistsError
from edge_asr.hw import hls4ml_fixes, onnxprep
from edge_asr.hw.convert import ConvertOptions, convert
from edge_asr.hw.onnxprep import UnsupportedOpsError
from edge_asr.hw.verify import verify
from edge_asr.ir.manifest import verify_manifest

from .conftest import torch_to_onnx

QUIET = dict(log=lambda m: None)


def test_shipped_model_converts_and_agrees_with_float(shipped_design, capsys):
    design = json.loads((shipped_design / "design.json").read_text())
    assert design["backend"] == "VivadoAccelerator" and design["board"] == "pynq-z2"
    assert design["io_type"] == "io_stream" and design["schema_version"] == 1
    kinds = [layer["class_name"] for layer in design["layers"]]
    assert kinds.count("Conv1D") == 4 and kinds.count("Pooling1D") == 4 and kinds[-1] == "Softmax"
    for layer in design["layers"]:
        assert "cpp" in layer["output_type"], layer["name"]
        for w in layer["weights"].values():
            t = w["type"]
            codes = np.array(w["codes"])
            lo = -(1 << (t["width"] - 1)) if t["signed"] else 0
            hi = (1 << (t["width"] - 1)) - 1 if t["signed"] else (1 << t["width"]) - 1
            assert codes.size == np.prod(w["shape"]) and lo <= codes.min() and codes.max() <= hi
    # agreement with onnxruntime over the shipped calibration windows (real g++ C-sim)
    from .conftest import SHIPPED_MODEL
    res = verify(shipped_design, n=128, data=str(SHIPPED_MODEL / "calib.npy"), **QUIET)
    assert res["top1_agreement"] >= 0.99 and res["max_abs_error"] < 0.25


def test_verify_json_keys(small_design, small_data, capsys):
    rc = main(["verify", str(small_design), "--data", str(small_data), "--n", "30", "--json",
               "--min-agreement", "0"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("n", "top1_agreement", "max_abs_error", "accuracy_float", "accuracy_fixed"):
        assert key in res
    assert res["n"] == 30 and res["accuracy_fixed"] is not None
    # unlabeled inputs: accuracies are null
    rc = main(["verify", str(small_design), "--n", "5", "--json", "--min-agreement", "0"])
    res = json.loads(capsys.readouterr().out)
    assert res["accuracy_float"] is None and res["accuracy_fixed"] is None
    # an impossible bar exits 1
    assert main(["verify", str(small_design), "--n", "5", "--min-agreement", "1.01"]) == 1


def test_mlp_converts(tmp_path):
    from edge_asr.training.nets import build_net
    torch.manual_seed(0)
    net = torch.nn.Sequential(build_net("mlp", n_features=8, frames=10, n_classes=5), torch.nn.Softmax(dim=1))
    path = torch_to_onnx(net, (1, 8, 10), tmp_path / "mlp.onnx")
    x = np.random.default_rng(0).standard_normal((64, 8, 10)).astype(np.float32) * 2
    np.save(tmp_path / "x.npy", x)
    design = convert(path, tmp_path / "d", ConvertOptions(board="none", calib=str(tmp_path / "x.npy")), **QUIET)
    kinds = [layer["class_name"] for layer in json.loads((design / "design.json").read_text())["layers"]]
    assert kinds.count("Dense") == 3
    res = verify(design, n=64, data=str(tmp_path / "x.npy"), **QUIET)
    assert res["max_abs_error"] < 0.05 and res["top1_agreement"] >= 0.95  # softmax tables: ~1-3% steps


class _PoolNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(6, 4, 3)
        self.pool = torch.nn.MaxPool1d(3, stride=2)
        self.fc = torch.nn.Linear(4 * 8, 3)

    def forward(self, x):
        return torch.softmax(self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1)), 1)


def test_maxpool1d_fix(tmp_path):
    torch.manual_seed(1)
    path = torch_to_onnx(_PoolNet(), (1, 6, 20), tmp_path / "pool.onnx")
    prepared, _ = onnxprep.prepare(onnxprep.load(path), "pool")
    hls4ml_fixes.apply()
    handlers = sys.modules["hls4ml.converters.onnx_to_hls"].layer_handlers
    node = next(n for n in prepared.graph.node if n.op_type == "MaxPool")
    shapes = [[1, 18, 4]]  # channels-last (N, W, C) after the 3-tap convolution
    original = handlers["MaxPool"].__wrapped__(node, ["c"], shapes, prepared.graph)
    assert "pad_left" not in original  # hls4ml 1.3's parser: "pad_left ... not set"
    assert original["n_in"] == 4  # ... and width/channels swapped
    fixed = handlers["MaxPool"](node, ["c"], shapes, prepared.graph)
    assert fixed["pad_left"] == fixed["pad_right"] == 0
    assert (fixed["n_in"], fixed["n_filt"], fixed["n_out"]) == (18, 4, 8)
    x = np.random.default_rng(1).standard_normal((40, 6, 20)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    design = convert(path, tmp_path / "d", ConvertOptions(board="none", calib=str(tmp_path / "x.npy")), **QUIET)
    res = verify(design, n=40, data=str(tmp_path / "x.npy"), **QUIET)
    assert res["max_abs_error"] < 0.05 and res["top1_agreement"] >= 0.95  # softmax tables: ~1-3% steps


def test_softmax_collapse_workaround(tmp_path, small_model, small_design, small_data):
    """hls4ml alone ('auto' types everywhere) turns every output into 1/N; our types do not."""
    import hls4ml

    from edge_asr.hw.csim import CsimBackend
    from edge_asr.hw.verify import load_inputs
    x, _ = load_inputs(small_design, str(small_data), 20)
    prepared, _ = onnxprep.prepare(onnxprep.load(small_model / "model.onnx"), "m")
    hls4ml_fixes.apply()
    cfg = hls4ml.utils.config_from_onnx_model(prepared, granularity="name", backend="Vitis",
                                              default_precision="fixed<16,6>")
    hm = hls4ml.converters.convert_from_onnx_model(prepared, output_dir=str(tmp_path / "prj"), backend="Vitis",
                                                   io_type="io_stream", hls_config=cfg)
    hm.compile()
    y_auto = hm.predict(np.ascontiguousarray(x.reshape(len(x), -1)))
    assert np.allclose(y_auto, 1 / 12, atol=2e-3)  # the collapse
    import onnxruntime as ort
    ref = ort.InferenceSession(str(small_model / "model.onnx")).run(None, {"features": x})[0]
    y = CsimBackend(small_design).run(x)
    assert np.abs(y - ref).max() < 0.02
    assert np.abs(ref - 1 / 12).max() > 0.01  # the float outputs are not uniform, and ours follow them


def _graph_with(ops, path):
    nodes, prev = [], "x"
    inits = []
    for i, op in enumerate(ops):
        out = f"t{i}"
        if op == "GRU":
            w = helper.make_tensor(f"W{i}", TensorProto.FLOAT, [1, 12, 4], np.zeros(48, np.float32))
            r = helper.make_tensor(f"R{i}", TensorProto.FLOAT, [1, 12, 4], np.zeros(48, np.float32))
            inits += [w, r]
            nodes.append(helper.make_node("GRU", [prev, f"W{i}", f"R{i}"], [out], name=f"gru{i}", hidden_size=4))
            nodes.append(helper.make_node("Squeeze", [out], [out + "s"], name=f"sq{i}", axes=[1]))
            prev = out + "s"
        else:
            nodes.append(helper.make_node(op, [prev], [out], name=f"{op.lower()}{i}"))
            prev = out
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 1, 4])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    return path


def test_unsupported_ops_named_before_writing(tmp_path, capsys):
    path = _graph_with(["GRU", "Erf", "Relu"], tmp_path / "bad.onnx")
    with pytest.raises(UnsupportedOpsError) as exc:
        convert(path, tmp_path / "out", ConvertOptions(board="none"), **QUIET)
    msg = str(exc.value)
    assert "gru0 (GRU)" in msg and "sq0 (Squeeze)" in msg and "erf1 (Erf)" in msg and "relu" not in msg
    assert not (tmp_path / "out").exists()
    assert main(["convert", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "GRU" in err
    # without a recurrent layer the hint names the layers hls4ml takes, not GRU/LSTM
    other = _graph_with(["Erf", "Relu"], tmp_path / "erf.onnx")
    with pytest.raises(UnsupportedOpsError) as exc:
        convert(other, tmp_path / "out2", ConvertOptions(board="none"), **QUIET)
    assert "GRU/LSTM" not in str(exc.value) and "layers hls4ml maps" in str(exc.value)


def test_interrupted_convert_leaves_nothing(tmp_path, small_model, monkeypatch):
    import edge_asr.hw.convert as conv

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(conv, "write_manifest", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert(small_model, tmp_path / "d", ConvertOptions(budget=1.0), **QUIET)
    assert list(tmp_path.iterdir()) == []


def test_refuses_overwrite(small_design, small_model):
    with pytest.raises(OutputExistsError):
        convert(small_model, small_design, ConvertOptions(), **QUIET)


def test_bare_onnx_without_calibration(tmp_path, small_model):
    bare = tmp_path / "net.onnx"
    bare.write_bytes((small_model / "model.onnx").read_bytes())
    messages = []
    design = convert(bare, tmp_path / "d", ConvertOptions(board="none"), log=messages.append)
    assert any("no calibration data" in m for m in messages)
    d = json.loads((design / "design.json").read_text())
    assert d["calibration"]["n"] == 0 and d["labels"] is None and d["backend"] == "Vitis"


def test_check_tampering(tmp_path, small_design, capsys):
    copy = tmp_path / "d"
    shutil.copytree(small_design, copy)
    assert main(["check", str(copy)]) == 0
    capsys.readouterr()
    target = copy / "design.json"
    target.write_text(target.read_text().replace('"io_stream"', '"io_parallel"'))
    assert main(["check", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "design.json" in err and "altered" in err
    shutil.rmtree(copy)
    shutil.copytree(small_design, copy)
    (copy / "extra.txt").write_text("x")
    assert main(["check", str(copy)]) == 2
    assert "extra.txt" in capsys.readouterr().err
    (copy / "extra.txt").unlink()
    (copy / "model.onnx").unlink()
    assert main(["check", str(copy)]) == 2
    assert "model.onnx: missing" in capsys.readouterr().err


def test_build_without_vivado(small_design, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert main(["build", str(small_design)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found on PATH" in err and str(small_design / "hls") in err
    verify_manifest(small_design)  # nothing was changed


def test_build_records_the_vendor_flow_products(small_design, tmp_path, capsys, monkeypatch):
    # Vivado is not here: stand-in tools on PATH and a stand-in hls4ml build that leaves a
    # bitstream behind, as the real one does. The design's manifest must then list it.
    from hls4ml.model.graph import ModelGraph
    design = tmp_path / "design"
    shutil.copytree(small_design, design)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("vitis_hls", "vivado_hls", "vivado"):
        (bindir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bindir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")

    def fake_build(self, **kwargs):
        out = Path(self.config.get_output_dir()) / "myproject_prj" / "impl"
        out.mkdir(parents=True, exist_ok=True)
        (out / "design_1_wrapper.bit").write_bytes(b"bitstream")
        return {"CSynthesisReport": {"BestLatency": "42"}, "kwargs": sorted(kwargs)}

    monkeypatch.setattr(ModelGraph, "build", fake_build)
    assert main(["build", str(design)]) == 0
    manifest = verify_manifest(design, "design")  # rewritten: the new files are listed, none altered
    assert any(rel.endswith("design_1_wrapper.bit") for rel in manifest["files"])
    assert "build.log" in manifest["files"] and '"BestLatency": "42"' in (design / "build.log").read_text()
    assert "built" in capsys.readouterr().err


class _AvgPoolNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(3, 4, 3)
        self.pool = torch.nn.AvgPool1d(2)
        self.fc = torch.nn.Linear(4 * 5, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))


def test_hls4ml_failure_is_one_line(tmp_path, capsys):
    # QONNX's channels-last pass leaves a 1-D AveragePool alone and hls4ml then refuses it
    path = torch_to_onnx(_AvgPoolNet(), (1, 3, 12), tmp_path / "avg.onnx")
    assert main(["convert", str(path), "--out", str(tmp_path / "d"), "--board", "none"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()  # the type table, then the error
    assert lines[-1].startswith("edge-asr convert: error:") and "hls4ml 1.3 cannot convert this graph" in lines[-1]
    assert sum("error:" in line for line in lines) == 1
    assert not (tmp_path / "d").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".d.tmp")]


def test_board_project_stream_widths(tmp_path, small_model, small_data):
    # 12-bit input, 24-bit output: hls4ml would write output width 12 and input width 24
    cfg = tmp_path / "out24.yml"
    cfg.write_text(yaml.safe_dump({"LayerName": {"Softmax_0": {"Precision": {"result": "ufixed<20,1,RND_CONV,SAT>"}}}}))
    design = convert(small_model, tmp_path / "d", ConvertOptions(bits=12, calib=str(small_data), config=str(cfg), budget=1.0),
                     **QUIET)
    tcl = (design / "hls" / "project.tcl").read_text()
    assert "set bit_width_hls_input 16" in tcl and "set bit_width_hls_output 24" in tcl
    bd = (design / "hls" / "design.tcl").read_text()
    assert "CONFIG.c_m_axi_mm2s_data_width {32}" in bd and "c_m_axi_mm2s_data_width ${" not in bd
    axi = (design / "hls" / "firmware" / "edge_asr_net_axi.h").read_text()
    assert "ap_fixed<16," in axi.split("T_in;")[0].splitlines()[-1]
    assert "ap_ufixed<24,1" in axi.split("T_out;")[0].splitlines()[-1]
    from edge_asr.sim.engine import load_design
    d = load_design(design)
    assert (d.input_type.width, d.output_type.width) == (12, 20)
    assert verify(design, n=20, data=str(small_data), bitexact=True, **QUIET)["mismatches"] == 0


def test_a_nan_weight_is_named_not_converted_or_run(tmp_path, capsys):
    import onnx
    from onnx import numpy_helper

    from edge_asr.runtime.backends import get_backend
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4), torch.nn.Softmax(dim=1))
    path = torch_to_onnx(net, (1, 3, 4), tmp_path / "net.onnx")
    model = onnx.load(str(path))
    init = next(i for i in model.graph.initializer if numpy_helper.to_array(i).ndim == 2)
    values = numpy_helper.to_array(init).copy()
    values[0, 0] = np.nan
    init.CopyFrom(numpy_helper.from_array(values, init.name))
    onnx.save(model, str(path))
    assert main(["convert", str(path), "--out", str(tmp_path / "d"), "--board", "none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and repr(init.name) in err and "NaN" in err
    assert not (tmp_path / "d").exists()
    with pytest.raises(InputError, match="NaN or Inf"):
        get_backend("onnx", path).run(np.zeros((2, 3, 4), np.float32))


def test_model_json_that_does_not_match_the_graph_is_refused(tmp_path, capsys):
    from .conftest import SHIPPED_MODEL
    model = tmp_path / "m"
    shutil.copytree(SHIPPED_MODEL, model)
    meta = json.loads((model / "model.json").read_text())
    meta["labels"] = meta["labels"][:10]
    (model / "model.json").write_text(json.dumps(meta))
    assert main(["convert", str(model), "--out", str(tmp_path / "d"), "--board", "none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "10 labels for a model with 12 outputs" in err
    assert not (tmp_path / "d").exists()
