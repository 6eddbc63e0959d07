"""The training recipe's real-speech parts: several data sets drawn with a weight each
(`--data-weight`), and validation on real speakers (`--extra-valid`) choosing the epoch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_asr.cli import main
from edge_asr.training.batches import BucketBatchSampler

from .test_import import _speaker_csv


def _imported(tmp_path, *flags):
    src = _speaker_csv(tmp_path / "c")
    out = tmp_path / ("imp" + "".join(f.strip("-")[:1] for f in flags))
    assert main(["data", "import", str(src), "--out", str(out), "--quiet", *flags]) == 0
    return out


def test_weights_and_real_validation_sets_are_recorded_and_choose_the_epoch(tmp_path, small_data):
    train_set = _imported(tmp_path, "--valid-speakers", "eve", "--test-speakers", "fay")
    valid_set = tmp_path / "val"
    assert main(["data", "import", str(_speaker_csv(tmp_path / "v")), "--out", str(valid_set), "--split", "valid",
                 "--quiet"]) == 0
    # the held-out speakers of the validation set must not be trained on: a set of other speakers
    run = tmp_path / "run"
    rc = main(["train", str(small_data), "--extra-train", str(train_set), "--data-weight", f"{train_set}=5",
               "--extra-valid", str(train_set), "--out", str(run), "--epochs", "2", "--batch-size", "32", "--quiet"])
    assert rc == 0
    meta = json.loads((run / "train.json").read_text())
    assert meta["train_config"]["data_weights"] == {str(train_set): 5.0}
    assert meta["extra_train"][0]["weight"] == 5.0
    assert [e["data_dir"] for e in meta["extra_valid"]] == [str(train_set.resolve())]
    for h in meta["history"]:
        assert set(h["valid_sets"]) == {"data", train_set.name}
        assert h["valid_accuracy"] == pytest.approx((h["valid_sets"]["data"] + h["valid_sets"][train_set.name]) / 2)
    best = max(meta["history"], key=lambda h: h["valid_accuracy"])
    assert meta["valid_accuracy"] == best["valid_accuracy"] and meta["best_epoch"] == best["epoch"]


def test_a_validation_set_whose_speakers_are_trained_on_is_refused(tmp_path, small_data, capsys):
    train_set = _imported(tmp_path, "--test-speakers", "fay")  # eve trains here
    valid_set = tmp_path / "val"
    assert main(["data", "import", str(_speaker_csv(tmp_path / "v")), "--out", str(valid_set), "--split", "valid",
                 "--quiet"]) == 0
    capsys.readouterr()
    rc = main(["train", str(small_data), "--extra-train", str(train_set), "--extra-valid", str(valid_set),
               "--out", str(tmp_path / "r"), "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--extra-valid" in err and "a speaker the run trains on" in err
    assert not (tmp_path / "r").exists() and not (tmp_path / "r.incomplete").exists()


def test_bad_weights_are_one_line(tmp_path, small_data, capsys):
    for flag, says in ((f"{tmp_path}=2", "not a data set this run trains on"),
                       (f"{small_data}=zero", "give DIR=WEIGHT"), (f"{small_data}=0", "above 0")):
        rc = main(["train", str(small_data), "--data-weight", flag, "--out", str(tmp_path / "r"), "--epochs", "1",
                   "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and says in err and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()


def test_a_weight_sets_the_share_of_draws():
    """Clips of weight 5 are drawn five times as often as clips of weight 1."""
    n1, n2 = 600, 200
    weights = np.array([1.0] * n1 + [5.0] * n2)
    sampler = BucketBatchSampler(np.ones(n1 + n2), 32, seed=0, weights=weights)
    drawn = np.concatenate([np.concatenate(sampler.batches()) for sampler.epoch in range(20)])
    share = np.mean(drawn >= n1)
    assert abs(share - 5 * n2 / (n1 + 5 * n2)) < 0.02
