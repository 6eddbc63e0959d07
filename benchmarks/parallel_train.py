"""Data-parallel training measured (issue 29): scaling over processes, the global batch with
the learning-rate rule, and two "nodes" on 127.0.0.1.

    .venv/bin/python benchmarks/parallel_train.py --data data/full [--train-clips 12000] \\
        [--valid-clips 2000] [--epochs 20] [--scaling-epochs 5] [--out build/parallel] \\
        [--plots docs]

Every run is `edge-asr train` in a subprocess (the real elastic launcher and workers) on a
subset of --data's clips (every k-th row of each split; the audio is linked, not copied):
- scaling: 1 and 2 processes at --threads 1 each, global batches 64 to 256, over
  --scaling-epochs; samples per second from train.json (the training loop alone, without
  validation), the mean over epochs after the first. Speedups: the same global batch
  split over two (strong scaling) and the same 64 or 128 clips per process (weak
  scaling: global 128 against 64, 256 against 128). A run with --profile splits a 2-process step into data loading
  (indexing, noise mixing, augmentation, front end), compute (forward, backward,
  optimizer) and the gradient all-reduce (timed alone: with --profile it no longer
  overlaps the backward pass). One more is the 2-process run as two launchers on
  127.0.0.1 (--nnodes 2): the rendezvous and loopback TCP's cost.
- batch size: the global batch from 64 to 1024 on 2 processes with --lr-scaling linear
  (and sqrt at the largest), --epochs each, no early stop; epochs and wall time until the
  validation accuracy first reaches the target (0.95 times the mean of the 1-process
  recipe's best accuracies), and the best accuracy, against the seed spread of the
  1-process recipe at batch 64 (seeds 0, 1, 2).
Writes OUT/results.json and, with --plots, parallel_scaling.png and parallel_batch.png;
prints Markdown tables for docs/experiments.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EDGE_ASR = [sys.executable, "-m", "edge_asr.cli"]


def subset(data: Path, out: Path, train_clips: int, valid_clips: int) -> Path:
    """A data directory of every k-th row of data's train and valid splits (the test split's
    first rows, which training reads only for its speakers), its audio linked."""
    if (out / "manifest.csv").exists():
        return out
    with open(data / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    keep = []
    for split, n in (("train", train_clips), ("valid", valid_clips), ("test", 200)):
        part = [r for r in rows if r["split"] == split]
        step = max(1, len(part) // n)
        keep += part[::step][:n]
    out.mkdir(parents=True, exist_ok=True)
    for top in {Path(r["path"]).parts[0] for r in keep}:
        (out / top).symlink_to((data / top).resolve())
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(keep)
    if (data / "data.json").exists():
        shutil.copy(data / "data.json", out / "data.json")
    return out


def run(data: Path, out: Path, *flags: str) -> dict:
    """`edge-asr train` (skipped when out holds a finished run); its train.json plus wall time."""
    if not (out / "train.json").exists():
        t0 = time.perf_counter()
        subprocess.run([*EDGE_ASR, "train", str(data), "--out", str(out), "--quiet", "--force", *flags], check=True)
        (out / "wall.json").write_text(json.dumps({"wall_seconds": time.perf_counter() - t0}))
    meta = json.loads((out / "train.json").read_text())
    meta["wall_seconds"] = json.loads((out / "wall.json").read_text())["wall_seconds"]
    return meta


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def two_nodes(data: Path, out: Path, flags: list[str]) -> dict:
    """The 2-process run as two launchers on 127.0.0.1, one worker each."""
    if not (out / "train.json").exists():
        nodes = ["--nproc", "1", "--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port", _free_port()]
        t0 = time.perf_counter()
        other = subprocess.Popen([*EDGE_ASR, "train", str(data), "--out", str(out) + "-node1", "--quiet", "--force",
                                  *flags, *nodes, "--node-rank", "1"])
        subprocess.run([*EDGE_ASR, "train", str(data), "--out", str(out), "--quiet", "--force", *flags, *nodes,
                        "--node-rank", "0"], check=True)
        if other.wait() != 0:
            raise SystemExit("node 1 failed")
        (out / "wall.json").write_text(json.dumps({"wall_seconds": time.perf_counter() - t0}))
    meta = json.loads((out / "train.json").read_text())
    meta["wall_seconds"] = json.loads((out / "wall.json").read_text())["wall_seconds"]
    return meta


def throughput(meta: dict, train_clips: int, batch: int) -> dict:
    """Samples per second and per-step seconds (rank 0's), means over the epochs after the first."""
    hist = meta["history"][1:] or meta["history"]
    steps = -(-train_clips // batch)
    out = {"samples_per_second": statistics.mean(h["samples_per_second"] for h in hist),
           "data_ms_per_step": 1000 * statistics.mean(h["data_seconds"] for h in hist) / steps,
           "compute_ms_per_step": 1000 * statistics.mean(h["compute_seconds"] for h in hist) / steps}
    if "allreduce_seconds" in hist[0]:
        out["allreduce_ms_per_step"] = 1000 * statistics.mean(h["allreduce_seconds"] for h in hist) / steps
    return out


def to_target(meta: dict, target: float) -> dict:
    """Epochs and wall seconds (training and validation, summed per epoch) until the
    validation accuracy first reaches target; the best accuracy."""
    elapsed = 0.0
    reached = None
    for h in meta["history"]:
        elapsed += h["seconds"]
        if reached is None and h["valid_accuracy"] >= target:
            reached = (h["epoch"], elapsed)
    return {"epochs_to_target": reached[0] if reached else None,
            "seconds_to_target": round(reached[1], 1) if reached else None,
            "best_accuracy": meta["valid_accuracy"], "best_epoch": meta["best_epoch"],
            "seconds_total": round(elapsed, 1)}


def plot(results: dict, folder: Path) -> None:
    """parallel_scaling.png (throughput and step breakdown) and parallel_batch.png (accuracy by epoch)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sc = results["scaling"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    names = list(sc)
    a.bar(names, [sc[n]["samples_per_second"] for n in names], color="tab:blue")
    a.set_ylabel("training samples / s (measured)")
    a.set_title("throughput, 1 thread per process")
    parts = [("data_ms_per_step", "data"), ("compute_ms_per_step", "compute"), ("allreduce_ms_per_step", "all-reduce")]
    bottom = [0.0] * len(names)
    for key, label in parts:
        vals = [sc[n].get(key, 0.0) for n in names]
        b.bar(names, vals, bottom=bottom, label=label)
        bottom = [x + y for x, y in zip(bottom, vals, strict=True)]
    b.set_ylabel("ms per step, rank 0 (measured; clips per rank = batch / processes)")
    b.set_title("where a step's time goes")
    b.legend()
    for ax in (a, b):
        ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    fig.savefig(folder / "parallel_scaling.png", dpi=110)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for name, r in results["batch"].items():
        hist = r["history"]
        a.plot([h["epoch"] for h in hist], [h["valid_accuracy"] for h in hist], label=name)
        t = 0.0
        xs = []
        for h in hist:
            t += h["seconds"]
            xs.append(t)
        b.plot(xs, [h["valid_accuracy"] for h in hist], label=name)
    for ax, xl in ((a, "epoch"), (b, "wall seconds (training and validation)")):
        ax.axhline(results["target"], color="grey", linestyle=":", label="target")
        ax.set_xlabel(xl)
        ax.set_ylabel("validation accuracy")
    a.legend(fontsize=8)
    a.set_title("global batch and lr rule")
    fig.tight_layout()
    fig.savefig(folder / "parallel_batch.png", dpi=110)


def main() -> None:
    """Parse the flags, run the experiments, write results and plots, print the tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--train-clips", type=int, default=12000)
    p.add_argument("--valid-clips", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--scaling-epochs", type=int, default=5)
    p.add_argument("--batches", default="64:linear,128:linear,256:linear,512:linear,1024:linear,1024:sqrt")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "parallel")
    p.add_argument("--plots", type=Path)
    a = p.parse_args()
    os.chdir(ROOT)
    data = subset(a.data, a.out / "data", a.train_clips, a.valid_clips)
    n_train = sum(1 for line in open(data / "manifest.csv") if ",train," in line)
    one = ["--threads", "1", "--epochs", str(a.scaling_epochs), "--patience", "100"]
    results: dict = {"train_clips": n_train, "scaling": {}, "batch": {}}
    for name, batch, flags in (("1 process, batch 64", 64, ["--nproc", "1"]),
                               ("1 process, batch 128", 128, ["--nproc", "1"]),
                               ("2 processes, batch 64", 64, ["--nproc", "2"]),
                               ("2 processes, batch 128", 128, ["--nproc", "2"]),
                               ("2 processes, batch 256", 256, ["--nproc", "2"]),
                               ("2 processes, batch 128, --profile", 128, ["--nproc", "2", "--profile"])):
        meta = run(data, a.out / "scaling" / name.replace(" ", "_").replace(",", ""), *one, *flags,
                   "--batch-size", str(batch))
        results["scaling"][name] = {**throughput(meta, n_train, batch), "batch": batch,
                                    "wall_seconds": round(meta["wall_seconds"], 1)}
    meta = two_nodes(data, a.out / "scaling" / "2_nodes", [*one, "--batch-size", "128"])
    results["scaling"]["2 nodes (127.0.0.1), batch 128"] = {**throughput(meta, n_train, 128), "batch": 128,
                                                            "wall_seconds": round(meta["wall_seconds"], 1)}
    sps = {name: r["samples_per_second"] for name, r in results["scaling"].items()}
    # strong scaling: the same global batch split over 2; weak: the same 64 clips per process
    results["speedup"] = {
        "global batch 64": sps["2 processes, batch 64"] / sps["1 process, batch 64"],
        "global batch 128": sps["2 processes, batch 128"] / sps["1 process, batch 128"],
        "64 clips per process": sps["2 processes, batch 128"] / sps["1 process, batch 64"],
        "128 clips per process": sps["2 processes, batch 256"] / sps["1 process, batch 128"]}
    sc = results["scaling"]

    recipe = ["--threads", "1", "--epochs", str(a.epochs), "--patience", str(a.epochs)]
    base = [run(data, a.out / "batch" / f"n1_b64_seed{s}", *recipe, "--seed", str(s)) for s in (0, 1, 2)]
    best = [m["valid_accuracy"] for m in base]
    results["baseline"] = {"best_accuracies": best, "mean": statistics.mean(best), "min": min(best), "max": max(best),
                           "stdev": statistics.stdev(best)}
    results["target"] = target = round(0.95 * statistics.mean(best), 4)
    for s, m in zip((0, 1, 2), base, strict=True):
        results["batch"][f"1 process, 64, seed {s}"] = {**to_target(m, target), "history": m["history"]}
    for spec in a.batches.split(","):
        batch, rule = spec.split(":")
        meta = run(data, a.out / "batch" / f"n2_b{batch}_{rule}", *recipe, "--nproc", "2", "--batch-size", batch,
                   "--lr-scaling", rule)
        results["batch"][f"2 processes, {batch}, {rule}"] = {**to_target(meta, target), "history": meta["history"],
                                                             "peak_lr": 3e-3 * {"linear": int(batch) / 64,
                                                                                "sqrt": (int(batch) / 64) ** 0.5,
                                                                                "none": 1}[rule]}
    (a.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if a.plots:
        plot(results, a.plots)

    print(f"\n{n_train} training clips; speedup of 2 processes over 1 (target >= 1.7x): "
          + ", ".join(f"{k}: {v:.2f}x" for k, v in results["speedup"].items()) + "\n")
    print("| run | samples/s | data ms/step | compute ms/step | all-reduce ms/step | wall s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in sc.items():
        ar = f"{r['allreduce_ms_per_step']:.2f}" if "allreduce_ms_per_step" in r else "-"
        print(f"| {name} | {r['samples_per_second']:.0f} | {r['data_ms_per_step']:.2f} | "
              f"{r['compute_ms_per_step']:.2f} | {ar} | {r['wall_seconds']} |")
    b = results["baseline"]
    print(f"\ntarget {target:.4f} (0.95 x the 1-process mean best {b['mean']:.4f}; seeds: "
          f"{', '.join(f'{x:.4f}' for x in best)})\n")
    print("| run (global batch, lr rule) | peak lr | epochs to target | seconds to target | best accuracy (epoch) |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results["batch"].items():
        lr = f"{r['peak_lr']:.4g}" if "peak_lr" in r else "0.003"
        print(f"| {name} | {lr} | {r['epochs_to_target'] or 'not reached'} | {r['seconds_to_target'] or '-'} | "
              f"{r['best_accuracy']:.4f} ({r['best_epoch']}) |")


if __name__ == "__main__":
    main()
