"""The compiled Dense/Conv1D kernel (sim/native.py): built on this host and kept, the
integer path's codes and edge counts for every rounding mode, stride and layout on both
ways of summing, a ReLU in the same pass, wraps handed back to the integer path, and the
numpy path when it cannot be had."""

from types import SimpleNamespace

import numpy as np
import pytest

from edge_asr.sim import native
from edge_asr.sim.exact import Matrix, dense_codes, float_plan
from edge_asr.sim.fixed import FixedType, requantize

X_T = FixedType(16, 4, True, "AP_RND_CONV", "AP_SAT")
W_T = FixedType(16, 1, True, "AP_RND_CONV", "AP_SAT")
B_T = FixedType(16, 6, True, "AP_RND_CONV", "AP_SAT")
ACC_T = FixedType(44, 17, True, "AP_TRN", "AP_WRAP")  # 27 fractional bits: every product's


def _layer(rng, k=3, channels=5, filters=20, extreme=False):
    """Weights (k * channels, filters: two blocks of lanes, the second partly used) and
    bias. Weights of a few thousand run on the 16-bit kernel where the CPU has it, in
    blocks of rows; `extreme` puts the type's smallest weight in a pair of rows, whose
    16-bit products with the smallest code sum to 2**31, past int32: then the float64
    kernel runs."""
    w = rng.integers(-3000, 3001, (k * channels, filters))
    if extreme:
        w[:2, :] = W_T.min_code
    return Matrix.of(w), rng.integers(B_T.min_code, B_T.max_code + 1, filters)


def _inputs(rng, n=60, pixels=11, channels=5):
    """Codes over the whole range with the extremes in, held in float32 and laid out as a
    Transpose leaves them (a view of (n, channels, pixels))."""
    x = rng.integers(X_T.min_code, X_T.max_code + 1, (n, channels, pixels)).astype(np.float32)
    x[0], x[1] = X_T.max_code, X_T.min_code
    return x.transpose(0, 2, 1)


def _integer_path(x, k, stride, m, bias, res_t, acc_t=ACC_T):
    n, pixels, channels = x.shape
    out_w = (pixels - k) // stride + 1
    windows = np.stack([x[:, t * stride:t * stride + k, :].reshape(n, -1) for t in range(out_w)], 1)
    acc, frac = dense_codes(windows.reshape(n * out_w, -1).astype(np.int64), X_T, m, W_T, bias, B_T, acc_t)
    return requantize(acc, frac, res_t), out_w


def test_the_kernel_is_built_here_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_ASR_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "_LIBRARY", [])
    assert native.available()  # g++ is part of the test setup (the C-simulation tests need it)
    built = list((tmp_path / "sim-native").glob("*/native.so"))
    assert len(built) == 1 and [p.name for p in built[0].parent.iterdir()] == ["native.so"]  # no temporary left
    stamp = built[0].stat().st_mtime_ns
    monkeypatch.setattr(native, "_LIBRARY", [])
    assert native.available() and built[0].stat().st_mtime_ns == stamp  # loaded, not rebuilt


@pytest.mark.parametrize("setting", [{"EDGE_ASR_SIM_NATIVE": "0"}, {"CXX": "false"}, {"CXX": "no-such-compiler"}])
def test_without_the_kernel_the_numpy_path_runs(tmp_path, monkeypatch, setting):
    monkeypatch.setenv("EDGE_ASR_CACHE", str(tmp_path))
    for key, value in setting.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(native, "_LIBRARY", [])
    assert not native.available()
    assert not (tmp_path / "sim-native").exists() or not list((tmp_path / "sim-native").glob("*/*.so"))


