"""The streaming front end equals the offline one on the same audio, whatever the chunking."""

import numpy as np
import pytest

from edge_asr.frontend.features import FeatureConfig, clip_features
from edge_asr.frontend.streaming import StreamingFeatures


@pytest.mark.parametrize("kw", [{}, {"n_mfcc": 20, "cmn": True, "fmax": 4000.0}])
@pytest.mark.parametrize("chunk", [1, 160, 333, 4000])
def test_stream_equals_offline(kw, chunk):
    n_feat = kw.get("n_mfcc") or 40
    cfg = FeatureConfig(**kw, mean=list(np.linspace(-1, 1, n_feat)), std=list(np.linspace(1, 2, n_feat)))
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(16000 + 16000 * chunk // 400) * 0.1).astype(np.float32)
    s = StreamingFeatures(cfg)
    checked = 0
    for i in range(0, audio.size, chunk):
        if not s.accept(audio[i:i + chunk]):
            continue  # no new frame, same window
        w = s.window()
        if w is None:
            assert s.frames_seen < cfg.clip_frames
            continue
        start = s.window_start_sample
        offline = clip_features(audio[start:start + cfg.clip_samples], cfg)
        np.testing.assert_allclose(w, offline, atol=1e-5)
        checked += 1
    assert checked > 0 and s.frames_seen == 1 + (audio.size - cfg.win_length) // cfg.hop_length
