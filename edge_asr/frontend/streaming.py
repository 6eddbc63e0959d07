"""Streaming front end: features computed per hop from a ring buffer of samples.

Feeding audio in chunks of any size gives, for every window of `clip_frames` frames, the
same model input as `features.clip_features` on the matching one-second slice: frames
are computed one hop at a time from the same samples with the same code
(`features.log_mel_frames`), and the window-level steps (mean normalisation, per-feature
scaling) run on each window as the offline front end runs them on a clip.
"""

from __future__ import annotations

import numpy as np

from .features import FeatureConfig, _normalise, _unnormalised, log_mel_frames


class StreamingFeatures:
    """The front end fed chunk by chunk: frames one hop at a time from a ring buffer, and
    the model's window over the last clip_frames of them (same values as clip_features).
    """
    def __init__(self, cfg: FeatureConfig):
        self.cfg = cfg
        self._raw_cfg = _unnormalised(cfg)
        self._samples = np.zeros(0, np.float32)  # tail not yet consumed by a full frame
        self._frames = np.zeros((cfg.clip_frames, cfg.n_features), np.float32)  # ring of raw frames
        self._next = 0            # ring slot of the next frame
        self.frames_seen = 0      # frames computed so far (frame k starts at sample k * hop)

    def accept(self, samples: np.ndarray) -> int:
        """Append audio at cfg.sample_rate; returns how many new frames it completed."""
        cfg = self.cfg
        buf = np.concatenate([self._samples, np.asarray(samples, np.float32).reshape(-1)])
        n = 0 if buf.size < cfg.win_length else 1 + (buf.size - cfg.win_length) // cfg.hop_length
        if n:
            idx = np.arange(cfg.win_length)[None, :] + cfg.hop_length * np.arange(n)[:, None]
            raw = log_mel_frames(buf[idx].astype(np.float64), self._raw_cfg)
            for row in raw[-cfg.clip_frames:]:
                self._frames[self._next] = row
                self._next = (self._next + 1) % cfg.clip_frames
            buf = buf[n * cfg.hop_length:]
        self._samples = buf
        self.frames_seen += n
        return n

    def samples_until(self, frames: int) -> int:
        """How many more samples make frames_seen reach `frames` (0 if it already has)."""
        missing = frames - self.frames_seen
        if missing <= 0:
            return 0
        cfg = self.cfg
        return max(0, cfg.win_length + (missing - 1) * cfg.hop_length - self._samples.size)

    def window(self) -> np.ndarray | None:
        """Model input (n_features, clip_frames) for the last clip_frames frames, or None
        before that many frames have been seen."""
        if self.frames_seen < self.cfg.clip_frames:
            return None
        frames = np.roll(self._frames, -self._next, axis=0)  # oldest first
        if self.cfg.cmn:
            frames = frames - frames.mean(axis=0, keepdims=True)
        return np.ascontiguousarray(_normalise(frames, self.cfg).T)

    @property
    def window_start_sample(self) -> int:
        """First sample of the current window (frame frames_seen - clip_frames)."""
        return (self.frames_seen - self.cfg.clip_frames) * self.cfg.hop_length