@pytest.mark.parametrize("rounding", ["AP_RND_CONV", "AP_RND", "AP_TRN"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", ["i16", "f64"])
def test_windows_give_the_integer_paths_codes_and_edges(rounding, stride, kernel):
    rng = np.random.default_rng(stride * 7 + len(rounding))
    m, bias = _layer(rng, extreme=kernel == "f64")
    x = _inputs(rng)
    cache = {}
    # 16 bits: saturation at both edges; 40 bits with one bit dropped: a tie in every odd sum
    for res_t in (FixedType(16, 3, True, rounding, "AP_SAT"), FixedType(40, 14, True, rounding, "AP_SAT")):
        want, out_w = _integer_path(x, 3, stride, m, bias, res_t)
        plan = float_plan(X_T, m, W_T, bias, B_T, ACC_T, res_t)
        assert plan is not None and plan.drop in (14, 1)
        got, (edges,) = native.window_products(x, X_T, 3, stride, out_w, m, plan, cache)
        assert cache[("native", X_T)][0] == (kernel if native._library().has_i16() else "f64")
        assert got.dtype == np.float64 and np.array_equal(got, want)
        at_edges = int(np.count_nonzero(want == res_t.max_code) + np.count_nonzero(want == res_t.min_code))
        assert edges == at_edges and (at_edges > 0) == (res_t.width == 16)  # counted in the pass
    ties = [_integer_path(x, 3, stride, m, bias, FixedType(40, 14, True, mode, "AP_SAT"))[0]
            for mode in ("AP_RND", "AP_RND_CONV")]
    assert not np.array_equal(*ties)  # the modes differ on these inputs, so each was checked


@pytest.mark.parametrize("kernel", ["i16", "f64"])
def test_a_relu_in_the_same_pass_gives_what_the_activation_kernel_gives(kernel):
    """A ReLU fused after the cast (engine: a Dense/Conv1D whose output only a ReLU
    reads): the codes and edge count of kernels.activation on the layer's output, for a
    ReLU type that holds every code (nothing to clip) and a narrower saturating one."""
    from edge_asr.sim.kernels import activation
    from edge_asr.sim.tensor import Tensor
    rng = np.random.default_rng(11)
    m, bias = _layer(rng, extreme=kernel == "f64")
    x = _inputs(rng)
    res_t = FixedType(16, 3, True, "AP_RND_CONV", "AP_SAT")
    want, out_w = _integer_path(x, 3, 1, m, bias, res_t)
    plan = float_plan(X_T, m, W_T, bias, B_T, ACC_T, res_t)
    for relu_t in (FixedType(15, 2, False, "AP_RND_CONV", "AP_SAT"), FixedType(12, -1, False, "AP_RND_CONV", "AP_SAT")):
        assert native.fuses_relu(res_t, relu_t)

        relu = SimpleNamespace(attributes={"activation": "relu"}, result_type=lambda t=relu_t: t)  # what it reads
        relu_out = activation(relu, Tensor(want.astype(np.float64), res_t))
        got, (edges, relu_edges) = native.window_products(x, X_T, 3, 1, out_w, m, plan, {}, native.After(relu=relu_t))
        assert np.array_equal(got, relu_out.codes)
        assert edges == np.count_nonzero(want == res_t.max_code) + np.count_nonzero(want == res_t.min_code)
        assert relu_edges == np.count_nonzero(relu_out.codes == relu_t.max_code)
    assert relu_edges > 0  # the narrow type clipped
    # not a clip: another grid, or a narrower type that wraps
    assert not native.fuses_relu(res_t, FixedType(15, 3, False, "AP_RND_CONV", "AP_SAT"))
    assert not native.fuses_relu(res_t, FixedType(12, -1, False, "AP_TRN", "AP_WRAP"))


def test_a_dense_layer_is_one_window_of_one_pixel():
    rng = np.random.default_rng(3)
    m, bias = _layer(rng, k=1, channels=15)
    x = rng.integers(X_T.min_code, X_T.max_code + 1, (40, 15)).astype(np.float64)
    res_t = FixedType(16, 3, True, "AP_RND_CONV", "AP_SAT")
    want, _ = _integer_path(x[:, None, :], 1, 1, m, bias, res_t)
    plan = float_plan(X_T, m, W_T, bias, B_T, ACC_T, res_t)
    got, *_ = native.window_products(x[:, None, :], X_T, 1, 1, 1, m, plan, {})
    assert np.array_equal(got, want)


@pytest.mark.parametrize("kernel", ["i16", "f64"])
def test_wraps_go_back_to_the_integer_path(kernel):
    """A wrapping result type with values outside it, and an accumulator the sums leave:
    None (the integer path wraps them), as finish_float does; inside, the same codes."""
    rng = np.random.default_rng(5)
    m, bias = _layer(rng, extreme=kernel == "f64")
    bias //= 1024  # small, so that small inputs give small sums
    x = _inputs(rng)
    wrapping = FixedType(12, 1, True, "AP_TRN", "AP_WRAP")
    plan = float_plan(X_T, m, W_T, bias, B_T, ACC_T, wrapping)
    assert native.window_products(x, X_T, 3, 1, 9, m, plan, {}) is None
    # an accumulator one integer bit short of these inputs' largest sum: the types allow a
    # wrap, so the sums are checked
    sums, frac = _integer_path(x, 3, 1, m, bias, ACC_T)[0], ACC_T.fractional
    integer = int(np.ceil(np.log2(np.abs(sums).max() * 2.0 ** -frac)))  # with the sign bit
    narrow_acc = FixedType(frac + integer, integer, True, "AP_TRN", "AP_WRAP")
    res_t = FixedType(16, 3, True, "AP_TRN", "AP_SAT")
    plan = float_plan(X_T, m, W_T, bias, B_T, narrow_acc, res_t)
    assert plan is not None and plan.wrap_check
    assert native.window_products(x, X_T, 3, 1, 9, m, plan, {}) is None
    small = np.clip(x, -64, 64)  # sums the narrow accumulator holds
    got, *_ = native.window_products(small, X_T, 3, 1, 9, m, plan, {})
    assert np.array_equal(got, _integer_path(small, 3, 1, m, bias, res_t, narrow_acc)[0])
