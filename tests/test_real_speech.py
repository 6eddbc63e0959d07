"""Real-speaker figures as a model carries them: benchmarks/real_speech.py records them in
model.json (`real_speech`), and the demo prints them beside its synthetic example clips."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np

from edge_asr.demo import real_speech_lines

ROOT = Path(__file__).resolve().parents[1]


def _benchmark():
    spec = importlib.util.spec_from_file_location("real_speech", ROOT / "benchmarks" / "real_speech.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recorded_figures_are_what_the_demo_prints(tmp_path, small_model):
    model = tmp_path / "m"
    shutil.copytree(small_model, model)
    assert real_speech_lines(json.loads((model / "model.json").read_text()))[0].split()[:2] == ["real", "speakers"]
    assert "no figures recorded" in real_speech_lines({})[0]
    res = {"model": "m", "design": "d", "bits": 12, "threshold": 0.61, "fa_per_hour": 3.2, "connected_wer": 0.021,
           "sets": {"fsdd test speaker(s)": {"clips": 500, "digits": 500, "others": 0, "digits_right": 0.962,
                                              "others_taken_for_digit": None},
                    "speech commands (sc-dev)": {"clips": 276, "digits": 105, "others": 171, "digits_right": 0.9,
                                                 "others_taken_for_digit": 0.0175}}}
    _benchmark().record(model, res)
    meta = json.loads((model / "model.json").read_text())
    assert meta["real_speech"]["sets"] == res["sets"] and "bit-exact simulator" in meta["real_speech"]["measured"]
    text = "\n".join(real_speech_lines(meta))
    assert "digits right 96.2% of 500" in text and "other words taken for a digit 1.8% of 171" in text
    assert "3.2 false alarms per hour" in text and "word error rate 0.021" in text


def test_top1_counts_digits_right_and_other_words_taken_for_digits(tmp_path, small_design, small_data, small_model):
    from edge_asr.ir.design import Design
    from edge_asr.runtime.backends import get_backend
    from edge_asr.runtime.modeldir import load_model_dir
    bench = _benchmark()
    info = load_model_dir(small_model)
    design = Design.load(small_design)
    res = bench.top1(design, info, small_data, "test", get_backend("onnx", info))
    from edge_asr.data.loading import feature_matrix
    from edge_asr.data.manifest import read_manifest
    from edge_asr.sim.engine import simulate
    rows = read_manifest(small_data, "test")
    pred = simulate(design, feature_matrix(small_data, rows, info.feature, progress=False)).outputs.argmax(1)
    labels = design.labels
    digits = [(labels[p], r.label) for p, r in zip(pred, rows, strict=True) if r.label not in ("_unknown_", "_silence_")]
    others = [labels[p] for p, r in zip(pred, rows, strict=True) if r.label == "_unknown_"]
    assert res["digits"] == len(digits) and res["others"] == len(others)
    assert np.isclose(res["digits_right"], np.mean([a == b for a, b in digits]))
    assert np.isclose(res["others_taken_for_digit"], np.mean([o not in ("_unknown_", "_silence_") for o in others]))
    assert 0.5 <= res["float_agreement"] <= 1.0
