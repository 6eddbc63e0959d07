"""Streaming recognition: connected digits, backends agreeing, and bad input."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from edge_asr.data import LABELS
from edge_asr.frontend.audio import pcm_stdin_chunks
from edge_asr.runtime.recognizer import Recognizer

from .conftest import SHIPPED_INPUT, SHIPPED_MODEL

EX = SHIPPED_MODEL / "examples"
SEQUENCE = ["seven", "three", "nine", "one"]


def spoken(word: str) -> np.ndarray:
    """A shipped example of `word` by the held-out espeak-ng voice, its silences trimmed."""
    from edge_asr.data.augment import trim_silence
    a, _ = sf.read(next(EX.glob(f"{word}-espeak*.wav")), dtype="float32")
    return trim_silence(a)


def join_words(words, gap_s: float) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The words one after another with `gap_s` of silence after each, and each word's span in s."""
    parts, spans, t = [], [], 0.0
    for word in words:
        a = spoken(word)
        parts += [a, np.zeros(int(gap_s * 16000), np.float32)]
        spans.append((t, t + a.size / 16000))
        t += a.size / 16000 + gap_s
    return np.concatenate(parts), spans


@pytest.fixture(scope="module")
def connected(tmp_path_factory):
    """Four clean digits of a held-out voice, 0.25 s apart, the first at the very start."""
    audio, _ = join_words(SEQUENCE, 0.25)
    path = tmp_path_factory.mktemp("audio") / "digits.wav"
    sf.write(path, audio, 16000)
    return path


def test_connected_digits_in_order(connected):
    res = Recognizer.from_model(SHIPPED_MODEL).recognize_file(connected)
    assert [e["word"] for e in res["events"]] == SEQUENCE
    _, spans = join_words(SEQUENCE, 0.25)
    for e, (w0, w1) in zip(res["events"], spans, strict=True):
        # an event's window is the second of audio that decided it: it holds some of the word
        assert 0 <= e["start"] < e["end"] <= e["start"] + 1.0 + 1e-9
        assert e["start"] < w1 and e["end"] > w0
    assert res["decisions"] >= int(res["audio_seconds"] / 0.1)  # one per stride from the start
    assert 0 < res["rtf"] < 1


def test_quick_words_from_the_first_sample(tmp_path):
    """Every ordered pair of the held-out voice's digits as A B A, 0.15 s apart (the shortest
    pause `data connected` makes), starting at the first sample: all three words come out.
    The stream starts after assumed silence, so the first word gets windows of its own
    rather than a first window that already holds two words."""
    import itertools
    rec = Recognizer.from_model(SHIPPED_MODEL)
    words = sorted({p.name.split("-")[0] for p in EX.glob("*-espeak*.wav")})
    assert len(words) >= 4
    for a, b in itertools.permutations(words, 2):
        audio, _ = join_words([a, b, a], 0.15)
        sf.write(tmp_path / "ab.wav", audio, 16000)
        res = rec.recognize_file(tmp_path / "ab.wav")
        assert res["text"] == f"{a} {b} {a}" and res["events"][0]["start"] == 0.0


def test_repeated_words(tmp_path):
    """The same digit said twice is emitted twice; one slow word is emitted once."""
    import soxr
    words = ["one", "one", "nine", "nine", "nine"]
    audio, _ = join_words(words, 0.35)
    sf.write(tmp_path / "repeats.wav", audio, 16000)
    rec = Recognizer.from_model(SHIPPED_MODEL)
    assert rec.recognize_file(tmp_path / "repeats.wav")["text"] == " ".join(words)
    nine = spoken("nine")
    slow = soxr.resample(nine, nine.size / 0.9, 16000)  # read as if sampled slower: 0.9 s long
    assert slow.size == pytest.approx(0.9 * 16000, abs=2)
    sf.write(tmp_path / "slow.wav", slow, 16000)
    assert rec.recognize_file(tmp_path / "slow.wav")["text"] == "nine"


def test_sim_backend_agrees(connected, shipped_design):
    float_res = Recognizer.from_model(SHIPPED_MODEL).recognize_file(connected)
    sim_res = Recognizer.from_design(shipped_design, "sim").recognize_file(connected)
    assert [e["word"] for e in sim_res["events"]] == [e["word"] for e in float_res["events"]]


def test_chunk_size_does_not_matter(connected):
    rec = Recognizer.from_model(SHIPPED_MODEL)
    audio, _ = sf.read(connected, dtype="float32")
    a = rec.recognize_chunks(audio[i:i + 123] for i in range(0, audio.size, 123))
    b = rec.recognize_chunks([audio])
    assert a["events"] == b["events"]
    # irregular sizes, as a pipe's partial reads give: decisions still fall on the same frames
    cuts = np.cumsum(np.random.default_rng(0).integers(1, 5000, 100))
    c = rec.recognize_chunks(np.split(audio, cuts[cuts < audio.size]))
    assert c["events"] == b["events"] and c["decisions"] == b["decisions"]


