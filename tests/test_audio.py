"""Bad and unusual audio input: each case is handled or refused with one clear error."""

import numpy as np
import pytest
import soundfile as sf

from edge_asr.errors import AudioError
from edge_asr.frontend.audio import read_audio, stream_audio


def tone(sr: int, seconds: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_freq(x: np.ndarray, sr: int = 16000) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[spec.argmax()])


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        read_audio(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(AudioError, match="directory"):
        read_audio(tmp_path)


def test_not_audio(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is not a wav file\n")
    with pytest.raises(AudioError, match="not a readable audio file"):
        read_audio(p)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match="not a readable audio file"):
        read_audio(p)


def test_zero_samples(tmp_path):
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros(0, np.float32), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match="no samples"):
        read_audio(p)
    with pytest.raises(AudioError, match="no samples"):
        list(stream_audio(p))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_samples(tmp_path, bad):
    x = tone(16000)
    x[100] = bad
    p = tmp_path / "bad.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or Inf"):
        read_audio(p)
    with pytest.raises(AudioError, match="NaN or Inf"):
        list(stream_audio(p))


def test_stereo_is_averaged(tmp_path):
    left, right = tone(16000, freq=440), tone(16000, freq=880) * 0.5
    p = tmp_path / "stereo.wav"
    sf.write(p, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(p), (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("sr", [8000, 11025, 22050, 44100, 48000])
def test_other_rates_are_resampled(tmp_path, sr):
    p = tmp_path / f"r{sr}.wav"
    sf.write(p, tone(sr, 1.0, 1000.0), sr, subtype="PCM_16")
    y = read_audio(p)
    assert abs(y.size - 16000) <= 2
    assert abs(peak_freq(y) - 1000.0) < 5.0


@pytest.mark.parametrize("subtype,tol", [("PCM_U8", 1 / 64), ("PCM_16", 1e-4), ("PCM_24", 1e-6),
                                         ("PCM_32", 1e-6), ("FLOAT", 1e-7), ("DOUBLE", 1e-7)])
def test_sample_formats(tmp_path, subtype, tol):
    x = tone(16000)
    p = tmp_path / f"{subtype}.wav"
    sf.write(p, x, 16000, subtype=subtype)
    y = read_audio(p)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.abs(y - x).max() <= tol


def test_truncated_wav_is_read_or_refused(tmp_path):
    p = tmp_path / "cut.wav"
    sf.write(p, tone(16000, 1.0), 16000, subtype="PCM_16")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2 + 1])  # half the samples, header still claims all
    try:
        y = read_audio(p)
    except AudioError as exc:
        assert "truncated" in str(exc) or "no samples" in str(exc)
    else:
        assert 0 < y.size <= 16000 and np.isfinite(y).all()


def test_long_file_refused_whole_and_streamed_in_blocks(tmp_path):
    # One hour at 8 kHz, 8-bit: 28.8 MB on disk. read_audio refuses it; stream_audio walks it
    # block by block (resampling to 16 kHz) and never yields more than one block's worth.
    sr, seconds = 8000, 3600
    p = tmp_path / "hour.wav"
    block = tone(sr, 60.0, 300.0)
    with sf.SoundFile(p, "w", sr, 1, subtype="PCM_U8") as f:
        for _ in range(seconds // 60):
            f.write(block)
    with pytest.raises(AudioError, match="longer than"):
        read_audio(p)
    total, biggest = 0, 0
    for chunk in stream_audio(p, block_seconds=10.0):
        total += chunk.size
        biggest = max(biggest, chunk.size)
    assert abs(total - seconds * 16000) <= 64
    assert biggest <= 10 * 16000 + 2048  # one block plus the resampler's delay line


def test_stream_equals_whole_read(tmp_path):
    p = tmp_path / "t.wav"
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 44100 * 3).astype(np.float32)
    sf.write(p, x, 44100, subtype="FLOAT")
    whole = read_audio(p)
    streamed = np.concatenate(list(stream_audio(p, block_seconds=0.37)))
    n = min(whole.size, streamed.size)
    assert abs(whole.size - streamed.size) <= 2
    # soxr's one-shot and streaming paths share the filter; edges aside they agree closely
    assert np.abs(whole[100:n - 100] - streamed[100:n - 100]).max() < 1e-3
