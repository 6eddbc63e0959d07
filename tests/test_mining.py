"""Hard negatives and homophones: `data mine` keeps the other-word clips a model fires on,
and `data running --homophones` keeps the read speech whose words sound like digits."""

from __future__ import annotations

import json

import numpy as np

from edge_asr.cli import main
from edge_asr.data import SILENCE, UNKNOWN
from edge_asr.data.loading import feature_matrix
from edge_asr.data.manifest import read_manifest
from edge_asr.data.running import DIGIT_SOUNDS, HOMOPHONES, sentences
from edge_asr.runtime.backends.onnx import OnnxBackend
from edge_asr.runtime.modeldir import load_model_dir

from .conftest import SHIPPED_MODEL


def test_mined_clips_are_the_other_words_that_fire(tmp_path, small_data, capsys):
    out = tmp_path / "mined"
    assert main(["data", "mine", str(SHIPPED_MODEL), str(small_data), "--out", str(out), "--threshold", "0.3",
                 "--quiet"]) == 0
    rows = read_manifest(out)
    others = [r for r in read_manifest(small_data, "train") if r.label == UNKNOWN]
    assert 0 < len(rows) < len(others) and {r.label for r in rows} == {UNKNOWN}
    info = load_model_dir(SHIPPED_MODEL)
    p = OnnxBackend(info).run(feature_matrix(out, rows, info.feature, progress=False))
    top = p.argmax(1)
    assert all(info.labels[k] not in (UNKNOWN, SILENCE) for k in top)  # each was taken for a keyword
    assert np.all(p[np.arange(len(top)), top] >= 0.3 - 1e-6)
    # and the clips left out do not fire
    kept = {r.path for r in rows}
    rest = [r for r in others if r.path not in kept]
    q = OnnxBackend(info).run(feature_matrix(small_data, rest, info.feature, progress=False))
    fires = [info.labels[k] not in (UNKNOWN, SILENCE) and q[i, k] >= 0.3 for i, k in enumerate(q.argmax(1))]
    assert not any(fires)
    meta = json.loads((out / "data.json").read_text())
    assert meta["kind"] == "mined" and meta["clips"] == len(rows) and sum(meta["fired_as"].values()) == len(rows)
    capsys.readouterr()
    assert main(["data", "mine", str(SHIPPED_MODEL), str(small_data), "--out", str(tmp_path / "none"),
                 "--threshold", "0.9999999"]) == 2
    assert "nothing to mine" in capsys.readouterr().err and not (tmp_path / "none").exists()


def test_homophones_stay_in_read_speech_only_when_asked():
    text = "We went to the shop for bread. Two of them came. He won the race and ate well. It is nine now."
    default = sentences(text)
    kept = sentences(text, DIGIT_SOUNDS - HOMOPHONES)
    assert default == []  # every sentence holds a digit word or a homophone
    assert kept == ["We went to the shop for bread.", "He won the race and ate well."]
    assert not (HOMOPHONES & {"two", "nine", "one", "eight", "four"})


def test_streamed_figures_print_for_a_set_without_other_words():
    from edge_asr.training.streamed import format_streamed
    point = {"threshold": 0.5, "fa_per_hour": 1.0, "miss_rate": 0.1, "other_word_rate": 0.0, "fire_rate": None}
    res = {"running_hours": 1.0, "running": "r", "n_keyword_clips": 10, "n_other_clips": 0, "data": "d",
           "at_threshold": point, "running_by_source": {}, "target_fa_per_hour": 2.0, "target_fire_rate": 0.02,
           "operating_point": dict(point, meets_target=True)}
    text = format_streamed(res)
    assert "other words firing -" in text and "<= 2.0% of other words firing" in text
