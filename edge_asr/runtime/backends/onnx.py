"""The float reference backend: onnxruntime on the exported model."""

from __future__ import annotations

import numpy as np

from ...errors import InputError
from ..modeldir import ModelInfo


class OnnxBackend:
    name = "onnx"

    def __init__(self, info: ModelInfo, threads: int = 0):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(info.onnx_path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise InputError(f"{info.onnx_path}: onnxruntime cannot load it ({str(exc).splitlines()[0]})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.info = info

    def run(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """Float features (N, n_features, frames) -> output probabilities (N, classes)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        outs = [self.session.run(None, {self.input_name: x[i:i + batch]})[0] for i in range(0, len(x), batch)]
        return np.concatenate(outs) if outs else np.zeros((0, len(self.info.labels)), np.float32)
