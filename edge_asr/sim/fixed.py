"""ap_fixed<W,I,Q,O,N> / ap_ufixed / ap_int arithmetic on numpy arrays, carried as int64 codes.

A value of type T is held as its integer code c, meaning c * 2**-F with F = W - I
fractional bits. Quantization (Q) decides what happens to dropped fractional bits,
overflow (O) what happens to values outside the W-bit range; rounding happens first and
may itself overflow, as in Vivado/Vitis HLS's ap_fixed_base.

Codes are int64, so widths up to 64 bits are held exactly; conversions from float64 are
exact while |value| * 2**F < 2**52 (checked: a larger value raises).
"""

from __future__ import annotations

import numpy as np

from ..errors import FixedPointError
from ..ir.types import OVERFLOW, QUANTIZATION, FixedType

_EXACT = 2.0 ** 52  # floats hold integers exactly below this

__all__ = ["FixedType", "OVERFLOW", "QUANTIZATION", "quantize", "quantize_float", "quantize_float_bounded", "edges_known", "requantize", "overflow", "to_float", "cast",
           "integer_bits_for"]

def _round_shifted(q: np.ndarray, rem_num: np.ndarray, rem_den, negative: np.ndarray, mode: str) -> np.ndarray:
    """Apply quantization mode: value = q + rem_num/rem_den with 0 <= rem_num < rem_den, q = floor."""
    if mode == "AP_TRN":
        return q
    if mode == "AP_TRN_ZERO":
        return q + (negative & (rem_num != 0))
    twice = 2 * rem_num
    up = twice > rem_den
    tie = twice == rem_den
    if mode == "AP_RND_CONV":  # the common case
        up |= tie & ((q & 1) == 1)
    elif mode == "AP_RND":
        up |= tie
    elif mode == "AP_RND_ZERO":
        up |= tie & negative
    elif mode == "AP_RND_INF":
        up |= tie & ~negative
    return q + up


def overflow(codes: np.ndarray, t: FixedType) -> np.ndarray:
    """Bring integer codes (already at t's fractional bits) into t's range by its overflow mode."""
    codes = np.asarray(codes, dtype=np.int64)
    lo, hi = t.min_code, t.max_code
    if t.lowest_code != lo:  # symmetric saturation clips every value
        return np.clip(codes, t.lowest_code, hi)
    if codes.size and lo <= codes.min() and codes.max() <= hi:
        return codes  # nothing out of range: every mode leaves the codes as they are
    if t.saturation == "AP_WRAP":
        if t.width == 64:
            return codes
        mask = (1 << t.width) - 1
        wrapped = codes & mask
        if t.signed:
            wrapped = np.where(wrapped > hi, wrapped - (1 << t.width), wrapped)
        return wrapped.astype(np.int64)
    if t.saturation == "AP_SAT":
        return np.clip(codes, lo, hi)
    if t.saturation == "AP_SAT_ZERO":
        return np.where((codes < lo) | (codes > hi), 0, codes).astype(np.int64)
    return np.clip(codes, lo, hi)  # AP_SAT_SYM on an unsigned type saturates as AP_SAT


def _check_range(x: np.ndarray, t: FixedType) -> None:
    """FixedPointError unless every |x| * 2**F < 2**52, where conversion to t is exact (NaN
    and Inf fail too). Reads x twice (max, min) and allocates nothing."""
    if not x.size:
        return
    hi, lo = float(x.max()), float(x.min())
    limit = 2.0 ** (52 - t.fractional)
    if not (-limit < lo and hi < limit):  # NaN fails this test too
        if not (np.isfinite(hi) and np.isfinite(lo)):
            raise FixedPointError("cannot quantize NaN or Inf")
        raise FixedPointError(f"value too large to convert exactly to {t.cpp()}")


def edges_known(lo: float, hi: float, t: FixedType) -> int | None:
    """0 when codes between lo and hi (their smallest and largest) cannot be at t's edges
    (its largest code, or the smallest of a signed type: where saturation lands), else
    None: then they must be counted."""
    return 0 if hi < t.max_code and (not t.signed or lo > t.min_code) else None


