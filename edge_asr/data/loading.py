"""Manifest rows -> model input arrays (features) and label indices."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..frontend.audio import read_audio
from ..frontend.features import FeatureConfig, clip_features
from .manifest import Row


def progress_bar(items, enabled: bool, desc: str, unit: str):
    """`items` with a tqdm progress bar on stderr when enabled and tqdm is installed (every
    extra brings it; the base install has none, and then there is no bar)."""
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit=unit, file=sys.stderr, mininterval=1.0)


def feature_matrix(data_dir: str | Path, rows: list[Row], cfg: FeatureConfig,
                   progress: bool = True, desc: str = "features") -> np.ndarray:
    """(len(rows), n_features, clip_frames) float32 features of each row's clip."""
    data_dir = Path(data_dir)
    out = np.empty((len(rows), cfg.n_features, cfg.clip_frames), np.float32)
    for i, r in enumerate(progress_bar(rows, progress, desc, "clip")):
        out[i] = clip_features(read_audio(data_dir / r.path, cfg.sample_rate), cfg)
    return out


def label_indices(rows: list[Row], labels: list[str]) -> np.ndarray:
    """Each row's label as an index into `labels`; InputError naming labels the model lacks."""
    index = {label: i for i, label in enumerate(labels)}
    bad = sorted({r.label for r in rows} - set(index))
    if bad:
        raise InputError(f"manifest labels {bad} are not among the model's labels {labels}")
    return np.array([index[r.label] for r in rows], dtype=np.int64)


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def features_of_files(files: list[Path], cfg: FeatureConfig) -> np.ndarray:
    """(len(files), n_features, frames) features of audio files, one window each."""
    return np.stack([clip_features(read_audio(f, cfg.sample_rate), cfg) for f in files])


def inputs_from(source: str | Path, shape: tuple, feature: FeatureConfig | None, labels: list[str] | None = None,
                n: int | None = None, split: str = "test") -> tuple[np.ndarray, np.ndarray | None]:
    """Model inputs (and label indices where known) from what a user hands in:
    an .npy of inputs (one, or a batch), an audio file, a data directory (its `split`,
    or all rows when it has none, evenly subsampled to n) or a folder of audio files.
    Used by convert (calibration), verify and sim alike."""
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.suffix == ".npy":
        x = np.load(path, allow_pickle=False).astype(np.float32)
        if tuple(x.shape) == tuple(shape):
            x = x[None]
        if tuple(x.shape[1:]) != tuple(shape):
            raise InputError(f"{path}: inputs of shape {tuple(x.shape[1:])}, the model takes {tuple(shape)}")
        return x[:n], None
    if feature is None:
        raise InputError(f"{path}: turning audio into inputs needs the model's feature configuration "
                         "(model.json); pass inputs as an .npy")
    if path.is_file():
        return features_of_files([path], feature), None
    if (path / "manifest.csv").is_file():
        from .manifest import read_manifest
        rows = read_manifest(path)
        rows = [r for r in rows if r.split == split] or rows
        if n and len(rows) > n:
            rows = [rows[i] for i in np.linspace(0, len(rows) - 1, n).astype(int)]
        y = label_indices(rows, labels) if labels else None
        return feature_matrix(path, rows, feature, progress=False), y
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)[:n]
    if not files:
        raise InputError(f"{path}: no manifest.csv and no audio files")
    return features_of_files(files, feature), None
