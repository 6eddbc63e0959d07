"""The scripts in examples/ run as a user runs them, and say what they should."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _example(name: str, *args: str) -> str:
    r = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], capture_output=True, text=True,
                       cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_recognize_file():
    out = _example("recognize_file.py")
    assert out.splitlines()[-1].startswith("heard: seven ")


def test_stream_chunks_hears_each_word_once():
    out = _example("stream_chunks.py")
    assert out.splitlines()[-1] == "all: four two nine six"
    assert sum(line.startswith("heard ") for line in out.splitlines()) == 3  # the fourth after input_finished


def test_convert_and_simulate(tmp_path):
    out = _example("convert_and_simulate.py", str(tmp_path / "design"))
    assert "top-1 agreement fixed vs float 100.0%" in out
    assert (tmp_path / "design" / "design.json").is_file()
