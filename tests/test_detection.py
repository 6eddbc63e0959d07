"""False alarms per hour, miss rate and the DET curve on streamed audio; the running-speech
set they are measured on; the operating threshold chosen on validation and used by default."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edge_asr.cli import main
from edge_asr.data.manifest import read_manifest
from edge_asr.data.running import DIGIT_SOUNDS, make_running_set, sentences
from edge_asr.errors import InputError
from edge_asr.frontend.audio import read_audio
from edge_asr.runtime.detection import detection_curve, operating_point, replay, stream_posteriors
from edge_asr.runtime.recognizer import DEFAULT_THRESHOLD, Recognizer, RecognizerConfig

from .conftest import SHIPPED_MODEL

QUIET = dict(progress=False, log=lambda m: None)


def test_sentences_hold_no_digit_word_homophone_or_numeral():
    text = ("I want to go. Someone often said hello there friend. We ate well tonight my dear. "
            "Call me at five tomorrow morning please. There were 3 cats in the yard today. "
            "Oh what a lovely day it is. The quick brown fox jumps over the lazy dog.")
    got = sentences(text)
    assert got == ["Someone often said hello there friend.", "The quick brown fox jumps over the lazy dog."]
    assert {"to", "ate", "oh", "five", "won", "for"} <= DIGIT_SOUNDS


@pytest.fixture(scope="module")
def running_valid(tmp_path_factory):
    return make_running_set(tmp_path_factory.mktemp("running") / "valid", hours=0.02, split="valid", **QUIET)


@pytest.fixture(scope="module")
def running_test(tmp_path_factory):
    return make_running_set(tmp_path_factory.mktemp("running") / "test", hours=0.02, split="test", human_copies=0,
                            **QUIET)


def test_running_set_has_no_digit_in_its_text(running_valid, running_test):
    for folder, split in ((running_valid, "valid"), (running_test, "test")):
        info = json.loads((folder / "data.json").read_text())
        assert info["kind"] == "running" and info["split"] == split
        rows = read_manifest(folder)
        assert rows and all(r.label == "_unknown_" and r.split == split for r in rows)
        for r in rows:
            for said in r.text.split(" | "):
                words = set(said.lower().replace(",", " ").replace(".", " ").split())
                assert not words & DIGIT_SOUNDS, said
            assert abs(read_audio(folder / r.path, max_seconds=900).size / 16000 - r.seconds) < 0.01
    # the human recordings are test data: in the test set, never in a validation one
    assert not any(r.engine == "human" for r in read_manifest(running_valid))
    assert any(r.engine == "human" for r in read_manifest(running_test))
    assert sum(r.seconds for r in read_manifest(running_valid)) >= 0.02 * 3600


def test_replayed_decisions_are_what_the_recognizer_emits():
    """The DET sweep replays the recognizer's own decision on the model's posteriors: at the
    recognizer's threshold it gives exactly the words `recognize` emits, and fewer words
    (never more) as the threshold rises."""
    rec = Recognizer.from_model(SHIPPED_MODEL, RecognizerConfig(threshold=0.5))
    rng = np.random.default_rng(0)
    clips = sorted((SHIPPED_MODEL / "examples").glob("*.wav"))
    audio = np.concatenate([np.concatenate([read_audio(c), 0.01 * rng.standard_normal(8000).astype(np.float32)])
                            for c in clips])
    post = stream_posteriors(rec, audio, 16000)
    result = rec.recognize_chunks([audio])
    replayed = replay(post, rec.labels, rec.config, 0.5)
    assert [(e.word, e.start, e.end) for e in replayed] == [(e["word"], e["start"], e["end"]) for e in result["events"]]
    assert len(replayed) >= 8
    counts = [len(replay(post, rec.labels, rec.config, t)) for t in (0.3, 0.5, 0.7, 0.9, 0.99)]
    assert counts == sorted(counts, reverse=True) and counts[-1] < counts[0]


def test_det_curve_and_operating_point(running_test):
    rec = Recognizer.from_model(SHIPPED_MODEL)
    sr = rec.feature.sample_rate
    running = [stream_posteriors(rec, read_audio(running_test / r.path, sr, max_seconds=900), sr)
               for r in read_manifest(running_test)]
    clips = sorted((SHIPPED_MODEL / "examples").glob("*.wav"))
    keywords = [(stream_posteriors(rec, read_audio(c), sr), c.name.split("-")[0]) for c in clips
                if not c.name.startswith("_")]
    others = [stream_posteriors(rec, read_audio(c), sr) for c in clips if c.name.startswith("_unknown_")]
    curve = detection_curve(running, keywords, others, rec.labels, rec.config, (0.3, 0.55, 0.8, 0.99))
    fa = [c["fa_per_hour"] for c in curve]
    miss = [c["miss_rate"] for c in curve]
    assert fa == sorted(fa, reverse=True) and miss == sorted(miss)
    hours = sum(p.seconds for p in running) / 3600
    assert curve[0]["false_alarms"] == round(fa[0] * hours)
    op = operating_point(curve, fa[1])
    assert op["meets_target"] and op["fa_per_hour"] <= fa[1] and op["miss_rate"] == min(
        c["miss_rate"] for c in curve if c["fa_per_hour"] <= fa[1])
    assert not operating_point(curve, -1.0)["meets_target"]


def test_eval_streams_and_sets_the_threshold_on_validation_only(tmp_path, small_data, running_valid, running_test,
                                                               capsys):
    model = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model)
    # choosing on test data, or on running speech of test voices, is refused
    assert main(["eval", str(model), str(small_data), "--split", "test", "--running", str(running_valid),
                 "--set-threshold", "--quiet"]) == 2
    assert "choose the threshold on validation" in capsys.readouterr().err
    assert main(["eval", str(model), str(small_data), "--split", "valid", "--running", str(running_test),
                 "--set-threshold", "--quiet"]) == 2
    assert "not a running set of validation voices" in capsys.readouterr().err
    assert "operating_point" not in json.loads((model / "model.json").read_text())

    report = tmp_path / "det.html"
    assert main(["eval", str(model), str(small_data), "--split", "valid", "--running", str(running_valid),
                 "--set-threshold", "--target-fa-per-hour", "50", "--report", str(report), "--json", "--quiet",
                 "--record"]) == 0
    res = json.loads(capsys.readouterr().out)["streamed"]
    recorded = json.loads((model / "model.json").read_text())["metrics"]["valid_streamed"]
    assert recorded["fa_per_hour"] == res["at_threshold"]["fa_per_hour"] and recorded["running"] == str(running_valid)
    assert recorded["miss_rate"] == res["at_threshold"]["miss_rate"]
    assert res["n_keyword_clips"] > 0 and res["running_hours"] > 0 and len(res["det"]) > 10
    assert "<img src='data:image/png;base64," in report.read_text()
    op = json.loads((model / "model.json").read_text())["operating_point"]
    assert op["threshold"] == res["operating_point"]["threshold"] and op["target_fa_per_hour"] == 50
    assert op["chosen_on"]["split"] == "valid"
    # recognize takes it by default; --threshold still overrides it
    assert Recognizer.from_model(model).config.threshold == op["threshold"]
    assert Recognizer.from_model(model, RecognizerConfig(threshold=0.7)).config.threshold == 0.7
    assert Recognizer.from_model(SHIPPED_MODEL).config.threshold == (
        json.loads((SHIPPED_MODEL / "model.json").read_text()).get("operating_point", {}).get("threshold",
                                                                                             DEFAULT_THRESHOLD))


def test_record_as_keeps_the_test_split_figures(tmp_path, small_data, capsys):
    """`data human`'s split is test too: --record-as human records its figures beside the
    synthetic test split's instead of over them."""
    model = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model)
    before = json.loads((model / "model.json").read_text())["metrics"]
    assert main(["eval", str(model), str(small_data), "--split", "test", "--record", "--record-as", "human",
                 "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    after = json.loads((model / "model.json").read_text())["metrics"]
    assert after["human_accuracy"] == res["accuracy"] and after["human_n"] == res["n"]
    assert after["test_accuracy"] == before["test_accuracy"] and after["test_n"] == before["test_n"]
    assert main(["eval", str(model), str(small_data), "--record-as", "human"]) == 2
    assert "give --record too" in capsys.readouterr().err
    assert main(["eval", str(model), str(small_data), "--record", "--record-as", "Human Set"]) == 2
    assert "lower-case" in capsys.readouterr().err


def test_a_broken_operating_point_is_refused(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model)
    meta = json.loads((model / "model.json").read_text())
    meta["operating_point"] = {"threshold": 1.5}
    (model / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="operating_point.threshold is 1.5"):
        Recognizer.from_model(model)


def test_training_windows_cut_from_running_speech_of_training_voices(tmp_path, small_data):
    from edge_asr.data.synth import speaker_split
    out = make_running_set(tmp_path / "neg", hours=0.02, split="train", windows=30, **QUIET)
    rows = read_manifest(out, "train")
    assert len(rows) == 30 and json.loads((out / "data.json").read_text())["kind"] == "running-windows"
    for r in rows:
        assert r.label == "_unknown_" and speaker_split(r.speaker) == "train" and "window=" in r.augmentation
        assert read_audio(out / r.path).size == 16000
    assert not any(r.engine == "human" for r in rows)
    # a data set `train --extra-train` takes: its speakers are none of small_data's held-out ones
    held_out = {r.speaker for r in read_manifest(small_data, "valid") + read_manifest(small_data, "test")}
    assert not {r.speaker for r in rows} & held_out


def test_model_json_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """update_model_json (the operating point, --record) writes through atomic.write_text_atomic:
    a write that fails leaves the old model.json and no partial file."""
    from pathlib import Path

    from edge_asr.runtime.modeldir import update_model_json
    (tmp_path / "model.json").write_text('{"name": "m"}\n')
    assert update_model_json(tmp_path, lambda m: m.update(a=1)) == {"name": "m", "a": 1}
    assert json.loads((tmp_path / "model.json").read_text()) == {"name": "m", "a": 1}

    def broken(self, target):
        raise OSError("disk full")
    monkeypatch.setattr(Path, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        update_model_json(tmp_path, lambda m: m.update(a=2))
    assert json.loads((tmp_path / "model.json").read_text()) == {"name": "m", "a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json"]
