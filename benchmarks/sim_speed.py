"""Simulator vs hls4ml C-sim vs onnxruntime (float) on the same designs and inputs.

    .venv/bin/python benchmarks/sim_speed.py                       # the zoo and the small nets
    .venv/bin/python benchmarks/sim_speed.py --model models/kws-digits --sizes 2000,10000
    .venv/bin/python benchmarks/sim_speed.py --model DESIGN_DIR --layers

Each model is converted with `convert`'s defaults (pynq-z2, the widest width that fits)
unless --model names a design folder. Targets (issue 30), at 2,000 inputs: the simulator
>= 100x C-sim's throughput and <= 2x onnxruntime's time, with 0 differing bits. The
simulator and onnxruntime are timed warm, best of --repeats calls (both use every core);
C-sim once per size (its time is per input and does not vary). Every C-sim output is
compared with the simulator's, value for value. --layers prints where one pass's time
goes (one thread, per kernel).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def small_nets():
    """The small nets of issue 30: an MLP 40x30 -> 64 -> 12 and a 1-D conv net (40 channels,
    two layers of 16 filters), with and without pooling and softmax, and the MLP with tanh
    and sigmoid (table-based activations)."""
    import torch
    from torch import nn

    act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}

    class MLP(nn.Module):
        def __init__(self, activation="relu", softmax=False):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(40 * 30, 64), nn.Linear(64, 12)
            self.act, self.softmax = act[activation], softmax

        def forward(self, x):
            x = self.fc2(self.act(self.fc1(torch.flatten(x, 1))))
            return torch.softmax(x, 1) if self.softmax else x

    class Conv(nn.Module):
        def __init__(self, pool=False, softmax=False):
            super().__init__()
            self.c1, self.c2 = nn.Conv1d(40, 16, 3), nn.Conv1d(16, 16, 3)
            self.pool, self.softmax = pool, softmax
            t = 30
            for _ in range(2):
                t = (t - 2) // 2 if pool else t - 2
            self.fc = nn.Linear(16 * t, 12)

        def forward(self, x):
            for conv in (self.c1, self.c2):
                x = torch.relu(conv(x))
                x = nn.functional.max_pool1d(x, 2) if self.pool else x
            x = self.fc(torch.flatten(x, 1))
            return torch.softmax(x, 1) if self.softmax else x

    return {"mlp": MLP(), "mlp-softmax": MLP(softmax=True), "mlp-tanh": MLP("tanh"), "mlp-sigmoid": MLP("sigmoid"),
            "conv": Conv(), "conv-pool": Conv(pool=True), "conv-softmax": Conv(softmax=True),
            "conv-pool-softmax": Conv(pool=True, softmax=True)}


def _export(module, shape, path: Path) -> Path:
    """A torch module to ONNX as `edge-asr export` writes it (TorchScript exporter, opset 13)."""
    import torch
    module.eval()
    torch.onnx.export(module, (torch.zeros((1,) + shape),), str(path), dynamo=False, opset_version=13,
                      input_names=["features"], output_names=["y"],
                      dynamic_axes={"features": {0: "b"}, "y": {0: "b"}})
    return path


def prepare(name: str, work: Path) -> tuple[Path, Path, np.ndarray]:
    """(design folder, ONNX model, calibration inputs) of a named benchmark model or a path."""
    import torch

    from edge_asr.hw.convert import ConvertOptions, convert
    from edge_asr.training.nets import build_net
    if Path(name).exists():
        path = Path(name)
        if (path / "design.json").is_file():  # a design folder: convert keeps the model beside it
            calib = np.random.default_rng(0).standard_normal((64,) + _input_shape(path)).astype(np.float32)
            return path, path / "model.onnx", calib
        onnx_path = path / "model.onnx" if path.is_dir() else path
        calib_path = path / "calib.npy" if path.is_dir() and (path / "calib.npy").is_file() else None
    else:
        torch.manual_seed(0)
        if name == "zoo-mlp":
            module, shape = build_net("mlp", n_features=13, frames=98), (13, 98)
        else:
            module, shape = small_nets()[name], (40, 30)
        onnx_path = _export(module, shape, work / f"{name}.onnx")
        calib_path = None
    if calib_path is None:
        import onnx
        dims = onnx.load(str(onnx_path)).graph.input[0].type.tensor_type.shape.dim[1:]
        calib = np.random.default_rng(0).standard_normal((64,) + tuple(d.dim_value for d in dims)).astype(np.float32)
        calib_path = work / f"{Path(name).name}-calib.npy"
        np.save(calib_path, calib)
    design = convert(onnx_path, work / f"{Path(name).name}-design", ConvertOptions(calib=str(calib_path)),
                     log=lambda m: None)
    return design, onnx_path, np.load(calib_path).astype(np.float32)


def _input_shape(design_dir: Path) -> tuple[int, ...]:
    from edge_asr.sim.engine import load_design
    return tuple(load_design(design_dir).onnx_input_shape)


def best_of(fn, repeats: int) -> float:
    """The shortest of `repeats` timed calls, in seconds (after one untimed warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(name: str, work: Path, sizes: list[int], repeats: int, csim_max: int) -> list[dict]:
    """One row per size: the three engines' times and the differing values."""
    import onnxruntime as ort

    from edge_asr.hw.csim import CsimBackend
    from edge_asr.sim.engine import load_design, simulate
    design_dir, onnx_path, calib = prepare(name, work)
    design = load_design(design_dir)
    csim = CsimBackend(design_dir)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed = sess.get_inputs()[0].name
    rng = np.random.default_rng(1)
    rows = []
    for n in sizes:
        # calibration inputs with noise: realistic, and different from call to call
        x = (calib[rng.integers(0, len(calib), n)]
             + rng.standard_normal((n,) + calib.shape[1:]).astype(np.float32) * 0.3).astype(np.float32)
        t_sim = best_of(lambda x=x: simulate(design, x), repeats)
        t_ort = best_of(lambda x=x: sess.run(None, {feed: x}), repeats)
        row = dict(model=Path(name).name, bits=design.input_type.width, n=n, sim=t_sim, ort=t_ort, csim=None, differ=None)
        if n <= csim_max:
            t0 = time.perf_counter()
            y = csim.run(x)
            row["csim"] = time.perf_counter() - t0
            row["differ"] = int(np.count_nonzero(simulate(design, x).outputs != y))
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _line(r: dict) -> str:
    ms = lambda t: f"{t * 1e3:9.1f}" if t is not None else "        -"  # noqa: E731
    ratio = f"{r['csim'] / r['sim']:7.0f}x" if r["csim"] else "       -"
    differ = f"{r['differ']:6d}" if r["differ"] is not None else "     -"
    return (f"| {r['model']:<18} | {r['bits']:4d} | {r['n']:6d} | {ms(r['sim'])} | {ms(r['csim'])} | {ms(r['ort'])} "
            f"| {ratio} | {r['sim'] / r['ort']:7.2f}x | {differ} |")


HEADER = ("| model              | bits |      n |  sim ms |  C-sim ms |  ort ms | C-sim/sim | sim/ort | differing |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")


def layer_profile(name: str, work: Path, n: int, repeats: int) -> None:
    """Where one pass of n inputs spends its time, on one thread: coding, each kernel, and
    the rest (saturation counts, bookkeeping)."""
    from edge_asr.sim import engine, kernels
    from edge_asr.sim.blas import one_blas_thread
    design_dir, _, calib = prepare(name, work)
    design = engine.load_design(design_dir)
    x = calib[np.random.default_rng(2).integers(0, len(calib), n)]
    with one_blas_thread():
        whole = best_of(lambda: engine._simulate(design, engine.code_input(design, x), None, False), repeats)
        coding = best_of(lambda: engine.code_input(design, x), repeats)
        cur, parts = engine.code_input(design, x), []
        for layer in design.layers:
            fn = kernels.LAYERS.get(layer.class_name)
            if fn is None or not layer.inputs:
                continue
            parts.append((layer.name, best_of(lambda fn=fn, layer=layer, src=cur: fn(layer, src), repeats)))
            cur = fn(layer, cur)
    print(f"{name}: one pass of {n} inputs on one thread: {whole * 1e3:.2f} ms")
    print(f"  {'input coding':<28} {coding * 1e3:8.2f} ms")
    for layer_name, t in parts:
        print(f"  {layer_name:<28} {t * 1e3:8.2f} ms")
    print(f"  {'the rest':<28} {(whole - coding - sum(t for _, t in parts)) * 1e3:8.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="model directory, .onnx or design folder (repeatable); "
                    "default: the shipped model, the zoo's MLP and the small nets")
    ap.add_argument("--sizes", default="100,2000,10000", help="inputs per call (comma-separated)")
    # 20: onnxruntime's time for a small net moves between two levels for tens of calls at
    # a time here (zoo-mlp: 0.33 or 0.59 ms); 5 calls could miss its faster one
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--csim-max", type=int, default=10000, help="run C-sim only up to this many inputs")
    ap.add_argument("--layers", action="store_true", help="print where one pass's time goes instead")
    a = ap.parse_args()
    names = a.model or [str(ROOT / "models" / "kws-digits"), "zoo-mlp", *small_nets()]
    sizes = [int(s) for s in a.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        if a.layers:
            for name in names:
                layer_profile(name, Path(tmp), min(sizes), a.repeats)
            return
        print(f"{os.cpu_count()} cores; simulator and onnxruntime best of {a.repeats} warm calls, C-sim one call")
        print(HEADER)
        rows = [r for name in names for r in measure(name, Path(tmp), sizes, a.repeats, a.csim_max)]
    at = [r for r in rows if r["n"] == 2000 and r["csim"]]
    if at:
        worst_c = min(r["csim"] / r["sim"] for r in at)
        worst_o = max(r["sim"] / r["ort"] for r in at)
        print(f"at 2,000 inputs: C-sim/sim at least {worst_c:.0f}x (target >= 100x), sim/ort at most "
              f"{worst_o:.2f}x (target <= 2x), differing values {sum(r['differ'] for r in at)}")


if __name__ == "__main__":
    main()
