import numpy as np
import pytest

from edge_asr.errors import InputError
from edge_asr.frontend.features import (
    FeatureConfig,
    clip_features,
    log_mel,
    mel_filterbank,
    num_frames,
)

librosa = pytest.importorskip("librosa")

# Our log-mel equals librosa's to this absolute tolerance in the log domain: both compute
# in float64, ours is rounded to float32 at the end.
LOG_MEL_TOL = 1e-4


def _speechlike(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    x = 0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.2 * np.sin(2 * np.pi * 3 * t))) + 0.05 * rng.standard_normal(n)
    return x.astype(np.float32)


def test_filterbank_matches_librosa():
    cfg = FeatureConfig()
    ours = mel_filterbank(cfg)
    ref = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                              fmax=cfg.fmax, htk=False, norm="slaney", dtype=np.float64).T
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("n_mels,fmax", [(40, 7600.0), (64, 8000.0), (20, 4000.0)])
def test_log_mel_matches_librosa(n_mels, fmax):
    cfg = FeatureConfig(n_mels=n_mels, fmax=fmax)
    x = _speechlike(16000 + 123)
    ours = log_mel(x, cfg)
    # librosa cuts n_fft-long frames with the 400-sample window centred inside them; padding
    # (n_fft - win) / 2 samples on each side puts its window where ours is.
    pad = (cfg.n_fft - cfg.win_length) // 2
    mel = librosa.feature.melspectrogram(y=np.pad(x.astype(np.float64), pad), sr=cfg.sample_rate, n_fft=cfg.n_fft,
                                         hop_length=cfg.hop_length, win_length=cfg.win_length, window="hann",
                                         center=False, power=2.0, n_mels=n_mels, fmin=cfg.fmin, fmax=fmax,
                                         htk=False, norm="slaney")
    ref = np.log(mel + cfg.log_floor).T
    assert ours.shape == ref.shape == (num_frames(x.size, cfg), n_mels)
    assert np.abs(ours - ref).max() <= LOG_MEL_TOL


def test_frame_count_and_clip_shape():
    cfg = FeatureConfig()
    assert cfg.clip_frames == 98
    assert num_frames(399, cfg) == 0
    assert num_frames(400, cfg) == 1
    assert clip_features(np.zeros(5000, np.float32), cfg).shape == (40, 98)
    assert clip_features(np.zeros(40000, np.float32), cfg).shape == (40, 98)


def test_normalisation_applied():
    cfg = FeatureConfig()
    x = _speechlike(16000)
    raw = log_mel(x, cfg)
    cfg2 = FeatureConfig(mean=[1.0] * 40, std=[2.0] * 40)
    np.testing.assert_allclose(log_mel(x, cfg2), (raw - 1.0) / 2.0, atol=1e-5)


def test_config_round_trip_and_errors():
    cfg = FeatureConfig(n_mels=32)
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InputError, match="unknown keys"):
        FeatureConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(InputError, match="n_fft"):
        FeatureConfig(win_ms=50).validate()
    with pytest.raises(InputError, match="fmax"):
        FeatureConfig(fmax=9000).validate()
    with pytest.raises(InputError, match="1-D"):
        log_mel(np.zeros((2, 100)), cfg)


@pytest.mark.parametrize("kw", [{}, {"n_mfcc": 20}, {"n_mfcc": 13, "cmn": True, "fmax": 4000.0}])
def test_training_front_end_matches_numpy(kw):
    # Training augments log-mel and finishes the front end in torch; it must equal log_mel().
    torch = pytest.importorskip("torch")
    from edge_asr.training.batches import FrontEnd
    stats = {"mean": [0.5] * (kw.get("n_mfcc") or 40), "std": [2.0] * (kw.get("n_mfcc") or 40)}
    cfg = FeatureConfig(**kw, **stats)
    mel_cfg = FeatureConfig(**{**cfg.to_dict(), "mean": [], "std": [], "n_mfcc": 0, "cmn": False})
    x = _speechlike(16000, seed=3)
    mel = torch.from_numpy(clip_features(x, mel_cfg))[None]
    np.testing.assert_allclose(FrontEnd(cfg)(mel)[0].numpy(), clip_features(x, cfg), atol=1e-4)


def test_mfcc_matches_librosa_dct():
    scipy_fft = pytest.importorskip("scipy.fft")
    cfg = FeatureConfig(n_mfcc=13)
    x = _speechlike(16000)
    ref = scipy_fft.dct(log_mel(x, FeatureConfig()), type=2, norm="ortho", axis=1)[:, :13]
    np.testing.assert_allclose(log_mel(x, cfg), ref, atol=1e-4)
