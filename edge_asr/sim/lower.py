"""A design lowered to one ONNX graph of exact integer arithmetic, for onnxruntime.

On small nets the numpy simulator's time went to Python and numpy calls per layer and to
BLAS on narrow shapes (issue 30; docs/experiments.md); onnxruntime runs a whole graph in
one call, on every core, with faster narrow products (float64 MatMul 2x numpy's here, and
the CPU's int8 dot products). Every value is an integer code held exactly in float64 (or
uint8 / int32 around MatMulInteger), so the graph computes what the kernels in `kernels`
compute, step by step in the same order:

- coding: x * 2**F (exact), Round (half to even: AP_RND_CONV) or Floor (AP_TRN), Clip;
- Dense / Conv1D: the product of the codes (MatMulInteger when both sides fit 8 bits,
  float64 MatMul otherwise; exact while every partial sum stays below 2**52, checked from
  the codes' static bounds), the bias in accumulator units, the accumulator's wrap, the
  cast to the result type;
- a cast: a power-of-two scale, the rounding (Round, Floor, Floor(x + 1/2)), then Clip
  (AP_SAT) or x - 2**W * floor((x - min) / 2**W) (AP_WRAP); others are not lowered;
- tables (tanh, sigmoid, softmax): their index computed exactly, then Gather.

Each tensor carries static bounds of its codes, so clips, wraps and the count of values
at a type's edges are emitted only where a value can get there. A design with a layer or
mode this does not lower gives None (`lower`), and the numpy kernels run it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SimError
from ..ir.design import Design, Layer
from .exact import EXACT
from .fixed import FixedType, requantize
from .kernels import _bias, _matrix, _softmax_tables, dense_matrix
from .tables import activation_table, index_bits

ROUND = {"AP_RND_CONV": "Round", "AP_TRN": "Floor"}


class NotLowered(Exception):
    """A layer or mode the graph does not express (the numpy kernels run the design)."""


@dataclass(frozen=True)
class Value:
    """A tensor of the graph: its name, fixed-point type, shape without the batch, static
    bounds of its codes, and its element type (float64 codes unless said)."""

    name: str
    type: FixedType
    shape: tuple[int, ...]
    lo: float
    hi: float
    dtype: str = "double"


class Graph:
    """Nodes and constants of the graph being built (onnx.helper)."""

    def __init__(self):
        import onnx  # the convert extra's; without it the numpy kernels run (see compiled.py)
        self.onnx = onnx
        self.nodes, self.inits, self.outputs, self._n = [], [], [], 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value, dtype=np.float64) -> str:
        """A constant tensor (initializer)."""
        name = self.name("c")
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, kind: str, *inputs: str, **attrs) -> str:
        out = self.name(kind.lower())
        self.nodes.append(self.onnx.helper.make_node(kind, list(inputs), [out], **attrs))
        return out


def _bounds_after_round(lo: float, hi: float, mode: str) -> tuple[float, float]:
    f = np.rint if mode == "AP_RND_CONV" else np.floor
    return float(f(lo)), float(f(hi))


def cast(g: Graph, v: str, frac: int, lo: float, hi: float, t: FixedType) -> Value:
    """Codes with `frac` fractional bits (float64 integers within [lo, hi]) -> codes of t,
    as fixed.requantize computes them."""
    drop = frac - t.fractional
    if max(abs(lo), abs(hi)) * 2.0 ** max(0, -drop) >= EXACT:
        raise NotLowered("values past float64's exact range")
    if drop:
        v = g.op("Mul", v, g.const(2.0 ** -drop))
        lo, hi = lo * 2.0 ** -drop, hi * 2.0 ** -drop
    if drop > 0 and t.rounding == "AP_RND":
        v = g.op("Floor", g.op("Add", v, g.const(0.5)))
        lo, hi = float(np.floor(lo + 0.5)), float(np.floor(hi + 0.5))
    elif drop > 0:
        if t.rounding not in ROUND:
            raise NotLowered(f"rounding {t.rounding}")
        v = g.op(ROUND[t.rounding], v)
        lo, hi = _bounds_after_round(lo, hi, t.rounding)
    return overflow(g, v, lo, hi, t)


def overflow(g: Graph, v: str, lo: float, hi: float, t: FixedType) -> Value:
    """Codes at t's fractional bits -> t's range by its overflow mode (fixed.overflow)."""
    if lo >= t.lowest_code and hi <= t.max_code:
        return Value(v, t, (), lo, hi)
    if t.saturation in ("AP_SAT", "AP_SAT_SYM"):
        v = g.op("Clip", v, g.const(float(t.lowest_code)), g.const(float(t.max_code)))
        return Value(v, t, (), max(lo, t.lowest_code), min(hi, t.max_code))
    if t.saturation == "AP_WRAP" and t.lowest_code == t.min_code:
        # x - 2**W * floor((x - min) / 2**W): exact, every term an integer below 2**52
        span = 2.0 ** t.width
        k = g.op("Floor", g.op("Mul", g.op("Sub", v, g.const(float(t.min_code))), g.const(1.0 / span)))
        v = g.op("Sub", v, g.op("Mul", k, g.const(span)))
        return Value(v, t, (), float(t.min_code), float(t.max_code))
    raise NotLowered(f"overflow {t.saturation}")


def _shaped(v: Value, shape) -> Value:
    return Value(v.name, v.type, tuple(shape), v.lo, v.hi, v.dtype)


def _extent(v: Value) -> float:
    return max(abs(v.lo), abs(v.hi))


def product(g: Graph, x: Value, m_codes: np.ndarray, col_bound: float) -> tuple[str, float]:
    """x's codes (rows, n_in) @ m_codes (n_in, n_out), exactly: MatMulInteger (uint8 codes,
    a zero point of 128 for signed ones, int8 weights) when both fit and int32 holds every
    sum, else float64 MatMul. Returns (float64 result, bound of its magnitudes)."""
    bound = _extent(x) * col_bound
    if bound >= EXACT:
        raise NotLowered("a product past float64's exact range")
    fits8 = m_codes.size and -128 <= m_codes.min() and m_codes.max() <= 127
    if fits8 and 255 * col_bound < 2 ** 31 and (x.dtype == "uint8" or (-128 <= x.lo and x.hi <= 255)):
        if x.dtype == "uint8":      # input codes straight from QuantizeLinear, zero point 128
            u8, zero = x.name, 128
        elif x.lo >= 0:
            u8, zero = g.op("Cast", x.name, to=2), 0  # 2: uint8
        elif x.hi <= 127:
            u8, zero = g.op("Cast", g.op("Add", x.name, g.const(128.0)), to=2), 128
        else:
            u8 = None
        if u8 is not None:
            s = g.op("MatMulInteger", u8, g.const(m_codes, np.int8), g.const(zero, np.uint8))
            return g.op("Cast", s, to=11), bound  # 11: double
    src = x.name if x.dtype == "double" else g.op("Cast", x.name, to=11)
    return g.op("MatMul", src, g.const(m_codes, np.float64)), bound


def _dense_finish(g: Graph, layer: Layer, x: Value, s: str, bound: float, b, bt, acc_t: FixedType,
                  res_t: FixedType, wt: FixedType) -> Value:
    """Product (product units) -> bias, accumulator wrap, result cast (exact.dense_codes)."""
    prod_frac = x.type.fractional + wt.fractional
    shift = acc_t.fractional - prod_frac
    if shift < 0 or acc_t.saturation != "AP_WRAP":
        raise NotLowered(f"{layer.name}: an accumulator that rounds or saturates")
    acc0 = requantize(b, bt.fractional, acc_t).astype(np.float64) if b is not None else None
    lo, hi = -bound * 2.0 ** shift, bound * 2.0 ** shift
    if shift:
        s = g.op("Mul", s, g.const(2.0 ** shift))
    if acc0 is not None:
        s = g.op("Add", s, g.const(acc0))
        lo, hi = lo + float(acc0.min(initial=0)), hi + float(acc0.max(initial=0))
    acc = overflow(g, s, lo, hi, acc_t)
    return cast(g, acc.name, acc_t.fractional, acc.lo, acc.hi, res_t)


def dense(g: Graph, layer: Layer, x: Value) -> Value:
    acc_t, res_t = layer.type("accum_t"), layer.result_type()
    m, wt = _matrix(layer, acc_t, x.type, (1, 0))
    b, bt = _bias(layer)
    n_in = int(np.prod(x.shape))
    flat = Value(g.op("Reshape", x.name, g.const([-1, n_in], np.int64)), x.type, (n_in,), x.lo, x.hi, x.dtype)
    s, bound = product(g, flat, m.codes, m.col_bound)
    return _shaped(_dense_finish(g, layer, flat, s, bound, b, bt, acc_t, res_t, wt), layer.output_shape)


def conv1d(g: Graph, layer: Layer, x: Value) -> Value:
    """Stride-1 taps as one product each of every row with the tap's block, summed at the
    tap's offset (the numpy kernel's _shifted_products)."""
    a = layer.attributes
    width, n_chan, n_filt, k = a["in_width"], a["n_chan"], a["n_filt"], a["filt_width"]
    out_w = a["out_width"]
    if a.get("stride_width", 1) != 1 or a.get("dilation_width", a.get("dilation", 1)) not in (1, None):
        raise NotLowered(f"{layer.name}: strided or dilated Conv1D")
    pl, pr = a.get("pad_left", 0), a.get("pad_right", 0)
    acc_t, res_t = layer.type("accum_t"), layer.result_type()
    m, wt = _matrix(layer, acc_t, x.type, (1, 2, 0))
    b, bt = _bias(layer)
    if pl or pr:  # zeros are codes 0: pad the codes themselves (not QuantizeLinear's uint8)
        src = g.op("Pad", g.op("Reshape", _as_double(g, x), g.const([-1, width, n_chan], np.int64)),
                   g.const([0, pl, 0, 0, pr, 0], np.int64))
        width += pl + pr
        rows = Value(src, x.type, (width, n_chan), min(x.lo, 0.0), max(x.hi, 0.0))
    else:
        rows = Value(g.op("Reshape", x.name, g.const([-1, width, n_chan], np.int64)), x.type, (width, n_chan),
                     x.lo, x.hi, x.dtype)
    total, bound = None, _extent(x) * m.col_bound
    for j in range(k):
        block = m.codes[j * n_chan:(j + 1) * n_chan]
        s, _ = product(g, rows, block, float(np.abs(block).sum(axis=0).max(initial=0)))
        tap = g.op("Slice", s, g.const([j], np.int64), g.const([j + out_w], np.int64), g.const([1], np.int64))
        total = tap if total is None else g.op("Add", total, tap)
    if bound >= EXACT:
        raise NotLowered("a product past float64's exact range")
    return _shaped(_dense_finish(g, layer, x, total, bound, b, bt, acc_t, res_t, wt), (out_w, n_filt))


def apply_alpha(g: Graph, layer: Layer, x: Value) -> Value:
    """x * scale + bias in units of 2**-frac, then the cast (kernels.apply_alpha)."""
    s, st = layer.weight("scale")
    b, bt = layer.weight("bias")
    n = int(np.prod(x.shape))
    s = np.broadcast_to(s.reshape(-1), (n,)) if s.size in (1, n) else np.resize(s.reshape(-1), n)
    b = np.broadcast_to(b.reshape(-1), (n,)) if b.size in (1, n) else np.resize(b.reshape(-1), n)
    prod_frac = x.type.fractional + st.fractional
    frac = max(prod_frac, bt.fractional)
    scale = s.astype(np.float64) * 2.0 ** (frac - prod_frac)
    bias = b.astype(np.float64) * 2.0 ** (frac - bt.fractional)
    v = g.op("Reshape", _as_double(g, x), g.const([-1, n], np.int64))
    bound = _extent(x) * float(np.abs(scale).max(initial=0))
    if not np.all(scale == 1.0):
        v = g.op("Mul", v, g.const(scale))
    v = g.op("Add", v, g.const(bias))
    lo, hi = -bound + float(bias.min(initial=0)), bound + float(bias.max(initial=0))
    if bound + float(np.abs(bias).max(initial=0)) >= EXACT:
        raise NotLowered("ApplyAlpha past float64's exact range")
    return _shaped(cast(g, v, frac, lo, hi, layer.result_type()), layer.output_shape or x.shape)


def _as_double(g: Graph, x: Value) -> str:
    if x.dtype == "double":
        return x.name
    if x.dtype == "uint8":  # QuantizeLinear's codes, zero point 128
        return g.op("Sub", g.op("Cast", x.name, to=11), g.const(128.0))
    return g.op("Cast", x.name, to=11)


def recast(g: Graph, x: Value, t: FixedType, lo: float | None = None) -> Value:
    """kernels' recast: free on the same grid when t holds every code."""
    lo = x.lo if lo is None else lo
    if x.type.fractional == t.fractional and t.lowest_code <= lo and x.hi <= t.max_code:
        return Value(x.name, t, x.shape, lo, x.hi, x.dtype)
    return _shaped(cast(g, _as_double(g, x), x.type.fractional, lo, x.hi, t), x.shape)


