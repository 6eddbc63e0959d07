"""Quantization-aware training with Brevitas: the zoo's nets on low-bit fixed-point grids.

`quantized_net` turns a zoo net into its Brevitas twin, layer for layer:
- an input quantizer (signed, INPUT_BITS) before the first layer;
- Conv1d / Linear -> QuantConv1d / QuantLinear: weights on `weight_bits` (narrow range,
  symmetric), biases on `bias_bits` at the scale input x weight (the accumulator's grid);
- ReLU -> QuantReLU: unsigned `act_bits`;
- BatchNorm1d -> Identity: a BatchNorm between a quantized convolution and its ReLU would
  leave a float multiply in the graph. Start from a float run (`--init`), whose BatchNorm
  is folded into the convolution before its weights are copied over;
- an output quantizer on the logits (signed, OUTPUT_BITS), so the design's last type is a
  trained one too.
Every scale is a power of two (Brevitas's *FixedPoint quantizers), so each Quant node of
the export is exactly an ap_fixed type and the design is bit-exact to the QONNX graph.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .nets import build_net, kernel_layers


def quiet_brevitas_import() -> None:
    """Import Brevitas without its notes on import (an optional CUDA kernel package is
    missing; its own brevitas.fx is deprecated), which say nothing about the user's work."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="fast_hadamard_transform")
        warnings.filterwarnings("ignore", message="brevitas.fx is deprecated")
        import brevitas.export  # noqa: F401
        import brevitas.nn  # noqa: F401


INPUT_BITS = 8   # the features: narrower inputs cost little hardware and lose much accuracy
OUTPUT_BITS = 8  # the logits before Softmax


@dataclass
class QuantSpec:
    """Bit widths of a quantization-aware net (recorded in train.json and model.json)."""
    weight_bits: int = 4
    act_bits: int = 4
    bias_bits: int = 16
    first_last_bits: int | None = None  # weights of the first and last layer, when they differ

    def check(self) -> None:
        """InputError for widths Brevitas or hls4ml cannot take."""
        for name, v, lo, hi in (("--weight-bits", self.weight_bits, 2, 16), ("--act-bits", self.act_bits, 2, 16),
                                ("--bias-bits", self.bias_bits, 4, 32)):
            if not lo <= v <= hi:
                raise InputError(f"{name} {v}: give {lo} to {hi} bits")
        if self.first_last_bits is not None and not 2 <= self.first_last_bits <= 16:
            raise InputError(f"--first-last-bits {self.first_last_bits}: give 2 to 16 bits")

    def to_dict(self) -> dict:
        """The spec with the fixed widths and the scheme, as model.json's `quantization`."""
        return {**asdict(self), "input_bits": INPUT_BITS, "output_bits": OUTPUT_BITS,
                "scheme": "brevitas QAT, per-tensor power-of-two scales, zero point 0, round half to even"}


class QuantizedNet(nn.Module):
    """input quantizer -> the zoo net with quantized layers -> logits quantizer."""

    def __init__(self, body: nn.Module, spec: QuantSpec):
        super().__init__()
        quiet_brevitas_import()
        import brevitas.nn as qnn
        from brevitas.quant import Int8ActPerTensorFixedPoint
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=INPUT_BITS,
                                     return_quant_tensor=True)
        self.body = body
        self.out = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=OUTPUT_BITS,
                                     return_quant_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Quantized logits (batch, n_classes), as a plain tensor."""
        return self.out(self.body(self.inp(x)))


def quantized_net(name: str, net_kwargs: dict, spec: QuantSpec) -> QuantizedNet:
    """The Brevitas twin of zoo net `name` (see the module docstring)."""
    quiet_brevitas_import()
    import brevitas.nn as qnn
    from brevitas.quant import Int8WeightPerTensorFixedPoint, Int16Bias, Uint8ActPerTensorFixedPoint
    spec.check()
    body = build_net(name, **net_kwargs)
    kernels = kernel_layers(body)

    def weight_bits(layer) -> int:
        edge = layer is kernels[0] or layer is kernels[-1]
        return spec.first_last_bits if edge and spec.first_last_bits else spec.weight_bits

    def convert(module: nn.Module) -> nn.Module:
        common = dict(weight_quant=Int8WeightPerTensorFixedPoint, bias_quant=Int16Bias,
                      bias_bit_width=spec.bias_bits, return_quant_tensor=True)
        if isinstance(module, nn.Conv1d):
            return qnn.QuantConv1d(module.in_channels, module.out_channels, module.kernel_size[0],
                                   stride=module.stride[0], padding=module.padding[0], bias=module.bias is not None,
                                   weight_bit_width=weight_bits(module), **common)
        if isinstance(module, nn.Linear):
            return qnn.QuantLinear(module.in_features, module.out_features, bias=module.bias is not None,
                                   weight_bit_width=weight_bits(module), **common)
        if isinstance(module, nn.ReLU):
            return qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=spec.act_bits,
                                 return_quant_tensor=True)
        if isinstance(module, nn.BatchNorm1d):
            return nn.Identity()
        return module

    for parent in list(body.modules()):
        for child_name, child in list(parent.named_children()):
            new = convert(child)
            if new is not child:
                setattr(parent, child_name, new)
    return QuantizedNet(body, spec)


def load_float_weights(net: QuantizedNet, kernels: list[tuple[np.ndarray, np.ndarray | None]], source: str) -> None:
    """Copy float (weight, bias) pairs into the quantized net's layers, in order."""
    layers = kernel_layers(net.body)
    if len(layers) != len(kernels):
        raise InputError(f"--init {source}: {len(kernels)} kernel layers, the net has {len(layers)}; give a "
                         "run of the same net")
    with torch.no_grad():
        for layer, (w, b) in zip(layers, kernels, strict=True):
            if tuple(layer.weight.shape) != tuple(w.shape):
                raise InputError(f"--init {source}: a weight of shape {list(w.shape)} for a layer of shape "
                                 f"{list(layer.weight.shape)}; give a run of the same net and options")
            layer.weight.copy_(torch.from_numpy(np.array(w, np.float32)))
            if layer.bias is not None:
                layer.bias.copy_(torch.zeros_like(layer.bias) if b is None else torch.from_numpy(np.array(b, np.float32)))
