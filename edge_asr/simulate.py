"""`edge-asr sim`: run the bit-exact simulator on an input array or an audio clip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import InputError
from .sim.engine import SimError, load_design, simulate


def load_sim_input(design_dir: Path, source: str) -> np.ndarray:
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix == ".npy":
        x = np.load(path, allow_pickle=False)
        design = json.loads((design_dir / "design.json").read_text())
        shape = tuple(design["input"]["onnx_shape"][1:])
        if x.shape == shape:
            x = x[None]
        return x.astype(np.float64)
    meta_path = design_dir / "model.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if not meta.get("feature"):
        raise InputError(f"{design_dir}: no feature configuration to turn audio into inputs; pass an .npy")
    from .audio import read_audio
    from .features import FeatureConfig, clip_features
    cfg = FeatureConfig.from_dict(meta["feature"])
    return clip_features(read_audio(path, cfg.sample_rate), cfg)[None].astype(np.float64)


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