def activation(g: Graph, layer: Layer, x: Value) -> Value:
    kind = layer.attributes.get("activation", "linear").lower()
    res_t = layer.result_type()
    if kind == "relu":
        v = Value(g.op("Relu", _as_double(g, x)), x.type, x.shape, max(x.lo, 0.0), max(x.hi, 0.0))
        return recast(g, v, res_t)
    if kind == "linear":
        return recast(g, x, res_t)
    if kind not in ("sigmoid", "tanh"):
        raise NotLowered(f"activation {kind}")
    n = int(layer.attributes.get("table_size", 1024))
    r2 = 16 if kind == "sigmoid" else 8
    if x.type.fractional < 0 or n & (n - 1):
        raise NotLowered("table index that is not a power-of-two scale")
    table_t = layer.type("table_t")
    table = requantize(activation_table(layer.cache, kind, table_t, n), table_t.fractional, res_t)
    # int(x * n / r2) + n / 2, toward zero, clamped (kernels.activation, tables.float_table_index)
    scaled = g.op("Mul", _as_double(g, x), g.const(n / float(r2 << x.type.fractional)))
    trunc = g.op("Mul", g.op("Sign", scaled), g.op("Floor", g.op("Abs", scaled)))
    offset = (8 if kind == "sigmoid" else 4) * n // r2
    index = g.op("Clip", g.op("Add", trunc, g.const(float(offset))), g.const(0.0), g.const(float(n - 1)))
    out = g.op("Gather", g.const(table.astype(np.float64)), g.op("Cast", index, to=7))  # 7: int64
    return Value(out, res_t, x.shape, float(table.min(initial=0)), float(table.max(initial=0)))


