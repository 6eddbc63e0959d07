"""Layers that run inside the compiled pass of the layer before them (native.cpp's finish).

On a small net each layer costs the simulator a Python call and a pass of its own whatever
its size: at 2,000 inputs of the zoo's MLP (1,274 -> 14 -> 14 -> 12), the Dense layers, the
ApplyAlpha layers that hls4ml puts after them and the ReLUs took 0.05-0.07 ms each, more
than half of the simulator's time. A Dense or Conv1D layer's pass can make, in the same
registers, the cast of an ApplyAlpha/BatchNormalization after it (nnet::normalize: a scale
and a bias per output, then its own cast) and a ReLU's clip; an ApplyAlpha alone can make
its ReLU's. Here: which chains a design has (`chains`), what of a chain a pass can run
(`after`), the Tensor such a pass gives (`tensor`), and the cast of nnet::normalize
(`alpha_cast`) that both the fused and the layer's own kernel use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.design import Design, Layer
from . import native
from .exact import FloatPlan, cast_plan, max_abs_code
from .fixed import FixedType
from .tensor import Tensor

# kinds whose kernel runs layers after it in its own compiled pass
FUSES = ("Dense", "Conv1D", "ApplyAlpha", "BatchNormalization")
ALPHA = ("ApplyAlpha", "BatchNormalization")  # the same nnet::normalize kernel


def _is_relu(layer: Layer) -> bool:
    return (layer.class_name in ("Activation", "ReLU")
            and layer.attributes.get("activation", "linear").lower() == "relu")


def sole_reader(design: Design, layer: Layer) -> Layer | None:
    """The layer that alone reads this layer's only output (as its first input), else None."""
    key = "_readers"
    if key not in design.cache:
        readers: dict[str, list[Layer]] = {}
        for lay in design.layers:
            for name in lay.inputs:
                readers.setdefault(name, []).append(lay)
        design.cache[key] = readers
    after = design.cache[key].get(layer.outputs[0], []) if len(layer.outputs) == 1 else []
    return after[0] if len(after) == 1 and after[0].inputs[:1] == layer.outputs else None


def chains(design: Design) -> dict[str, tuple[Layer, ...]]:
    """Layer name (a kind in FUSES) -> the layers after it its pass may run: an
    ApplyAlpha/BatchNormalization (after a Dense or Conv1D), then a ReLU, each the only
    reader of the layer before it. Found once per design."""
    key = "_fused_chains"
    if key not in design.cache:
        found = {}
        for layer in design.layers:
            if layer.class_name not in FUSES:
                continue
            chain, nxt = [], sole_reader(design, layer)
            if nxt is not None and nxt.class_name in ALPHA and layer.class_name not in ALPHA:
                chain.append(nxt)
                nxt = sole_reader(design, nxt)
            if nxt is not None and _is_relu(nxt):
                chain.append(nxt)
            if chain:
                found[layer.name] = tuple(chain)
        design.cache[key] = found
    return design.cache[key]


@dataclass(frozen=True)
class AlphaCast:
    """nnet::normalize's arithmetic for one input type: x * s + b exactly, then the cast.
    `plan` (cast_plan, or None when float64 cannot hold it exactly) takes values in units
    of 2**-frac: x's codes times `scale` (s in those units; None when 1 everywhere), plus
    the bias in those units. s and b: the integer codes per value (the integer path)."""

    plan: FloatPlan | None
    scale: np.ndarray | None
    s: np.ndarray
    b: np.ndarray
    prod_frac: int
    frac: int


def alpha_cast(layer: Layer, x_type: FixedType, n: int) -> AlphaCast:
    """An ApplyAlpha/BatchNormalization layer's AlphaCast over n values per input (its scale
    and bias repeat over them), made once per layer, input type and n."""
    key = ("alpha", x_type, n)
    if key not in layer.cache:
        s, st = layer.weight("scale")
        b, bt = layer.weight("bias")
        s = np.broadcast_to(s.reshape(-1), (n,)) if s.size in (1, n) else np.resize(s.reshape(-1), n)
        b = np.broadcast_to(b.reshape(-1), (n,)) if b.size in (1, n) else np.resize(b.reshape(-1), n)
        prod_frac = x_type.fractional + st.fractional
        frac = max(prod_frac, bt.fractional)
        bias = b * 2.0 ** (frac - bt.fractional)
        scale = s.astype(np.float64) * 2.0 ** (frac - prod_frac)
        bound = max_abs_code(x_type) * float(np.abs(scale).max(initial=0)) + float(np.abs(bias).max(initial=0))
        layer.cache[key] = AlphaCast(cast_plan(bound, frac, bias, layer.result_type()),
                                     None if np.all(scale == 1.0) else scale, s, b, prod_frac, frac)
    return layer.cache[key]


def after(layer: Layer, chain: tuple[Layer, ...], lanes: int) -> tuple[native.After, tuple[Layer, ...]]:
    """What of `chain` (from `chains`) the compiled finish can run after the layer's cast, on
    outputs of `lanes` values per row, and those layers: an ApplyAlpha whose scale and bias
    are one per lane (or one for all) and whose cast float64 holds exactly, then a ReLU that
    is a clip (`native.fuses_relu`). Made once per layer and width."""
    key = ("_after", tuple(c.name for c in chain), lanes)
    if key not in layer.cache:
        t, alpha, ran = layer.result_type(), None, []
        rest = list(chain)
        if rest and rest[0].class_name in ALPHA:
            a = rest.pop(0)
            cast = alpha_cast(a, t, lanes) if all(a.weight(w)[0].size in (1, lanes) for w in ("scale", "bias")) else None
            if cast is None or cast.plan is None:
                rest = []  # a ReLU after it reads the ApplyAlpha, which runs on its own
            else:
                alpha, t = cast, a.result_type()
                ran.append(a)
        relu = None
        if rest and native.fuses_relu(t, rest[0].result_type()):
            relu = rest[0].result_type()
            ran.append(rest[0])
        fin = native.After(alpha.plan, alpha.scale, relu) if alpha is not None else native.After(relu=relu)
        layer.cache[key] = (fin, tuple(ran))
    return layer.cache[key]


def tensor(layer: Layer, done: tuple[np.ndarray, list[int]] | None, ran: tuple[Layer, ...],
           shape: tuple) -> Tensor | None:
    """A compiled pass's (codes, edge counts) as the Tensor of the last layer it ran, with
    `fused` naming each layer it ran and its edge count when it ran more than the layer;
    None when the pass did not run."""
    if done is None:
        return None
    out, edges = done
    last = ran[-1] if ran else layer
    result = Tensor(out.reshape(shape), last.result_type(), edges[-1])
    if ran:
        result.fused = {lay.name: e for lay, e in zip((layer, *ran), edges, strict=True)}
    return result
