"""The bit-exact simulator behind the backend interface (numpy only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...sim.engine import load_design, simulate


class SimBackend:
    name = "sim"

    def __init__(self, design_dir: str | Path):
        self.design = load_design(design_dir)

    def run(self, x: np.ndarray) -> np.ndarray:
        return simulate(self.design, np.asarray(x, np.float64)).outputs