def test_other_sample_rate(connected, tmp_path):
    import soxr
    audio, _ = sf.read(connected, dtype="float32")
    path = tmp_path / "44k.wav"
    sf.write(path, soxr.resample(audio, 16000, 44100), 44100, subtype="PCM_24")
    res = Recognizer.from_model(SHIPPED_MODEL).recognize_file(path)
    assert [e["word"] for e in res["events"]] == SEQUENCE


@pytest.mark.parametrize("kind", ["silence", "noise", "dc", "clipped", "short"])
def test_bad_audio_does_not_crash(kind, tmp_path):
    rng = np.random.default_rng(0)
    seven, _ = sf.read(next(EX.glob("seven-espeak*.wav")), dtype="float32")
    audio = {
        "silence": np.zeros(48000, np.float32),
        "noise": (rng.standard_normal(48000) * 0.1).astype(np.float32),
        "dc": np.full(48000, 0.3, np.float32),
        "clipped": np.clip(seven * 20, -1, 1),
        "short": seven[5000:10000],  # 0.3 s: padded to a window
    }[kind]
    path = tmp_path / f"{kind}.wav"
    sf.write(path, audio, 16000)
    res = Recognizer.from_model(SHIPPED_MODEL).recognize_file(path)
    assert res["decisions"] >= 1
    if kind in ("silence", "dc"):
        assert res["events"] == []
    for e in res["events"]:
        assert e["word"] not in ("_unknown_", "_silence_")


def test_stdin_pcm_and_truncated_stream(connected):
    audio, _ = sf.read(connected, dtype="int16")
    raw = audio.tobytes() + b"\x01"  # the stream ends mid-sample
    chunks = list(pcm_stdin_chunks(io.BytesIO(raw)))
    assert sum(c.size for c in chunks) == audio.size
    r = subprocess.run([sys.executable, "-m", "edge_asr.cli", "recognize", "-", "--model", str(SHIPPED_MODEL),
                        "--json"], input=raw, capture_output=True)
    assert r.returncode == 0
    res = json.loads(r.stdout)
    assert res["file"] == "-" and [e["word"] for e in res["events"]] == SEQUENCE


