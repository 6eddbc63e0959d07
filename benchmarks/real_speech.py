"""Every real-speech figure of the shipped models, side by side in one run, through each
model's pynq-z2 design on the bit-exact simulator at the model's stored operating point.

    .venv/bin/python benchmarks/real_speech.py --fsdd DIR --scdev DIR --negatives DIR \\
        --human DIR --running DIR [--connected DIR] [--model models/kws-digits ...] [--float] [--json]

The data directories are `edge-asr data import`s of real recordings (the model cards give
the commands) and the project's own sets:
- --fsdd: a spoken-digit corpus split by speaker; its test split is the held-out speaker(s)
  (and, with --fsdd-split valid, its validation speaker);
- --scdev: Speech Commands clips imported with `--split valid` (digits and 20 other words);
- --negatives: real non-digit phrases; their test split is the held-out phrases;
- --human: `edge-asr data human` (one real speaker, digits and other words);
- --running: `edge-asr data running` (test voices, with the human prompts): false alarms;
- --connected: `edge-asr data connected`: word error rate of connected digits.

Per clip set: "top-1" is the design's answer on the one-second clip (a digit clip is right
when the design's largest posterior is its digit; an other-word clip is taken for a digit
when it is any digit); "streamed" is the recognizer run over the clip as over a file, at the
operating threshold: a digit is missed unless its digit is emitted, an other word fires when
any digit is. --float runs the float model (onnxruntime) beside each design, and the top-1
agreement of the two on every real clip is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_asr.data import SILENCE, UNKNOWN  # noqa: E402
from edge_asr.data.connected import word_error_rate  # noqa: E402
from edge_asr.data.loading import feature_matrix  # noqa: E402
from edge_asr.data.manifest import read_manifest  # noqa: E402
from edge_asr.frontend.audio import read_audio  # noqa: E402
from edge_asr.ir.design import Design  # noqa: E402
from edge_asr.runtime.backends import get_backend  # noqa: E402
from edge_asr.runtime.modeldir import load_model_dir  # noqa: E402
from edge_asr.runtime.recognizer import Recognizer  # noqa: E402
from edge_asr.sim.engine import simulate  # noqa: E402
from edge_asr.training.streamed import running_posteriors, streamed_figures  # noqa: E402

SHIPPED = [ROOT / "models" / "kws-digits", ROOT / "models" / "kws-digits-w4a4"]


def design_for(model: Path, cache: Path) -> Path:
    """The model's pynq-z2 design, converted as the demo converts it (its calib.npy)."""
    from edge_asr.hw.convert import ConvertOptions, convert
    out = cache / model.name
    if not (out / "design.json").is_file():
        convert(model, out, ConvertOptions(board="pynq-z2", calib=str(model / "calib.npy")), force=True,
                log=lambda m: None)
    return out


def clip_sets(a) -> list[tuple[str, Path, str]]:
    """(name, data directory, split) of every clip set given."""
    sets = []
    if a.fsdd:
        sets.append((f"fsdd {a.fsdd_split} speaker(s)", Path(a.fsdd), a.fsdd_split))
    if a.scdev:
        sets.append(("speech commands (sc-dev)", Path(a.scdev), "valid"))
    if a.negatives:
        sets.append(("negatives, held-out phrases", Path(a.negatives), "test"))
    if a.human:
        sets.append(("human set (Allison)", Path(a.human), "test"))
    return sets


def top1(design: Design, info, data_dir: Path, split: str, float_model) -> dict:
    """The design's top-1 answers on a split's clips: digits right, other words taken for a
    digit, and the agreement with the float model's answers."""
    rows = read_manifest(data_dir, split)
    x = feature_matrix(data_dir, rows, info.feature, progress=False)
    pred = simulate(design, x).outputs.argmax(1)
    labels = design.labels
    digit = np.array([labels[p] not in (UNKNOWN, SILENCE) for p in pred])
    is_digit = np.array([r.label not in (UNKNOWN, SILENCE) for r in rows])
    is_other = np.array([r.label == UNKNOWN for r in rows])  # other words; noise clips are neither
    right = np.array([labels[p] == r.label for p, r in zip(pred, rows, strict=True)])
    out = {"clips": len(rows), "digits": int(is_digit.sum()), "others": int(is_other.sum()),
           "digits_right": float(right[is_digit].mean()) if is_digit.any() else None,
           "others_taken_for_digit": float(digit[is_other].mean()) if is_other.any() else None}
    if float_model is not None:
        ref = float_model.run(x.astype(np.float32)).argmax(1)
        out["float_agreement"] = float((ref == pred).mean())
        out["float_digits_right"] = float(np.mean([labels[p] == r.label for p, r in zip(ref, rows, strict=True)
                                                   if r.label not in (UNKNOWN, SILENCE)])) if is_digit.any() else None
    return out


