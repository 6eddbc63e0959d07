"""`edge-asr data import`: Speech Commands, folder-per-word and CSV corpora, made here as
small fixtures in each layout, become data directories that train and eval take."""

import json

import numpy as np
import soundfile as sf

from edge_asr.cli import main
from edge_asr.data.importer import which_set
from edge_asr.data.manifest import read_manifest


def _tone(path, seconds=0.8, rate=16000, channels=1, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.stack([x] * channels, axis=1) if channels > 1 else x, rate)


SPEAKERS = ["0a1b2c3d", "4e5f6a7b", "8c9d0e1f", "a2b3c4d5"]


def _speech_commands(root, lists=True):
    for w, word in enumerate(("one", "two", "bed", "marvin")):
        for s, spk in enumerate(SPEAKERS):
            for k in range(2):
                _tone(root / word / f"{spk}_nohash_{k}.wav", freq=200 + 50 * w + 10 * s + k)
    _tone(root / "_background_noise_" / "white_noise.wav", seconds=10.5)
    if lists:
        words = ("one", "two", "bed", "marvin")
        (root / "validation_list.txt").write_text("".join(f"{w}/{SPEAKERS[0]}_nohash_{k}.wav\n" for w in words for k in range(2)))
        (root / "testing_list.txt").write_text("".join(f"{w}/{SPEAKERS[1]}_nohash_{k}.wav\n" for w in words for k in range(2)))
    return root


def test_speech_commands_layout(tmp_path, capsys):
    src = _speech_commands(tmp_path / "sc")
    assert main(["data", "import", str(src), "--out", str(tmp_path / "d"), "--quiet"]) == 0
    rows = read_manifest(tmp_path / "d")
    words = [r for r in rows if r.label != "_silence_"]
    assert len(words) == 32
    assert {r.text: r.label for r in words} == {"one": "one", "two": "two", "bed": "_unknown_", "marvin": "_unknown_"}
    by_split = {s: {r.speaker for r in words if r.split == s} for s in ("train", "valid", "test")}
    assert by_split == {"train": set(SPEAKERS[2:]), "valid": {SPEAKERS[0]}, "test": {SPEAKERS[1]}}
    silence = [r for r in rows if r.label == "_silence_"]
    assert [sum(r.split == s for r in silence) for s in ("train", "valid", "test")] == [8, 1, 1]  # 10 windows
    for r in rows[:5] + silence[:2]:
        audio, rate = sf.read(str(tmp_path / "d" / r.path))
        assert rate == 16000 and audio.shape == (16000,)
    meta = json.loads((tmp_path / "d" / "data.json").read_text())
    assert meta["layout"] == "speech-commands" and meta["clips"] == 42 and meta["speakers_in_more_than_one_split"] == 0
    assert "imported 42 clips" in capsys.readouterr().err


def test_speech_commands_without_lists_splits_by_speaker_hash(tmp_path):
    src = _speech_commands(tmp_path / "sc", lists=False)
    assert main(["data", "import", str(src), "--out", str(tmp_path / "d"), "--quiet"]) == 0
    rows = [r for r in read_manifest(tmp_path / "d") if r.label != "_silence_"]
    for spk in SPEAKERS:
        assert len({r.split for r in rows if r.speaker == spk}) == 1  # a speaker's clips share a split
    shares = [which_set(f"{i:08x}_nohash_0.wav") for i in range(3000)]
    assert 0.07 < shares.count("valid") / 3000 < 0.13 and 0.07 < shares.count("test") / 3000 < 0.13
    assert which_set("abc_nohash_0.wav") == which_set("abc_nohash_7.wav")


