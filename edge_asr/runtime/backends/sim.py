"""The bit-exact simulator behind the backend interface (numpy only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...ir.design import Design
from ...sim.engine import simulate


class SimBackend:
    """Runs a design in the bit-exact simulator.

    Args:
        source: a folder holding design.json (a design, a bundle, a vector folder; its
            manifest is checked), or a loaded Design.
    """

    name = "sim"

    def __init__(self, source: str | Path | Design):
        self.design = source if isinstance(source, Design) else Design.load(source)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Float inputs (N, *design.onnx_input_shape) -> exact output values (N, n_out)."""
        return simulate(self.design, np.asarray(x, np.float64)).outputs
