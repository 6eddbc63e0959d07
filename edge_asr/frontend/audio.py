"""Read, check and resample audio; a chunked reader for long files.

Everything here returns float32 mono at the requested sample rate. soundfile (libsndfile)
decodes every WAV sample format (8-bit unsigned, 16/24/32-bit int, float) to [-1, 1];
soxr resamples, also incrementally for streams.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

from ..errors import AudioError

SAMPLE_RATE = 16000
# Whole-file reads above this are refused: long recordings go through stream_audio().
MAX_READ_SECONDS = 600.0


def _open_info(path: Path):
    if not path.exists():
        raise AudioError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        return sf.info(str(path))
    except Exception as exc:  # libsndfile's message is long; keep its first line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioError(f"{path}: not a readable audio file ({first}); give a WAV/FLAC/OGG file") from exc


def audio_seconds(path: str | Path) -> float:
    """The length of an audio file in seconds, from its header; AudioError when unreadable."""
    info = _open_info(Path(path))
    return info.frames / info.samplerate


def _check_finite(block: np.ndarray, path: Path) -> None:
    if not np.isfinite(block).all():
        raise AudioError(f"{path}: contains NaN or Inf samples; re-export the audio as PCM")


def _to_mono(block: np.ndarray) -> np.ndarray:
    # Stereo and multichannel are averaged: a keyword is the same in every channel.
    return block.mean(axis=1) if block.ndim == 2 else block


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE,
               max_seconds: float = MAX_READ_SECONDS) -> np.ndarray:
    """Read a whole (short) file as float32 mono at `sample_rate`."""
    path = Path(path)
    info = _open_info(path)
    if info.frames == 0:
        raise AudioError(f"{path}: has no samples; record or export it again")
    if info.frames / info.samplerate > max_seconds:
        raise AudioError(f"{path}: {info.frames / info.samplerate:.0f} s is longer than "
                         f"{max_seconds:.0f} s; use streaming (stream_audio / edge-asr recognize)")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode ({exc}); the file may be truncated or corrupt") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path}: has no samples; record or export it again")
    _check_finite(data, path)
    mono = _to_mono(data)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate).astype(np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)


def stream_audio(path: str | Path, sample_rate: int = SAMPLE_RATE,
                 block_seconds: float = 1.0) -> Iterator[np.ndarray]:
    """Yield float32 mono blocks at `sample_rate`, never holding more than one block.

    Resampling is stateful (soxr.ResampleStream), so the concatenated blocks equal a
    whole-file resample up to the resampler's own precision.
    """
    path = Path(path)
    info = _open_info(path)
    if info.frames == 0:
        raise AudioError(f"{path}: has no samples; record or export it again")
    block_frames = max(1, int(block_seconds * info.samplerate))
    resampler = (soxr.ResampleStream(info.samplerate, sample_rate, 1, dtype="float32")
                 if info.samplerate != sample_rate else None)
    try:
        blocks = sf.blocks(str(path), blocksize=block_frames, dtype="float32", always_2d=True)
        for block in blocks:
            _check_finite(block, path)
            mono = np.ascontiguousarray(_to_mono(block), dtype=np.float32)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=False)
            if mono.size:
                yield mono
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode ({exc}); the file may be truncated or corrupt") from exc
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        if tail.size:
            yield tail


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write float audio as 16-bit PCM WAV (clipped to [-1, 1])."""
    sf.write(str(path), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16")


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Centre-crop or zero-pad (both sides equally) to exactly n samples."""
    if audio.size >= n:
        start = (audio.size - n) // 2
        return audio[start:start + n]
    pad = n - audio.size
    return np.pad(audio, (pad // 2, pad - pad // 2))


def pcm_stdin_chunks(stdin, chunk_samples: int = 1600):
    """Raw 16-bit little-endian mono PCM (16 kHz) from a binary stream, as float32 chunks.
    A stream that ends mid-sample drops the odd byte. A stream with no whole sample is
    refused as an empty file is (AudioError)."""
    samples = 0
    while True:
        data = stdin.read(chunk_samples * 2)
        if not data:
            if not samples:
                raise AudioError("-: standard input held no audio samples (want raw S16_LE PCM at 16 kHz); "
                                 "record or pipe the audio again")
            return
        usable = len(data) - len(data) % 2
        if usable:
            samples += usable // 2
            yield np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
