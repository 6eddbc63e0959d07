"""The PYNQ driver through the simulated device: batched throughput and single-frame
latency, host side (coding, packing, pynq's DMA driver, the simulator, unpacking).

    make board-setup
    .venv-board/bin/python benchmarks/driver.py [--n 2000] [--batch 64]

On a board the simulator's share becomes the FPGA's; these figures bound the host-side
overhead of pynq and our packing, and check every output against the simulator.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    from edge_asr.deploy.bundle import write_bundle
    from edge_asr.deploy.driver import EdgeAsrOverlay
    from edge_asr.deploy.simdevice import SimulatedDevice
    from edge_asr.ir.manifest import write_manifest
    from edge_asr.sim.engine import load_design, simulate
    vectors, model = ROOT / "sim" / "vectors" / "kws-digits", ROOT / "models" / "kws-digits"
    with tempfile.TemporaryDirectory() as tmp:
        design = Path(tmp) / "design"
        design.mkdir()
        shutil.copyfile(vectors / "design.json", design / "design.json")
        shutil.copyfile(model / "model.json", design / "model.json")
        write_manifest(design, "design")
        bundle = write_bundle(design, Path(tmp) / "bundle", log=lambda m: None)
        SimulatedDevice.activate()
        t0 = time.perf_counter()
        ol = EdgeAsrOverlay(bundle, batch_size=a.batch)
        t_load = time.perf_counter() - t0
        rng = np.random.default_rng(0)
        x = rng.normal(0, 2, size=(a.n,) + ol.input_shape)
        t0 = time.perf_counter()
        r = ol.predict(x)
        t_batch = time.perf_counter() - t0
        t0 = time.perf_counter()
        expect = simulate(load_design(bundle), x)
        t_sim = time.perf_counter() - t0
        singles = [ol.predict_one(x[i]) for i in range(min(a.n, 300))]
        lat = np.array([s.seconds for s in singles]) * 1e3
        same = np.array_equal(r.codes, expect.codes) and all(
            np.array_equal(s.codes, expect.codes[i]) for i, s in enumerate(singles))
    print(f"bundle verify + Overlay load       {t_load * 1e3:8.1f} ms")
    print(f"batched ({a.batch} per DMA transfer)   {a.n / t_batch:8.0f} inputs/s  "
          f"(simulator alone {a.n / t_sim:.0f} inputs/s)")
    print(f"single frame, host time per call   p50 {np.percentile(lat, 50):.2f} ms   p99 {np.percentile(lat, 99):.2f} ms")
    print(f"outputs equal to the simulator     {same}")


if __name__ == "__main__":
    main()
