"""`edge-asr data mine`: hard negatives. A model scores a data set's other-word clips (such
as one-second windows of running speech, `data running --windows`); those it takes for a
keyword are written as a data set of their own, to train the next model on
(`train ... --extra-train MINED --data-weight MINED=W`). Score, add, train again: the
windows that fire are the ones a model learns least from the rest."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir, refuse_existing
from ..data import SILENCE, UNKNOWN
from ..data.loading import feature_matrix
from ..data.manifest import read_manifest, write_manifest
from ..errors import InputError
from ..runtime.backends.onnx import OnnxBackend
from ..runtime.modeldir import load_model_dir

BATCH = 2048  # clips scored at once: features of a batch, not of the whole set, are held


def mine(model_dir: str | Path, src: str | Path, out: str | Path, threshold: float = 0.5, split: str = "train",
         force: bool = False, progress: bool = True, log=print) -> Path:
    """Write `out`: the `_unknown_` clips of SRC's split whose largest posterior under the
    model is a keyword at `threshold` or above. Returns `out`.

    Raises:
        InputError: not a model or data directory, a threshold outside (0, 1), no other-word
        clips, or none that fires (nothing is written then); OutputExistsError: out exists
        without force.
    """
    src, out = Path(src), Path(out)
    if not 0.0 < threshold < 1.0:
        raise InputError(f"--threshold {threshold}: give a posterior between 0 and 1")
    refuse_existing(out, force)
    info = load_model_dir(model_dir)
    backend = OnnxBackend(info)
    rows = [r for r in read_manifest(src, split) if r.label == UNKNOWN]
    if not rows:
        raise InputError(f"{src}: no {UNKNOWN} clips in its {split} split to mine")
    keywords = np.array([label not in (UNKNOWN, SILENCE) for label in info.labels])
    fired = []
    for start in range(0, len(rows), BATCH):
        part = rows[start:start + BATCH]
        p = backend.run(feature_matrix(src, part, info.feature, progress, f"scoring {start + len(part)}/{len(rows)}"))
        top = p.argmax(1)
        for r, k, score in zip(part, top, p[np.arange(len(top)), top], strict=True):
            if keywords[k] and score >= threshold:
                fired.append(replace(r, augmentation=f"{r.augmentation};mined={info.labels[k]}@{score:.2f}"))
    if not fired:
        raise InputError(f"{src}: none of its {len(rows)} {UNKNOWN} clips fires at {threshold}; nothing to mine "
                         "(a lower --threshold, or more clips)")
    with atomic_dir(out) as tmp:
        for r in fired:
            (tmp / r.path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / r.path, tmp / r.path)
        write_manifest(tmp, fired)
        (tmp / "data.json").write_text(json.dumps({
            "kind": "mined", "source": str(src.resolve()), "split": split, "model": str(Path(model_dir).resolve()),
            "threshold": threshold, "scored": len(rows), "clips": len(fired),
            "fired_as": {label: sum(r.augmentation.split("mined=")[-1].startswith(label + "@") for r in fired)
                         for label in info.labels if label not in (UNKNOWN, SILENCE)}}, indent=2) + "\n")
    log(f"wrote {out}: {len(fired)} of {src}'s {len(rows)} {UNKNOWN} clips fire at {threshold} "
        f"({len(fired) / len(rows):.1%})")
    return out
