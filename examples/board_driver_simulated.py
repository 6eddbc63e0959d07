"""The PYNQ driver on a simulated PYNQ-Z2: bundle a design, load it, run inputs through the DMA.

    PYTHONPATH=. .venv-board/bin/python examples/board_driver_simulated.py [DESIGN_DIR]

Needs pynq==4.0.0 (with numpy<2, as a PYNQ image has: `make board-setup` makes
.venv-board, which holds pynq but not edge-asr, as a board holds a bundle's driver/). The simulated device runs pynq's own Overlay, allocate and AXI DMA driver
against the bit-exact simulator; on a board, leave SimulatedDevice out and bundle a design
that `edge-asr build` made a bitstream for.
"""

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from edge_asr.deploy.bundle import write_bundle
from edge_asr.deploy.driver import EdgeAsrOverlay
from edge_asr.deploy.simdevice import SimulatedDevice
from edge_asr.ir import write_manifest

vectors = Path(__file__).resolve().parents[1] / "sim" / "vectors" / "kws-digits"
work = Path(tempfile.mkdtemp())
design = Path(sys.argv[1]) if len(sys.argv) > 1 else work / "design"
if len(sys.argv) == 1:                                  # the committed design, as a design folder
    design.mkdir()
    for name in ("design.json", "model.json"):
        shutil.copyfile(vectors / name, design / name)
    write_manifest(design, "design")

bundle = write_bundle(design, work / "bundle", log=print)   # simulation-only: no bitstream here
SimulatedDevice.activate()                                   # pynq's active device
overlay = EdgeAsrOverlay(bundle)                             # verifies the bundle, then loads it

codes = np.load(vectors / "inputs.npy").astype(np.int64)
golden = np.load(vectors / "outputs.npy").astype(np.int64)
out = overlay.run_codes(codes.reshape(len(codes), -1))       # one DMA transfer per batch of 64
print(f"{len(codes)} inputs through the DMA: {int(np.count_nonzero(out != golden))} output codes differ "
      "from hls4ml's C simulation")
r = overlay.predict_one(np.zeros(overlay.input_shape))     # the single-frame (latency) path
print("one frame of zeros:", overlay.labels[int(np.argmax(r.values))], overlay.timing_summary())
overlay.close()
