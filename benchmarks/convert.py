"""Convert + compile time for the shipped model (target: <= 30 s on 2 cores).

    .venv/bin/python benchmarks/convert.py

Converts models/kws-digits for pynq-z2 (io_stream) into a temporary folder, then builds
its C simulation with g++ (a fresh cache, so the compile really runs). Prints both times.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from edge_asr.hw.convert import ConvertOptions, convert
    model = ROOT / "models" / "kws-digits"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EDGE_ASR_CACHE"] = str(Path(tmp) / "cache")
        t0 = time.perf_counter()
        import hls4ml  # noqa: F401  (import time counts: a user's first convert pays it)
        t_import = time.perf_counter() - t0
        t0 = time.perf_counter()
        design = convert(model, Path(tmp) / "design", ConvertOptions(calib=str(model / "calib.npy")),
                         log=lambda m: None)
        t_convert = time.perf_counter() - t0
        from edge_asr.hw.csim import CsimBackend
        t0 = time.perf_counter()
        CsimBackend(design)
        t_compile = time.perf_counter() - t0
    total = t_import + t_convert + t_compile
    print(f"cores            {os.cpu_count()}")
    print(f"import hls4ml    {t_import:6.2f} s")
    print(f"convert          {t_convert:6.2f} s")
    print(f"compile (g++)    {t_compile:6.2f} s")
    print(f"total            {total:6.2f} s  (target <= 30 s: {'met' if total <= 30 else 'NOT met'})")


if __name__ == "__main__":
    main()