def quantize_float_bounded(x, t: FixedType) -> tuple[np.ndarray, int | None] | None:
    """quantize_float, and what the codes' bounds tell of the values at t's edges
    (`edges_known`); None for modes other than the common ones."""
    if t.rounding not in ("AP_RND_CONV", "AP_TRN") or t.saturation not in ("AP_SAT", "AP_SAT_SYM"):
        return None
    x = np.asarray(x)
    if x.dtype.kind != "f" or (x.dtype == np.float32 and t.width > 24):
        x = x.astype(np.float64)
    # float32 inputs are scaled and rounded in float32 (half the memory traffic): scaling
    # by a power of two is exact in any float unless it overflows (caught below) or falls
    # below the normal range (such values round to 0 either way)
    with np.errstate(over="ignore", invalid="ignore"):  # Inf from too large a value: refused below
        q = np.multiply(x, x.dtype.type(2.0 ** t.fractional))
        (np.rint if t.rounding == "AP_RND_CONV" else np.floor)(q, out=q)
    if not q.size:
        return q.astype(np.float64), 0
    # the rounded extremes check the range (NaN and Inf fail) and, rounding being monotone,
    # tell whether anything needs clipping and whether anything sits at an edge
    hi, lo = float(q.max()), float(q.min())
    if not (-_EXACT < lo and hi < _EXACT):
        _check_range(x, t)
        raise FixedPointError(f"value too large to convert exactly to {t.cpp()}")
    if lo < t.lowest_code or hi > t.max_code:
        np.clip(q, t.lowest_code, t.max_code, out=q)
        lo, hi = max(lo, t.lowest_code), min(hi, t.max_code)
    # float32 holds every code of a type up to 24 bits wide exactly; the matrix products
    # take float32 codes where their sums stay exact (sim/exact.py), float64 otherwise
    return q, edges_known(lo, hi, t)


def quantize_float(x, t: FixedType) -> np.ndarray | None:
    """float values -> codes of type t held in floats (integers, exact), for the common
    input coding (AP_RND_CONV or AP_TRN with AP_SAT or AP_SAT_SYM); None for other modes.
    float32 inputs give float32 codes when t is at most 24 bits wide, else float64.

    The simulator's matrix products take float codes, so this saves a conversion to int64
    and back. Exact: scaling by a power of two is exact, np.rint is half-to-even and
    np.floor is AP_TRN on any float, and clipping is saturation."""
    done = quantize_float_bounded(x, t)
    return None if done is None else done[0]


def quantize(x, t: FixedType) -> np.ndarray:
    """float64 values -> int64 codes of type t (quantization, then overflow)."""
    q = quantize_float(x, t)
    if q is not None:
        return q.astype(np.int64)
    x = np.asarray(x, dtype=np.float64)
    _check_range(x, t)
    scaled = np.ldexp(x, t.fractional)
    q = np.floor(scaled)
    # rem = scaled - q is exact; compare 2*rem with 1 for the tie/above tests
    rem = scaled - q
    codes = _round_shifted(q.astype(np.int64), rem, 1.0, x < 0, t.rounding)
    return overflow(codes, t)


def requantize(codes, frac_bits: int, t: FixedType) -> np.ndarray:
    """Exact fixed-point codes with `frac_bits` fractional bits -> codes of type t."""
    codes = np.asarray(codes, dtype=np.int64)
    shift = frac_bits - t.fractional
    if shift <= 0:
        if shift < 0:
            if np.abs(codes).max(initial=0) >= (1 << (62 + shift)):
                raise FixedPointError("value too large for exact int64 arithmetic")
            codes = codes << (-shift)
        return overflow(codes, t)
    if shift >= 63:
        raise FixedPointError("requantize shift of 63 or more bits is not supported")
    if t.rounding == "AP_TRN":
        return overflow(codes >> shift, t)  # floor division by 2**shift
    # the two common modes in one pass: c = q * 2**s + r; adding 2**(s-1) carries into q
    # exactly when r >= half (AP_RND); adding half - 1 + (q & 1) carries when r > half, or
    # r == half and q is odd (AP_RND_CONV, half to even). Guarded like the shift above.
    if t.rounding in ("AP_RND", "AP_RND_CONV") and codes.size:
        lo, hi = int(codes.min()), int(codes.max())
        if max(abs(lo), abs(hi)) < (1 << 61):
            half = 1 << (shift - 1)
            if t.rounding == "AP_RND":
                out = (codes + half) >> shift
                lo, hi = (lo + half) >> shift, (hi + half) >> shift
            else:
                out = (codes + (half - 1) + ((codes >> shift) & 1)) >> shift
                lo = (lo + (half - 1) + ((lo >> shift) & 1)) >> shift
                hi = (hi + (half - 1) + ((hi >> shift) & 1)) >> shift
            # rounding is monotone, so the rounded extremes bound the result: in range
            # means no overflow handling
            if t.lowest_code <= lo and hi <= t.max_code:
                return out
            return overflow(out, t)
    q = codes >> shift  # floor division by 2**shift
    rem = codes & ((1 << shift) - 1)  # the dropped bits: codes - q * 2**shift, never negative
    return overflow(_round_shifted(q, rem, 1 << shift, codes < 0, t.rounding), t)


def to_float(codes, t: FixedType) -> np.ndarray:
    """Codes of type t -> their exact values (float64)."""
    return np.ldexp(np.asarray(codes, dtype=np.float64), -t.fractional)


def cast(x, t: FixedType) -> np.ndarray:
    """float64 -> exact float64 values of type t (quantize, then back)."""
    return to_float(quantize(x, t), t)


def integer_bits_for(max_abs: float, signed: bool) -> int:
    """Integer bits (sign included when signed) for magnitudes up to max_abs."""
    if max_abs <= 0:
        return 1 if signed else 0
    bits = int(np.floor(np.log2(max_abs))) + 1
    return bits + (1 if signed else 0)
