"""Shared fixtures. Expensive artifacts (a small synthesized corpus, a trained run) are
made once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = REPO / "models" / "kws-digits"
SHIPPED_META = json.loads((SHIPPED_MODEL / "model.json").read_text())
SHIPPED_INPUT = tuple(SHIPPED_META["input"]["shape"][1:])  # (features, frames)

try:  # tests/board runs in the board environment (pynq==4.0.0, numpy<2); `make test` runs both
    import pynq  # noqa: F401
except ImportError:
    collect_ignore = ["board"]


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> Path:
    from edge_asr.data.synth import synth
    out = tmp_path_factory.mktemp("data") / "small"
    synth(out, size="small", seed=0, progress=False, log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, small_data) -> Path:
    from edge_asr.training.train import TrainConfig, train
    out = tmp_path_factory.mktemp("runs") / "conv1d"
    train(small_data, out, TrainConfig(epochs=2, batch_size=32), progress=False, log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def small_model(tmp_path_factory, small_run, small_data) -> Path:
    from edge_asr.training.export import export
    out = tmp_path_factory.mktemp("models") / "small"
    export(small_run, out, data_dir=small_data, progress=False, log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def small_design(tmp_path_factory, small_model, small_data) -> Path:
    from edge_asr.hw.convert import ConvertOptions, convert
    out = tmp_path_factory.mktemp("designs") / "small"
    # the small model reads 40 mel bins: hls4ml's input transpose alone holds 40 x 98 values in
    # registers, more than 70 % of the PYNQ-Z2's flip-flops with the rest (tests/test_cost.py)
    convert(small_model, out, ConvertOptions(calib=str(small_data), budget=1.0), log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def shipped_design(tmp_path_factory) -> Path:
    """The shipped model converted for pynq-z2 with its shipped calibration inputs."""
    from edge_asr.hw.convert import ConvertOptions, convert
    out = tmp_path_factory.mktemp("designs") / "kws"
    convert(SHIPPED_MODEL, out, ConvertOptions(calib=str(SHIPPED_MODEL / "calib.npy")), log=lambda m: None)
    return out


def torch_to_onnx(module, shape, path: Path) -> Path:
    """Export a small torch module the way `edge-asr export` does (TorchScript exporter, opset 13)."""
    import torch
    module.eval()
    torch.onnx.export(module, (torch.zeros(shape),), str(path), dynamo=False, opset_version=13,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    return path
