"""`edge-asr eval`: accuracy and confusion matrix of a model on a manifest's split."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ..data import UNKNOWN
from ..data.loading import feature_matrix, label_indices
from ..data.manifest import read_manifest
from ..runtime.backends.onnx import OnnxBackend
from ..runtime.modeldir import load_model_dir, update_model_json

_NOISE = re.compile(r"noise=(\w+)@(-?\d+)dB")


def noise_group(augmentation: str) -> str:
    """'babble@5-9dB', 'white@20+dB', ... from a manifest row's augmentation (SNR bands of data
    synth's 5-30 dB range, wide enough to hold clips each); 'hum alone' for a `_silence_`
    clip of noise with no word; 'none' without added noise."""
    m = _NOISE.search(augmentation)
    if not m:
        alone = re.search(r"noise=(\w+)", augmentation)
        return f"{alone.group(1)} alone" if alone else "none"
    snr = int(m.group(2))
    band = "<5" if snr < 5 else "5-9" if snr < 10 else "10-19" if snr < 20 else "20+"
    return f"{m.group(1)}@{band}dB"


def evaluate(model_dir: str | Path, data_dir: str | Path, split: str = "test", progress: bool = True) -> dict:
    """Accuracy and confusion matrix of a model directory on a data split, with breakdowns by
    engine, voice, condition, noise, reverb and rendering, and what other words were taken for.

    Raises:
        InputError: no model, no manifest, an empty split, labels the model lacks.
    """
    info = load_model_dir(model_dir)
    backend = OnnxBackend(info)  # a model that cannot run is refused before the features are computed
    rows = read_manifest(data_dir, split)
    y = label_indices(rows, info.labels)
    x = feature_matrix(data_dir, rows, info.feature, progress, f"features ({split})")
    pred = backend.run(x).argmax(axis=1)
    n_cls = len(info.labels)
    confusion = np.zeros((n_cls, n_cls), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    groups: dict[str, dict[str, list[int]]] = {"engine": defaultdict(list), "speaker": defaultdict(list),
                                               "condition": defaultdict(list), "noise": defaultdict(list),
                                               "reverb": defaultdict(list), "rendering": defaultdict(list)}
    # What each other word was heard as: on real speech most errors are words (letter
    # names, "million") taken for a digit, which the confusion matrix does not show.
    heard_as: dict[str, Counter] = defaultdict(Counter)
    for r, p, ok in zip(rows, pred, (pred == y), strict=True):
        if r.label == UNKNOWN:
            heard_as[r.text][info.labels[p]] += 1
        groups["engine"][r.engine].append(int(ok))
        groups["speaker"][r.speaker].append(int(ok))
        cond = "telephone" if "telephone" in r.augmentation else ("clean" if r.augmentation.startswith("clean") else "noisy")
        groups["condition"][cond].append(int(ok))
        groups["noise"][noise_group(r.augmentation)].append(int(ok))
        groups["reverb"]["reverb" if "reverb=" in r.augmentation else "dry"].append(int(ok))
        # Half of a recorded voice's renderings are pitch- and formant-shifted up (synth's
        # `shift=`, a shorter vocal tract): a voice of its own, worth telling apart.
        groups["rendering"]["shifted" if "shift=" in r.augmentation else "as voiced"].append(int(ok))
    return {
        "model": str(Path(model_dir)), "data": str(Path(data_dir)), "split": split,
        "n": len(rows),
        "accuracy": float((pred == y).mean()),
        "labels": info.labels,
        "confusion": confusion.tolist(),  # rows: true label, columns: predicted
        **{f"per_{g}": {k: {"n": len(v), "accuracy": float(np.mean(v))} for k, v in sorted(d.items())}
           for g, d in groups.items()},
        "per_unknown_word": {w: {"n": sum(c.values()), "accuracy": c[UNKNOWN] / sum(c.values()),
                                 "heard_as": dict(c.most_common())} for w, c in sorted(heard_as.items())},
    }


def format_report(res: dict) -> str:
    """evaluate's result as lines for a terminal."""
    labels = res["labels"]
    short = [label.strip("_")[:5] for label in labels]
    lines = [f"{res['split']} split of {res['data']}: {res['n']} clips, accuracy {res['accuracy']:.4f}", "",
             "confusion (rows: true, columns: predicted)",
             "        " + " ".join(f"{s:>5}" for s in short)]
    for s, row in zip(short, res["confusion"], strict=True):
        lines.append(f"{s:>7} " + " ".join(f"{v:>5}" for v in row))
    for g in ("engine", "condition", "noise", "reverb", "rendering"):
        lines.append("")
        lines.append(f"by {g}: " + ", ".join(f"{k} {v['accuracy']:.3f} (n={v['n']})"
                                             for k, v in res[f"per_{g}"].items()))
    missed = sorted(((w, v) for w, v in res["per_unknown_word"].items() if v["accuracy"] < 1),
                    key=lambda wv: (wv[1]["accuracy"], wv[0]))
    if missed:
        lines += ["", "other words most often not heard as _unknown_: " + ", ".join(
            f"{w} {v['n'] - v['heard_as'].get(UNKNOWN, 0)}/{v['n']} (as "
            + next(k for k in v["heard_as"] if k != UNKNOWN) + ")" for w, v in missed[:12])]
    return "\n".join(lines)


def record_metrics(model_dir: str | Path, res: dict, name: str | None = None) -> None:
    """Write the accuracy into model.json's metrics under `name` (default: the split), as
    NAME_accuracy, NAME_n, NAME_per_engine, NAME_per_condition, NAME_confusion (atomically:
    temp file, then rename)."""
    key = name or res["split"]

    def update(meta: dict) -> None:
        m = meta.setdefault("metrics", {})
        m[f"{key}_accuracy"] = res["accuracy"]
        m[f"{key}_n"] = res["n"]
        m[f"{key}_per_engine"] = {k: round(v["accuracy"], 4) for k, v in res["per_engine"].items()}
        m[f"{key}_per_condition"] = {k: round(v["accuracy"], 4) for k, v in res["per_condition"].items()}
        m[f"{key}_confusion"] = res["confusion"]
    update_model_json(model_dir, update)
