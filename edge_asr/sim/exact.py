"""Exact integer arithmetic of the Dense and Conv kernels, on BLAS where it stays exact.

hls4ml's DenseLatency/DenseResource kernels cast each product into the accumulator type
before they sum, then cast the sum into the result type. With an accumulator that wraps
and is wide enough for every product's fractional bits, that equals one matrix product of
the integer codes followed by one wrap and one cast. Integer arithmetic is exact in
float64 while magnitudes stay below 2**52, so the matrix product runs on BLAS when the
types' code ranges bound every partial sum below that (checked from the types, with no
pass over the data), and on int64 otherwise. Where the bound is below 2**24, float32 is
exact too and its matrix product takes half the time: narrow designs (the shipped 10-bit
one, 8-bit MLPs) run there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SimError
from .fixed import FixedType, edges_known, overflow, requantize

EXACT = 2 ** 52
EXACT32 = 2 ** 24


@dataclass(frozen=True)
class Matrix:
    """A weight matrix (n_in, n_out) of integer codes, with the float64 (and, where exact,
    float32) copies BLAS multiplies and the largest column sum of magnitudes (the bound of
    a product's partial sums)."""

    codes: np.ndarray
    f64: np.ndarray
    col_bound: float
    f32: np.ndarray | None = None
    f32_wide: np.ndarray | None = None  # f32 with zero columns up to 16, for narrow layers

    @classmethod
    def of(cls, codes: np.ndarray) -> "Matrix":
        """A Matrix of integer codes (n_in, n_out), its float64 copy and bound made once."""
        codes = np.ascontiguousarray(codes, dtype=np.int64)
        codes.flags.writeable = False
        f64 = codes.astype(np.float64)
        f64.flags.writeable = False
        col_bound = float(np.abs(codes).sum(axis=0).max(initial=0))
        f32 = None
        if col_bound < EXACT32:  # every code, and every partial sum of codes, exact in float32
            f32 = codes.astype(np.float32)
            f32.flags.writeable = False
        wide = None
        if f32 is not None and 8 < codes.shape[1] < 16:
            # OpenBLAS's float32 product is 1.4x faster with 16 columns than with 14
            # (2,000 x 1,274 rows on this project's machine: 0.94 against 1.30 ms); the
            # zero columns are dropped from the result
            wide = np.zeros((codes.shape[0], 16), np.float32)
            wide[:, :codes.shape[1]] = f32
            wide.flags.writeable = False
        return cls(codes, f64, col_bound, f32, wide)


def max_abs_code(t: FixedType) -> float:
    """The largest magnitude a code of type t can have."""
    return float(max(abs(t.min_code), abs(t.max_code)))


def product_dtype(m: Matrix, a_type: FixedType):
    """The float type in which products with m of codes of a_type are exact: float32 when
    every partial sum stays below 2**24, float64 below 2**52, else None (int64)."""
    bound = max_abs_code(a_type) * m.col_bound
    if bound < EXACT32 and m.f32 is not None:
        return np.float32
    return np.float64 if bound < EXACT else None


def exact_matmul(a: np.ndarray, m: Matrix, a_type: FixedType) -> np.ndarray:
    """Integer matrix product a @ m, on BLAS (float32 or float64, `product_dtype`) when
    every partial sum stays exact, else on int64.

    `a` holds codes of `a_type` (int64, or floats holding integers); the bound comes from
    the type's code range. The result is float32, float64 or int64, integers all.
    """
    dtype = product_dtype(m, a_type)
    if dtype is None:
        return a.astype(np.int64) @ m.codes
    if dtype is np.float32 and m.f32_wide is not None:
        return (a.astype(dtype, copy=False) @ m.f32_wide)[:, :m.codes.shape[1]]
    return a.astype(dtype, copy=False) @ (m.f32 if dtype is np.float32 else m.f64)


def dense_codes(x_codes: np.ndarray, x_type: FixedType, m: Matrix, wt: FixedType, b: np.ndarray | None,
                bt: FixedType | None, acc_t: FixedType) -> tuple[np.ndarray, int]:
    """hls4ml's DenseLatency/DenseResource arithmetic. x_codes (N, n_in), m (n_in, n_out).

    Returns accumulator codes (N, n_out) with acc_t's fractional bits.
    """
    prod_frac = x_type.fractional + wt.fractional
    n_out = m.codes.shape[1]
    acc0 = requantize(b, bt.fractional, acc_t) if b is not None else np.zeros(n_out, dtype=np.int64)
    if acc_t.fractional >= prod_frac and acc_t.saturation == "AP_WRAP":
        # every product fits the accumulator's lsb; wrapping sums are modular, so one wrap at
        # the end equals a wrap after every addition. Overflow of a single product into the
        # accumulator type also wraps, which the same final wrap covers.
        shift = acc_t.fractional - prod_frac
        s = exact_matmul(x_codes, m, x_type)
        if max(abs(s.max(initial=0)), abs(s.min(initial=0))) >= (1 << (62 - shift)):
            raise SimError("accumulator sum exceeds exact int64 range")
        s = s.astype(np.int64)
        if shift:
            s <<= shift
        s += acc0[None, :]
        return overflow(s, acc_t), acc_t.fractional
    # General path: each product is cast into accum_t, then summed in order ii = 0..n_in-1
    # with the accumulator's overflow mode applied after every addition.
    acc = np.broadcast_to(acc0, (x_codes.shape[0], n_out)).copy()
    xc = x_codes.astype(np.int64)
    for ii in range(m.codes.shape[0]):
        p = xc[:, ii:ii + 1] * m.codes[ii][None, :]
        acc = overflow(acc + requantize(p, prod_frac, acc_t), acc_t)
    return acc, acc_t.fractional


# result overflow modes the float path handles: saturation is a clip; a wrapping result
# type is taken only when no value leaves its range (finish_float checks the bounds and
# hands anything else to the integer path)
FLOAT_SATURATION = ("AP_SAT", "AP_SAT_SYM", "AP_WRAP")


@dataclass(frozen=True)
class FloatPlan:
    """How a Dense/Conv layer's accumulate-and-cast runs in float64 (see `float_plan`)."""

    shift: int                 # product lsb -> accumulator lsb
    drop: int                  # accumulator lsb -> result lsb
    bias: np.ndarray | None    # the bias in product units (float64), or None
    wrap_check: bool           # the types allow a wrap: check the sums before trusting them
    acc_t: FixedType
    res_t: FixedType


def float_plan(x_type: FixedType, m: Matrix, wt: FixedType, b: np.ndarray | None, bt: FixedType | None,
               acc_t: FixedType, res_t: FixedType) -> FloatPlan | None:
    """The plan of the common case, in which dense_codes and the cast to res_t run in
    float64; None when the case is not common (then the integer path runs).

    Exact because every value is an integer multiple of a power of two below 2**52 in
    magnitude (checked from the types' code ranges, no pass over the data): the matrix
    product is exact on BLAS (so is any split of it into partial products), scaling by a
    power of two is exact, np.rint is half-to-even (AP_RND_CONV), np.floor is AP_TRN,
    floor(v + 0.5) is AP_RND, and clipping is AP_SAT. The accumulator must be a wrapping
    type that every sum fits without wrapping (`finish_float` checks when the types allow one)."""
    prod_frac = x_type.fractional + wt.fractional
    shift = acc_t.fractional - prod_frac          # product lsb -> accumulator lsb (exact products)
    drop = acc_t.fractional - res_t.fractional    # accumulator lsb -> result lsb
    if shift < 0 or acc_t.saturation != "AP_WRAP" or not _float_cast(res_t, 0.0, drop):
        return None
    acc0 = requantize(b, bt.fractional, acc_t) if b is not None else None
    bound = (max_abs_code(x_type) * m.col_bound * 2.0 ** shift
             + (float(np.abs(acc0).max(initial=0)) if acc0 is not None else 0.0))
    if not _float_cast(res_t, bound, drop):
        return None
    bias = np.ldexp(acc0.astype(np.float64), -shift) if acc0 is not None else None
    return FloatPlan(shift, drop, bias, bound > acc_t.max_code or -bound < acc_t.min_code, acc_t, res_t)


def cast_plan(bound: float, frac: int, bias: np.ndarray | None, res_t: FixedType) -> FloatPlan | None:
    """The plan of a cast to res_t of exact values with `frac` fractional bits, held in
    float64 as integers up to `bound` in magnitude (bias, in the same units, still to be
    added), with no accumulator in between (nnet::normalize's x * scale + bias); None
    when it cannot run exactly in float64 (see float_plan)."""
    drop = frac - res_t.fractional
    if not _float_cast(res_t, bound, drop):
        return None
    return FloatPlan(0, drop, bias, False, res_t, res_t)  # no accumulator, so nothing to wrap-check


def _float_cast(res_t: FixedType, bound: float, drop: int) -> bool:
    """Whether values up to `bound` in magnitude, `drop` bits finer than res_t, cast to it
    exactly in float64: a rounding mode numpy has, an overflow mode finish_float handles,
    and every value (scaled up where drop < 0) below 2**52."""
    return (res_t.rounding in ("AP_TRN", "AP_RND_CONV", "AP_RND") and res_t.saturation in FLOAT_SATURATION
            and bound < EXACT and bound * 2.0 ** max(0, -drop) < EXACT)


def _round(a: np.ndarray, mode: str) -> None:
    """Round values in result units, in place, by the result type's mode (see float_plan)."""
    if mode == "AP_RND_CONV":
        np.rint(a, out=a)
    elif mode == "AP_RND":
        a += 0.5
        np.floor(a, out=a)
    else:
        np.floor(a, out=a)


def cast_bounds(bounds: np.ndarray, plan: FloatPlan) -> tuple[float, float, int | None] | None:
    """The result's bounds from the exact sums' smallest and largest (product units, bias
    added), by the steps the values take (scaling and rounding are monotone): (lo, hi
    before any clip, the edge count they tell, `edges_known`), or None when the
    accumulator or a wrapping result type would wrap."""
    acc_t, res_t = plan.acc_t, plan.res_t
    if plan.wrap_check:  # the types allow a wrap: does one happen?
        scale = 2.0 ** plan.shift
        if bounds[1] * scale > acc_t.max_code or bounds[0] * scale < acc_t.min_code:
            return None
    bounds = np.array(bounds, dtype=np.float64)
    if plan.shift != plan.drop:
        bounds *= 2.0 ** (plan.shift - plan.drop)
    if plan.drop > 0:
        _round(bounds, res_t.rounding)
    lo, hi = float(bounds[0]), float(bounds[1])
    if (lo < res_t.lowest_code or hi > res_t.max_code) and res_t.saturation == "AP_WRAP":
        return None
    return lo, hi, edges_known(max(lo, res_t.lowest_code), min(hi, res_t.max_code), res_t)


def finish_float(s: np.ndarray, plan: FloatPlan) -> tuple[np.ndarray, int | None] | None:
    """The exact matrix product s (product units, float32 or float64; a float64 one is
    changed in place) -> (result codes of plan.res_t held in float64, which the next matrix
    product takes so; what their bounds tell of the values at the type's edges, see
    `edges_known`), or None when the accumulator or a wrapping result type would wrap
    (then the integer path runs)."""
    s = s.astype(np.float64, copy=False)  # a float32 product is exact, not what follows
    if plan.bias is not None:
        s += plan.bias
    if not s.size:
        return s, 0
    # the extremes, once: the wrap check and the result's bounds, so that clipping and
    # counting the edges run only when needed
    settled = cast_bounds([s.min(), s.max()], plan)
    if settled is None:
        return None
    if plan.shift != plan.drop:
        s *= 2.0 ** (plan.shift - plan.drop)  # result units
    if plan.drop > 0:
        _round(s, plan.res_t.rounding)
    lo, hi, edges = settled
    res_t = plan.res_t
    if lo < res_t.lowest_code or hi > res_t.max_code:
        np.clip(s, res_t.lowest_code, res_t.max_code, out=s)
    return s, edges


_MAKE_PLAN = object()


def dense_result(x_codes: np.ndarray, x_type: FixedType, m: Matrix, wt: FixedType, b: np.ndarray | None,
                 bt: FixedType | None, acc_t: FixedType, res_t: FixedType,
                 plan: FloatPlan | None = _MAKE_PLAN) -> tuple[np.ndarray, int | None]:
    """A Dense/Conv layer's result codes in res_t (int64, or float64 holding integers):
    accumulate as hls4ml does, then cast. With them, 0 when their bounds show that none
    is at the type's edges, else None (`edges_known`). `plan`: the layer's float_plan
    when the caller keeps it (made here otherwise)."""
    if plan is _MAKE_PLAN:
        plan = float_plan(x_type, m, wt, b, bt, acc_t, res_t)
    if plan is not None:
        done = finish_float(exact_matmul(x_codes, m, x_type), plan)
        if done is not None:
            return done
    acc, frac = dense_codes(x_codes, x_type, m, wt, b, bt, acc_t)
    return requantize(acc, frac, res_t), None


def shifted_products(codes: np.ndarray, m: Matrix, x_type: FixedType, k: int) -> np.ndarray:
    """The stride-1 convolution's matrix product without im2col: one product of all rows
    with each tap's (n_chan, n_filt) block, added in at the tap's offset. Same sums as the
    windows' product (exact: every partial sum is bounded by the whole one's bound), but
    no copy of the input k times over. codes (N, width, n_chan), floats -> (N, out_w,
    n_filt), float32 or float64 (`product_dtype`; a float_plan ensures one of them), a
    view of a larger array."""
    n, width, n_chan = codes.shape
    dtype = product_dtype(m, x_type)
    w = m.f32 if dtype is np.float32 else m.f64
    # one copy that casts and, after a Transpose, makes the rows contiguous (astype keeps
    # the transposed layout, and the reshape would copy a second time)
    rows = np.ascontiguousarray(codes, dtype=dtype).reshape(n * width, n_chan)
    valid = n * width - (k - 1)                   # rows whose window lies inside the array
    # row n * width + t holds output t of input n for t < out_w; the rest straddle two
    # inputs and are never read
    full = np.empty((n * width, w.shape[1]), dtype=dtype)
    np.matmul(rows[:valid], w[:n_chan], out=full[:valid])
    for j in range(1, k):
        full[:valid] += rows[j:j + valid] @ w[j * n_chan:(j + 1) * n_chan]
    return full.reshape(n, width, -1)[:, :width - k + 1]


def recast(codes: np.ndarray, src: FixedType, t: FixedType, lowest: int | None = None) -> np.ndarray:
    """Codes of type src -> type t. On the same grid (the common ReLU/pooling case) this is
    free when t holds every code the values can have (from `lowest`, default src's
    smallest, up to src's largest), and a clip (keeping the codes' dtype) when t saturates;
    otherwise requantize."""
    if src.fractional == t.fractional:
        lowest = src.min_code if lowest is None else lowest
        if t.lowest_code <= lowest and src.max_code <= t.max_code:
            return codes
        if t.saturation in ("AP_SAT", "AP_SAT_SYM"):
            return np.clip(codes, t.lowest_code, t.max_code)
    return requantize(codes, src.fractional, t)
