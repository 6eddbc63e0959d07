"""examples/board_driver_simulated.py in the board environment, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_board_driver_example():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "board_driver_simulated.py")], capture_output=True,
                       text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "160 inputs through the DMA: 0 output codes differ" in r.stdout
    assert "simulation-only bundle" in r.stdout
