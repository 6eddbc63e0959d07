"""The simulator's 8-bit input path (sim/int8.py), on both of its engines (the compiled
kernel, onnxruntime): taken where a design fits, equal to the integer path and to hls4ml's
C simulation where it is, refusing bad inputs as the numpy coding does, and left alone
everywhere else."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edge_asr.errors import FixedPointError
from edge_asr.hw.convert import ConvertOptions, convert
from edge_asr.hw.csim import CsimBackend
from edge_asr.sim import engine, int8, kernels
from edge_asr.sim.engine import load_design, simulate

from .conftest import torch_to_onnx
from .test_sim_fast import _integer_only

ROOT = Path(__file__).resolve().parents[1]


class _MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(6 * 16, 20), torch.nn.Linear(20, 5)

    def forward(self, x):
        return torch.softmax(self.fc2(torch.relu(self.fc1(torch.flatten(x, 1)))), 1)


class _Conv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.fc = torch.nn.Conv1d(6, 4, 3), torch.nn.Linear(4 * 14, 5)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.c(x)), 1))


def _design(tmp_path, module, bits):
    tmp_path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(bits)
    path = torch_to_onnx(module, (1, 6, 16), tmp_path / "net.onnx")
    np.save(tmp_path / "calib.npy", np.random.default_rng(bits).standard_normal((32, 6, 16)).astype(np.float32))
    return convert(path, tmp_path / "d", ConvertOptions(board="none", bits=bits, calib=str(tmp_path / "calib.npy")),
                   log=lambda m: None)


def _inputs(t, rng) -> np.ndarray:
    """Ordinary inputs, inputs far outside the type (saturation), exact ties, and tiny values."""
    ties = (np.round(rng.standard_normal((40, 6, 16)) * 2 ** t.fractional) + 0.5) * 2.0 ** -t.fractional
    return np.concatenate([rng.standard_normal((300, 6, 16)), rng.standard_normal((60, 6, 16)) * 2 ** (t.integer + 2),
                           ties, rng.standard_normal((10, 6, 16)) * 1e-30]).astype(np.float32)


@pytest.fixture(params=["native", "onnxruntime"])
def int8_engine(request, monkeypatch):
    """Each engine of the 8-bit path in turn: the compiled kernel where the CPU has 8-bit
    dot products, else onnxruntime (the compiled kernel turned off for the second)."""
    if request.param == "native" and not int8.has_u8():
        pytest.skip("this CPU has no AVX-512 VNNI: the compiled 8-bit kernel is not built in")
    if request.param == "onnxruntime":
        monkeypatch.setattr(int8, "has_u8", lambda: False)
    return request.param


def _uses(plan, int8_engine) -> bool:
    """Whether the plan runs on the engine asked for."""
    return (plan.packed is not None) == (int8_engine == "native")


def _forget(design):
    """Drop the plans, matrices and tables a run kept, so the next run makes them again."""
    for layer in design.layers:
        layer.cache.clear()
    design.cache.clear()


def _integer_path(monkeypatch, design, x):
    """The same design on its integer path: no float plans, no float products, int64 codes."""
    _forget(design)
    with monkeypatch.context() as m:
        _integer_only(m)
        return simulate(design, x, trace=True)


@pytest.mark.parametrize("bits", [8, 6])  # 6: the graph that clips to a narrower type
def test_int8_path_is_taken_and_equals_the_integer_path(tmp_path, monkeypatch, bits, int8_engine):
    design = load_design(_design(tmp_path, _MLP(), bits))
    x = _inputs(design.input_type, np.random.default_rng(bits))
    calls = []
    real = int8.code_and_multiply
    monkeypatch.setattr(int8, "code_and_multiply", lambda *a: calls.append(a) or real(*a))
    fast = simulate(design, x, trace=True)
    plan = int8.plan_for(design, kernels.dense_matrix)
    assert calls and plan is not None and _uses(plan, int8_engine)
    assert plan.graph == ("int8_quantize_matmul.onnx" if bits == 8 else "int8_quantize_clip_matmul.onnx")
    monkeypatch.setattr(int8, "code_and_multiply", real)  # (the engine stays as the fixture set it)
    slow = _integer_path(monkeypatch, design, x)
    assert np.array_equal(fast.codes, slow.codes) and fast.codes.dtype == np.int64
    assert fast.saturation == slow.saturation and fast.saturation["global_in"] > 0
    assert all(np.array_equal(fast.trace[k], slow.trace[k]) for k in slow.trace)
    # tiny passes (many, on the thread pool) give the same
    monkeypatch.setattr(engine, "CHUNK_BYTES", 4096)
    _forget(design)
    again = simulate(design, x)
    assert np.array_equal(again.codes, slow.codes) and again.saturation == slow.saturation


def test_int8_path_matches_c_simulation(tmp_path, int8_engine):
    design_dir = _design(tmp_path, _MLP(), 8)
    design = load_design(design_dir)
    x = _inputs(design.input_type, np.random.default_rng(1))
    plan = int8.plan_for(design, kernels.dense_matrix)
    assert plan is not None and _uses(plan, int8_engine)
    sim = simulate(design, x)
    assert np.count_nonzero(sim.outputs != CsimBackend(design_dir).run(x)) == 0


@pytest.mark.parametrize("bad,message", [(np.nan, "NaN or Inf"), (np.inf, "NaN or Inf"), (-np.inf, "NaN or Inf"),
                                         (3e38, "too large")])
def test_int8_path_refuses_what_the_numpy_coding_refuses(tmp_path, monkeypatch, bad, message, int8_engine):
    design = load_design(_design(tmp_path, _MLP(), 8))
    x = np.random.default_rng(0).standard_normal((50, 6, 16)).astype(np.float32)
    x[7, 3, 2] = bad
    plan = int8.plan_for(design, kernels.dense_matrix)
    assert plan is not None and _uses(plan, int8_engine)
    with pytest.raises(FixedPointError, match=message):
        simulate(design, x)
    monkeypatch.setattr(int8, "plan_for", lambda *a: None)
    with pytest.raises(FixedPointError, match=message):
        simulate(design, x)


def test_int8_path_is_left_alone_where_it_does_not_fit(tmp_path):
    wide = load_design(_design(tmp_path / "w", _MLP(), 10))       # 10-bit input codes
    conv = load_design(_design(tmp_path / "c", _Conv(), 8))       # a Transpose, then a convolution
    assert int8.plan_for(wide, kernels.dense_matrix) is None
    assert int8.plan_for(conv, kernels.dense_matrix) is None
    narrow = load_design(_design(tmp_path / "n", _MLP(), 8))
    x = np.random.default_rng(0).standard_normal((20, 6, 16))
    out64 = simulate(narrow, x)                                    # float64 inputs: the numpy coding
    assert "_int8_plan" not in narrow.cache
    assert np.array_equal(simulate(narrow, x.astype(np.float32)).codes, out64.codes)
    assert simulate(narrow, np.zeros((0, 6, 16), np.float32)).codes.shape == (0, 5)


@pytest.mark.parametrize("compiled", [False, True])
def test_without_onnxruntime(tmp_path, compiled):
    """As on a board: onnxruntime cannot be imported. Without the compiled kernel (a bundle
    has no .cpp) the simulator runs on numpy; with it, the kernel still takes the 8-bit
    path. Both give the codes of a run here."""
    if compiled and not int8.has_u8():
        pytest.skip("this CPU has no AVX-512 VNNI: the compiled 8-bit kernel is not built in")
    design_dir = _design(tmp_path, _MLP(), 8)
    code = (f"import sys; sys.modules['onnxruntime'] = None\n"
            f"import numpy as np\n"
            f"from edge_asr.sim import int8, kernels\n"
            f"from edge_asr.sim.engine import load_design, simulate\n"
            f"d = load_design({str(design_dir)!r})\n"
            f"x = np.random.default_rng(0).standard_normal((20, 6, 16)).astype(np.float32)\n"
            f"r = simulate(d, x)\n"
            f"plan = int8.plan_for(d, kernels.dense_matrix)\n"
            f"assert (plan is not None and plan.packed is not None) if {compiled} else plan is None\n"
            f"np.save({str(tmp_path / 'out.npy')!r}, r.codes)\n")
    env = {**os.environ, "EDGE_ASR_SIM_NATIVE": "1" if compiled else "0"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
    x = np.random.default_rng(0).standard_normal((20, 6, 16)).astype(np.float32)
    assert np.array_equal(np.load(tmp_path / "out.npy"), simulate(load_design(design_dir), x).codes)


def test_shipped_graphs_are_the_scripts_output(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_int8_graphs.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for name in ("int8_quantize_matmul.onnx", "int8_quantize_clip_matmul.onnx"):
        assert (tmp_path / name).read_bytes() == (int8.GRAPHS / name).read_bytes(), name
