"""Every numeric option is checked at parse time: a value out of its range, NaN or not a
number is refused in one line, exit 2, before anything runs."""

from __future__ import annotations

import pytest

from edge_asr.cli import main

CASES = [
    (["recognize", "x.wav", "--design", "d", "--threshold", "-0.5"], "--threshold"),
    (["recognize", "x.wav", "--design", "d", "--threshold", "2"], "at most 1"),
    (["recognize", "x.wav", "--design", "d", "--threshold", "nan"], "not a finite number"),
    (["recognize", "x.wav", "--design", "d", "--stride-ms", "0"], "--stride-ms"),
    (["recognize", "x.wav", "--design", "d", "--stride-ms", "-100"], "at least 10"),
    (["recognize", "x.wav", "--design", "d", "--stride-ms", "1"], "at least 10"),
    (["recognize", "x.wav", "--design", "d", "--stride", "inf"], "not a finite number"),
    (["convert", "m", "--out", "o", "--clock-ns", "0"], "--clock-ns"),
    (["convert", "m", "--out", "o", "--budget", "0"], "--budget"),
    (["convert", "m", "--out", "o", "--budget", "1.5"], "at most 1"),
    (["convert", "m", "--out", "o", "--reuse", "0"], "--reuse"),
    (["convert", "m", "--out", "o", "--bits", "3"], "--bits"),
    (["cost", "d", "--budget", "-1"], "--budget"),
    (["verify", "d", "--n", "0"], "--n"),
    (["verify", "d", "--n", "-1"], "--n"),
    (["verify", "d", "--n", "ten"], "not an integer"),
    (["verify", "d", "--min-agreement", "-0.1"], "--min-agreement -0.1 must be at least 0"),
    (["train", "data", "--out", "r", "--epochs", "0"], "--epochs"),
    (["train", "data", "--out", "r", "--lr", "0"], "--lr"),
    (["train", "data", "--out", "r", "--noise-mix", "-0.1"], "--noise-mix -0.1 must be at least 0"),
    (["train", "data", "--out", "r", "--engine-balance", "nan"], "not a finite number"),
    (["export", "run", "--out", "m", "--opset", "12"], "at least 13"),
    (["data", "synth", "--out", "s", "--jobs", "0"], "--jobs"),
    (["data", "connected", "--out", "c", "--n", "0"], "--n"),
    (["vectors", "d", "--inputs", "x.npy", "--out", "v", "--wild", "-1"], "--wild"),
]


@pytest.mark.parametrize("argv, fragment", CASES, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in CASES])
def test_out_of_range_option_is_one_line(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err
    assert err.startswith(f"edge-asr {argv[0]}")
    assert list(tmp_path.iterdir()) == []   # nothing ran, nothing written
