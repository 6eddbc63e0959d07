"""The base install: `pip install edge-asr` with no extras, in a virtual environment of its
own, runs a converted design on audio (sim, recognize, bundle, check) with numpy,
soundfile, soxr, onnxruntime and threadpoolctl alone; the shipped model travels in the
wheel; and every verb that needs an extra says in one line which one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "sim" / "vectors" / "kws-digits"
HEAVY = ("torch", "hls4ml", "onnx", "qonnx", "scipy", "matplotlib", "tqdm", "yaml")


@pytest.fixture(scope="session")
def base(tmp_path_factory) -> Path:
    """A fresh venv with the package installed from a wheel built of a copy of the sources
    (what the wheel carries: the package, models/, hls/)."""
    work = tmp_path_factory.mktemp("base")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, src / name)
    for name in ("edge_asr", "models", "hls"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    pip = subprocess.run([env_dir / "bin" / "python", "-m", "pip", "install", "-q", str(src)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-2000:]
    return env_dir


def _run(base: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(base / "bin" / "edge-asr"), *args], capture_output=True, text=True,
                          cwd=cwd or ROOT.parent, env=env)


def _python(base: Path, code: str) -> str:
    r = subprocess.run([str(base / "bin" / "python"), "-c", code], capture_output=True, text=True,
                       cwd=ROOT.parent)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_nothing_heavy_is_installed(base):
    found = _python(base, "import importlib.util as u; print([m for m in %r if u.find_spec(m)])" % (HEAVY,))
    assert found == "[]"
    size = sum(f.stat().st_size for f in (base / "lib").rglob("*") if f.is_file())
    assert size < 400e6, f"the base install holds {size / 1e6:.0f} MB"


def test_the_shipped_model_travels_in_the_wheel(base):
    where = Path(_python(base, "import edge_asr; print(edge_asr.shipped_model())"))
    assert where.is_relative_to(base) and (where / "model.onnx").is_file()
    assert len(list((where / "examples").glob("*.wav"))) == 12
    hls = Path(_python(base, "from edge_asr.resources import hls_source; print(hls_source('pynq-z2', "
                             "'design_1.hwh.in'))"))
    assert hls.is_relative_to(base)


def test_recognize_a_committed_design_on_the_examples(base):
    examples = Path(_python(base, "import edge_asr; print(edge_asr.shipped_model() / 'examples')"))
    clips = sorted(examples.glob("*.wav"))
    r = _run(base, "recognize", "--design", str(VECTORS), "--json", *map(str, clips))
    assert r.returncode == 0, r.stderr
    results = [json.loads(line) for line in r.stdout.splitlines()]
    for clip, res in zip(clips, results, strict=True):
        label = clip.name.split("-")[0]
        expected = [] if label.startswith("_") else [label]
        assert [e["word"] for e in res["events"]] == expected, clip.name
    r = _run(base, "sim", str(VECTORS), str(clips[0]), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["labels"] == [clips[0].name.split("-")[0]]
    r = _run(base, "vectors", "--check", "--out", str(VECTORS))
    assert r.returncode == 0 and "0 differing values" in r.stdout
    r = _run(base, "recognize", "--model", str(examples.parent), str(clips[-1]))
    assert r.returncode == 0 and "zero" in r.stdout


def test_eval_a_data_directory(base, tmp_path):
    """eval with the base install (no tqdm: no progress bar), on the example clips as a data set."""
    examples = Path(_python(base, "import edge_asr; print(edge_asr.shipped_model() / 'examples')"))
    rows = ["path,label,text,engine,voice,speaker,augmentation,split,seconds"]
    for clip in sorted(examples.glob("*.wav")):
        shutil.copyfile(clip, tmp_path / clip.name)
        label = clip.name.split("-")[0]
        rows.append(f"{clip.name},{label},{label},e,v,s,clean,test,1.0")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    r = _run(base, "eval", str(examples.parent), str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["n"] == 12 and res["accuracy"] == 1.0
    # streamed figures too (no tqdm: the progress bars are left out, not a traceback): the
    # example clips said one after another stand in for running speech
    running = tmp_path / "running"
    running.mkdir()
    shutil.copyfile(sorted(examples.glob("*.wav"))[0], running / "r.wav")
    (running / "manifest.csv").write_text(rows[0] + "\nr.wav,_unknown_,,e,v,s,clean,test,1.0\n")
    r = _run(base, "eval", str(examples.parent), str(tmp_path), "--running", str(running))
    assert r.returncode == 0, r.stderr
    assert "false alarms per hour" in r.stdout and "Traceback" not in r.stderr


def test_bundle_and_check(base, tmp_path):
    design = tmp_path / "design"
    design.mkdir()
    for name in ("design.json", "model.json"):
        shutil.copyfile(VECTORS / name, design / name)
    _python(base, f"from edge_asr.ir import write_manifest; write_manifest({str(design)!r}, 'design')")
    r = _run(base, "bundle", str(design), "--out", str(tmp_path / "bundle"))
    assert r.returncode == 0, r.stderr
    r = _run(base, "check", str(tmp_path / "bundle"))
    assert r.returncode == 0 and "ok (bundle" in r.stdout


@pytest.mark.parametrize("args, extra", [
    (["convert", "models/kws-digits", "--out", "d"], "convert"),
    (["demo"], "convert"),
    (["verify", "d"], "convert"),
    (["build", "d"], "convert"),
    (["train", "data", "--out", "r"], "train"),
    (["export", "r", "--out", "m"], "train"),
    (["data", "synth", "--out", "s"], "data"),
    (["data", "human", "--out", "h"], "data"),
])
def test_a_verb_without_its_extra_names_it(base, args, extra, tmp_path):
    r = _run(base, *args, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and f"pip install 'edge-asr[{extra}]'" in r.stderr, r.stderr
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_csim_backend_names_its_extra(base):
    r = _run(base, "recognize", "--design", str(VECTORS), "--backend", "csim", str(VECTORS / "design.json"))
    assert r.returncode == 2 and "edge-asr[convert]" in r.stderr and r.stderr.count("\n") == 1
