"""Leave one speaker out: for each speaker of a small real corpus (FSDD's six), train with
that speaker held out for testing and the next one for validation, and score the
held-out speaker; the spread over speakers is what a new speaker can expect.

    .venv/bin/python benchmarks/speaker_loso.py --corpus FSDD.csv --noise NOISE_DIR \\
        [--extra-train DIR ...] [--epochs 15] [--copies 2] [--out build/loso] [--json]

Each fold runs the real verbs' functions: `data import --test-speakers S --valid-speakers
S'`, `data augment --noise NOISE --copies C`, `train` (the shipped recipe's front end, the
augmented corpus at --weight beside --extra-train sets such as a synthetic corpus and real
negatives, the fold's validation speaker as --extra-valid), `export`, and the float
model's top-1 accuracy on the held-out speaker (`eval`). Folds are kept in --out; a fold
whose model exists is not trained again.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_asr.data.augment_corpus import AugmentSpec, augment_corpus  # noqa: E402
from edge_asr.data.importer import SplitRule, import_corpus  # noqa: E402
from edge_asr.frontend.features import FeatureConfig  # noqa: E402
from edge_asr.training.evaluate import evaluate  # noqa: E402
from edge_asr.training.export import export  # noqa: E402
from edge_asr.training.spec import TrainConfig  # noqa: E402
from edge_asr.training.train import train  # noqa: E402


def speakers_of(corpus: Path) -> list[str]:
    """The speakers a corpus CSV names, in the order they first appear."""
    with corpus.open(newline="") as f:
        return list(dict.fromkeys(r["speaker"] for r in csv.DictReader(f) if r.get("speaker")))


def fold(corpus: Path, test: str, valid: str, a, out: Path) -> dict:
    """One fold: its model's accuracy on the held-out speaker."""
    quiet = dict(progress=False, log=lambda m: None)
    data, augmented, run, model = (out / name for name in ("data", "augmented", "run", "model"))
    if not (model / "model.json").is_file():
        if not (data / "manifest.csv").is_file():
            import_corpus(corpus, data, splits=SplitRule(valid_speakers=(valid,), test_speakers=(test,)), force=True,
                          **quiet)
        if not (augmented / "manifest.csv").is_file():
            augment_corpus(data, augmented, AugmentSpec(copies=a.copies), noise=a.noise, force=True, **quiet)
        main, extra = (Path(a.extra_train[0]), [*map(Path, a.extra_train[1:]), augmented]) if a.extra_train \
            else (augmented, [])
        cfg = TrainConfig(epochs=a.epochs, patience=a.epochs, engine_balance=0.3 if a.extra_train else 0.0,
                          data_weights={str(augmented): a.weight} if a.extra_train else {})
        feature = FeatureConfig(fmax=4000.0, n_mfcc=13, cmn=True)
        train(main, run, cfg, feature, force=True, extra_train=extra, extra_valid=[data], **quiet)
        export(run, model, force=True, **quiet)
    res = evaluate(model, data, split="test", progress=False)
    return {"speaker": test, "valid_speaker": valid, "accuracy": res["accuracy"], "n": res["n"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", required=True, help="the corpus CSV (path,label,speaker)")
    p.add_argument("--noise", required=True, help="a data directory of real background noise (data import)")
    p.add_argument("--extra-train", action="append", default=[],
                   help="other training sets (the first is the run's DATA: e.g. a synthetic corpus), repeatable")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--copies", type=int, default=2)
    p.add_argument("--weight", type=float, default=2.0, help="--data-weight of the augmented corpus")
    p.add_argument("--out", default=str(ROOT / "build" / "loso"))
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    corpus = Path(a.corpus)
    speakers = speakers_of(corpus)
    if len(speakers) < 3:
        sys.exit(f"{corpus}: {len(speakers)} speakers; leaving one out needs at least 3")
    rows = []
    for i, test in enumerate(speakers):
        valid = speakers[(i + 1) % len(speakers)]
        rows.append(fold(corpus, test, valid, a, Path(a.out) / test))
        print(f"held out {test} (valid {valid}): {rows[-1]['accuracy']:.1%} of {rows[-1]['n']}", file=sys.stderr)
    accs = [r["accuracy"] for r in rows]
    summary = {"folds": rows, "mean": sum(accs) / len(accs), "min": min(accs), "max": max(accs)}
    if a.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{'held-out speaker':<18}{'valid speaker':<16}{'clips':>7}{'accuracy':>10}")
    for r in rows:
        print(f"{r['speaker']:<18}{r['valid_speaker']:<16}{r['n']:>7}{r['accuracy']:>10.1%}")
    print(f"{'mean':<41}{summary['mean']:>10.1%}   (min {summary['min']:.1%}, max {summary['max']:.1%})")


if __name__ == "__main__":
    main()
