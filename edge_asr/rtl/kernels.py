"""The design's kernels as combinational logic (da4ml), and their reference in the simulator.

A kernel is one Dense layer, or one output pixel's window of a Conv1D layer (filt_width x
n_chan inputs -> n_filt outputs), with the casts that follow it fused in: the layer's own
result type, then a ReLU or linear Activation right after it (its result type). Fusing
keeps the kernel's outputs narrow (the accumulator of a 4-bit layer is 17 bits wide, its
ReLU's output 4) and is what a dataflow design does anyway.

da4ml traces the arithmetic on fixed-point variables (`da4ml.trace`), optimizes the
constant-matrix product into adders (distributed arithmetic) and writes Verilog. Its
`quantize` knows only truncation and round-half-up; ap_fixed's AP_RND_CONV (half to even),
which every edge-asr type uses, is built here from truncations (`_cast`). The reference is
the simulator's own arithmetic (`sim.exact.dense_result`, `sim.kernels`) on the same codes.
Reads design.json only, never hls4ml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..ir.design import Design, Layer
from ..sim.fixed import FixedType

WIDE = 48  # integer bits of an intermediate no cast here can overflow


class UnsupportedKernelError(InputError):
    """A layer the RTL flow does not build yet (named, with the reason)."""


@dataclass
class Kernel:
    """One kernel: the layers fused into it, its input and output, and its weights."""
    name: str                      # a Verilog module name
    layers: list[Layer]            # the Dense/Conv1D layer, then the ReLU/linear activation fused in
    in_type: FixedType
    out_type: FixedType
    n_in: int
    n_out: int
    matrix: np.ndarray = field(repr=False)     # (n_in, n_out) weight codes
    w_type: FixedType | None = None
    bias: np.ndarray | None = field(default=None, repr=False)
    b_type: FixedType | None = None
    acc_type: FixedType | None = None          # the layer's accumulator
    layer_type: FixedType | None = None        # the layer's own result type
    logic: object = field(default=None, repr=False, compare=False)  # trace()'s CombLogic, made once

    @property
    def posts(self) -> list[Layer]:
        """The activation layers applied after the matrix product, in order."""
        return self.layers[1:]

    @property
    def products(self) -> int:
        """Nonzero weights: the constant products the logic holds."""
        return int(np.count_nonzero(self.matrix))


def _producer(design: Design, layer: Layer) -> Layer | None:
    return next((p for p in design.layers if layer.inputs and layer.inputs[0] in p.outputs), None)


def _consumers(design: Design, layer: Layer) -> list[Layer]:
    return [c for c in design.layers if set(c.inputs) & set(layer.outputs)]


def _is_cast(layer: Layer) -> bool:
    """A ReLU or linear activation: fused into the kernel before it."""
    return layer.class_name in ("Activation", "ReLU") and \
        layer.attributes.get("activation", "linear").lower() in ("relu", "linear")


def design_kernels(design: Design) -> list[Kernel]:
    """Every Dense and Conv1D layer of the design as a Kernel, the activation after it fused in.

    Raises:
        UnsupportedKernelError: a kernel with a rounding or overflow mode not built yet.
    """
    from ..sim.kernels import _bias, _matrix
    out = []
    alphas = [x.name for x in design.layers if x.class_name == "ApplyAlpha"]
    if alphas:
        # tried: da4ml's kernel with the rescaling fused in disagreed with the simulator where
        # a rescaled value saturates (739 of 16,000 values on a QDQ design; docs/cli.md)
        raise UnsupportedKernelError(f"layer {alphas[0]}: ApplyAlpha (a QONNX scale that is not a power of two) has "
                                     "no RTL yet; train with power-of-two scales (edge-asr train --qat)")
    for layer in design.layers:
        if layer.class_name not in ("Dense", "Conv1D"):
            continue
        src = _producer(design, layer)
        in_type = src.result_type() if src is not None else design.input_type
        acc_t = layer.type("accum_t")
        order = (1, 0) if layer.class_name == "Dense" else (1, 2, 0)
        m, w_type = _matrix(layer, acc_t, in_type, order)
        b, b_type = _bias(layer)
        fused = [layer]
        after = _consumers(design, layer)
        if len(after) == 1 and _is_cast(after[0]):
            fused.append(after[0])
        matrix = np.asarray(m.f64, dtype=np.float64)
        name = re.sub(r"\W", "_", layer.name).lower()
        frac = in_type.fractional + w_type.fractional
        if b is not None:
            frac = max(frac, b_type.fractional)
        if acc_t.fractional < frac or acc_t.saturation != "AP_WRAP":
            # every partial sum would round or saturate on its own: an order-dependent sum
            raise UnsupportedKernelError(f"layer {layer.name}: its accumulator {acc_t.cpp()} rounds or saturates; "
                                         "the RTL flow builds exact accumulators")
        out.append(Kernel(name, fused, in_type, fused[-1].result_type(), matrix.shape[0], matrix.shape[1], matrix,
                          w_type, None if b is None else np.asarray(b, np.float64), b_type, acc_t,
                          layer.result_type()))
    return out


def _cast(x, t: FixedType, frac_in: int):
    """x (da4ml variables on a grid of frac_in fractional bits) cast to type t as ap_fixed does:
    round to t's grid by t's quantization mode, then wrap or saturate by its overflow mode.

    da4ml truncates (and rounds half up); every ap_fixed mode is truncation after adding an
    offset below one step: half a step less one input step (ties go down), plus that input
    step where a tie goes up: always (AP_RND), from an odd kept part (AP_RND_CONV), for a
    negative value (AP_RND_ZERO) or a positive one (AP_RND_INF); AP_TRN_ZERO adds a step
    less one input step to a negative value. AP_SAT_ZERO puts 0 where the rounded value
    leaves the type's range.
    """
    f = t.fractional
    k, i = int(t.signed), t.integer - int(t.signed)
    if frac_in > f:
        eps, half, step = 2.0 ** -frac_in, 2.0 ** -(f + 1), 2.0 ** -f
        mode = t.rounding
        if mode == "AP_RND":
            x = x + half
        elif mode == "AP_RND_MIN_INF":
            x = x + (half - eps)
        elif mode == "AP_RND_CONV":
            kept = x.quantize(k=1, i=WIDE, f=f, overflow_mode="WRAP", round_mode="TRN")
            coarser = x.quantize(k=1, i=WIDE, f=f - 1, overflow_mode="WRAP", round_mode="TRN")
            x = x + (half - eps) + (kept - coarser) * 2.0 ** (f - frac_in)  # + b * eps, b the lowest kept bit
        elif mode == "AP_RND_ZERO":
            x = x + (half - eps) + (x < 0) * eps
        elif mode == "AP_RND_INF":
            x = x + half - (x < 0) * eps
        elif mode == "AP_TRN_ZERO":
            x = x + (x < 0) * (step - eps)
    if t.saturation == "AP_SAT_ZERO":
        r = x.quantize(k=1, i=WIDE, f=f, overflow_mode="WRAP", round_mode="TRN")
        inside = (r >= t.min_code * 2.0 ** -f) & (r <= t.max_code * 2.0 ** -f)
        return np.where(inside, r.quantize(k=k, i=i, f=f, overflow_mode="WRAP", round_mode="TRN"), 0.0)
    return x.quantize(k=k, i=i, f=f, overflow_mode=t.saturation[3:], round_mode="TRN")


def trace(kernel: Kernel):
    """The kernel as da4ml combinational logic (CombLogic): inputs are the codes' values on
    the input type, outputs the fused result's. Traced once per Kernel (minutes for a kernel
    of ten thousand products); every later call returns the same logic."""
    if kernel.logic is None:
        kernel.logic = _trace(kernel)
    return kernel.logic


def _trace(kernel: Kernel):
    from da4ml.trace import FixedVariableArrayInput, comb_trace
    t_in = kernel.in_type
    inp = FixedVariableArrayInput(kernel.n_in)
    x = inp.quantize(k=int(t_in.signed), i=t_in.integer - int(t_in.signed), f=t_in.fractional)
    acc = x @ (kernel.matrix * 2.0 ** -kernel.w_type.fractional)
    frac = t_in.fractional + kernel.w_type.fractional
    if kernel.bias is not None:
        acc = acc + kernel.bias * 2.0 ** -kernel.b_type.fractional
        frac = max(frac, kernel.b_type.fractional)
    y = _cast(acc, kernel.acc_type, frac)
    y = _cast(y, kernel.layer_type, kernel.acc_type.fractional)
    t = kernel.layer_type
    for post in kernel.posts:
        if post.attributes.get("activation", "linear").lower() == "relu":
            y = y.relu()
        y = _cast(y, post.result_type(), t.fractional)
        t = post.result_type()
    return comb_trace(inp, y)


def reference(kernel: Kernel, codes: np.ndarray) -> np.ndarray:
    """The simulator's output codes of the kernel on input codes (n, n_in): its Dense
    arithmetic (the one the Conv1D path uses per window), then its kernels of the fused layers."""
    from ..sim.exact import Matrix, dense_result
    m = Matrix.of(kernel.matrix)
    out, _ = dense_result(np.asarray(codes, np.float64), kernel.in_type, m, kernel.w_type, kernel.bias,
                          kernel.b_type, kernel.acc_type, kernel.layer_type)
    from ..sim.kernels import LAYERS
    from ..sim.tensor import Tensor
    t = Tensor(np.asarray(out).astype(np.int64), kernel.layer_type)
    for post in kernel.posts:  # the simulator's own kernels of the fused layers
        t = LAYERS[post.class_name](post, t)
    return t.ints


def test_codes(t: FixedType, n: int, n_in: int, seed: int = 0) -> np.ndarray:
    """Input codes to check a kernel on: the type's whole range at random, small codes
    (around 0, where ties sit), and rows of all-largest and all-smallest codes (saturation)."""
    rng = np.random.default_rng(seed)
    lo, hi = (-(1 << (t.width - 1)), (1 << (t.width - 1)) - 1) if t.signed else (0, (1 << t.width) - 1)
    codes = rng.integers(lo, hi + 1, size=(n, n_in), dtype=np.int64)
    small = max(1, n // 4)
    codes[:small] = rng.integers(max(lo, -3), min(hi, 3) + 1, size=(small, n_in))
    codes[small:small + 2] = [[hi] * n_in, [lo] * n_in]
    return codes