def connected_wer(recognizer: Recognizer, data_dir: Path) -> float:
    """Word error rate of the recognizer over the connected-digit files."""
    rows = read_manifest(data_dir)
    sr = recognizer.feature.sample_rate
    hyps = [recognizer.recognize_chunks(np.array_split(read_audio(data_dir / r.path, sr), 10))["text"]
            for r in rows]
    return word_error_rate([r.text for r in rows], hyps)


def measure(model: Path, a, cache: Path) -> dict:
    """Every figure of one model."""
    info = load_model_dir(model)
    design_dir = design_for(model, cache)
    design = Design.load(design_dir)
    rec = Recognizer.from_design(design_dir, "sim")
    float_model = get_backend("onnx", info) if a.float else None
    res = {"model": model.name, "design": str(design_dir), "bits": (design.data.get("calibration") or {}).get("bits"),
           "threshold": rec.config.threshold, "sets": {}}
    running = running_posteriors(rec, a.running, progress=False) if a.running else None
    for name, d, split in clip_sets(a):
        entry = top1(design, info, d, split, float_model)
        if a.running:
            s = streamed_figures(rec, d, split, a.running, progress=False, running=running)
            at = s["at_threshold"]
            entry["streamed"] = {"miss_rate": at["miss_rate"], "fire_rate": at["fire_rate"]}
            res["fa_per_hour"] = at["fa_per_hour"]
            res["running_hours"] = s["running_hours"]
            res["running_by_source"] = s["running_by_source"]
        res["sets"][name] = entry
    if a.connected:
        res["connected_wer"] = connected_wer(rec, Path(a.connected))
    return res


def record(model: Path, res: dict) -> None:
    """model.json's `real_speech`: the figures, and how they were measured."""
    from datetime import date

    from edge_asr.runtime.modeldir import update_model_json
    figures = {k: v for k, v in res.items() if k not in ("model", "design")}
    figures["measured"] = (f"benchmarks/real_speech.py on {date.today().isoformat()}: the model's pynq-z2 design "
                           f"({res['bits'] or 'trained'} bits) on the bit-exact simulator, threshold "
                           f"{res['threshold']:.2f}")
    update_model_json(model, lambda meta: meta.update(real_speech=figures))


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def print_table(results: list[dict]) -> None:
    """One table: a row per figure, a column per model."""
    names = [r["model"] for r in results]
    print(f"{'':<58}" + "".join(f"{n:>20}" for n in names))
    print(f"{'design bits / operating threshold':<58}" + "".join(
        f"{str(r['bits'] or 'trained') + ' / ' + format(r['threshold'], '.2f'):>20}" for r in results))
    for name in results[0]["sets"]:
        first = results[0]["sets"][name]
        print(f"{name} ({first['digits']} digits, {first['others']} other words)")
        for key, label in (("digits_right", "digits right, top-1"), ("others_taken_for_digit",
                                                                     "other words taken for a digit, top-1")):
            if first[key] is not None:
                print(f"  {label:<56}" + "".join(f"{_pct(r['sets'][name][key]):>20}" for r in results))
        if "streamed" in first:
            for key, label, needs in (("miss_rate", "digits missed, streamed", "digits"),
                                      ("fire_rate", "other words firing, streamed", "others")):
                if first[needs]:
                    print(f"  {label:<56}" + "".join(f"{_pct(r['sets'][name]['streamed'][key]):>20}"
                                                     for r in results))
        if "float_agreement" in first:
            print(f"  {'design = float model, top-1':<56}" + "".join(
                f"{_pct(r['sets'][name]['float_agreement']):>20}" for r in results))
    if "fa_per_hour" in results[0]:
        print(f"{'false alarms per hour, running speech':<58}" + "".join(f"{r['fa_per_hour']:>20.1f}"
                                                                          for r in results))
        for source in results[0]["running_by_source"]:
            print(f"  {source:<56}" + "".join(f"{r['running_by_source'][source]['fa_per_hour']:>20.1f}"
                                             for r in results))
    if "connected_wer" in results[0]:
        print(f"{'connected digits, word error rate':<58}" + "".join(f"{r['connected_wer']:>20.3f}" for r in results))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", help="model directory (repeatable; default: the shipped models)")
    p.add_argument("--fsdd")
    p.add_argument("--fsdd-split", default="test", choices=("valid", "test"))
    p.add_argument("--scdev")
    p.add_argument("--negatives")
    p.add_argument("--human")
    p.add_argument("--running")
    p.add_argument("--connected")
    p.add_argument("--float", action="store_true", help="also the float model: top-1 agreement with the design")
    p.add_argument("--cache", help="folder for the converted designs (default: a temporary one)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--record", action="store_true",
                   help="write each model's figures into its model.json (`real_speech`), which the demo prints")
    a = p.parse_args()
    models = [Path(m) for m in a.model] if a.model else SHIPPED
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(a.cache) if a.cache else Path(tmp)
        results = [measure(m, a, cache) for m in models]
    if a.record:
        for m, r in zip(models, results, strict=True):
            record(m, r)
    if a.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
