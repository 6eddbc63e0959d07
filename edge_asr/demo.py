"""`edge-asr demo`: the README's main job.

For now (the spine): classify the shipped example clips with the shipped model through
onnxruntime and print label and score per clip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .audio import read_audio
from .backends.onnx import OnnxBackend
from .errors import InputError
from .features import clip_features
from .modeldir import load_model_dir


def demo(model_dir: Path, examples: str | None = None, out=print) -> int:
    info = load_model_dir(model_dir)
    folder = Path(examples) if examples else model_dir / "examples"
    wavs = sorted(folder.glob("*.wav"))
    if not wavs:
        raise InputError(f"{folder}: no .wav files to classify; pass --examples DIR")
    backend = OnnxBackend(info)
    cfg = info.feature
    x = np.stack([clip_features(read_audio(w, cfg.sample_rate), cfg) for w in wavs])
    probs = backend.run(x)
    acc = info.meta.get("metrics", {}).get("test_accuracy")
    out(f"model {info.meta.get('name', model_dir.name)} ({info.meta.get('net')}, "
        f"{info.meta.get('parameters')} parameters)" + (f", test accuracy {acc:.2%}" if acc is not None else ""))
    out(f"{'clip':<46} {'label':<10} {'score':>6}")
    for w, p in zip(wavs, probs):
        k = int(p.argmax())
        out(f"{w.name:<46} {info.labels[k]:<10} {p[k]:6.3f}")
    return 0
