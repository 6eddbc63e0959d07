"""Convert the shipped model to an hls4ml design for the PYNQ-Z2 and run it in the simulator.

    python examples/convert_and_simulate.py [OUT_DIR]

Needs the [convert] extra. The design's fixed point (the bit-exact simulator) is compared
with the float model (onnxruntime) on the shipped calibration windows.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

import edge_asr

model = edge_asr.shipped_model()
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "kws-design"
edge_asr.convert(model, out, edge_asr.ConvertOptions(board="pynq-z2", calib=str(model / "calib.npy")),
                 log=lambda line: None)

design = edge_asr.load_design(out)                     # checked against its manifest
print(design)
x = np.load(model / "calib.npy").astype(np.float64)
fixed = edge_asr.simulate(design, x)
floating = edge_asr.get_backend("onnx", model).run(x)
agree = (fixed.outputs.argmax(1) == floating.argmax(1)).mean()
print(f"{len(x)} windows: top-1 agreement fixed vs float {agree:.1%}, "
      f"largest output difference {np.abs(fixed.outputs - floating).max():.4f}")
print("values at the edge of their type:", {k: v for k, v in fixed.saturation.items() if v} or "none")
print(f"design written to {out}")
