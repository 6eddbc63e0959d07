"""`edge-asr sim`: run the bit-exact simulator on an input array or an audio clip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..sim.engine import SimError, load_design, simulate


def load_sim_input(design_dir: Path, source: str) -> np.ndarray:
    from ..data.loading import inputs_from
    from ..frontend.features import FeatureConfig
    design = json.loads((design_dir / "design.json").read_text())
    meta_path = design_dir / "model.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    feature = FeatureConfig.from_dict(meta["feature"]) if meta.get("feature") else None
    return inputs_from(source, tuple(design["input"]["onnx_shape"][1:]), feature)[0].astype(np.float64)


def run_sim(design_dir: str | Path, source: str, trace: bool = False) -> dict:
    design_dir = Path(design_dir)
    if not (design_dir / "design.json").is_file():
        raise InputError(f"{design_dir}: no design.json; make a design with `edge-asr convert`")
    design = load_design(design_dir)
    x = load_sim_input(design_dir, source)
    try:
        res = simulate(design, x, trace=trace)
    except SimError as exc:
        raise InputError(f"{design_dir}: {exc}") from None
    labels = design.data.get("labels")
    out = {
        "design": str(design_dir), "input": source, "n": int(len(x)),
        "output_type": res.output_type.cpp(),
        "outputs": res.outputs.tolist(), "codes": res.codes.tolist(),
        "saturated": res.saturation,
    }
    if labels:
        out["labels"] = [labels[int(i)] for i in res.outputs.argmax(1)]
    if trace:
        out["trace"] = {k: v.reshape(len(x), -1).tolist() for k, v in res.trace.items()}
    return out


def format_sim(res: dict) -> str:
    lines = [f"{res['design']} on {res['input']}: {res['n']} input(s), outputs {res['output_type']}"]
    for i, row in enumerate(res["outputs"]):
        best = int(np.argmax(row))
        label = f" -> {res['labels'][i]}" if "labels" in res else ""
        lines.append(f"  [{i}] " + " ".join(f"{v:.5f}" for v in row) + f"  (max {row[best]:.5f} at {best}{label})")
    edges = {k: v for k, v in res["saturated"].items() if v}
    lines.append("values at the edge of their type: " + (", ".join(f"{k} {v}" for k, v in edges.items()) or "none"))
    return "\n".join(lines)