def test_folders_layout_resamples_and_keeps_split_folders(tmp_path):
    src = tmp_path / "corpus"
    for split in ("train", "valid", "test"):
        for word in ("three", "apple"):
            _tone(src / split / word / f"spk{split}_{word}.flac", seconds=1.5, rate=8000, channels=2)
    assert main(["data", "import", str(src), "--out", str(tmp_path / "d"), "--quiet"]) == 0
    rows = read_manifest(tmp_path / "d")
    assert sorted((r.split, r.label) for r in rows) == sorted(
        (s, lab) for s in ("train", "valid", "test") for lab in ("three", "_unknown_"))
    audio, rate = sf.read(str(tmp_path / "d" / rows[0].path))
    assert rate == 16000 and audio.ndim == 1 and audio.shape == (16000,)  # mono, resampled, cropped to 1 s
    # a mixed layout is refused in one line, and nothing is written
    _tone(src / "seven" / "x_1.wav")
    assert main(["data", "import", str(src), "--out", str(tmp_path / "d2"), "--quiet"]) == 2
    assert not (tmp_path / "d2").exists()


def test_csv_layout_with_a_word_map_and_bad_files(tmp_path, capsys):
    root = tmp_path / "c"
    for i, word in enumerate(("oh", "nine", "hello")):
        _tone(root / "audio" / f"{word}.wav", freq=300 + 40 * i)
    (root / "audio" / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    (root / "list.csv").write_text("path,word,speaker,split\naudio/oh.wav,oh,ann,train\naudio/nine.wav,nine,bob,valid\n"
                                   "audio/hello.wav,hello,cy,test\naudio/broken.wav,nine,dan,train\n")
    (tmp_path / "map.csv").write_text("word,label\noh,zero\n")
    assert main(["data", "import", str(root / "list.csv"), "--out", str(tmp_path / "d"), "--map",
                 str(tmp_path / "map.csv"), "--quiet"]) == 0
    rows = read_manifest(tmp_path / "d")
    assert {(r.text, r.label, r.split) for r in rows} == {("oh", "zero", "train"), ("nine", "nine", "valid"),
                                                          ("hello", "_unknown_", "test")}
    meta = json.loads((tmp_path / "d" / "data.json").read_text())
    assert meta["skipped_count"] == 1 and "broken.wav" in meta["skipped"][0]
    (tmp_path / "bad-map.csv").write_text("oh,zer0\n")
    capsys.readouterr()
    assert main(["data", "import", str(root / "list.csv"), "--out", str(tmp_path / "e"), "--map",
                 str(tmp_path / "bad-map.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "zer0" in err and not (tmp_path / "e").exists()
    (root / "nolabel.csv").write_text("path\naudio/oh.wav\n")
    assert main(["data", "import", str(root / "nolabel.csv"), "--out", str(tmp_path / "f")]) == 2
    assert "want columns path and label" in capsys.readouterr().err


def test_refusals_name_what_to_do(tmp_path, capsys):
    assert main(["data", "import", str(tmp_path / "missing"), "--out", str(tmp_path / "d")]) == 2
    assert "no such corpus" in capsys.readouterr().err
    (tmp_path / "d").mkdir()
    src = _speech_commands(tmp_path / "sc")
    assert main(["data", "import", str(src), "--out", str(tmp_path / "d"), "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["data", "import", str(tmp_path / "empty"), "--out", str(tmp_path / "e"), "--quiet"]) == 2
    assert "no audio clips" in capsys.readouterr().err


def test_train_takes_an_imported_corpus_beside_a_synthetic_one(tmp_path, small_data):
    src = _speech_commands(tmp_path / "sc")
    assert main(["data", "import", str(src), "--out", str(tmp_path / "imp"), "--quiet"]) == 0
    run = tmp_path / "run"
    assert main(["train", str(small_data), "--extra-train", str(tmp_path / "imp"), "--out", str(run), "--epochs", "1",
                 "--quiet"]) == 0
    meta = json.loads((run / "train.json").read_text())
    assert (run / "best.pt").is_file() and str(tmp_path / "imp") in json.dumps(meta)  # the imported set was trained on


def _speaker_csv(root):
    """Six speakers saying two digits each, and one noise recording, in a CSV."""
    lines = ["path,label,speaker"]
    for s, spk in enumerate(("ann", "bob", "cy", "dan", "eve", "fay")):
        for w, word in enumerate(("one", "two")):
            _tone(root / "clips" / f"{word}_{spk}.wav", seconds=0.5, rate=8000, freq=250 + 40 * s + 15 * w)
            lines.append(f"clips/{word}_{spk}.wav,{word},{spk}")
    _tone(root / "noise" / "tap.wav", seconds=20.2)
    lines.append("noise/tap.wav,_silence_,noise")
    (root / "list.csv").write_text("\n".join(lines) + "\n")
    return root / "list.csv"


def test_speakers_can_be_held_out_by_name_and_noise_rows_are_cut_into_windows(tmp_path):
    src = _speaker_csv(tmp_path / "c")
    assert main(["data", "import", str(src), "--out", str(tmp_path / "d"), "--valid-speakers", "eve",
                 "--test-speakers", "fay,dan", "--quiet"]) == 0
    rows = read_manifest(tmp_path / "d")
    words = [r for r in rows if r.label != "_silence_"]
    assert {s: {r.speaker for r in words if r.split == s} for s in ("train", "valid", "test")} == {
        "train": {"ann", "bob", "cy"}, "valid": {"eve"}, "test": {"dan", "fay"}}
    silence = [r for r in rows if r.label == "_silence_"]
    assert [sum(r.split == s for r in silence) for s in ("train", "valid", "test")] == [16, 2, 2]  # 20 windows
    assert {r.speaker for r in silence} == {"noise:tap"}
    meta = json.loads((tmp_path / "d" / "data.json").read_text())
    assert meta["split_rule"] == {"valid_speakers": ["eve"], "test_speakers": ["fay", "dan"]}


def test_one_split_for_a_whole_corpus_and_paths_held_out_by_glob(tmp_path, capsys):
    src = _speaker_csv(tmp_path / "c")
    assert main(["data", "import", str(src), "--out", str(tmp_path / "v"), "--split", "valid", "--quiet"]) == 0
    assert {r.split for r in read_manifest(tmp_path / "v")} == {"valid"}
    assert main(["data", "import", str(src), "--out", str(tmp_path / "p"), "--test-paths", "*two_*",
                 "--valid-paths", "*one_ann*", "--quiet"]) == 0
    rows = [r for r in read_manifest(tmp_path / "p") if r.label != "_silence_"]
    assert {r.split for r in rows if r.label == "two"} == {"test"}
    assert {(r.speaker, r.split) for r in rows if r.label == "one"} == {
        ("ann", "valid"), *((s, "train") for s in ("bob", "cy", "dan", "eve", "fay"))}
    capsys.readouterr()
    assert main(["data", "import", str(src), "--out", str(tmp_path / "x"), "--split", "valid",
                 "--test-speakers", "ann"]) == 2
    assert "--split puts every clip in one split" in capsys.readouterr().err
    assert main(["data", "import", str(src), "--out", str(tmp_path / "y"), "--valid-speakers", "ann",
                 "--test-speakers", "ann"]) == 2
    assert "both --valid-speakers and --test-speakers" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_short_silence_row_is_one_clip_and_keeps_its_split(tmp_path):
    root = tmp_path / "c"
    _tone(root / "quiet.wav", seconds=0.9)
    _tone(root / "word.wav", seconds=0.6)
    (root / "list.csv").write_text("path,label,speaker,split\nquiet.wav,_silence_,room,train\nword.wav,one,ann,valid\n")
    assert main(["data", "import", str(root / "list.csv"), "--out", str(tmp_path / "d"), "--quiet"]) == 0
    rows = read_manifest(tmp_path / "d")
    assert sorted((r.label, r.split) for r in rows) == [("_silence_", "train"), ("one", "valid")]
