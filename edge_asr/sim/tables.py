"""Lookup tables of hls4ml's table-based activations, computed as its C++ computes them.

hls4ml fills its softmax tables at start-up in float32: exp table entry i is
exp_table_t(std::exp(-x_i)) and inverse table entry i is inv_table_t(1.0f / x_i), where
x_i is the value whose top log2(size) bits are i and whose other bits are 0. std::exp on
a float is the C library's expf, so expf is called through ctypes where the C library is
found (glibc, as the C simulation and HLS use); otherwise numpy's float32 exp, which can
differ from expf in the last bit for a few inputs.

The lookups themselves run here too where they are exact on float codes: tanh and sigmoid
by input code (`code_indexed_table`), and the stable softmax (`float_softmax`); the
integer kernels in `kernels` hold them to account (tests/test_sim_fast.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

from .exact import cast_plan, finish_float
from .fixed import FixedType, quantize, requantize

_EXPF = None


def _expf():
    global _EXPF
    if _EXPF is None:
        name = ctypes.util.find_library("m")
        try:
            lib = ctypes.CDLL(name or "libm.so.6")
            fn = lib.expf
            fn.restype = ctypes.c_float
            fn.argtypes = [ctypes.c_float]
            _EXPF = fn
        except OSError:
            _EXPF = False
    return _EXPF


def expf(x: np.ndarray) -> np.ndarray:
    """float32 exp as the C library's expf computes it (numpy's if no libm is found)."""
    x = np.asarray(x, dtype=np.float32)
    fn = _expf()
    if not fn:
        return np.exp(x)
    return np.array([fn(float(v)) for v in x.ravel()], dtype=np.float32).reshape(x.shape)


def index_bits(size: int) -> int:
    """Bits of a table index: ceil(log2(size))."""
    return int(np.ceil(np.log2(size)))


def real_val_from_idx(t: FixedType, size: int) -> np.ndarray:
    """float32 value of type t whose top ceil(log2(size)) bits are the index (rest zero)."""
    n = index_bits(size)
    raw = np.arange(size, dtype=np.int64) << (t.width - n)
    if t.signed:
        raw = np.where(raw >= (1 << (t.width - 1)), raw - (1 << t.width), raw)
    return np.ldexp(raw.astype(np.float64), -t.fractional).astype(np.float32)


def idx_from_codes(codes: np.ndarray, t: FixedType, size: int) -> np.ndarray:
    """hls4ml's softmax_idx_from_real_val: the top ceil(log2(size)) raw bits of the code."""
    n = index_bits(size)
    raw = np.asarray(codes, dtype=np.int64) & ((1 << t.width) - 1)
    return (raw >> (t.width - n)) & ((1 << n) - 1)


def softmax_exp_table(inp_t: FixedType, table_t: FixedType, size: int, negative: bool, scale: float = 1.0) -> np.ndarray:
    """The softmax exp table (codes of table_t), entry i the exp of the input value whose top bits are i."""
    x = real_val_from_idx(inp_t, size) * np.float32(scale)
    if negative:
        x = -x
    return quantize(expf(x).astype(np.float64), table_t)


def softmax_inv_table(inp_t: FixedType, table_t: FixedType, size: int) -> np.ndarray:
    """The softmax inverse table (codes of table_t), entry 0 saturated."""
    x = real_val_from_idx(inp_t, size)
    with np.errstate(divide="ignore"):
        inv = np.float32(1.0) / x
    # entry 0 is 1/0 = inf in C++; the sum of exponentials is never that small. Saturate it.
    inv = np.where(np.isinf(inv), table_t.max_value, inv)
    return quantize(inv.astype(np.float64), table_t)


