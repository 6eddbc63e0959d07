"""The simulator's fast paths (float32 and float64 products, narrow products widened to
16 columns, the compiled float64 kernel, the stride-1 convolution without im2col, float codes between layers, the
bias layer, the tanh/sigmoid lookup by input code and the softmax in float64) give the
codes of its integer path, which the C-simulation tests hold to hls4ml bit for bit; and
the paths are really taken."""

import numpy as np
import pytest
import torch

from edge_asr.hw.convert import ConvertOptions, convert
from edge_asr.sim import engine, exact, fused, kernels
from edge_asr.sim.engine import load_design, simulate

from .conftest import torch_to_onnx


class _ConvNet(torch.nn.Module):
    def __init__(self, padding: int):
        super().__init__()
        self.c1 = torch.nn.Conv1d(6, 8, 3, padding=padding)
        self.c2 = torch.nn.Conv1d(8, 8, 3)
        width = (16 + 2 * padding - 2) // 2 - 2
        self.fc = torch.nn.Linear(8 * width, 5)

    def forward(self, x):
        x = torch.nn.functional.max_pool1d(torch.relu(self.c1(x)), 2)
        return torch.softmax(self.fc(torch.flatten(torch.relu(self.c2(x)), 1)), 1)


class _MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(6 * 16, 12), torch.nn.Linear(12, 5)  # 12: a widened product

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(torch.flatten(x, 1))))


def _integer_only(monkeypatch):
    """Force the integer path: no float plan, no float products, int64 input codes."""
    monkeypatch.setattr(kernels, "float_plan", lambda *a: None)
    monkeypatch.setattr(fused, "cast_plan", lambda *a: None)
    monkeypatch.setattr(kernels, "float_table_index", lambda *a: None)
    monkeypatch.setattr(kernels, "code_indexed_table", lambda *a: None)
    monkeypatch.setattr(kernels, "float_softmax", lambda *a: None)
    monkeypatch.setattr(exact, "float_plan", lambda *a: None)
    monkeypatch.setattr(exact, "product_dtype", lambda *a: None)
    monkeypatch.setattr(engine, "quantize_float_bounded", lambda x, t: None)
    monkeypatch.setattr(engine.int8, "plan_for", lambda *a: None)
    monkeypatch.setattr(kernels.native, "available", lambda: False)


def _count(monkeypatch, taken: dict, key: str, modules: tuple, name: str, hit) -> None:
    """Replace `name` in each of `modules` by the first one's function, counting in
    taken[key] the calls whose result `hit` accepts: which fast paths really ran."""
    real = getattr(modules[0], name)

    def counted(*a):
        out = real(*a)
        taken[key] += bool(hit(out))
        return out
    for module in modules:
        monkeypatch.setattr(module, name, counted)


@pytest.mark.parametrize("net,bits", [("conv", 8), ("conv", 16), ("conv-numpy", 8), ("conv-numpy", 16), ("conv-pad", 10),
                                      ("mlp", 8), ("mlp", 16)])
