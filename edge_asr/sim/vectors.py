"""Golden vectors: integer inputs and hls4ml C-sim outputs of a design, kept in the repository.

A vector folder is a design folder the simulator can run (design.json, and model.json
when the design has one) plus inputs.npy (integer input codes, batch first, the design's
input layout), outputs.npy (integer output codes from C-sim), vectors.json (types, count,
the design's digest, provenance) and manifest.json (kind "vectors"). The simulator
reproduces the outputs with numpy alone; the test suite regenerates the C-sim side and
compares. `edge-asr vectors` writes and checks them (sim/README.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir, refuse_existing
from ..errors import FixedPointError, InputError
from ..ir.design import DESIGN_FILE, Design
from ..ir.manifest import write_manifest
from .engine import simulate_codes
from .fixed import FixedType, quantize, to_float

VECTORS_FILE = "vectors.json"


def write_vectors(design: Design, out: str | Path, x: np.ndarray, csim_outputs: np.ndarray,
                  force: bool = False) -> Path:
    """Write a vector folder from float inputs and the C simulation's outputs for them.

    Args:
        design: the design (loaded from its folder, whose design.json and model.json are copied).
        out: the folder to write; refused if it exists, unless force.
        x: float inputs (batch first, ONNX layout), coded into the input type here.
        csim_outputs: the C simulation's outputs for x; must be values of the output type.

    Raises:
        OutputExistsError: out exists and force is not set.
        FixedPointError: an output that is not a value of the output type.
    """
    out = Path(out)
    refuse_existing(out, force)
    t_in, t_out = design.input_type, design.output_type
    in_codes = quantize(np.asarray(x, np.float64), t_in)
    out_codes = quantize(np.asarray(csim_outputs, np.float64), t_out)
    if not np.array_equal(to_float(out_codes, t_out), csim_outputs):
        raise FixedPointError("C-sim outputs are not values of the output type")
    with atomic_dir(out) as tmp:
        shutil.copyfile(design.path / DESIGN_FILE, tmp / DESIGN_FILE)
        if (design.path / "model.json").is_file():
            shutil.copyfile(design.path / "model.json", tmp / "model.json")
        np.save(tmp / "inputs.npy", in_codes.astype(_smallest_int(t_in)))
        np.save(tmp / "outputs.npy", out_codes.astype(_smallest_int(t_out)))
        (tmp / VECTORS_FILE).write_text(json.dumps({
            "n": int(len(x)), "input_type": t_in.to_dict(), "output_type": t_out.to_dict(),
            "input_shape": list(design.onnx_input_shape), "design_digest": design.digest(),
            "source": "hls4ml C simulation (g++), edge-asr verify backend csim",
        }, indent=1) + "\n")
        write_manifest(tmp, "vectors")
    return out


def _smallest_int(t: FixedType):
    for dt in (np.int16, np.int32):
        if t.width < np.iinfo(dt).bits:
            return dt
    return np.int64


def load_vectors(folder: str | Path) -> tuple[Design, np.ndarray, np.ndarray, dict]:
    """(design, input codes, output codes, vectors.json) of a vector folder, its manifest checked.

    Raises:
        InputError: not a vector folder.
        ManifestError: a file differs from the folder's manifest.
    """
    folder = Path(folder)
    if not (folder / VECTORS_FILE).is_file():
        raise InputError(f"{folder}: not a golden-vector folder (no {VECTORS_FILE}); write one with `edge-asr vectors`")
    design = Design.load(folder)
    meta = json.loads((folder / VECTORS_FILE).read_text())
    x = np.load(folder / "inputs.npy", allow_pickle=False).astype(np.int64)
    y = np.load(folder / "outputs.npy", allow_pickle=False).astype(np.int64)
    if meta.get("design_digest") != design.digest():
        raise InputError(f"{folder}: {VECTORS_FILE} was written for another design.json; write the vectors again")
    return design, x, y, meta


def check_vectors(folder: str | Path) -> int:
    """Run the simulator on the stored input codes; returns how many output codes differ."""
    design, x_codes, y_codes, _ = load_vectors(folder)
    res = simulate_codes(design, x_codes.reshape(len(x_codes), -1))
    return int(np.count_nonzero(res.codes != y_codes.reshape(res.codes.shape)))
