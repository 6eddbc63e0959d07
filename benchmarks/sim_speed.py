"""Simulator vs hls4ml C-sim vs onnxruntime (float) on the same design and the same inputs.

    .venv/bin/python benchmarks/sim_speed.py [--n 10000] [--batch 1000]

Targets (issue 4): simulator >= 100x C-sim throughput, and <= 3x onnxruntime's time.
Inputs are streamed in batches: memory does not grow with --n. Every batch is also
checked bit for bit against C-sim, so the speed is that of a correct simulator.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=1000)
    a = ap.parse_args()
    import onnxruntime as ort

    from edge_asr.hw.convert import ConvertOptions, convert
    from edge_asr.hw.csim import CsimBackend
    from edge_asr.sim.engine import load_design, simulate
    model = ROOT / "models" / "kws-digits"
    calib = np.load(model / "calib.npy").astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        design_dir = convert(model, Path(tmp) / "design", ConvertOptions(calib=str(model / "calib.npy")),
                             log=lambda m: None)
        design = load_design(design_dir)
        csim = CsimBackend(design_dir)
        sess = ort.InferenceSession(str(model / "model.onnx"), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        t_sim = t_csim = t_ort = 0.0
        mismatches = 0
        done = 0
        while done < a.n:
            b = min(a.batch, a.n - done)
            # calibration windows with noise: realistic, and different every batch
            x = calib[rng.integers(0, len(calib), b)] + rng.standard_normal((b,) + calib.shape[1:]).astype(np.float32) * 0.3
            t0 = time.perf_counter()
            y_sim = simulate(design, x).outputs
            t_sim += time.perf_counter() - t0
            t0 = time.perf_counter()
            y_csim = csim.run(x)
            t_csim += time.perf_counter() - t0
            t0 = time.perf_counter()
            sess.run(None, {"features": x})
            t_ort += time.perf_counter() - t0
            mismatches += int(np.count_nonzero(y_sim != y_csim))
            done += b
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{a.n} inputs in batches of {a.batch} on {os.cpu_count()} cores; peak RSS {rss:.0f} MB")
    for name, t in (("simulator", t_sim), ("hls4ml C-sim", t_csim), ("onnxruntime", t_ort)):
        print(f"  {name:<14} {t:8.2f} s  {a.n / t:10.0f} inputs/s")
    print(f"simulator / C-sim throughput   {t_csim / t_sim:7.1f}x   (target >= 100x)")
    print(f"simulator time / onnxruntime   {t_sim / t_ort:7.2f}x   (target <= 3x)")
    print(f"bits differing from C-sim      {mismatches}")


if __name__ == "__main__":
    main()