def test_fast_paths_equal_the_integer_path(tmp_path, monkeypatch, net, bits):
    """conv-numpy: the conv net without the compiled kernel (a host without g++)."""
    if net == "conv-numpy":
        monkeypatch.setattr(kernels.native, "available", lambda: False)
        net = "conv"
    torch.manual_seed(bits)
    module = _MLP() if net == "mlp" else _ConvNet(padding=1 if net == "conv-pad" else 0)
    path = torch_to_onnx(module, (1, 6, 16), tmp_path / "net.onnx")
    rng = np.random.default_rng(bits)
    np.save(tmp_path / "calib.npy", rng.standard_normal((32, 6, 16)).astype(np.float32))
    design_dir = convert(path, tmp_path / "d", ConvertOptions(board="none", bits=bits,
                                                               calib=str(tmp_path / "calib.npy")), log=lambda m: None)
    design = load_design(design_dir)
    t_in = design.input_type
    # ordinary inputs, inputs far outside the input type (saturation everywhere), and ties
    ties = (np.round(rng.standard_normal((40, 6, 16)) * 2 ** t_in.fractional) + 0.5) * 2.0 ** -t_in.fractional
    x = np.concatenate([rng.standard_normal((300, 6, 16)), rng.standard_normal((60, 6, 16)) * 2 ** (t_in.integer + 2),
                        ties])
    taken = dict.fromkeys(("f32", "plan", "cast", "table", "code table", "softmax", "native", "fused"), 0)
    hit = lambda out: out is not None  # noqa: E731
    _count(monkeypatch, taken, "f32", (exact, kernels.native), "product_dtype", lambda d: d is np.float32)
    _count(monkeypatch, taken, "plan", (kernels,), "float_plan", hit)
    _count(monkeypatch, taken, "cast", (fused,), "cast_plan", hit)
    _count(monkeypatch, taken, "table", (kernels,), "cast_table", lambda out: True)
    _count(monkeypatch, taken, "code table", (kernels,), "code_indexed_table", hit)
    _count(monkeypatch, taken, "softmax", (kernels,), "float_softmax", hit)
    _count(monkeypatch, taken, "native", (kernels.native,), "window_products", hit)
    _count(monkeypatch, taken, "fused", (fused,), "tensor", lambda out: out is not None and out.fused is not None)
    fast32 = simulate(design, x.astype(np.float32), trace=True)
    fast64 = simulate(design, x, trace=True)
    assert not taken["fused"]  # tracing keeps every layer's own output
    untraced = simulate(design, x)  # bias layers and ReLUs run inside the Dense/Conv1D passes before them
    assert taken["fused"] > 0 or not kernels.native.available()
    assert taken["cast"] > 0      # the bias layer (ApplyAlpha) ran in float64
    if net != "mlp":
        assert taken["plan"] > 0  # the convolution without im2col ran
        assert taken["softmax"] > 0  # the softmax ran on float codes
    else:
        assert taken["table"] > 0 and taken["code table"] > 0  # tanh looked up by input code
    if bits <= 10:
        assert taken["f32"] > 0   # a narrow design's products are exact in float32
    # the products ran compiled (sim/native.py) where it is built
    assert (taken["native"] > 0) == kernels.native.available()
    if net == "mlp" and bits == 8:  # the 12-output product ran widened to 16 columns
        assert any(m.f32_wide is not None for layer in design.layers for k, m in layer.cache.items()
                   if isinstance(k, tuple) and k[0] == "matrix")
    monkeypatch.undo()
    for layer in design.layers:  # drop the plans and tables the fast run kept
        layer.cache.clear()
    _integer_only(monkeypatch)
    slow32, slow64 = simulate(design, x.astype(np.float32), trace=True), simulate(design, x, trace=True)
    for fast, slow in ((fast32, slow32), (fast64, slow64), (untraced, slow64)):
        assert fast.codes.dtype == np.int64 and np.array_equal(fast.codes, slow.codes)
        assert fast.saturation == slow.saturation and sum(slow.saturation.values()) > 0
        assert list(fast.saturation) == list(slow.saturation)  # every layer, in order
        assert fast.trace is None or all(np.array_equal(fast.trace[k], slow.trace[k]) for k in slow.trace)


def test_passes_share_out_evenly_and_keep_arrays_small():
    """chunk_rows: a pass's largest array stays near CHUNK_BYTES, and the passes are a
    multiple of the workers; a small batch is one pass."""
    from .test_sim import GOLDEN
    design = load_design(GOLDEN / "design.json")
    per_input = engine._largest_per_input(design)
    assert per_input == 8 * 96 * 64  # the first convolution's output (13 x 98 in, 64 filters), float64
    rows = engine.chunk_rows(design, 2000, 2)
    passes = -(-2000 // rows)
    assert passes % 2 == 0 and rows * per_input <= 2 * engine.CHUNK_BYTES
    assert engine.chunk_rows(design, 5, 2) == 5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_float_coding_refuses_what_cannot_be_coded_and_saturates_the_rest(dtype):
    """The common input coding (rounding and clipping in floats): NaN and Inf refused, a
    value too large for exact arithmetic refused, out-of-range values saturated, ties to
    even, and the same codes as the general integer path."""
    from edge_asr.errors import FixedPointError
    from edge_asr.sim.fixed import FixedType, quantize_float_bounded, requantize
    t = FixedType(10, 5, True, "AP_RND_CONV", "AP_SAT")
    for bad, message in ((np.nan, "NaN or Inf"), (np.inf, "NaN or Inf"), (-np.inf, "NaN or Inf"),
                         (2.0 ** 60, "too large")):
        with pytest.raises(FixedPointError, match=message):
            quantize_float_bounded(np.array([1.0, bad], dtype=dtype), t)
    x = np.array([0.015625 * 3, 0.015625 * 5, -0.015625 * 3, 100.0, -100.0, 1.0], dtype=dtype)  # ties at 1/32
    codes, edges = quantize_float_bounded(x, t)
    assert codes.tolist() == [2, 2, -2, 511, -512, 32] and edges is None  # clipped: the edges are counted
    inside, edges = quantize_float_bounded(x[[0, 1, 5]], t)
    assert edges == 0 and inside.tolist() == [2, 2, 32]
    rng = np.random.default_rng(0)
    wide = (rng.standard_normal(4000) * 20).astype(dtype)
    exact = (wide.astype(np.float64) * 2.0 ** 47).astype(np.int64)  # every value, as an integer code
    assert np.array_equal(quantize_float_bounded(wide, t)[0], requantize(exact, 47, t))  # the integer path


def test_no_inputs_give_no_outputs_and_a_wrong_shape_is_refused():
    from .test_sim import GOLDEN
    design = load_design(GOLDEN / "design.json")
    res = simulate(design, np.zeros((0, *design.onnx_input_shape), np.float32))
    assert res.outputs.shape == (0, design.n_outputs) and res.codes.dtype == np.int64
    from edge_asr.errors import SimError
    with pytest.raises(SimError, match="the design takes"):  # a wrong shape is refused, empty or not
        simulate(design, np.zeros((2, 5, 5), np.float32))
