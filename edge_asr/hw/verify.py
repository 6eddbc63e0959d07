"""`edge-asr verify`: the design's fixed point against the float model.

Float reference: onnxruntime on the model.onnx inside the design. Fixed point: hls4ml's
C simulation (--against csim, the default) . Reports max and mean absolute error, top-1
agreement and, where labels exist, the accuracy of both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..errors import InputError


def load_inputs(design_dir: Path, data: str | None, n: int, split: str = "test") -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs (and label indices when known); random normal inputs when no data is given."""
    design = json.loads((design_dir / "design.json").read_text())
    meta = json.loads((design_dir / "model.json").read_text())
    shape = tuple(design["input"]["onnx_shape"][1:])
    if data is None:
        return np.random.default_rng(0).standard_normal((n,) + shape).astype(np.float32), None
    from ..data.loading import inputs_from
    from ..frontend.features import FeatureConfig
    feature = FeatureConfig.from_dict(meta["feature"]) if meta.get("feature") else None
    return inputs_from(data, shape, feature, meta.get("labels"), n, split)


def verify(design_dir: str | Path, against: str = "csim", n: int = 200, data: str | None = None,
           bitexact: bool = False, log=print) -> dict:
    from ..ir.manifest import verify_manifest
    from .csim import CsimBackend
    design_dir = Path(design_dir)
    verify_manifest(design_dir, "design")
    if against not in ("csim", "onnx"):
        raise InputError("--against must be csim or onnx")
    x, y = load_inputs(design_dir, data, n)
    # The fixed-point side gets inputs already coded into the design's input type, as the
    # host codes them (recognizer, driver). A board design's C-sim bridge would otherwise
    # round floats into the byte-rounded stream type first and then into the input type:
    # two roundings where the deployed flow has one.
    from ..sim.fixed import FixedType, cast
    x_coded = cast(x, FixedType.from_dict(json.loads((design_dir / "design.json").read_text())["input"]["type"]))
    import onnxruntime as ort
    sess = ort.InferenceSession(str(design_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    t0 = time.time()
    ref = np.concatenate([sess.run(None, {in_name: x[i:i + 1]})[0] for i in range(len(x))])
    seconds_onnx = time.time() - t0
    if against == "onnx":
        # fixed point from the bit-exact simulator: no compiler needed
        from ..sim.engine import load_design, simulate
        t0 = time.time()
        fixed = simulate(load_design(design_dir), x_coded).outputs
        seconds_fixed = time.time() - t0
    else:
        backend = CsimBackend(design_dir, log=log)
        t0 = time.time()
        fixed = backend.run(x_coded)
        seconds_fixed = time.time() - t0
    extra = {}
    if bitexact:
        if against != "csim":
            raise InputError("--bitexact compares the simulator with C-sim: use it with --against csim")
        from ..sim.engine import load_design, simulate
        t0 = time.time()
        sim = simulate(load_design(design_dir), x_coded).outputs
        extra = {"mismatches": int(np.count_nonzero(sim != fixed)), "seconds_sim": round(time.time() - t0, 4)}
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


def format_result(res: dict) -> str:
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
