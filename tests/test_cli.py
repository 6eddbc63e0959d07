import subprocess
import sys

import pytest

from edge_asr.cli import build_parser, main

from .conftest import SHIPPED_MODEL

VERBS = [["data"], ["data", "synth"], ["data", "human"], ["data", "connected"], ["train"], ["export"], ["eval"], ["demo"], ["convert"], ["check"],
         ["verify"], ["sim"], ["vectors"], ["build"], ["recognize"], ["bundle"]]


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_help_for_every_verb(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main(verb + ["--help"])
    assert exc.value.code == 0
    assert "usage: edge-asr" in capsys.readouterr().out


def test_every_verb_is_listed():
    sub = next(a for a in build_parser()._actions if a.dest == "verb")
    assert {v[0] for v in VERBS} <= set(sub.choices)


def test_console_script_errors_are_one_line():
    r = subprocess.run([sys.executable, "-m", "edge_asr.cli", "eval", "/no/such/model", "/no/data"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "not a model directory" in r.stderr
    r = subprocess.run([sys.executable, "-m", "edge_asr.cli", "--debug", "eval", "/no/such/model", "/no/data"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_demo_on_shipped_model(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_ASR_CACHE", str(tmp_path / "cache"))
    report = tmp_path / "report.html"
    assert main(["demo", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    wavs = sorted((SHIPPED_MODEL / "examples").glob("*.wav"))
    assert len(wavs) >= 5
    correct = 0
    for w in wavs:
        line = next(ln for ln in out.splitlines() if ln.startswith(w.name))
        correct += line.split()[1] == w.name.split("-")[0]  # files are named <label>-<engine>-<voice>.wav
    assert correct >= 0.75 * len(wavs), out
    assert "differing bits 0 values" in out
    assert "heard 'seven three nine one'" in out
    assert "estimated FPGA latency" in out and "fits pynq-z2 within 70%" in out
    page = report.read_text()
    assert page.count("data:image/png;base64,") == 3 and "Confusion matrix" in page
    assert "Estimated resources by layer" in page and "not synthesized" in page
    # the user's report is not replaced without --force, and nothing is run first
    capsys.readouterr()
    assert main(["demo", "--report", str(report)]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and report.read_text() == page
    assert main(["demo", "--report", str(report), "--force"]) == 0
    assert not list(tmp_path.glob(".report.html.tmp"))


def test_shipped_model_is_small_and_measured():
    import json
    size = sum(p.stat().st_size for p in SHIPPED_MODEL.rglob("*") if p.is_file() and p.suffix != ".wav")
    assert size <= 1_000_000
    meta = json.loads((SHIPPED_MODEL / "model.json").read_text())
    assert meta["metrics"]["test_n"] > 1000 and "test_accuracy" in meta["metrics"]


def test_output_closed_by_its_reader_stops_quietly():
    """`edge-asr recognize ... --json | head -1`: the reader goes away, the CLI stops without a
    traceback and with SIGPIPE's exit status, as a Unix tool does."""
    clips = sorted(str(p) for p in (SHIPPED_MODEL / "examples").glob("*.wav"))
    proc = subprocess.Popen([sys.executable, "-m", "edge_asr.cli", "recognize", "--model", str(SHIPPED_MODEL),
                             "--json", *clips], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the first line is written: every write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""


def test_closed_standard_output_is_an_error_not_a_silent_success():
    import os
    r = subprocess.run([sys.executable, "-m", "edge_asr.cli", "recognize", "--model", str(SHIPPED_MODEL),
                        str(sorted((SHIPPED_MODEL / "examples").glob("seven-*.wav"))[0])],
                       capture_output=False, stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(1))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "standard output is closed" in r.stderr

