"""The RTL flow on a whole design (issue 28): every kernel and the streaming top level in
Verilator against the simulator, and every kernel through Yosys, beside the cost model.

    .venv/bin/python benchmarks/rtl.py DESIGN_DIR [--n 10000] [--data DIR] [--json OUT.json]

CI builds only small kernels (tests/test_rtl.py); this runs the full layers. Builds are
cached under $EDGE_ASR_CACHE/rtl, so a second run measures the simulations alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_asr.rtl.flow import format_result, verify_rtl  # noqa: E402
from edge_asr.rtl.synth import format_result as format_synth  # noqa: E402
from edge_asr.rtl.synth import synth_design  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("design")
    p.add_argument("--n", type=int, default=10000, help="inputs per kernel and for the whole design")
    p.add_argument("--data", help="inputs for the whole design: a data directory (test split), audio or .npy")
    p.add_argument("--no-synth", action="store_true", help="skip Yosys")
    p.add_argument("--json", help="also write the figures here")
    a = p.parse_args()

    def log(m):
        print(m, file=sys.stderr, flush=True)

    t0 = time.time()
    res = {"verify": verify_rtl(a.design, n=a.n, data=a.data, log=log)}
    print(format_result(res["verify"]))
    if not a.no_synth:
        res["synth"] = synth_design(a.design, log=log)
        print()
        print(format_synth(res["synth"]))
    res["seconds"] = round(time.time() - t0, 1)
    print(f"\n{res['seconds']:.0f} s in all")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
