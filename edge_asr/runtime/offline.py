"""`edge-asr sim`: run the bit-exact simulator on an input array or an audio clip, offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError, SimError
from ..ir.design import Design
from ..sim.engine import simulate


def load_sim_input(design: Design, source: str) -> np.ndarray:
    """Inputs for a design from what a user hands in (an .npy, an audio file, a data
    directory or a folder of audio): audio goes through the front end in the design
    folder's model.json."""
    from ..data.loading import inputs_from
    from ..frontend.features import FeatureConfig
    meta_path = design.path / "model.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    feature = FeatureConfig.from_dict(meta["feature"]) if meta.get("feature") else None
    return inputs_from(source, design.onnx_input_shape, feature)[0].astype(np.float64)


def run_sim(design_dir: str | Path, source: str, trace: bool = False) -> dict:
    """Simulate a design on `source`; returns the outputs, codes, labels, saturation
    counts (and each layer's output with trace), as `edge-asr sim --json` prints them."""
    design_dir = Path(design_dir)
    design = Design.load(design_dir)
    x = load_sim_input(design, source)
    try:
        res = simulate(design, x, trace=trace)
    except SimError as exc:
        raise InputError(f"{design_dir}: {exc}") from exc
    labels = design.labels
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
    """run_sim's result as lines for a terminal."""
    lines = [f"{res['design']} on {res['input']}: {res['n']} input(s), outputs {res['output_type']}"]
    for i, row in enumerate(res["outputs"]):
        best = int(np.argmax(row))
        label = f" -> {res['labels'][i]}" if "labels" in res else ""
        lines.append(f"  [{i}] " + " ".join(f"{v:.5f}" for v in row) + f"  (max {row[best]:.5f} at {best}{label})")
    edges = {k: v for k, v in res["saturated"].items() if v}
    lines.append("values at the edge of their type: " + (", ".join(f"{k} {v}" for k, v in edges.items()) or "none"))
    return "\n".join(lines)
