"""Export of a quantization-aware net: QONNX (Quant nodes) and its standard-ONNX twin.

model_qonnx.onnx holds the Quant nodes with their scales, zero points and bit widths (what
`convert` reads to set the design's types); model.onnx is the same graph with each Quant
written in standard ops (hw.qonnx_types.lower_quant_nodes), so onnxruntime, `eval`,
`recognize --backend onnx` and `verify` run the quantized model like any other.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ExportError
from ..hw.qonnx_types import QONNX_FILE, run_qonnx

QONNX_PARITY_N = 256  # validation inputs run through QONNX's own executor (node by node: slow)


def output_step(model: nn.Module) -> float:
    """One step of the logits grid (the output quantizer's scale) of a wrapped QuantizedNet."""
    return float(model.net.out.act_quant.scale().detach())


def export_quantized(wrapped: nn.Module, tmp: Path, shape: list[int], opset: int) -> str:
    """Write tmp/model_qonnx.onnx (Brevitas's QONNX export) and tmp/model.onnx (its Quant
    nodes lowered to standard ops); return the QONNX file's name."""
    import onnx

    from .qat import quiet_brevitas_import
    quiet_brevitas_import()
    from brevitas.export import export_qonnx

    from ..hw.qonnx_types import lower_quant_nodes
    path = tmp / QONNX_FILE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Brevitas and TorchScript's notes on the export itself
        try:
            export_qonnx(wrapped, torch.zeros(shape), export_path=str(path), dynamo=False, opset_version=opset,
                         input_names=["features"], output_names=["probabilities"],
                         dynamic_axes={"features": {0: "batch"}, "probabilities": {0: "batch"}})
        except Exception as exc:
            raise ExportError(f"{path.name}: Brevitas cannot export this net ({str(exc).splitlines()[0]})") from exc
    proto = onnx.load(str(path))
    _drop_initializer_inputs(proto)
    onnx.save(proto, str(path))
    onnx.save(lower_quant_nodes(proto), str(tmp / "model.onnx"))
    return QONNX_FILE


def _drop_initializer_inputs(proto) -> None:
    """Brevitas lists the weights among the graph inputs too (keep_initializers_as_inputs);
    tools then take them for inputs the caller must feed. Keep only the real input."""
    names = {i.name for i in proto.graph.initializer}
    keep = [i for i in proto.graph.input if i.name not in names]
    del proto.graph.input[:]
    proto.graph.input.extend(keep)


def qonnx_parity(tmp: Path, x: np.ndarray, ref: np.ndarray, tol: float) -> dict:
    """QONNX's executor on the first QONNX_PARITY_N inputs against PyTorch's outputs (ref),
    and against onnxruntime on the lowered model.onnx: ExportError beyond tol."""
    from ..runtime.backends.onnx import OnnxBackend
    from ..runtime.modeldir import load_model_dir
    n = min(len(x), QONNX_PARITY_N)
    if n == 0:
        return {"n": 0}
    got = run_qonnx(tmp / QONNX_FILE, x[:n])
    lowered = OnnxBackend(load_model_dir(tmp)).run(x[:n])
    vs_torch = float(np.abs(got - ref[:n]).max())
    vs_lowered = float(np.abs(got - lowered).max())
    if vs_torch > tol:
        raise ExportError(f"{QONNX_FILE}: QONNX's executor differs from PyTorch by {vs_torch:.2e} (> {tol:g}, one "
                          "step of the output grid); the export is wrong, not written")
    if vs_lowered > 1e-6:
        raise ExportError(f"model.onnx: the lowered graph differs from QONNX's executor by {vs_lowered:.2e}; "
                          "report this")
    return {"n": n, "max_abs_vs_pytorch": vs_torch, "max_abs_vs_lowered": vs_lowered}
