"""`edge-asr data augment`: copies of a corpus's training clips in rooms, over real
backgrounds, through microphones and the telephone band: seeded, recorded, whole."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf

from edge_asr.cli import main
from edge_asr.data import augment as aug
from edge_asr.data.augment_corpus import AugmentSpec, augment_clip, room_rir
from edge_asr.data.manifest import read_manifest

from .test_import import _speaker_csv


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("aug")
    src = _speaker_csv(root / "c")
    assert main(["data", "import", str(src), "--out", str(root / "d"), "--valid-speakers", "eve",
                 "--test-speakers", "fay", "--quiet"]) == 0
    return root / "d"


def test_copies_are_seeded_recorded_and_the_held_out_clips_untouched(tmp_path, corpus):
    out = tmp_path / "a"
    assert main(["data", "augment", str(corpus), "--out", str(out), "--noise", str(corpus), "--copies", "2",
                 "--reverb", "1", "--telephone", "0.5", "--jobs", "2", "--quiet"]) == 0
    src_rows, rows = read_manifest(corpus), read_manifest(out)
    trained = [r for r in src_rows if r.split == "train" and r.label != "_silence_"]
    copies = [r for r in rows if "-aug" in r.path]
    assert len(rows) == len(src_rows) + 2 * len(trained) and len(copies) == 2 * len(trained)
    assert {r.split for r in copies} == {"train"} and {r.speaker for r in copies} == {r.speaker for r in trained}
    for r in copies:
        assert "room=" in r.augmentation and "peak=" in r.augmentation  # --reverb 1: every copy in a room
    assert any("noise=tap@" in r.augmentation for r in copies)  # the real background, by its name
    for r in src_rows:  # every clip as it was, valid and test ones too
        assert (out / r.path).read_bytes() == (corpus / r.path).read_bytes()
    for r in copies[:4]:
        x, rate = sf.read(str(out / r.path))
        assert rate == 16000 and x.shape == (16000,) and np.abs(x).max() <= 1.0
    meta = json.loads((out / "data.json").read_text())
    assert meta["kind"] == "augmented" and meta["augmentation"]["copies"] == 2 and meta["augmentation"]["reverb"] == 1
    again = tmp_path / "b"
    assert main(["data", "augment", str(corpus), "--out", str(again), "--noise", str(corpus), "--copies", "2",
                 "--reverb", "1", "--telephone", "0.5", "--jobs", "1", "--quiet"]) == 0
    for r in copies:  # the same seed on one worker: the same clips, byte for byte
        assert (again / r.path).read_bytes() == (out / r.path).read_bytes()


@pytest.mark.parametrize("seed", [1, 3, 4])
def test_a_room_decays_as_its_rt60_says(seed):
    rir, desc = room_rir(np.random.default_rng(seed))
    rt60 = float(re.search(r"rt60=([0-9.]+)s", desc).group(1))
    assert np.argmax(np.abs(rir)) > 0  # the direct path arrives after the talker speaks
    # Schroeder's backward integral; the time from -5 to -25 dB, times 3 (T20), is the RT60
    edc = 10 * np.log10(np.cumsum((rir ** 2)[::-1])[::-1] / np.sum(rir ** 2))
    t5, t25 = np.argmax(edc < -5) / 16000, np.argmax(edc < -25) / 16000
    measured = 3 * (t25 - t5)
    assert 0.45 < measured / rt60 < 1.6, (desc, measured)  # Sabine and the image model agree roughly; a cut tail is far off


def test_a_background_is_mixed_at_the_snr_drawn():
    t = np.arange(16000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 300 * t) * (t > 0.3) * (t < 0.7)).astype(np.float32)
    noise = aug.make_noise("white", 16000, np.random.default_rng(0))
    spec = AugmentSpec(noise_p=1.0, snr_db=(10.0, 10.0), reverb=0.0, telephone=0.0)
    y, steps = augment_clip(x, spec, np.random.default_rng(1), [("hiss", noise)])
    assert "noise=hiss@10dB" in steps
    quiet = np.abs(y[:3000]).mean()
    assert quiet > 0  # noise where the word is not
    assert y.shape == (16000,)


def test_bad_settings_are_one_line(tmp_path, corpus, capsys):
    assert main(["data", "augment", str(corpus), "--out", str(tmp_path / "x"), "--snr", "20,0"]) == 2
    assert "LOW <= HIGH" in capsys.readouterr().err
    assert main(["data", "augment", str(corpus), "--out", str(tmp_path / "y"), "--noise", str(tmp_path)]) == 2
    assert "no manifest.csv" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
