"""`edge-asr verify`: the design's fixed point against the float model.

Float reference: onnxruntime on the model.onnx inside the design. Fixed point: hls4ml's
C simulation (--against csim, the default) or the bit-exact simulator. Reports max and
mean absolute error, top-1 agreement and, where labels exist, the accuracy of both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..ir.design import Design
from ..runtime.backends import get_backend
from ..sim.fixed import cast


def load_inputs(design: Design | str | Path, data: str | None, n: int,
                split: str = "test") -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs for a design (a Design or its folder) and their label indices when known;
    random normal inputs when no data is given."""
    design = design if isinstance(design, Design) else Design.load(design)
    meta = json.loads((design.path / "model.json").read_text())
    shape = design.onnx_input_shape
    if data is None:
        return np.random.default_rng(0).standard_normal((n,) + shape).astype(np.float32), None
    from ..data.loading import inputs_from
    from ..frontend.features import FeatureConfig
    feature = FeatureConfig.from_dict(meta["feature"]) if meta.get("feature") else None
    return inputs_from(data, shape, feature, meta.get("labels"), n, split)


def _timed(backend, x: np.ndarray, **kw) -> tuple[np.ndarray, float]:
    t0 = time.time()
    y = backend.run(x, **kw)
    return y, time.time() - t0


def verify(design_dir: str | Path, against: str = "csim", n: int = 200, data: str | None = None,
           bitexact: bool = False, log=print) -> dict:
    """Compare a design's fixed point with the float model on the same inputs.

    Args:
        design_dir: a design folder made by `edge-asr convert`.
        against: "csim" (hls4ml's C simulation, the default) or "onnx" (the bit-exact
            simulator: no compiler needed); the float side is always onnxruntime.
        n: how many inputs.
        data: a data directory (its test split), a folder of audio, an .npy, or None for
            random inputs.
        bitexact: also run the simulator and count output values whose bits differ from C-sim.
        log: progress lines (the C simulation's compile).

    Returns:
        dict with top1_agreement, max_abs_error, mean_abs_error, accuracy_float and
        accuracy_fixed (when labels are known), the seconds of each side, and mismatches
        with bitexact.

    Raises:
        InputError: bad options or inputs; DesignError/ManifestError: a design that does not load.
    """
    design_dir = Path(design_dir)
    if against not in ("csim", "onnx", "qonnx"):
        raise InputError("--against must be csim, onnx or qonnx")
    if bitexact and against != "csim":
        raise InputError("--bitexact compares the simulator with C-sim: use it with --against csim")
    design = Design.load(design_dir, kind="design")
    x, y = load_inputs(design, data, n)
    if against == "qonnx":
        return verify_qonnx(design, x)
    # The fixed-point side gets inputs already coded into the design's input type, as the
    # host codes them (recognizer, driver). A board design's C-sim bridge would otherwise
    # round floats into the byte-rounded stream type first and then into the input type:
    # two roundings where the deployed flow has one.
    x_coded = cast(x, design.input_type)
    # one input per onnxruntime call, as the float model runs in a stream
    ref, seconds_onnx = _timed(get_backend("onnx", design_dir), x, batch=1)
    # against "onnx": fixed point from the bit-exact simulator, no compiler needed
    fixed_backend = get_backend("csim", design_dir, log=log) if against == "csim" else get_backend("sim", design)
    fixed, seconds_fixed = _timed(fixed_backend, x_coded)
    extra = {}
    if bitexact:
        sim, seconds_sim = _timed(get_backend("sim", design), x_coded)
        extra = {"mismatches": int(np.count_nonzero(sim != fixed)), "seconds_sim": round(seconds_sim, 4)}
    err = np.abs(fixed - ref)
    res = {
        "design": str(design_dir), "against": against, "n": int(len(x)),
        "top1_agreement": float((fixed.argmax(1) == ref.argmax(1)).mean()),
        "max_abs_error": float(err.max()), "mean_abs_error": float(err.mean()),
        "accuracy_float": float((ref.argmax(1) == y).mean()) if y is not None else None,
        "accuracy_fixed": float((fixed.argmax(1) == y).mean()) if y is not None else None,
        "seconds_onnx": round(seconds_onnx, 4),
        ("seconds_csim" if against == "csim" else "seconds_sim"): round(seconds_fixed, 4),
        **extra,
    }
    return res


