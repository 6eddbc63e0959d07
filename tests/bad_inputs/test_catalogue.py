"""The bad-input catalogue: what a new user hands the CLI, one row each.

Every row runs `edge-asr` in-process on fixtures made here (small), and checks the exit
code; for an error, that stderr is one line with no traceback; that nothing half-written
is left in the working folder; and, where there is one, the right result. Signals (SIGINT,
SIGTERM) run the real console script in a subprocess.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge_asr.cli import main
from edge_asr.ir import write_manifest

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "kws-digits"
VECTORS = ROOT / "sim" / "vectors" / "kws-digits"
SEVEN = sorted((MODEL / "examples").glob("seven-*.wav"))[0]


def _edit_json(folder: Path, name: str, edit, kind: str | None) -> None:
    data = json.loads((folder / name).read_text())
    edit(data)
    (folder / name).write_text(json.dumps(data))
    if kind:
        write_manifest(folder, kind)


@pytest.fixture(scope="module")
def w(tmp_path_factory) -> dict[str, Path]:
    """The fixtures: audio of every kind, models, designs and bundles, good and broken."""
    root = tmp_path_factory.mktemp("bad")
    f: dict[str, Path] = {"root": root}
    seven, rate = sf.read(SEVEN, dtype="float32")
    audio = root / "audio"
    audio.mkdir()
    (audio / "text.wav").write_text("not a wav file\n")
    (audio / "empty.wav").write_bytes(b"")
    sf.write(audio / "nosamples.wav", np.zeros(0, np.float32), rate)
    nan = seven.copy()
    nan[100] = np.nan
    sf.write(audio / "nan.wav", nan, rate, subtype="FLOAT")
    inf = seven.copy()
    inf[100] = np.inf
    sf.write(audio / "inf.wav", inf, rate, subtype="FLOAT")
    sf.write(audio / "u8.wav", seven, rate, subtype="PCM_U8")
    sf.write(audio / "pcm24.wav", seven, rate, subtype="PCM_24")
    sf.write(audio / "float.wav", seven, rate, subtype="FLOAT")
    sf.write(audio / "stereo.wav", np.stack([seven, seven], 1), rate)
    import soxr
    sf.write(audio / "r48k.wav", soxr.resample(seven, rate, 48000), 48000)
    sf.write(audio / "r22k.wav", soxr.resample(seven, rate, 22050), 22050)
    sf.write(audio / "clipped.wav", np.clip(seven * 40, -1, 1), rate)
    sf.write(audio / "short.wav", seven[:800], rate)
    sf.write(audio / "silence.wav", np.zeros(rate, np.float32), rate)
    sf.write(audio / "seven.flac", seven, rate)
    sf.write(audio / "seven.ogg", seven, rate)
    (audio / "folder.wav").mkdir()
    np.save(audio / "ok.npy", np.zeros((2, 13, 98), np.float32))
    np.save(audio / "shape.npy", np.zeros((3, 3), np.float32))
    bad = np.zeros((1, 13, 98), np.float32)
    bad[0, 0, 0] = np.nan
    np.save(audio / "nan.npy", bad)
    f["audio"] = audio
    data = root / "data"                                                    # a one-clip data set
    data.mkdir()
    shutil.copyfile(SEVEN, data / "seven.wav")
    (data / "manifest.csv").write_text("path,label,text,engine,voice,speaker,augmentation,split,seconds\n"
                                       "seven.wav,seven,seven,e,v,s,clean,test,1.0\n")
    f["data"] = data

    models = root / "models"
    for name in ("good", "nojson", "noonnx", "garbage", "badjson", "nokey", "labels", "frontend"):
        shutil.copytree(MODEL, models / name)
    (models / "nojson" / "model.json").unlink()
    (models / "noonnx" / "model.onnx").unlink()
    (models / "garbage" / "model.onnx").write_bytes(b"\x08\x01garbage")
    (models / "badjson" / "model.json").write_text("{labels: [")
    _edit_json(models / "nokey", "model.json", lambda m: m.pop("feature"), None)
    _edit_json(models / "labels", "model.json", lambda m: m.update(labels=m["labels"][:10]), None)
    _edit_json(models / "frontend", "model.json", lambda m: m["feature"].update(n_mfcc=20, mean=[], std=[]), None)
    (models / "zero.onnx").write_bytes(b"")
    shutil.copytree(MODEL, models / "jsonbroken")
    (models / "jsonbroken" / "model.json").write_text("{")
    import torch

    from tests.conftest import torch_to_onnx
    net = torch.nn.Sequential(torch.nn.Conv1d(13, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 96, 12))
    path = torch_to_onnx(net, (1, 13, 98), models / "symbolic.onnx")
    import onnx
    m = onnx.load(str(path))
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "frames"   # a window of any length
    onnx.save(m, str(path))
    f["models"] = models

    designs = root / "designs"
    designs.mkdir()
    good = designs / "good"
    good.mkdir()
    for name in ("design.json", "model.json"):
        shutil.copyfile(VECTORS / name, good / name)
    write_manifest(good, "design")
    for name in ("edited", "range", "schema", "width", "nolayers", "notjson", "nomanifest", "extra", "removed"):
        shutil.copytree(good, designs / name)

    def code(d):
        next(x for x in d["layers"] if x["class_name"] == "Conv1D")["weights"]["weight"]["codes"][0] = 99999
    _edit_json(designs / "edited", "design.json", code, None)               # manifest left as it was
    _edit_json(designs / "range", "design.json", code, "design")           # manifest written again
    _edit_json(designs / "schema", "design.json", lambda d: d.update(schema_version=2), "design")
    _edit_json(designs / "width", "design.json", lambda d: d["output"]["type"].update(width=99), "design")
    _edit_json(designs / "nolayers", "design.json", lambda d: d.pop("layers"), "design")
    (designs / "notjson" / "design.json").write_text("{")
    write_manifest(designs / "notjson", "design")
    (designs / "nomanifest" / "manifest.json").unlink()
    (designs / "extra" / "notes.txt").write_text("hi")
    (designs / "removed" / "model.json").unlink()
    f["designs"] = designs

    bundles = root / "bundles"
    bundles.mkdir()
    assert main(["bundle", str(good), "--out", str(bundles / "good")]) == 0
    for name in ("altered", "removed", "extra", "info"):
        shutil.copytree(bundles / "good", bundles / name)
    (bundles / "altered" / "feature.json").write_text((bundles / "altered" / "feature.json").read_text() + " ")
    (bundles / "removed" / "design.json").unlink()
    (bundles / "extra" / "x.py").write_text("")
    _edit_json(bundles / "info", "bundle.json", lambda b: b.update(board="zcu104"), None)
    f["bundles"] = bundles
    return f


def _p(text: str, w: dict[str, Path]) -> str:
    return text.format(audio=w["audio"], data=w["data"], models=w["models"], designs=w["designs"], bundles=w["bundles"],
                       model=MODEL, vectors=VECTORS, seven=SEVEN)


# (id, argv, exit code, a fragment of stderr for an error / of stdout for a success)
CASES = [
    # --- audio, through the simulator and through the float model ---------------------
    ("audio missing", "recognize --design {designs}/good {audio}/none.wav", 2, "no such file"),
    ("audio directory", "recognize --design {designs}/good {audio}/folder.wav", 2, "directory"),
    ("audio text", "recognize --design {designs}/good {audio}/text.wav", 2, "not a readable audio file"),
    ("audio empty file", "recognize --design {designs}/good {audio}/empty.wav", 2, "audio"),
    ("audio no samples", "recognize --design {designs}/good {audio}/nosamples.wav", 2, "no samples"),
    ("audio nan", "recognize --design {designs}/good {audio}/nan.wav", 2, "NaN"),
    ("audio inf", "recognize --model {model} {audio}/inf.wav", 2, "NaN or Inf"),
    ("audio 8-bit unsigned", "recognize --design {designs}/good {audio}/u8.wav", 0, "seven"),
    ("audio 24-bit", "recognize --design {designs}/good {audio}/pcm24.wav", 0, "seven"),
    ("audio float", "recognize --design {designs}/good {audio}/float.wav", 0, "seven"),
    ("audio stereo", "recognize --design {designs}/good {audio}/stereo.wav", 0, "seven"),
    ("audio 48 kHz", "recognize --design {designs}/good {audio}/r48k.wav", 0, "seven"),
    ("audio 22.05 kHz", "recognize --model {model} {audio}/r22k.wav", 0, "seven"),
    ("audio flac", "recognize --design {designs}/good {audio}/seven.flac", 0, "seven"),
    ("audio ogg", "recognize --model {model} {audio}/seven.ogg", 0, "seven"),
    ("audio clipped", "recognize --design {designs}/good {audio}/clipped.wav", 0, "clipped.wav:"),
    ("audio 50 ms", "recognize --design {designs}/good {audio}/short.wav", 0, "no keywords"),
    ("audio silence", "recognize --design {designs}/good {audio}/silence.wav", 0, "no keywords"),
    ("sim audio", "sim {designs}/good {seven}", 0, "-> seven"),
    ("sim npy", "sim {designs}/good {audio}/ok.npy", 0, "2 input(s)"),
    ("sim npy shape", "sim {designs}/good {audio}/shape.npy", 2, "the model takes"),
    ("sim npy nan", "sim {designs}/good {audio}/nan.npy", 2, "NaN"),
    ("sim input missing", "sim {designs}/good {audio}/none.npy", 2, "no such file"),
    ("sim text input", "sim {designs}/good {audio}/text.wav", 2, "not a readable audio file"),
    # --- models -----------------------------------------------------------------------
    ("model missing", "recognize --model {models}/none {seven}", 2, "not a model directory"),
    ("model no model.json", "recognize --model {models}/nojson {seven}", 2, "missing model.json"),
    ("model no model.onnx", "recognize --model {models}/noonnx {seven}", 2, "missing model.onnx"),
    ("model garbage onnx", "recognize --model {models}/garbage {seven}", 2, "onnxruntime cannot load it"),
    ("model json not json", "recognize --model {models}/badjson {seven}", 2, "not valid JSON"),
    ("model json no feature", "recognize --model {models}/nokey {seven}", 2, "missing key 'feature'"),
    ("model labels", "recognize --model {models}/labels {seven}", 2, "10 labels for a model with 12 outputs"),
    ("model front end", "recognize --model {models}/frontend {seven}", 2, "inputs of shape [20, 98]"),
    ("convert garbage onnx", "convert {models}/garbage --out out", 2, "not a readable ONNX model"),
    ("convert no onnx", "convert {models}/noonnx --out out", 2, "no model.onnx"),
    ("convert labels", "convert {models}/labels --out out --board none", 2, "10 labels"),
    ("convert text file", "convert {audio}/text.wav --out out", 2, "not a model directory or an .onnx"),
    ("convert model.json not json", "convert {models}/jsonbroken --out out", 2, "not valid JSON"),
    ("convert symbolic input", "convert {models}/symbolic.onnx --out out", 2, "dimension 2 is frames"),
    ("convert 0-byte onnx", "convert {models}/zero.onnx --out out", 2, "empty file"),
    ("model folder as design", "recognize --design {model} {seven}", 2, "no design.json"),
    ("eval no data", "eval {model} {audio}/nodata", 2, "no manifest.csv"),
    ("eval data without manifest", "eval {model} {audio}", 2, "no manifest.csv"),
    ("eval bad model", "eval {models}/garbage {data}", 2, "onnxruntime cannot load it"),
    ("eval labels", "eval {models}/labels {data}", 2, "10 labels for a model with 12 outputs"),
    ("eval good", "eval {model} {data}", 0, "accuracy"),
    ("eval threshold without running set", "eval {model} {data} --set-threshold", 2, "need --running DIR"),
    ("eval running set missing", "eval {model} {data} --running {audio}/norunning", 2, "no manifest.csv"),
    ("eval threshold on test", "eval {model} {data} --running {data} --set-threshold", 2,
     "choose the threshold on validation"),
    ("eval report onto a file", "eval {model} {data} --running {data} --report {seven}", 2, "exists"),
    # --- designs ----------------------------------------------------------------------
    ("design missing", "sim {designs}/none {seven}", 2, "none: no such design folder"),
    ("design folder without one", "sim {audio} {seven}", 2, "no design.json"),
    ("design edited", "sim {designs}/edited {seven}", 2, "altered since it was written"),
    ("design code out of range", "sim {designs}/range {seven}", 2, "outside ap_fixed<"),
    ("design schema", "sim {designs}/schema {seven}", 2, "schema version 2"),
    ("design type", "recognize --design {designs}/width {seven}", 2, "not a legal fixed-point type"),
    ("design no layers", "sim {designs}/nolayers {seven}", 2, "lacks layers"),
    ("design not json", "sim {designs}/notjson {seven}", 2, "not valid JSON"),
    ("design no manifest", "recognize --design {designs}/nomanifest {seven}", 2, "no manifest.json"),
    ("design extra file", "check {designs}/extra", 2, "not listed in manifest.json"),
    ("design removed file", "check {designs}/removed", 2, "missing (listed in manifest.json)"),
    ("design check edited", "check {designs}/edited", 2, "altered"),
    ("design check good", "check {designs}/good", 0, "ok (design"),
    ("design cost good", "cost {designs}/good", 0, "fits pynq-z2: yes"),
    ("design cost edited", "cost {designs}/range", 2, "outside"),
    ("bundle of vectors", "bundle {vectors} --out out", 2, "is a vectors manifest, expected design"),
    ("bundle bit without hwh", "bundle {designs}/good --out out --bit {seven}", 2, "both --bit and --hwh"),
    ("bundle audio as bit", "bundle {designs}/good --out out --bit {seven} --hwh {audio}/text.wav", 2,
     "not a Xilinx bitstream"),
    ("bundle missing bit", "bundle {designs}/good --out out --bit {audio}/none.bit --hwh {audio}/none.hwh", 2,
     "no such file"),
    ("bundle edited design", "bundle {designs}/edited --out out", 2, "altered"),
    ("vectors check not vectors", "vectors --check --out {designs}/good", 2, "not a golden-vector folder"),
    ("vectors check good", "vectors --check --out {vectors}", 0, "0 differing values"),
    # --- bundles ----------------------------------------------------------------------
    ("bundle altered", "check {bundles}/altered", 2, "altered"),
    ("bundle removed", "check {bundles}/removed", 2, "missing"),
    ("bundle extra", "check {bundles}/extra", 2, "not listed"),
    ("bundle info edited", "check {bundles}/info", 2, "bundle.json: altered"),
    ("bundle good", "check {bundles}/good", 0, "ok (bundle"),
    ("bundle sim backend", "recognize --bundle {bundles}/good --backend sim {seven}", 0, "seven"),
    ("bundle csim backend", "recognize --bundle {bundles}/good --backend csim {seven}", 2, "pynq (board) or sim"),
    ("bundle pynq without pynq", "recognize --bundle {bundles}/good {seven}", 2, "pynq"),
    ("bundle as design", "recognize --design {bundles}/good {seven}", 2, "is a deployment bundle"),
    ("bundle tampered, sim", "recognize --bundle {bundles}/altered --backend sim {seven}", 2, "altered"),
    # --- options and outputs ------------------------------------------------------------
    ("no source", "recognize {seven}", 2, "exactly one of"),
    ("two sources", "recognize --model {model} --design {designs}/good {seven}", 2, "exactly one of"),
    ("model on sim", "recognize --model {model} --backend sim {seven}", 2, "onnx backend"),
    ("threshold nan", "recognize --model {model} --threshold nan {seven}", 2, "not a finite number"),
    ("threshold 2", "recognize --model {model} --threshold 2 {seven}", 2, "at most 1"),
    ("stride 1 ms", "recognize --model {model} --stride-ms 1 {seven}", 2, "at least 10"),
    ("verify n 0", "verify {designs}/good --n 0", 2, "--n 0 must be at least 1"),
    ("clock 0", "convert {model} --out out --clock-ns 0", 2, "--clock-ns 0"),
    ("budget 2", "convert {model} --out out --budget 2", 2, "--budget 2"),
    ("bits 40", "convert {model} --out out --bits 40", 2, "--bits 40"),
    ("unknown board", "convert {model} --out out --board de10", 2, "invalid choice"),
    ("eval unknown split", "eval {model} {audio} --split dev", 2, "invalid choice"),
    ("eval zero false-alarm target", "eval {model} {data} --target-fa-per-hour 0", 2, "--target-fa-per-hour"),
    ("running zero hours", "data running --out out --hours 0", 2, "--hours"),
    ("running files of training voices", "data running --out out --split train", 2, "give --windows to train on"),
    ("running zero windows", "data running --out out --split train --windows 0", 2, "--windows"),
    ("running onto existing", "data running --out {data}", 2, "exists"),
    ("unknown verb", "frobnicate", 2, "invalid choice"),
    ("convert over an output", "convert {model} --out {audio}", 2, "--force"),
    ("bundle over an output", "bundle {designs}/good --out {audio}", 2, "--force"),
    ("bundle over a file", "bundle {designs}/good --out {seven}", 2, "--force"),
    ("vectors over an output", "vectors {designs}/good --inputs {audio}/ok.npy --out {audio}", 2, "--force"),
    ("demo over a report", "demo --report {audio}/text.wav", 2, "--force"),
]


@pytest.mark.parametrize("case_id, argv, code, fragment", CASES, ids=[c[0] for c in CASES])
def test_catalogue(w, case_id, argv, code, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = [_p(a, w) for a in argv.split()]
    before = sorted(p.name for p in w["root"].rglob("*"))
    assert main(args) == code, capsys.readouterr()
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("edge-asr") and fragment in err, err
    else:
        assert fragment in out, out
    assert list(tmp_path.iterdir()) == []                                  # nothing written where it ran
    assert sorted(p.name for p in w["root"].rglob("*") if "__pycache__" not in p.parts) == \
        [n for n in before if n != "__pycache__"]                          # nor beside the inputs


@pytest.mark.parametrize("raw", [b"", b"\x01"], ids=["stdin empty", "stdin one byte"])
def test_catalogue_stdin(raw):
    r = subprocess.run([sys.executable, "-m", "edge_asr.cli", "recognize", "-", "--model", str(MODEL)],
                       input=raw, capture_output=True)
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1 and b"no audio samples" in r.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("verb", ["convert", "data synth"])
def test_catalogue_signals(tmp_path, sig, code, verb):
    """A signal while a verb writes its output: the exit code, one line, nothing left behind."""
    argv = (["convert", str(MODEL), "--out", str(tmp_path / "o"), "--calib", str(MODEL / "calib.npy")]
            if verb == "convert" else ["data", "synth", "--size", "small", "--quiet", "--out", str(tmp_path / "o")])
    # SIGINT as at a terminal: a shell's background job (`cmd &`) starts with SIGINT ignored,
    # and Python then never raises KeyboardInterrupt; the user's Ctrl-C is what is tested
    proc = subprocess.Popen([sys.executable, "-m", "edge_asr.cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not list(tmp_path.glob(".o.tmp-*")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert list(tmp_path.glob(".o.tmp-*")), f"{verb} never started writing"
    time.sleep(0.2)
    proc.send_signal(sig)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == code, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("edge-asr")
    assert [p for p in tmp_path.iterdir()] == []


def test_force_onto_a_file_puts_the_folder_in_its_place(w, tmp_path, capsys):
    target = tmp_path / "b"
    target.write_text("a file where the bundle goes")
    assert main(["bundle", str(w["designs"] / "good"), "--out", str(target), "--force"]) == 0
    assert (target / "bundle.json").is_file() and not list(tmp_path.glob(".b.tmp-*"))

