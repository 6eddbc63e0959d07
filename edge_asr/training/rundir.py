"""Reading what training made: a run directory (train.json + best.pt) as a net with its
best weights, and the float kernels of a run or an exported model (what `train --init`
starts quantization-aware training from). Export, QAT, distillation and the training
loop read runs here and nowhere else."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .nets import build_net, fold_batchnorm, kernel_layers


def load_run(run_dir: Path) -> tuple[nn.Module, dict]:
    """(net with its best weights, train.json) of a run directory; weights read with weights_only=True."""
    meta_path, weights = run_dir / "train.json", run_dir / "best.pt"
    if not meta_path.is_file() or not weights.is_file():
        raise InputError(f"{run_dir}: not a training run (want train.json + best.pt); make one with `edge-asr train`")
    try:
        meta = json.loads(meta_path.read_text())
        net, net_kwargs = meta["net"], meta["net_kwargs"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{meta_path}: not a train.json written by `edge-asr train` ({exc!r}); "
                         "train the run again") from exc
    if meta.get("quantization"):
        from .qat import QuantSpec, quantized_net
        spec = {k: meta["quantization"][k] for k in ("weight_bits", "act_bits", "bias_bits", "first_last_bits")}
        model = quantized_net(net, net_kwargs, QuantSpec(**spec))
    else:
        model = build_net(net, **net_kwargs)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # torch raises many types (pickle's among them) for a damaged or mismatched file
        raise InputError(f"{weights}: cannot load the weights ({str(exc).splitlines()[0]})") from exc
    for key, tensor in state.items():
        if torch.is_floating_point(tensor) and not torch.isfinite(tensor).all():
            raise InputError(f"{weights}: tensor {key!r} holds {int((~torch.isfinite(tensor)).sum())} NaN/Inf "
                             "value(s); the training diverged: train again (a lower --lr)")
    return model.eval(), meta


Kernels = list[tuple[np.ndarray, np.ndarray | None]]


@dataclass
class Init:
    """A float model that quantization-aware training starts from (`--init`): its kernels
    and metadata."""
    kernels: Kernels
    meta: dict


def float_kernels(init: Path) -> tuple[Kernels, dict]:
    """(weight, bias) of each Conv1d/Linear of a float model in order, BatchNorm folded in,
    and its metadata (net, net_kwargs, labels, feature): from a training run (train.json +
    best.pt) or an exported model directory (model.json + model.onnx)."""
    if (init / "train.json").is_file():
        model, meta = load_run(init)
        if meta.get("quantization"):
            raise InputError(f"--init {init}: a quantization-aware run; give the float run it started from")
        layers = kernel_layers(fold_batchnorm(model))
        return [(m.weight.detach().numpy(), None if m.bias is None else m.bias.detach().numpy())
                for m in layers], meta
    if (init / "model.json").is_file() and (init / "model.onnx").is_file():
        meta = json.loads((init / "model.json").read_text())
        if meta.get("quantization"):
            raise InputError(f"--init {init}: a quantization-aware model; give the float model it started from")
        return _onnx_kernels(init), meta
    raise InputError(f"--init {init}: not a training run (train.json + best.pt) or a model directory "
                     "(model.json + model.onnx)")


def _onnx_kernels(model_dir: Path) -> Kernels:
    """(weight, bias) of each Conv/Gemm node of an exported model.onnx, in graph order."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(str(model_dir / "model.onnx")).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    out = []
    for node in graph.node:
        if node.op_type in ("Conv", "Gemm"):
            w, b = inits.get(node.input[1]), inits.get(node.input[2]) if len(node.input) > 2 else None
            if w is None:
                raise InputError(f"--init {model_dir}: node {node.name} has no constant weights")
            trans_b = any(a.name == "transB" and a.i for a in node.attribute)
            out.append((w if node.op_type == "Conv" or trans_b else w.T, b))
    return out
