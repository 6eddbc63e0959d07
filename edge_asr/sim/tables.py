"""Lookup tables of hls4ml's table-based activations, computed as its C++ computes them.

hls4ml fills its softmax tables at start-up in float32: exp table entry i is
exp_table_t(std::exp(-x_i)) and inverse table entry i is inv_table_t(1.0f / x_i), where
x_i is the value whose top log2(size) bits are i and whose other bits are 0. std::exp on
a float is the C library's expf, so expf is called through ctypes where the C library is
found (glibc, as the C simulation and HLS use); otherwise numpy's float32 exp, which can
differ from expf in the last bit for a few inputs.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

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