def pool1d(g: Graph, layer: Layer, x: Value) -> Value:
    a = layer.attributes
    n_in, n_filt, n_out, pw, stride = a["n_in"], a["n_filt"], a["n_out"], a["pool_width"], a["stride_width"]
    if a.get("pad_left", 0) or a.get("pad_right", 0) or a.get("pool_op", "Max") != "Max":
        raise NotLowered(f"{layer.name}: padded or average pooling")
    acc_t = layer.type("accum_t") if layer.types.get("accum_t") else x.type
    acc = recast(g, _shaped(x, (n_in, n_filt)), acc_t)
    src = g.op("Reshape", _as_double(g, acc), g.const([-1, n_in, n_filt], np.int64))
    taps = [g.op("Slice", src, g.const([j], np.int64), g.const([j + stride * (n_out - 1) + 1], np.int64),
                 g.const([1], np.int64), g.const([stride], np.int64)) for j in range(pw)]
    best = taps[0] if pw == 1 else g.op("Max", *taps)
    return recast(g, Value(best, acc_t, (n_out, n_filt), acc.lo, acc.hi), layer.result_type())


def _table_index(g: Graph, v: str, t: FixedType, size: int) -> str:
    """tables.idx_from_codes: the top ceil(log2(size)) bits of the code's two's complement."""
    n = index_bits(size)
    raw = v
    if t.signed:  # the two's complement as an unsigned number: code mod 2**W
        span = 2.0 ** t.width
        raw = g.op("Sub", v, g.op("Mul", g.op("Floor", g.op("Mul", v, g.const(1.0 / span))), g.const(span)))
    return g.op("Cast", g.op("Floor", g.op("Mul", raw, g.const(2.0 ** -(t.width - n)))), to=7)


