"""The simulator's tensor: integer codes with their fixed-point type."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fixed import FixedType, to_float


@dataclass
class Tensor:
    """Integer codes (batch first) and their fixed-point type. The codes are int64, or
    floats (float32 or float64) holding integers exactly: what the matrix products take,
    so the input coding and the Dense/Conv fast path give them so. `ints` gives int64
    either way."""

    codes: np.ndarray
    type: FixedType
    edges: int | None = None  # values at the type's edges when the kernel knows (else counted)
    # when the kernel that made these codes ran layers after its own in the same pass
    # (sim/fused.py): every layer it ran, by name, with its edge count; these codes are
    # the last one's. None otherwise
    fused: dict[str, int] | None = None

    @property
    def values(self) -> np.ndarray:
        """The exact values the codes stand for (float64)."""
        return to_float(self.codes, self.type)

    @property
    def ints(self) -> np.ndarray:
        """The codes as int64 (a conversion only when they are held in floats)."""
        return self.codes.astype(np.int64, copy=False)
