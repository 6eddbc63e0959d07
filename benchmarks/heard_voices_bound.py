"""How much of the gap to 97 % is the test voices, and how much the test conditions.

    .venv/bin/python benchmarks/heard_voices_bound.py DATA DATA2 --work DIR [-- TRAIN_ARGS...]

DATA and DATA2 are two `edge-asr data synth --size full` corpora made with different
seeds: the same voices in the same splits, with other renderings, other words and other
augmentations. This trains the shipped recipe (or TRAIN_ARGS after `--`) on DATA's and
DATA2's train splits *plus DATA2's test split*, so the test voices are heard in training,
then scores DATA's test split, which it never saw, clip for clip beside the shipped model.

Held-out voices can at best do as well as voices the net has heard, so the score of this
run bounds what any amount of new voices could give this net under these conditions.
A measurement, not a product path: it breaks the by-voice split on purpose, in DIR only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EDGE_ASR = [sys.executable, "-m", "edge_asr.cli"]
# The shipped model's recipe (models/kws-digits/MODEL_CARD.md), less --extra-train (the combined set holds it).
SHIPPED_RECIPE = ["--epochs", "120", "--patience", "40", "--fmax", "4000", "--n-mfcc", "13", "--cmn",
                  "--engine-balance", "0.3"]


def combined_data(data: Path, data2: Path, out: Path) -> Path:
    """A data directory whose train split is DATA's and DATA2's train splits plus DATA2's test
    split, and whose valid and test splits are DATA's. Clips are reached through symlinks."""
    from edge_asr.data.manifest import read_manifest, write_manifest
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, src in (("a", data), ("b", data2)):
        link = out / name
        if not link.exists():
            link.symlink_to(src.resolve())
        for r in read_manifest(src):
            if name == "b" and r.split == "valid":
                continue
            split = "train" if name == "b" else r.split
            rows.append(replace(r, path=f"{name}/{r.path}", split=split))
    write_manifest(out, rows)
    return out


def run(args: list[str]) -> None:
    print("$ edge-asr " + " ".join(args), flush=True)
    subprocess.run(EDGE_ASR + args, check=True, cwd=ROOT)


def scores(model: Path, data: Path) -> dict:
    from edge_asr.training.evaluate import evaluate
    return evaluate(model, data, progress=False)


def main() -> None:
    argv = sys.argv[1:]
    train_args = SHIPPED_RECIPE
    if "--" in argv:
        cut = argv.index("--")
        argv, train_args = argv[:cut], argv[cut + 1:]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("data2", type=Path)
    ap.add_argument("--work", type=Path, required=True, help="folder for the combined set, the run and the model (a run or model already there is reused)")
    ap.add_argument("--shipped", type=Path, default=ROOT / "models" / "kws-digits")
    a = ap.parse_args(argv)
    for d in (a.data, a.data2):
        if not (d / "manifest.csv").is_file():
            sys.exit(f"{d}: no manifest.csv; make it with `edge-asr data synth --size full --out {d}`")
    seeds = [json.loads((d / "data.json").read_text()).get("seed") if (d / "data.json").is_file() else None
             for d in (a.data, a.data2)]
    if seeds[0] is not None and seeds[0] == seeds[1]:
        # The same seed makes the same clips: the run would be scored on clips it trained on.
        sys.exit(f"{a.data} and {a.data2} were made with the same seed ({seeds[0]}); make DATA2 with another --seed")
    combined = combined_data(a.data, a.data2, a.work / "data")
    if not (a.work / "run" / "train.json").is_file():
        run(["train", str(combined), "--out", str(a.work / "run"), *train_args])
    if not (a.work / "model" / "model.json").is_file():
        run(["export", str(a.work / "run"), "--out", str(a.work / "model")])
    heard, shipped = scores(a.work / "model", a.data), scores(a.shipped, a.data)
    print(f"\n{a.data} test split ({heard['n']} clips), test voices heard in training vs held out (shipped):")
    print(f"  all clips                   {heard['accuracy']:.2%}   {shipped['accuracy']:.2%}")
    for key in ("per_engine", "per_rendering", "per_condition", "per_reverb", "per_noise"):
        for name in sorted(heard[key]):
            h, s = heard[key][name], shipped[key][name]
            print(f"  {key[4:]:9s} {name:17s} {h['accuracy']:.2%}   {s['accuracy']:.2%}   ({h['n']} clips)")


if __name__ == "__main__":
    main()