def softmax(g: Graph, layer: Layer, x: Value) -> Value:
    """The stable softmax (kernels.softmax); its adder tree is one sum when no partial sum
    can leave the accumulator type, else not lowered."""
    if layer.attributes.get("implementation", "stable") != "stable":
        raise NotLowered("softmax other than stable")
    norm_t, exp_t = layer.type("inp_norm_t"), layer.type("exp_table_t")
    inv_inp_t, inv_t = layer.type("inv_inp_t"), layer.type("inv_table_t")
    acc_t, res_t = layer.type("accum_t"), layer.result_type()
    exp_table, inv_table = _softmax_tables(layer)
    n = int(np.prod(x.shape))
    v = g.op("Reshape", _as_double(g, x), g.const([-1, n], np.int64))
    d = g.op("Sub", g.op("ReduceMax", v, axes=[1], keepdims=1), v)
    d = cast(g, d, x.type.fractional, 0.0, x.hi - x.lo, norm_t)
    exp_acc = requantize(exp_table, exp_t.fractional, acc_t).astype(np.float64)  # per value: commutes with the lookup
    e = g.op("Gather", g.const(exp_acc), _table_index(g, d.name, norm_t, len(exp_table)))
    lo, hi = float(exp_acc.min(initial=0)), float(exp_acc.max(initial=0))
    if n * max(abs(lo), abs(hi)) > min(acc_t.max_code, -acc_t.min_code if acc_t.signed else acc_t.max_code):
        raise NotLowered("a softmax sum that can overflow its accumulator")
    s = g.op("ReduceSum", e, g.const([1], np.int64), keepdims=1)
    s = cast(g, s, acc_t.fractional, n * min(lo, 0.0), n * max(hi, 0.0), inv_inp_t)
    inv = g.op("Gather", g.const(inv_table.astype(np.float64)), _table_index(g, s.name, inv_inp_t, len(inv_table)))
    bound = max(abs(lo), abs(hi)) * float(np.abs(inv_table).max(initial=0))
    out = cast(g, g.op("Mul", e, inv), acc_t.fractional + inv_t.fractional, -bound, bound, res_t)
    return _shaped(out, x.shape)


def reshape(g: Graph, layer: Layer, x: Value) -> Value:
    return recast(g, _shaped(x, layer.output_shape), layer.result_type())


def transpose(g: Graph, layer: Layer, x: Value) -> Value:
    perm = layer.attributes["perm"]
    src = g.op("Reshape", x.name, g.const([-1, *x.shape], np.int64))
    out = g.op("Transpose", src, perm=[0] + [p + 1 for p in perm])
    return Value(out, x.type, tuple(x.shape[p] for p in perm), x.lo, x.hi, x.dtype)


LOWER = {"Dense": dense, "Conv1D": conv1d, "ApplyAlpha": apply_alpha, "BatchNormalization": apply_alpha,
         "Activation": activation, "ReLU": activation, "Pooling1D": pool1d, "Softmax": softmax,
         "Reshape": reshape, "Transpose": transpose, "Clone": lambda g, layer, x: x}