def test_audio_seconds_is_the_audios_own_length():
    clip = sorted((SHIPPED_MODEL / "examples").glob("seven-*.wav"))[0]
    seconds = sf.info(str(clip)).duration
    rec = Recognizer.from_model(SHIPPED_MODEL)
    res = rec.recognize_file(clip)
    assert res["audio_seconds"] == round(seconds, 3)                         # not the end's padding too
    assert res["events"] and res["words_per_hour"] == round(len(res["events"]) * 3600 / seconds, 3)
    audio, rate = sf.read(str(clip), dtype="float32")
    eight_k = audio[::2]                                                     # another rate: seconds at that rate
    assert rec.recognize_chunks([], on_event=None)["audio_seconds"] == 0
    assert rec.recognize_chunks([], on_event=None)["words_per_hour"] is None
    stream = rec.create_stream()
    stream.accept_waveform(rate // 2, eight_k)
    stream.input_finished()
    assert rec.get_result(stream)["audio_seconds"] == round(eight_k.size / (rate // 2), 3)


@pytest.mark.parametrize("raw", [b"", b"\x01"], ids=["empty", "one byte"])
def test_stdin_without_a_sample_is_refused_as_an_empty_file_is(raw):
    r = subprocess.run([sys.executable, "-m", "edge_asr.cli", "recognize", "-", "--model", str(SHIPPED_MODEL)],
                       input=raw, capture_output=True, text=False)
    err = r.stderr.decode()
    assert r.returncode == 2 and err.count("\n") == 1 and "no audio samples" in err and r.stdout == b""


def test_cli_errors(tmp_path, capsys):
    from edge_asr.cli import main
    assert main(["recognize", str(tmp_path / "none.wav"), "--model", str(SHIPPED_MODEL)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["recognize", "x.wav"]) == 2
    assert "exactly one of --model" in capsys.readouterr().err
    bad = tmp_path / "cut.wav"
    sf.write(bad, np.zeros(16000, np.float32), 16000)
    bad.write_bytes(bad.read_bytes()[:1000])  # truncated: header says more than is there
    rc = main(["recognize", str(bad), "--model", str(SHIPPED_MODEL)])
    err = capsys.readouterr().err
    assert rc == 0 or (rc == 2 and err.count("\n") == 1)


def test_connected_set_and_wer(tmp_path):
    from edge_asr.data.connected import make_connected_set, word_error_rate
    from edge_asr.data.manifest import read_manifest
    out = make_connected_set(tmp_path / "c", n=4, log=lambda m: None)
    rows = read_manifest(out)
    assert len(rows) == 4 and all(2 <= len(r.text.split()) <= 5 for r in rows)
    assert {r.split for r in rows} == {"test"}
    from edge_asr.data.synth import speaker_split
    assert all(speaker_split(r.speaker) == "test" for r in rows)
    assert word_error_rate(["one two", "three"], ["one three", "three"]) == pytest.approx(1 / 3)
    assert word_error_rate([r.text for r in rows], [r.text for r in rows]) == 0.0
    valid = read_manifest(make_connected_set(tmp_path / "v", n=2, split="valid", log=lambda m: None))
    assert all(speaker_split(r.speaker) == "valid" and r.split == "valid" for r in valid)
    from edge_asr.errors import InputError
    with pytest.raises(InputError, match="split"):
        make_connected_set(tmp_path / "x", n=1, split="train", log=lambda m: None)
    assert not (tmp_path / "x").exists()
    rec = Recognizer.from_model(SHIPPED_MODEL)
    for r in rows:  # streamed whole: only digits come out of a digits-only file
        words = rec.recognize_file(out / r.path)["text"].split()
        assert set(words) <= set(r.text.split()) | set(LABELS[:10])


def test_features_coded_in_the_recognizer(shipped_design):
    from edge_asr.sim.engine import load_design, simulate
    from edge_asr.sim.fixed import quantize
    rec = Recognizer.from_design(shipped_design, "sim")
    x = np.random.default_rng(0).standard_normal((3, *SHIPPED_INPUT)) * 3
    coded = rec.code(x)
    t = rec.input_type
    assert np.array_equal(quantize(coded, t), quantize(x, t))  # on the grid: coding again is a no-op
    design = load_design(shipped_design)
    assert np.array_equal(simulate(design, coded).codes, simulate(design, x).codes)


def test_latency_histogram_constant_memory_and_close_percentiles():
    from edge_asr.runtime.stream import LatencyHistogram
    rng = np.random.default_rng(0)
    lat = rng.lognormal(np.log(2e-3), 0.5, 50_000)
    h = LatencyHistogram()
    before = h.counts.nbytes
    for v in lat:
        h.add(float(v))
    assert len(h) == len(lat) and h.counts.nbytes == before and h.counts.sum() == len(lat)
    for q in (50, 99):
        exact = np.percentile(lat, q)
        assert exact <= h.percentile(q) <= exact * 1.04  # the bin's upper edge, 64 bins a decade
    assert LatencyHistogram().percentile(99) == 0.0


def test_stdin_prints_words_as_they_are_heard(connected):
    """`arecord ... | edge-asr recognize -`: a word is printed while the input is still open."""
    import select
    audio, _ = sf.read(connected, dtype="float32")
    _, spans = join_words(SEQUENCE, 0.25)
    cut = int((spans[0][1] + 0.125) * 16000)  # the first digit and half its pause
    first = audio[:cut]
    pcm = (np.concatenate([first, np.zeros(16000, np.float32)]) * 32767).astype("<i2").tobytes()
    proc = subprocess.Popen([sys.executable, "-m", "edge_asr.cli", "recognize", "-", "--model", str(SHIPPED_MODEL)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(pcm)
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no word printed while stdin was open"
        line = proc.stdout.readline().decode()
        assert proc.poll() is None  # still running: the line came before the end of input
        assert line.startswith("-: seven ")
        rest = (audio[cut:] * 32767).astype("<i2").tobytes()
        out, err = proc.communicate(rest, timeout=120)
    finally:
        proc.kill()
    words = [line.split()[1]] + [ln.split()[1] for ln in out.decode().splitlines()]
    assert words == SEQUENCE, err.decode()


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(labels=m["labels"][:10]), "10 labels for a model with 12 outputs"),
    (lambda m: m["feature"].update(n_mfcc=20, mean=[], std=[]), "inputs of shape [20, 98]"),
], ids=["labels", "front end"])
def test_model_json_that_does_not_match_its_graph_is_refused(tmp_path, capsys, edit, message):
    import shutil

    from edge_asr.cli import main
    model = tmp_path / "m"
    shutil.copytree(SHIPPED_MODEL, model)
    meta = json.loads((model / "model.json").read_text())
    edit(meta)
    (model / "model.json").write_text(json.dumps(meta))
    clip = sorted((SHIPPED_MODEL / "examples").glob("seven-*.wav"))[0]
    assert main(["recognize", "--model", str(model), str(clip)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
