"""Log-mel front end: one numpy implementation for training, export and inference.

Written in plain numpy rather than taken from librosa/torchaudio on purpose: the same
code runs on the board (numpy + pynq only) and in the streaming recognizer, and it must
give the same frames there as in training. tests/test_features.py checks it against
librosa's mel spectrogram on the same configuration.

Frames are not centred: frame k covers samples [k*hop, k*hop + win). A 25 ms Hann window
is zero-padded to n_fft. Output is (frames, n_mels) float32, natural log of mel power
plus a floor, then optionally normalised per mel bin with statistics from training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InputError


@dataclass
class FeatureConfig:
    """The front end's configuration, stored in model.json (`feature`): framing, mel
    bank, optional cepstra and mean normalisation, and per-feature scaling from training.

    Attributes:
        sample_rate, win_ms, hop_ms, n_fft: framing (25 ms Hann windows every 10 ms by default).
        n_mels, fmin, fmax, log_floor: the mel filterbank and the log.
        clip_seconds: the model's window.
        n_mfcc: cepstral coefficients kept (0: log-mel).
        cmn: subtract each coefficient's mean over the window.
        mean, std: per-feature normalisation from training data.
    """
    sample_rate: int = 16000
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 7600.0
    log_floor: float = 1e-6
    clip_seconds: float = 1.0
    # n_mfcc > 0: keep that many DCT-II (orthonormal) coefficients of the log-mel frame.
    # Dropping the upper cepstrum smooths away pitch harmonics, which differ most between
    # speakers; the model then sees the spectral envelope (formants).
    n_mfcc: int = 0
    # Subtract each coefficient's mean over the window (cepstral mean normalisation):
    # removes a fixed channel colouring (microphone, telephone line) and the input level.
    cmn: bool = False
    # Per-mel-bin normalisation (x - mean) / std, filled in from training data.
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    @property
    def win_length(self) -> int:
        """Samples per analysis window."""
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        """Samples between frames."""
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def clip_samples(self) -> int:
        """Samples in the model's window."""
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def clip_frames(self) -> int:
        """Frames in the model's window."""
        return num_frames(self.clip_samples, self)

    @property
    def n_features(self) -> int:
        """Values per frame: mel bins, or cepstral coefficients when n_mfcc > 0."""
        return self.n_mfcc or self.n_mels

    def to_dict(self) -> dict:
        """The configuration as model.json stores it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        """A configuration from model.json's `feature`, validated; InputError on unknown keys or bad values."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"feature configuration has unknown keys {sorted(unknown)}; "
                             "was it written by a newer edge-asr?")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """InputError when the window, band, cepstra or normalisation do not fit together."""
        if self.win_length > self.n_fft:
            raise InputError(f"feature configuration: window {self.win_length} samples is longer "
                             f"than n_fft {self.n_fft}; raise n_fft")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise InputError(f"feature configuration: need 0 <= fmin < fmax <= {self.sample_rate / 2}")
        if not 0 <= self.n_mfcc <= self.n_mels:
            raise InputError(f"feature configuration: n_mfcc must be between 0 and n_mels ({self.n_mels})")
        if self.mean and (len(self.mean) != self.n_features or len(self.std) != self.n_features):
            raise InputError("feature configuration: mean/std must have one entry per feature")


def num_frames(n_samples: int, cfg: FeatureConfig) -> int:
    """Frames in `n_samples` samples (no centring, no padding)."""
    if n_samples < cfg.win_length:
        return 0
    return 1 + (n_samples - cfg.win_length) // cfg.hop_length


def _hz_to_mel(f):
    # Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, log above.
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mel = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mel)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


_FILTERBANKS: dict[tuple, np.ndarray] = {}


def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """(n_fft//2+1, n_mels) triangular filters, Slaney area normalisation."""
    key = (cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
    if key in _FILTERBANKS:
        return _FILTERBANKS[key]
    fft_freqs = np.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    mel_pts = _mel_to_hz(np.linspace(_hz_to_mel(cfg.fmin), _hz_to_mel(cfg.fmax), cfg.n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_pts[2:] - mel_pts[:-2]))[:, None]
    fb = np.ascontiguousarray(weights.T)
    _FILTERBANKS[key] = fb
    return fb


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out) orthonormal DCT-II basis, the transform librosa's MFCC uses."""
    k = np.arange(n_out)[None, :]
    n = np.arange(n_in)[:, None]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[:, 0] /= np.sqrt(2.0)
    return basis


def _window(cfg: FeatureConfig) -> np.ndarray:
    n = cfg.win_length
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic Hann


def frame_signal(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(frames, win_length) float64 frames cut from a waveform."""
    n = num_frames(audio.size, cfg)
    if n == 0:
        return np.zeros((0, cfg.win_length), dtype=np.float64)
    idx = np.arange(cfg.win_length)[None, :] + cfg.hop_length * np.arange(n)[:, None]
    return audio[idx].astype(np.float64)


def log_mel_frames(frames: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel of already-cut frames (frames, win_length) -> (frames, n_mels) float32."""
    spec = np.fft.rfft(frames * _window(cfg), n=cfg.n_fft, axis=-1)
    power = spec.real ** 2 + spec.imag ** 2
    mel = power @ mel_filterbank(cfg)
    out = np.log(mel + cfg.log_floor)
    if cfg.n_mfcc:
        out = out @ dct_matrix(cfg.n_mels, cfg.n_mfcc)
    if cfg.mean:
        out = (out - np.asarray(cfg.mean)) / np.asarray(cfg.std)
    return out.astype(np.float32)


def log_mel(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(frames, n_features) float32 features of a 1-D waveform at cfg.sample_rate.

    With cfg.cmn the mean over these frames is subtracted: pass exactly the window the
    model sees (clip_features does).
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise InputError(f"log_mel wants a 1-D waveform, got shape {audio.shape}")
    if cfg.cmn:
        raw = log_mel_frames(frame_signal(audio, cfg), _unnormalised(cfg))
        raw -= raw.mean(axis=0, keepdims=True)
        return _normalise(raw, cfg)
    return log_mel_frames(frame_signal(audio, cfg), cfg)


def _unnormalised(cfg: FeatureConfig) -> FeatureConfig:
    return FeatureConfig(**{**cfg.to_dict(), "mean": [], "std": [], "cmn": False})


def _normalise(x: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    if cfg.mean:
        x = (x - np.asarray(cfg.mean, np.float32)) / np.asarray(cfg.std, np.float32)
    return x.astype(np.float32)


def clip_features(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Model input for one clip: the clip cut/padded to clip_seconds, as (n_mels, frames).

    Channels-first (mel bins are the Conv1d channels), the layout of the ONNX input.
    """
    from .audio import fit_length
    return np.ascontiguousarray(log_mel(fit_length(audio, cfg.clip_samples), cfg).T)
