"""The bit-width sweep (issue 27): quantization-aware training at several weight/activation
widths, each converted for a board with the fit, against today's post-training design.

    .venv/bin/python benchmarks/bits.py --data data/full --extra-train data/full-s1 \\
        --init models/kws-digits --human data/human --running data/running \\
        [--configs w2a2,w3a3,w4a4,w6a6,w8a8,w4a4f8] [--epochs 15] [--out build/bits] \\
        [--plot docs/bits_pareto.png]

Each config `wWaA[fF]` trains `edge-asr train --qat --weight-bits W --act-bits A
[--first-last-bits F]` from the float model --init (its front end and weights), exports it
to QONNX, converts it for --board with the fit (types from the Quant nodes), and measures:
- accuracy: validation (training's best epoch, PyTorch), the test split and the human set
  through the bit-exact simulator of the design;
- false alarms: the design streamed over --running (per hour) and the human set's other
  words (share that fire), at the recognizer's default threshold;
- cost: the cost model's DSP, LUT, BRAM36 (estimates), interval and latency in cycles.
The row `ptq` is --init itself converted the post-training way (calibrated, the widest of
16..8 bits that fits). Writes OUT/results.json, OUT/report.html (table and Pareto plots)
and the plot as --plot; prints the table as Markdown for docs/experiments.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_asr.hw.convert import ConvertOptions, convert  # noqa: E402
from edge_asr.hw.verify import verify  # noqa: E402
from edge_asr.ir.design import Design  # noqa: E402
from edge_asr.runtime.recognizer import Recognizer  # noqa: E402
from edge_asr.training.export import export  # noqa: E402
from edge_asr.training.streamed import streamed_figures  # noqa: E402
from edge_asr.training.train import TrainConfig, train  # noqa: E402

DEFAULT_CONFIGS = "w2a2,w3a3,w4a4,w6a6,w8a8,w4a4f8"
# a DSP48E1 counted as the LUTs the xc7z020 has per DSP slice (53,200 / 220)
LUT_PER_DSP = 53200 / 220


def parse_config(name: str) -> dict:
    """wWaA[fF] -> the QAT widths; ValueError for anything else."""
    m = re.fullmatch(r"w(\d+)a(\d+)(?:f(\d+))?", name)
    if not m:
        raise ValueError(f"config {name!r}: want wWaA or wWaAfF, e.g. w4a4 or w4a4f8")
    w, a, f = (int(g) if g else None for g in m.groups())
    return {"weight_bits": w, "act_bits": a, "bias_bits": 16, "first_last_bits": f}


def measure(name: str, model_dir: Path, design_dir: Path, args, valid_accuracy: float | None,
            seconds_train: float) -> dict:
    """Accuracy, false alarms and cost of one converted design."""
    design = Design.load(design_dir)
    test = verify(design_dir, against="onnx", n=100000, data=args.data)
    human = verify(design_dir, against="onnx", n=100000, data=args.human)
    rec = Recognizer.from_design(design_dir)
    streamed = streamed_figures(rec, args.human, "test", args.running, progress=False)
    cost = design.data["cost"]
    t = cost["totals"]
    return {
        "name": name, "model": str(model_dir), "design": str(design_dir),
        "bits": design.data["calibration"]["bits"] or "trained",
        "valid_accuracy": valid_accuracy,
        "test_accuracy": test["accuracy_fixed"], "test_n": test["n"],
        "human_accuracy": human["accuracy_fixed"], "human_n": human["n"],
        "fa_per_hour": streamed["at_threshold"]["fa_per_hour"],
        "human_other_word_fire_rate": streamed["at_threshold"]["fire_rate"],
        "threshold": streamed["at_threshold"]["threshold"],
        "dsp": t["dsp"], "lut": t["lut"], "bram36": t["bram18"] / 2, "ff": t["ff"],
        "lut_dsp_equivalent": round(t["lut"] + LUT_PER_DSP * t["dsp"]),
        "interval_cycles": cost["interval_cycles"], "latency_cycles": cost["latency_cycles"],
        "interval_us": cost["interval_us"], "latency_us": cost["latency_us"],
        "seconds_train": round(seconds_train, 1),
    }


def run_config(name: str, args, out: Path, log) -> dict:
    """Train, export, convert and measure one QAT config (skipping steps already done)."""
    spec = parse_config(name)
    run, model, design = out / name / "run", out / name / "model", out / name / "design"
    t0 = time.time()
    if not (run / "train.json").is_file():
        cfg = TrainConfig(epochs=args.epochs, lr=args.lr, patience=args.epochs, engine_balance=args.engine_balance,
                          threads=args.threads, qat=spec, init=str(args.init))
        train(args.data, run, cfg, force=True, progress=False, log=log, extra_train=args.extra_train)
    seconds_train = time.time() - t0
    if not (model / "model.json").is_file():
        export(run, model, force=True, progress=False, log=log)
    if not (design / "design.json").is_file():
        convert(model, design, ConvertOptions(board=args.board), force=True, log=log)
    valid = json.loads((run / "train.json").read_text())["valid_accuracy"]
    return measure(name, model, design, args, valid, seconds_train)


def run_ptq(args, out: Path, log) -> dict:
    """Today's post-training flow on the float model --init."""
    design = out / "ptq" / "design"
    if not (design / "design.json").is_file():
        calib = Path(args.init) / "calib.npy"
        convert(args.init, design, ConvertOptions(board=args.board, calib=str(calib) if calib.is_file() else None),
                force=True, log=log)
    valid = json.loads((Path(args.init) / "model.json").read_text()).get("metrics", {}).get("valid_accuracy")
    return measure("ptq", Path(args.init), design, args, valid, 0.0)


