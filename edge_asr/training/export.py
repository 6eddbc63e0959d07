"""`edge-asr export`: a training run -> model.onnx + model.json, with a parity check.

The exported graph ends in Softmax (the class posteriors), folds BatchNorm into the
convolutions, and uses the TorchScript exporter (dynamo=False): it yields the plain
Conv/Relu/MaxPool/Gemm graph hls4ml's ONNX frontend understands. onnxruntime must agree
with PyTorch to within PARITY_TOL on the validation set, or export fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_dir, refuse_existing
from ..data.loading import feature_matrix
from ..data.manifest import read_manifest
from ..errors import ExportError, InputError
from ..frontend.features import FeatureConfig
from ..runtime.backends.onnx import OnnxBackend
from ..runtime.modeldir import MODEL_SCHEMA_VERSION, load_model_dir
from .nets import fold_batchnorm
from .qonnx_export import export_quantized, output_step, qonnx_parity
from .rundir import load_run

PARITY_TOL = 1e-5
OPSET = 13
CALIB_WINDOWS = 128  # calibration windows written beside the model (calib.npy)


class WithSoftmax(nn.Module):
    """A net with Softmax appended: the exported graph gives posteriors."""
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        """Posteriors of the wrapped net."""
        return torch.softmax(self.net(x), dim=1)


def _export_float(wrapped: nn.Module, path: Path, shape: list[int], opset: int) -> None:
    """The float net as plain ONNX (TorchScript exporter), checked by onnx.checker."""
    torch.onnx.export(wrapped, (torch.zeros(shape),), str(path), dynamo=False, opset_version=opset,
                      input_names=["features"], output_names=["probabilities"],
                      dynamic_axes={"features": {0: "batch"}, "probabilities": {0: "batch"}})
    import onnx
    try:
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{path.name}: onnx.checker rejects the export ({exc})") from exc


def _model_json(meta: dict, fcfg: FeatureConfig, shape: list[int], opset: int, name: str) -> dict:
    return {
        "schema_version": MODEL_SCHEMA_VERSION,
        "name": name,
        "net": meta["net"], "net_kwargs": meta["net_kwargs"], "parameters": meta["parameters"],
        "labels": meta["labels"],
        "feature": fcfg.to_dict(),
        "sample_rate": fcfg.sample_rate,
        "input": {"name": "features", "shape": shape, "layout": "NCW: (batch, feature, frame)",
                  "dtype": "float32"},
        "output": {"name": "probabilities", "shape": [1, len(meta["labels"])], "kind": "softmax"},
        "opset": opset,
        "data": meta.get("data", {}),
        # other data sets whose train splits were trained on too (`train --extra-train`)
        "extra_train_data": [e["data"] for e in meta.get("extra_train", [])],
        "metrics": {"valid_accuracy": meta["valid_accuracy"], "best_epoch": meta["best_epoch"]},
    }


def export(run_dir: str | Path, out: str | Path, data_dir: str | Path | None = None, name: str | None = None,
           opset: int = OPSET, force: bool = False, progress: bool = True, log=print) -> Path:
    """Export a training run to model.onnx + model.json, checked against PyTorch, and
    calib.npy (CALIB_WINDOWS training windows' features, float16: the calibration input
    `convert --calib` and the demo take).

    Raises:
        InputError: not a run directory; ExportError: onnx.checker or the parity check fails
        (nothing is written then); OutputExistsError: out exists without force.
    """
    run_dir, out = Path(run_dir), Path(out)
    refuse_existing(out, force)
    if opset < 13:
        raise InputError("--opset must be 13 or newer")
    model, meta = load_run(run_dir)
    fcfg = FeatureConfig.from_dict(meta["feature"])
    data_dir = Path(data_dir or meta["data_dir"])
    valid_rows = read_manifest(data_dir, "valid")
    x = feature_matrix(data_dir, valid_rows, fcfg, progress, "features (parity)")
    # calibration inputs for `convert --calib`: CALIB_WINDOWS training windows, drawn with a
    # fixed seed so that the same run exports the same file; float16 halves the file and
    # its rounding (~0.05 %) is far inside convert's 1.25x range margin
    train_rows = read_manifest(data_dir, "train")
    pick = np.random.default_rng(0).choice(len(train_rows), min(CALIB_WINDOWS, len(train_rows)), replace=False)
    calib = feature_matrix(data_dir, [train_rows[i] for i in sorted(pick)], fcfg, progress, "features (calibration)")

    shape = [1, fcfg.n_features, fcfg.clip_frames]
    quantized = bool(meta.get("quantization"))
    with atomic_dir(out) as tmp:
        meta_out = _model_json(meta, fcfg, shape, opset, name or out.name)
        if quantized:
            meta_out["quantization"] = meta["quantization"]
            meta_out["qonnx"] = export_quantized(WithSoftmax(model).eval(), tmp, shape, opset)
        else:
            _export_float(WithSoftmax(fold_batchnorm(model)).eval(), tmp / "model.onnx", shape, opset)
        (tmp / "model.json").write_text(json.dumps(meta_out, indent=2) + "\n")
        with torch.no_grad():
            ref = torch.softmax(load_run(run_dir)[0](torch.from_numpy(x)), 1).numpy()
        got = OnnxBackend(load_model_dir(tmp)).run(x)
        diff = float(np.abs(got - ref).max()) if len(x) else 0.0
        # a quantized model may land one step of its output grid away where PyTorch's and
        # onnxruntime's sums round differently; the softmax halves that step at most
        tol = output_step(WithSoftmax(model)) if quantized else PARITY_TOL
        if diff > tol:
            raise ExportError(f"{out}: onnxruntime differs from PyTorch by {diff:.2e} (> {tol:g}) on the "
                              "validation set; the export is wrong, not written")
        if quantized:
            meta_out["metrics"]["qonnx_parity"] = qonnx_parity(tmp, x, ref, tol)
        np.save(tmp / "calib.npy", calib.astype(np.float16))
        meta_out["metrics"]["parity_max_abs"] = diff
        meta_out["metrics"]["parity_n"] = len(x)
        (tmp / "model.json").write_text(json.dumps(meta_out, indent=2) + "\n")
    log(f"exported {out}/model.onnx (opset {opset}); onnxruntime vs PyTorch max abs {diff:.2e} "
        f"on {len(x)} validation clips")
    return out