def _libm(name: str):
    fn = getattr(ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6"), name)
    return fn


def activation_inputs(size: int, half_range: float) -> np.ndarray:
    """hls4ml's table abscissae: float(2 * R * (i - N / 2.0) / N), computed in double."""
    i = np.arange(size, dtype=np.float64)
    return (2 * half_range * (i - size / 2.0) / size).astype(np.float32)


def sigmoid_table(table_t: FixedType, size: int) -> np.ndarray:
    """init_sigmoid_table: 1.0 / (1 + expf(-x)); the sum in float, the division in double."""
    x = activation_inputs(size, 8.0)
    e = expf(-x)
    d = (np.float32(1) + e).astype(np.float32)
    r = (1.0 / d.astype(np.float64)).astype(np.float32)
    return quantize(r.astype(np.float64), table_t)


def tanh_table(table_t: FixedType, size: int) -> np.ndarray:
    """init_tanh_table: tanh of the float abscissa (float tanhf, as C++ picks for a float)."""
    x = activation_inputs(size, 4.0)
    try:
        fn = _libm("tanhf")
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
        y = np.array([fn(float(v)) for v in x], dtype=np.float32)
    except (OSError, AttributeError):
        y = np.tanh(x)
    return quantize(y.astype(np.float64), table_t)


def softmax_tables(types: dict[str, FixedType], attributes: dict) -> tuple[np.ndarray, np.ndarray]:
    """The stable softmax's exp and inverse tables, as hls4ml's C++ fills them, from the
    layer's types (inp_norm_t, exp_table_t, inv_inp_t, inv_table_t) and attributes."""
    exp_size = int(attributes.get("exp_table_size", attributes.get("table_size", 1024)))
    inv_size = int(attributes.get("inv_table_size", attributes.get("table_size", 1024)))
    exp = softmax_exp_table(types["inp_norm_t"], types["exp_table_t"], exp_size, negative=True,
                            scale=float(attributes.get("exp_scale", 1.0)))
    inv = softmax_inv_table(types["inv_inp_t"], types["inv_table_t"], inv_size)
    return exp, inv


def float_table_index(codes: np.ndarray, x_type: FixedType, n: int, r2: int, offset: int) -> np.ndarray | None:
    """hls4ml's table index, int(x * n / r2) + offset clamped to the table, from codes held
    in floats; None unless n / (r2 * 2**F) is a power of two, where the scaled code is
    exact in any float and trunc rounds toward zero as the C++ conversion to int does."""
    if x_type.fractional < 0 or x_type.width > 52 or n & (n - 1) or r2 & (r2 - 1):
        return None
    scaled = codes * (n / float(r2 << x_type.fractional))  # exact: a power of two
    np.trunc(scaled, out=scaled)
    scaled += offset
    np.clip(scaled, 0, n - 1, out=scaled)
    return scaled.astype(np.intp)


def activation_table(cache: dict, kind: str, table_t: FixedType, n: int) -> np.ndarray:
    """The sigmoid or tanh table of n entries of table_t, made once (kept in `cache`, a layer's)."""
    key = ("table", kind, n)
    if key not in cache:
        cache[key] = sigmoid_table(table_t, n) if kind == "sigmoid" else tanh_table(table_t, n)
    return cache[key]


def cast_table(cache: dict, kind: str, table: np.ndarray, table_t: FixedType, res_t: FixedType):
    """An activation table cast to res_t, as float64 codes (what the next product takes),
    and 0 when none of them is at res_t's edges (else None: count them); made once (kept in
    `cache`, a layer's)."""
    key = ("cast table", kind, len(table), res_t)
    if key not in cache:
        codes = requantize(table, table_t.fractional, res_t)
        edge = (codes == res_t.max_code) | (res_t.signed & (codes == res_t.min_code))
        cache[key] = (codes.astype(np.float64), None if edge.any() else 0)
    return cache[key]


def code_indexed_table(cache: dict, kind: str, cast: np.ndarray, x_type: FixedType, n: int, r2: int,
                       offset: int) -> np.ndarray | None:
    """The cast table (`cast_table`) looked up once for every code of x_type, in two's
    complement order, so that a code (negative ones counting from the end, as numpy
    indexes) is its own index: one lookup per value instead of the index's scale, trunc,
    offset and clip. Made once per layer and input type; None for types over 16 bits (a
    table past 512 KiB) or where float_table_index does not apply."""
    key = ("code table", kind, len(cast), x_type)
    if key not in cache:
        full = None
        if x_type.width <= 16:
            codes = np.arange(1 << x_type.width, dtype=np.float64)
            if x_type.signed:
                codes[codes > x_type.max_code] -= 1 << x_type.width
            index = float_table_index(codes, x_type, n, r2, offset)
            full = cast[index] if index is not None else None
        cache[key] = full
    return cache[key]


def float_softmax(codes: np.ndarray, x_type: FixedType, types: dict[str, FixedType], exp_table: np.ndarray,
                  inv_table: np.ndarray, cache: dict) -> np.ndarray | None:
    """hls4ml's stable softmax on float codes (batch, n), exactly as the integer kernel
    computes it, or None where that does not hold (then the integer kernel runs). Each
    step's values are integers below 2**52 (checked from bounds); x_max - x is never
    negative, so its cast and the sum's stay non-negative unless a type wraps (refused by
    finish_float), and a table index (the code's top bits) is a power-of-two scale and a
    floor. The adder tree equals one sum when no partial sum can leave accum_t."""
    norm_t, exp_t, inv_inp_t = types["inp_norm_t"], types["exp_table_t"], types["inv_inp_t"]
    inv_t, acc_t, res_t = types["inv_table_t"], types["accum_t"], types["result_t"]
    key = ("softmax plan", x_type, codes.shape[1])
    if key not in cache:
        exp_acc = requantize(exp_table, exp_t.fractional, acc_t).astype(np.float64)  # per value: commutes
        top = float(exp_acc.max(initial=0))
        plans = (cast_plan(float(x_type.max_code) - x_type.min_code, x_type.fractional, None, norm_t),
                 cast_plan(codes.shape[1] * top, acc_t.fractional, None, inv_inp_t),
                 cast_plan(top * float(np.abs(inv_table).max(initial=0)), acc_t.fractional + inv_t.fractional,
                           None, res_t))
        ok = exp_acc.min(initial=0) >= 0 and codes.shape[1] * top <= acc_t.max_code and all(plans)
        cache[key] = (exp_acc, inv_table.astype(np.float64), plans) if ok else None
    if cache[key] is None:
        return None
    exp_acc, inv, (norm_plan, sum_plan, out_plan) = cache[key]
    d = codes.max(axis=1, keepdims=True) - codes.astype(np.float64, copy=False)  # a new array either way
    done = finish_float(d, norm_plan)
    if done is None:
        return None
    e = exp_acc[_top_bits(done[0], norm_t, len(exp_table))]
    done = finish_float(e.sum(axis=1), sum_plan)
    if done is None:
        return None
    e *= inv[_top_bits(done[0], inv_inp_t, len(inv_table))][:, None]
    done = finish_float(e, out_plan)
    return None if done is None else done[0]


def _top_bits(codes: np.ndarray, t: FixedType, size: int) -> np.ndarray:
    """idx_from_codes for non-negative float codes: the top bits are a scale and a floor."""
    return (codes * 2.0 ** -(t.width - index_bits(size))).astype(np.intp)


def reduce_add(values: list[np.ndarray], t: FixedType, frac: int) -> np.ndarray:
    """hls4ml's reduce<T, N, Op_add<T>>: a binary tree, each addition cast to T."""
    n = len(values)
    if n == 1:
        return values[0]
    if n == 2:
        return requantize(values[0] + values[1], frac, t)
    left = 1 << int(np.floor(np.log2(n - 1)))
    return requantize(reduce_add(values[:left], t, frac) + reduce_add(values[left:], t, frac), frac, t)