def pareto(rows: list[dict], x_key: str) -> set[str]:
    """Names of the rows no other row beats on both human accuracy (higher) and x_key (lower)."""
    front = set()
    for r in rows:
        if not any(o["human_accuracy"] >= r["human_accuracy"] and o[x_key] <= r[x_key]
                   and (o["human_accuracy"] > r["human_accuracy"] or o[x_key] < r[x_key]) for o in rows):
            front.add(r["name"])
    return front


def plot(rows: list[dict], path: Path) -> None:
    """Human-set accuracy against LUT+DSP-equivalent and against the interval, Pareto points ringed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], "lut_dsp_equivalent", "LUT + 242 x DSP (cost model estimate)"),
                           (axes[1], "interval_us", "interval, us at 100 MHz (cost model estimate)")):
        front = pareto(rows, key)
        for r in rows:
            ax.scatter(r[key], 100 * r["human_accuracy"], s=60 if r["name"] in front else 25,
                       edgecolors="k" if r["name"] in front else "none", color="C1" if r["name"] == "ptq" else "C0")
            ax.annotate(r["name"], (r[key], 100 * r["human_accuracy"]), textcoords="offset points", xytext=(4, 4),
                        fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("human-set accuracy, % (design, simulator)")
        ax.grid(True, alpha=0.3)
    fig.suptitle("Bit-width sweep on pynq-z2: accuracy against cost (Pareto points ringed)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(rows: list[dict]) -> str:
    """The results as a Markdown table."""
    head = ("| config | valid | test | human | FA/h | human other words firing | DSP | LUT | BRAM36 | "
            "interval (cycles) | latency (cycles) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        valid = f"{100 * r['valid_accuracy']:.1f}" if r["valid_accuracy"] is not None else "-"
        lines.append(f"| {r['name']} | {valid} | {100 * r['test_accuracy']:.1f} | {100 * r['human_accuracy']:.1f} | "
                     f"{r['fa_per_hour']:.1f} | {100 * r['human_other_word_fire_rate']:.1f} % | {r['dsp']} | "
                     f"{r['lut']} | {r['bram36']:g} | {r['interval_cycles']} | {r['latency_cycles']} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="data directory (train/valid/test)")
    p.add_argument("--extra-train", action="append", default=[], metavar="DIR")
    p.add_argument("--init", default=str(ROOT / "models" / "kws-digits"),
                   help="the float model directory (model.onnx + model.json) to start from and compare with")
    p.add_argument("--human", required=True, help="the human set (edge-asr data human)")
    p.add_argument("--running", required=True, help="running speech (edge-asr data running)")
    p.add_argument("--configs", default=DEFAULT_CONFIGS)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--engine-balance", type=float, default=0.3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--board", default="pynq-z2")
    p.add_argument("--out", default=str(ROOT / "build" / "bits"))
    p.add_argument("--plot", default=None, help="also write the Pareto plot here (e.g. docs/bits_pareto.png)")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    def log(m):
        print(m, file=sys.stderr, flush=True)

    rows = [run_ptq(a, out, log)]
    for name in a.configs.split(","):
        log(f"== {name}")
        rows.append(run_config(name, a, out, log))
        (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    png = out / "bits_pareto.png"
    plot(rows, png)
    if a.plot:
        plot(rows, Path(a.plot))
    table = markdown(rows)
    img = base64.b64encode(png.read_bytes()).decode()
    (out / "report.html").write_text(
        "<!doctype html><meta charset=utf-8><title>edge-asr bit-width sweep</title>"
        f"<h1>Bit-width sweep ({a.board})</h1><img src='data:image/png;base64,{img}'>"
        f"<pre>{table}</pre><p>Costs are the cost model's estimates; accuracies are measured on the design "
        "through the bit-exact simulator.</p>\n")
    print(table)


if __name__ == "__main__":
    main()