def verify_qonnx(design: Design, x: np.ndarray) -> dict:
    """The design's last fixed-point values (the logits, before Softmax; from the bit-exact
    simulator) against QONNX's executor on the design's QONNX graph, value for value.

    With power-of-two scales the two must be equal (mismatches 0); other scales go through
    hls4ml's ApplyAlpha layers, and max_abs_lsb says how far apart they land.
    """
    from ..sim import simulate
    from .qonnx_types import QONNX_FILE, run_qonnx
    meta = json.loads((design.path / "model.json").read_text())
    if not meta.get("qonnx"):
        raise InputError(f"{design.path}: not converted from a QONNX model (no {QONNX_FILE}); use --against csim "
                         "or onnx")
    last = design.layers[-1]
    if last.class_name != "Softmax":
        raise InputError(f"{design.path}: the design does not end in Softmax; no logits to compare")
    before = design.layers[-2]
    t0 = time.time()
    sim = simulate(design, x, trace=True)
    seconds_sim = time.time() - t0
    got = sim.trace[before.name].reshape(len(x), -1)
    t0 = time.time()
    ref = run_qonnx(design.path / meta["qonnx"], x, logits=True).reshape(len(x), -1) if len(x) else got
    seconds_qonnx = time.time() - t0
    lsb = 2.0 ** -before.result_type().fractional
    diff = np.abs(got - ref)
    return {
        "design": str(design.path), "against": "qonnx", "n": int(len(x)),
        "compared": f"{before.name} (logits, {before.result_type().cpp()})",
        "mismatches": int(np.count_nonzero(diff)),
        "max_abs_lsb": float(diff.max() / lsb) if diff.size else 0.0,
        "max_abs": float(diff.max()) if diff.size else 0.0,
        "top1_agreement": float((got.argmax(1) == ref.argmax(1)).mean()) if len(x) else 1.0,
        "seconds_sim": round(seconds_sim, 4), "seconds_qonnx": round(seconds_qonnx, 4),
    }


def format_result(res: dict) -> str:
    """verify's result as lines for a terminal."""
    if res["against"] == "qonnx":
        return "\n".join([
            f"{res['design']}: {res['n']} inputs, QONNX executor vs the bit-exact simulator, {res['compared']}",
            f"  differing values  {res['mismatches']}",
            f"  max |difference|  {res['max_abs']:g} ({res['max_abs_lsb']:g} LSB)",
            f"  top-1 agreement   {res['top1_agreement']:.4f}",
            f"  seconds           sim {res['seconds_sim']:.3f}, QONNX {res['seconds_qonnx']:.3f}"])
    lines = [f"{res['design']}: {res['n']} inputs, onnxruntime (float) vs {res['against']} (fixed point)",
             f"  top-1 agreement   {res['top1_agreement']:.4f}",
             f"  max |error|       {res['max_abs_error']:.6f}",
             f"  mean |error|      {res['mean_abs_error']:.6f}"]
    if "mismatches" in res:
        lines.append(f"  simulator vs C-sim: {res['mismatches']} differing output values "
                     f"(sim {res['seconds_sim']:.3f} s, C-sim {res['seconds_csim']:.3f} s)")
    if res["accuracy_float"] is not None:
        lines.append(f"  accuracy float    {res['accuracy_float']:.4f}")
        lines.append(f"  accuracy fixed    {res['accuracy_fixed']:.4f}")
    return "\n".join(lines)
