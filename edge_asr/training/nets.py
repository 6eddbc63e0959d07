"""The model zoo. Every net takes (batch, n_features, frames) features (log-mel or cepstra) and returns logits.

The nets use only layers that hls4ml 1.3's ONNX path maps to its layer library: Conv1d,
BatchNorm (folded into the convolution before export), ReLU, MaxPool1d, Flatten, Linear.
No recurrent layers (hls4ml's ONNX frontend rejects GRU/LSTM) and no global pooling over
a dynamic length: the input window is fixed.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from ..errors import InputError


class Conv1dKWS(nn.Module):
    """1-D CNN over time, features as channels: conv/BatchNorm/ReLU/pool blocks, then two dense layers."""

    def __init__(self, n_features: int = 40, frames: int = 98, n_classes: int = 12,
                 channels: int = 64, hidden: int = 32, kernel: int = 3, blocks: int = 4):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, t = n_features, frames
        for _ in range(blocks):
            layers += [nn.Conv1d(c_in, channels, kernel), nn.BatchNorm1d(channels), nn.ReLU(), nn.MaxPool1d(2)]
            c_in, t = channels, (t - kernel + 1) // 2
        if t < 1:
            raise InputError(f"conv1d: {frames} frames are too few for {blocks} conv/pool blocks")
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(channels * t, hidden),
                                        nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, n_classes) of features (batch, n_features, frames)."""
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """Dense network over the flattened window; the smallest thing hls4ml can place."""

    def __init__(self, n_features: int = 40, frames: int = 98, n_classes: int = 12, hidden: int = 14):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n_features * frames, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, n_classes) of features (batch, n_features, frames)."""
        return self.net(x)


NETS = {"conv1d": Conv1dKWS, "mlp": MLP}


def build_net(name: str, **kwargs) -> nn.Module:
    """A net of the zoo by name with its arguments; InputError for an unknown name or argument."""
    if name not in NETS:
        raise InputError(f"unknown net '{name}'; choose one of {', '.join(NETS)}")
    accepted = list(inspect.signature(NETS[name]).parameters)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise InputError(f"net '{name}' has no option {unknown[0]!r}; it takes {', '.join(accepted)}")
    return NETS[name](**kwargs)


def kernel_layers(net: nn.Module) -> list[nn.Module]:
    """The Conv1d and Linear layers of a net, in order: the layers with weights a design holds."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv1d, nn.Linear))]


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of a module."""
    return sum(p.numel() for p in model.parameters())


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold each BatchNorm1d into the Conv1d before it (eval mode), leaving Identity behind.

    Done before export so the ONNX graph has no BatchNormalization node: one fewer layer
    for hls4ml to quantize, and no extra rounding step between convolution and ReLU.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    model.eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            if isinstance(seq[i], nn.Conv1d) and isinstance(seq[i + 1], nn.BatchNorm1d):
                seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = nn.Identity()
    return model
