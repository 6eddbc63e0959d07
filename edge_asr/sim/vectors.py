"""Golden vectors: integer inputs and hls4ml C-sim outputs for a design, kept in the repo.

A vector set is a folder with design.json (the design the vectors belong to),
inputs.npy (int64 input codes, batch first, the design's input layout), outputs.npy
(int64 output codes from C-sim) and vectors.json (types, count, provenance). The
simulator reproduces them with numpy alone; CI regenerates the C-sim side and compares.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from .engine import Design, load_design, simulate
from .fixed import FixedType, quantize, to_float


def design_digest(design: dict) -> str:
    """sha256 of what the hardware computes: layers and input/output types (not paths or versions)."""
    core = {k: design[k] for k in ("input", "output", "layers", "io_type")}
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()


def write_vectors(design_dir: str | Path, out: str | Path, x: np.ndarray, csim_outputs: np.ndarray,
                  force: bool = False) -> Path:
    from ..atomic import atomic_dir, refuse_existing
    design_dir, out = Path(design_dir), Path(out)
    refuse_existing(out, force)
    design = load_design(design_dir)
    t_in, t_out = design.input_type, design.output_type
    in_codes = quantize(np.asarray(x, np.float64), t_in)
    out_codes = quantize(np.asarray(csim_outputs, np.float64), t_out)
    if not np.array_equal(to_float(out_codes, t_out), csim_outputs):
        raise ValueError("C-sim outputs are not values of the output type")
    with atomic_dir(out) as tmp:
        _write(design_dir, design, tmp, in_codes, out_codes, t_in, t_out, len(x))
    return out


def _write(design_dir, design, tmp, in_codes, out_codes, t_in, t_out, n) -> None:
    shutil.copyfile(design_dir / "design.json", tmp / "design.json")
    np.save(tmp / "inputs.npy", in_codes.astype(_smallest_int(t_in)))
    np.save(tmp / "outputs.npy", out_codes.astype(_smallest_int(t_out)))
    (tmp / "vectors.json").write_text(json.dumps({
        "n": int(n), "input_type": t_in.to_dict(), "output_type": t_out.to_dict(),
        "input_shape": design.data["input"]["onnx_shape"][1:], "design_digest": design_digest(design.data),
        "source": "hls4ml C simulation (g++), edge-asr verify backend csim",
    }, indent=1) + "\n")


def _smallest_int(t: FixedType):
    for dt in (np.int16, np.int32):
        if t.width < np.iinfo(dt).bits:
            return dt
    return np.int64


def load_vectors(folder: str | Path) -> tuple[Design, np.ndarray, np.ndarray, dict]:
    folder = Path(folder)
    if not (folder / "vectors.json").is_file():
        from ..errors import InputError
        raise InputError(f"{folder}: not a golden-vector folder (no vectors.json); write one with `edge-asr vectors`")
    meta = json.loads((folder / "vectors.json").read_text())
    design = load_design(folder / "design.json")
    return (design, np.load(folder / "inputs.npy").astype(np.int64), np.load(folder / "outputs.npy").astype(np.int64),
            meta)


def check_vectors(folder: str | Path) -> int:
    """Run the simulator on the stored input codes; returns how many output codes differ."""
    design, x_codes, y_codes, meta = load_vectors(folder)
    x = to_float(x_codes, FixedType.from_dict(meta["input_type"]))
    res = simulate(design, x)
    return int(np.count_nonzero(res.codes != y_codes.reshape(res.codes.shape)))
