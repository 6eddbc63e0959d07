"""Manifest rows -> model input arrays (features) and label indices."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..audio import read_audio
from ..errors import InputError
from ..features import FeatureConfig, clip_features
from .manifest import Row


def feature_matrix(data_dir: str | Path, rows: list[Row], cfg: FeatureConfig,
                   progress: bool = True, desc: str = "features") -> np.ndarray:
    """(len(rows), n_features, clip_frames) float32 features of each row's clip."""
    data_dir = Path(data_dir)
    out = np.empty((len(rows), cfg.n_features, cfg.clip_frames), np.float32)
    for i, r in enumerate(tqdm(rows, desc=desc, unit="clip", disable=not progress, file=sys.stderr,
                               mininterval=1.0)):
        out[i] = clip_features(read_audio(data_dir / r.path, cfg.sample_rate), cfg)
    return out


def label_indices(rows: list[Row], labels: list[str]) -> np.ndarray:
    index = {l: i for i, l in enumerate(labels)}
    bad = sorted({r.label for r in rows} - set(index))
    if bad:
        raise InputError(f"manifest labels {bad} are not among the model's labels {labels}")
    return np.array([index[r.label] for r in rows], dtype=np.int64)
