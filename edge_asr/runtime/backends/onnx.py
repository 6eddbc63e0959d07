"""The float reference backend: onnxruntime on the exported model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import InputError
from ..modeldir import ModelInfo


class OnnxBackend:
    """Runs a float ONNX model on onnxruntime (CPU).

    Args:
        source: a model directory, a design folder (the model.onnx it was converted from),
            an .onnx file, or a loaded ModelInfo.
        threads: onnxruntime's intra-op threads (0: its own choice).

    Raises:
        InputError: no model.onnx there, or onnxruntime cannot load it.
    """

    name = "onnx"

    def __init__(self, source: str | Path | ModelInfo, threads: int = 0):
        import onnxruntime as ort
        path = source.onnx_path if isinstance(source, ModelInfo) else Path(source)
        if path.is_dir():
            path = path / "model.onnx"
        if not path.is_file():
            raise InputError(f"{path}: no such ONNX model; give a model directory made by `edge-asr export`")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise InputError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0]})") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.onnx_path = path
        if isinstance(source, ModelInfo):
            self._check_model_json(source)

    def _check_model_json(self, info: ModelInfo) -> None:
        """model.json must describe this graph: as many labels as outputs, the input shape the
        front end makes. A mismatch fails here, in one line, not later in a traceback."""
        where = info.dir / "model.json"
        n_out = self.session.get_outputs()[0].shape[-1]
        if isinstance(n_out, int) and len(info.labels) != n_out:
            raise InputError(f"{where}: {len(info.labels)} labels for a model with {n_out} outputs; export the "
                             "model again")
        want = [d for d in self.session.get_inputs()[0].shape[1:]]
        feature = info.feature
        have = [feature.n_features, feature.clip_frames]
        if all(isinstance(d, int) for d in want) and want != have:
            raise InputError(f"{where}: its front end makes inputs of shape {have}, the model takes {want}; "
                             "export the model again")

    def run(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """Float features (N, *input shape) -> the model's outputs (N, n_out), float32."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        outs = [self.session.run(None, {self.input_name: x[i:i + batch]})[0] for i in range(0, len(x), batch)]
        if outs:
            y = np.concatenate(outs)
            if not np.isfinite(y).all():  # a NaN weight makes every output NaN, and no word is ever heard
                raise InputError(f"{self.onnx_path}: the model's outputs hold NaN or Inf for finite inputs; its "
                                 "weights are broken: retrain or re-export it")
            return y
        n_out = self.session.get_outputs()[0].shape[-1]
        return np.zeros((0, n_out if isinstance(n_out, int) else 0), np.float32)
