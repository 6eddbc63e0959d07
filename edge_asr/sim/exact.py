"""Exact integer arithmetic of the Dense and Conv kernels, on BLAS where it stays exact.

hls4ml's DenseLatency/DenseResource kernels cast each product into the accumulator type
before they sum, then cast the sum into the result type. With an accumulator that wraps
and is wide enough for every product's fractional bits, that equals one matrix product of
the integer codes followed by one wrap and one cast. Integer arithmetic is exact in
float64 while magnitudes stay below 2**52, so the matrix product runs on BLAS when the
types' code ranges bound every partial sum below that (checked from the types, with no
pass over the data), and on int64 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SimError
from .fixed import FixedType, overflow, requantize

EXACT = 2 ** 52


@dataclass(frozen=True)
class Matrix:
    """A weight matrix (n_in, n_out) of integer codes, with the float64 copy BLAS multiplies
    and the largest column sum of magnitudes (the bound of a product's partial sums)."""

    codes: np.ndarray
    f64: np.ndarray
    col_bound: float

    @classmethod
    def of(cls, codes: np.ndarray) -> "Matrix":
        """A Matrix of integer codes (n_in, n_out), its float64 copy and bound made once."""
        codes = np.ascontiguousarray(codes, dtype=np.int64)
        codes.flags.writeable = False
        f64 = codes.astype(np.float64)
        f64.flags.writeable = False
        return cls(codes, f64, float(np.abs(codes).sum(axis=0).max(initial=0)))


def max_abs_code(t: FixedType) -> float:
    """The largest magnitude a code of type t can have."""
    return float(max(abs(t.min_code), abs(t.max_code)))


def exact_matmul(a: np.ndarray, m: Matrix, a_type: FixedType) -> np.ndarray:
    """Integer matrix product a @ m, on BLAS (float64) when every partial sum stays below 2**52.

    `a` holds codes of `a_type` (int64, or float64 holding integers: the convolution windows
    are built so); the bound comes from the type's code range.
    """
    if max_abs_code(a_type) * m.col_bound < EXACT:
        return (a if a.dtype == np.float64 else a.astype(np.float64)) @ m.f64
    return a.astype(np.int64) @ m.codes


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


def _dense_float(x_codes: np.ndarray, x_type: FixedType, m: Matrix, wt: FixedType, b: np.ndarray | None,
                 bt: FixedType | None, acc_t: FixedType, res_t: FixedType) -> np.ndarray | None:
    """dense_codes followed by the cast to res_t, all in float64, for the common case; None
    when the case is not common (then the integer path runs).

    Exact because every value is an integer multiple of a power of two below 2**52 in
    magnitude (checked from the types' code ranges, no pass over the data): the matrix
    product is exact on BLAS, scaling by a power of two is exact, np.rint is half-to-even
    (AP_RND_CONV), np.floor is AP_TRN, floor(v + 0.5) is AP_RND, and clipping is AP_SAT.
    The accumulator must be a wrapping type that every sum fits without wrapping."""
    prod_frac = x_type.fractional + wt.fractional
    shift = acc_t.fractional - prod_frac          # product lsb -> accumulator lsb (exact products)
    drop = acc_t.fractional - res_t.fractional    # accumulator lsb -> result lsb
    if shift < 0 or acc_t.saturation != "AP_WRAP" or res_t.rounding not in ("AP_TRN", "AP_RND_CONV", "AP_RND"):
        return None
    if res_t.saturation not in ("AP_SAT", "AP_SAT_SYM"):
        return None
    acc0 = requantize(b, bt.fractional, acc_t) if b is not None else None
    bound = (max_abs_code(x_type) * m.col_bound * 2.0 ** shift
             + (float(np.abs(acc0).max(initial=0)) if acc0 is not None else 0.0))
    if bound >= EXACT or bound * 2.0 ** max(0, -drop) >= EXACT:
        return None
    s = exact_matmul(x_codes, m, x_type)          # product units, float64
    if acc0 is not None:
        s += np.ldexp(acc0.astype(np.float64), -shift)[None, :]
    if bound > acc_t.max_code or -bound < acc_t.min_code:  # the types allow a wrap: does one happen?
        scale = 2.0 ** shift
        if s.size and (s.max() * scale > acc_t.max_code or s.min() * scale < acc_t.min_code):
            return None
    s *= 2.0 ** (shift - drop)                    # result units
    if drop > 0:
        if res_t.rounding == "AP_RND_CONV":
            np.rint(s, out=s)
        elif res_t.rounding == "AP_RND":
            s += 0.5
            np.floor(s, out=s)
        else:
            np.floor(s, out=s)
    np.clip(s, res_t.lowest_code, res_t.max_code, out=s)
    return s.astype(np.int64)


def dense_result(x_codes: np.ndarray, x_type: FixedType, m: Matrix, wt: FixedType, b: np.ndarray | None,
                 bt: FixedType | None, acc_t: FixedType, res_t: FixedType) -> np.ndarray:
    """A Dense/Conv layer's result codes in res_t: accumulate as hls4ml does, then cast."""
    fast = _dense_float(x_codes, x_type, m, wt, b, bt, acc_t, res_t)
    if fast is not None:
        return fast
    acc, frac = dense_codes(x_codes, x_type, m, wt, b, bt, acc_t)
    return requantize(acc, frac, res_t)


def recast(codes: np.ndarray, src: FixedType, t: FixedType) -> np.ndarray:
    """Codes of type src -> type t; free when both have the same grid and range (the
    common ReLU/pooling case), except that AP_SAT_SYM drops the most negative code."""
    if (src.width, src.integer, src.signed) == (t.width, t.integer, t.signed) and t.lowest_code == t.min_code:
        return codes
    return requantize(codes, src.fractional, t)
