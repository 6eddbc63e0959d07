"""Augmentation on 16 kHz float audio: noise at an SNR, reverb, gain, speed, telephone band.

Noise is generated here (no corpus can be downloaded): white, pink, brown, mains hum, and
babble made from other synthesized words. Reverb uses a synthetic room impulse response
(exponentially decaying noise with a direct path).
"""

from __future__ import annotations

import numpy as np
import soxr
from scipy import signal

SR = 16000
NOISE_KINDS = ("white", "pink", "brown", "hum")


def rms(x: np.ndarray) -> float:
    """Root mean square of a signal (float64 sum; never 0)."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def make_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of noise of a kind (white, pink, brown, hum, ...), unit RMS, from `rng`."""
    if kind == "white":
        x = rng.standard_normal(n)
    elif kind in ("pink", "brown"):
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0)
        spec /= np.sqrt(f) if kind == "pink" else f
        x = np.fft.irfft(spec, n)
    elif kind == "hum":
        t = np.arange(n) / SR
        base = rng.choice([50.0, 60.0])
        x = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6.3))
                for k in range(1, 8))
        x = x + 0.05 * rng.standard_normal(n)
    else:
        raise ValueError(f"unknown noise kind {kind}")
    return (x / rms(x)).astype(np.float32)


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float, signal_rms: float | None = None) -> np.ndarray:
    """Mix `noise` under `x` so that signal power / noise power = snr_db.

    `signal_rms` lets the caller measure the speech where it is, not over the padding.
    """
    s = rms(x) if signal_rms is None else signal_rms
    scale = s / (rms(noise) * 10 ** (snr_db / 20))
    return (x + scale * noise[: x.size]).astype(np.float32)


def room_impulse_response(rng: np.random.Generator, rt60: float) -> np.ndarray:
    """A synthetic room: exponentially decaying noise (-60 dB at rt60) after a direct path.

    The direct path (1-3.3) against thousands of unit-variance taps gives a direct-to-
    reverberant ratio of -30 to -12 dB, harsher than a talker across most rooms. Kept on
    purpose: with rooms of -8 to +12 dB in training and test, the retrained model was no
    better on either (docs/experiments.md, "Realistic rooms"), and the test split stays the one every figure
    was measured on."""
    n = int(SR * min(rt60, 1.0))
    t = np.arange(n) / SR
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0 / rng.uniform(0.3, 1.0)
    return rir


def reverb(x: np.ndarray, rng: np.random.Generator, rt60: float) -> np.ndarray:
    """`x` convolved with a room of reverberation time `rt60` seconds, peak kept."""
    y = signal.fftconvolve(x, room_impulse_response(rng, rt60))[: x.size]
    return (y * (np.abs(x).max() / (np.abs(y).max() + 1e-12))).astype(np.float32)


def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster (pitch moves with it, as tape speed does)."""
    return soxr.resample(x.astype(np.float32), SR * factor, SR).astype(np.float32)


def _mu_law(x: np.ndarray, mu: float = 255.0) -> np.ndarray:
    # G.711 companding and 8-bit requantisation; audioop (which had it) left Python 3.13.
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    y = np.round(y * 127) / 127
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu


def telephone(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Telephone channel: 300-3400 Hz band, 8 kHz sampling with mu-law, back to 16 kHz."""
    lo, hi = rng.uniform(200, 400), rng.uniform(3200, 3500)
    sos = signal.butter(4, [lo, hi], btype="bandpass", fs=SR, output="sos")
    y = signal.sosfilt(sos, x).astype(np.float32)
    y8 = soxr.resample(y, SR, 8000)
    peak = np.abs(y8).max() + 1e-12
    y8 = _mu_law(np.clip(y8 / peak, -1, 1)) * peak
    return soxr.resample(y8.astype(np.float32), 8000, SR)[: x.size].astype(np.float32)


def set_peak_db(x: np.ndarray, db: float) -> np.ndarray:
    """Scale to a peak level in dBFS; above 0 dB the result clips, as an overdriven input does."""
    peak = np.abs(x).max()
    if peak == 0:
        return x
    return np.clip(x * (10 ** (db / 20) / peak), -1.0, 1.0).astype(np.float32)


def trim_silence(x: np.ndarray, top_db: float = 40.0, margin_s: float = 0.03) -> np.ndarray:
    """Cut leading/trailing parts quieter than top_db below the loudest 10 ms frame."""
    hop = SR // 100
    n = x.size // hop
    if n == 0:
        return x
    energy = np.square(x[: n * hop].reshape(n, hop)).mean(axis=1)
    loud = np.flatnonzero(energy > energy.max() * 10 ** (-top_db / 10))
    margin = int(margin_s * SR)
    start = max(0, loud[0] * hop - margin)
    end = min(x.size, (loud[-1] + 1) * hop + margin)
    return x[start:end]
