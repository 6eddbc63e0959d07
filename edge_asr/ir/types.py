"""Fixed-point types of the hardware IR: ap_fixed<W,I,Q,O,N>, ap_ufixed, ap_int.

W total bits, I integer bits (the sign bit included for signed types), Q the quantization
mode (what happens to dropped fractional bits), O the overflow mode (what happens outside
the W-bit range). A value of a type is held as its integer code c, meaning c * 2**-F with
F = W - I fractional bits. This module describes types and their code ranges; the
arithmetic on codes is the simulator's (`edge_asr.sim.fixed`). Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from ..errors import FixedPointError

QUANTIZATION = ("AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_INF", "AP_RND_MIN_INF", "AP_RND_CONV")
OVERFLOW = ("AP_WRAP", "AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM")


@dataclass(frozen=True)
class FixedType:
    """An ap_fixed / ap_ufixed / ap_int type.

    Attributes:
        width: total bits W (1..64).
        integer: integer bits I, the sign bit included for signed types (may be negative or
            above W).
        signed: ap_fixed (True) or ap_ufixed (False).
        rounding: quantization mode, one of QUANTIZATION (AP_TRN by default).
        saturation: overflow mode, one of OVERFLOW (AP_WRAP by default).
        saturation_bits: N; only 0 is supported.

    Raises:
        FixedPointError: a width, mode or N outside what is supported.
    """
    width: int
    integer: int
    signed: bool = True
    rounding: str = "AP_TRN"
    saturation: str = "AP_WRAP"
    saturation_bits: int = 0

    def __post_init__(self):
        if not 1 <= self.width <= 64:
            raise FixedPointError(f"width {self.width} outside 1..64")
        if self.rounding not in QUANTIZATION:
            raise FixedPointError(f"unknown quantization mode {self.rounding}")
        if self.saturation not in OVERFLOW:
            raise FixedPointError(f"unknown overflow mode {self.saturation}")
        if self.saturation_bits:
            raise FixedPointError("saturation bits (N) other than 0 are not supported")

    @property
    def fractional(self) -> int:
        """Fractional bits F = W - I."""
        return self.width - self.integer

    @property
    def min_code(self) -> int:
        """The smallest code of W bits."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        """The largest code of W bits."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lowest_code(self) -> int:
        """The smallest code a cast into this type yields: AP_SAT_SYM on a signed type never
        produces min_code, even for an in-range value (checked in tests/test_fixed.py)."""
        return self.min_code + (1 if self.saturation == "AP_SAT_SYM" and self.signed else 0)

    @property
    def lsb(self) -> float:
        """The value of one code step, 2**-F."""
        return 2.0 ** -self.fractional

    @property
    def min_value(self) -> float:
        """The smallest value the type holds."""
        return self.min_code * self.lsb

    @property
    def max_value(self) -> float:
        """The largest value the type holds."""
        return self.max_code * self.lsb

    def cpp(self) -> str:
        """The C++ spelling, e.g. ap_fixed<16,6,AP_RND_CONV,AP_SAT>."""
        base = "ap_fixed" if self.signed else "ap_ufixed"
        if self.rounding == "AP_TRN" and self.saturation == "AP_WRAP":
            return f"{base}<{self.width},{self.integer}>"
        return f"{base}<{self.width},{self.integer},{self.rounding},{self.saturation}>"

    def to_dict(self) -> dict:
        """The type as design.json stores it (with its C++ spelling under `cpp`)."""
        return asdict(self) | {"cpp": self.cpp()}

    @classmethod
    def from_dict(cls, d: dict) -> "FixedType":
        """A type from design.json's record; FixedPointError when it is not legal."""
        return cls(**{k: v for k, v in d.items() if k != "cpp"})

    @classmethod
    def parse(cls, text: str) -> "FixedType":
        """hls4ml or HLS spelling: fixed<16,6,RND,SAT>, ufixed<8,0>, ap_fixed<...>, int<8>, uint<4>."""
        m = re.fullmatch(r"\s*(ap_)?(u?)(fixed|int)<\s*(\d+)\s*(?:,\s*(-?\d+))?\s*(?:,\s*(\w+))?\s*(?:,\s*(\w+))?"
                         r"\s*(?:,\s*(\d+))?\s*>\s*", text)
        if not m:
            raise FixedPointError(f"not a fixed-point type: {text!r}")
        _, u, kind, w, i, q, o, n = m.groups()
        width = int(w)
        integer = width if kind == "int" else int(i if i is not None else width)
        q = q or "AP_TRN"
        o = o or "AP_WRAP"
        q = q if q.startswith("AP_") else "AP_" + q
        o = o if o.startswith("AP_") else "AP_" + o
        return cls(width, integer, signed=not u, rounding=q, saturation=o, saturation_bits=int(n or 0))
