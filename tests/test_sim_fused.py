"""Layers run inside the compiled pass of the layer before them (sim/fused.py, native.cpp's
finish) and the compiled 8-bit pass (native_int8.cpp): each held to the arithmetic it
replaces (the integer path's nnet::normalize, the numpy coding, int64 products), and a
small MLP run in one call equal to the integer path, in one pass or many, and when it
must run again without the finish."""

import numpy as np
import pytest

from edge_asr.sim import engine, int8, kernels, native
from edge_asr.sim.engine import load_design, simulate
from edge_asr.sim.exact import Matrix, cast_plan, finish_float, float_plan
from edge_asr.sim.fixed import FixedType, requantize

from .test_sim_fast import _integer_only
from .test_sim_int8 import _MLP, _design, _forget

pytestmark = pytest.mark.skipif(not native.available(), reason="no g++ here: the compiled kernels are not built")

X_T = FixedType(10, 4, True, "AP_RND_CONV", "AP_SAT")   # an ApplyAlpha's input: 6 fractional bits
S_T = FixedType(8, 2, True, "AP_RND_CONV", "AP_SAT")    # its scale: 6 fractional bits
B_T = FixedType(8, 3, True, "AP_RND_CONV", "AP_SAT")    # its bias: 5 fractional bits


def _normalize(x, s, b, res_t):
    """nnet::normalize on integers (kernels.apply_alpha's integer path): x * s + b, exactly,
    then the cast to res_t. Also the float plan and scale the compiled pass takes."""
    prod_frac = X_T.fractional + S_T.fractional
    frac = max(prod_frac, B_T.fractional)
    total = x.astype(np.int64) * s * (1 << (frac - prod_frac)) + (b << (frac - B_T.fractional))
    bias = b * 2.0 ** (frac - B_T.fractional)
    scale = s * 2.0 ** (frac - prod_frac)
    bound = X_T.max_code * np.abs(scale).max() + np.abs(bias).max()
    return requantize(total, frac, res_t), cast_plan(bound, frac, bias, res_t), scale


@pytest.mark.parametrize("rounding", ["AP_RND_CONV", "AP_RND", "AP_TRN"])
@pytest.mark.parametrize("scaled", [True, False])
def test_an_elementwise_cast_in_one_pass_gives_the_integer_paths_codes(rounding, scaled):
    rng = np.random.default_rng(len(rounding) + scaled)
    cols = 21  # two registers of eight and a part of one
    x = rng.integers(X_T.min_code, X_T.max_code + 1, (50, cols))
    x[0], x[1] = X_T.max_code, X_T.min_code
    s = rng.integers(S_T.min_code, S_T.max_code + 1, cols) if scaled else np.full(cols, 1 << S_T.fractional)
    b = rng.integers(B_T.min_code, B_T.max_code + 1, cols)
    res_t = FixedType(8, 3, True, rounding, "AP_SAT")  # drops bits (ties) and saturates at both edges
    want, plan, scale = _normalize(x, s, b, res_t)
    assert plan is not None and plan.drop > 0
    relu_t = FixedType(6, 1, False, rounding, "AP_SAT")  # on res_t's grid, narrower: clips
    for after in (native.After(), native.After(relu=relu_t)):
        got, edges = native.affine_finish(x.astype(np.float64), scale, plan, {}, after)
        want_after = np.clip(want, 0, relu_t.max_code) if after.relu else want
        assert np.array_equal(got, want_after)
        assert edges[0] == np.count_nonzero(want == res_t.max_code) + np.count_nonzero(want == res_t.min_code) > 0
        if after.relu:
            assert edges[1] == np.count_nonzero(want_after == relu_t.max_code) > 0


def test_a_product_made_elsewhere_finishes_as_finish_float():
    """int32 products (sim/int8.py's) through a Dense's float plan: finish_float's codes."""
    rng = np.random.default_rng(2)
    w = rng.integers(-100, 101, (30, 19))
    x_t, w_t = FixedType(8, 3, True, "AP_RND_CONV", "AP_SAT"), FixedType(8, 1, True, "AP_RND_CONV", "AP_SAT")
    acc_t, res_t = FixedType(24, 12, True, "AP_TRN", "AP_WRAP"), FixedType(8, 4, True, "AP_RND_CONV", "AP_SAT")
    bias = rng.integers(-100, 101, 19)
    plan = float_plan(x_t, Matrix.of(w), w_t, bias, B_T, acc_t, res_t)
    product = (rng.integers(-128, 128, (40, 30)) @ w).astype(np.int32)
    want, want_edges = finish_float(product.astype(np.float64), plan)
    got, (edges,) = native.affine_finish(product, None, plan, {})
    assert np.array_equal(got, want) and edges == np.count_nonzero(np.isin(want, (res_t.min_code, res_t.max_code)))
    assert edges > 0 and want_edges is None  # saturated: counted in the pass, where numpy would count after


def test_a_layer_and_the_cast_after_it_in_one_pass():
    """window_products with an ApplyAlpha's cast and a ReLU after the layer's own: the
    codes of the three run one after another, and each one's edge count."""
    rng = np.random.default_rng(4)
    w, bias = rng.integers(-40, 41, (12, 21)), rng.integers(-100, 101, 21)
    x = rng.integers(-512, 512, (60, 1, 12)).astype(np.float64)
    x_t, w_t = X_T, FixedType(8, 1, True, "AP_RND_CONV", "AP_SAT")
    acc_t = FixedType(32, 16, True, "AP_TRN", "AP_WRAP")
    m = Matrix.of(w)
    layer_plan = float_plan(x_t, m, w_t, bias, B_T, acc_t, X_T)  # the layer's result: the ApplyAlpha's input type
    layer_codes, _ = native.window_products(x, x_t, 1, 1, 1, m, layer_plan, {})
    s, b = rng.integers(-64, 64, 21), rng.integers(-64, 64, 21)
    res_t = FixedType(8, 3, True, "AP_RND_CONV", "AP_SAT")
    want, alpha_plan, scale = _normalize(layer_codes, s, b, res_t)
    relu_t = FixedType(7, 2, False, "AP_RND_CONV", "AP_SAT")
    got, edges = native.window_products(x, x_t, 1, 1, 1, m, layer_plan, {}, native.After(alpha_plan, scale, relu_t))
    assert np.array_equal(got, np.maximum(want, 0))
    at = lambda codes, t: int(np.count_nonzero(codes == t.max_code) + np.count_nonzero(codes == t.min_code))  # noqa: E731
    assert edges == [at(layer_codes, X_T), at(want, res_t), int(np.count_nonzero(np.maximum(want, 0) == relu_t.max_code))]
    assert edges[1] > 0


@pytest.mark.skipif(not int8.has_u8(), reason="this CPU has no AVX-512 VNNI: the 8-bit pass is not built in")
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n,span", [(1, 5), (49, 13), (2000, 70)])
def test_the_8bit_pass_codes_and_multiplies_as_numpy(threads, n, span):
    """Coding (round half to even, saturation at both edges, ties), the int32 products for
    every row however the rows are shared out, and the codes' bounds."""
    t = FixedType(8, 3, True, "AP_RND_CONV", "AP_SAT")
    rng = np.random.default_rng(n + span)
    x = (rng.standard_normal((n, span)) * 6).astype(np.float32)
    x.flat[::7] = (np.round(x.flat[::7] * 32) + 0.5) / 32  # ties at the lsb (1/32)
    w = rng.integers(-128, 128, (span, 19)).astype(np.int8)
    codes, product, lo, hi = int8.code_products_u8(x, t, int8.u8_weights(w), 19, threads)
    want = np.clip(np.rint(x.astype(np.float64) * 32), t.min_code, t.max_code).astype(np.int64)
    assert np.array_equal(codes, want) and np.array_equal(product, want @ w.astype(np.int64))
    assert (lo, hi) == (want.min(), want.max())
    kept, again, *_ = int8.code_products_u8(x, t, int8.u8_weights(w), 19, threads, keep_codes=False)
    assert kept is None and np.array_equal(again, product)


@pytest.fixture
def mlp(tmp_path):
    """A small MLP (Dense, ReLU, Dense, softmax) with 8-bit inputs, inputs inside the input
    type (no code at its edges: the pass finishes), and its integer path's result."""
    if not int8.has_u8():
        pytest.skip("this CPU has no AVX-512 VNNI: the 8-bit pass is not built in")
    design = load_design(_design(tmp_path, _MLP(), 8))
    t = design.input_type
    codes = np.random.default_rng(0).integers(t.min_code + 1, t.max_code, (500, 6, 16))  # all but the edges
    x = (codes * 2.0 ** -t.fractional).astype(np.float32)
    return design, x


def _calls(monkeypatch):
    """Every call of the compiled 8-bit pass: whether it finished, and how many layers."""
    seen = []
    real = int8.code_products_u8

    def spy(*a, **k):
        out = real(*a, **k)
        finish = a[5] if len(a) > 5 else k.get("finish")
        seen.append(len(finish) if finish else 0)
        return out
    monkeypatch.setattr(int8, "code_products_u8", spy)
    return seen


@pytest.mark.parametrize("chunk_bytes", [None, 4096])  # one pass, or many
def test_an_mlp_in_one_compiled_pass_equals_the_integer_path(mlp, monkeypatch, chunk_bytes):
    design, x = mlp
    seen = _calls(monkeypatch)
    if chunk_bytes:
        monkeypatch.setattr(engine, "CHUNK_BYTES", chunk_bytes)
    fast = simulate(design, x)
    assert seen == [2]  # one call: the first Dense finished, and the second Dense after it
    runs = {layer.name for layer in design.layers if layer.class_name in ("Dense", "Activation")}
    assert runs <= set(fast.saturation)
    monkeypatch.undo()
    _forget(design)
    with monkeypatch.context() as m:
        _integer_only(m)
        slow = simulate(design, x)
    assert np.array_equal(fast.codes, slow.codes) and fast.saturation == slow.saturation
    assert list(fast.saturation) == list(slow.saturation)
    assert sum(slow.saturation.values()) > 0  # something saturated inside, and was counted


def test_a_pass_that_cannot_finish_runs_again_without_it(mlp, monkeypatch):
    """A cast that would wrap (here: forced) or inputs at the type's edges: the pass runs
    again, keeping the codes and the int32 product, and the rest runs as layers."""
    design, x = mlp
    want = simulate(design, x)
    _forget(design)
    seen = _calls(monkeypatch)
    monkeypatch.setattr(int8, "finished", lambda *a: None)
    got = simulate(design, x)
    assert seen == [2, 0]
    assert np.array_equal(got.codes, want.codes) and got.saturation == want.saturation
    monkeypatch.undo()
    _forget(design)
    seen = _calls(monkeypatch)
    x[3, 2, 1] = 1e3  # saturates the input: counted on the kept codes
    edge = simulate(design, x)
    assert seen == [2, 0] and edge.saturation["global_in"] >= 1
    assert int8.plan_for(design, kernels.dense_matrix).packed is not None


@pytest.mark.skipif(not int8.has_u8(), reason="this CPU has no AVX-512 VNNI: the 8-bit pass is not built in")
def test_the_8bit_pass_runs_in_a_forked_child():
    """The helper threads are the parent's: a child made by fork (multiprocessing's
    default here) makes its own and gets the same products."""
    import os
    t = FixedType(8, 3, True, "AP_RND_CONV", "AP_SAT")
    x = np.random.default_rng(0).standard_normal((500, 40)).astype(np.float32)
    w = int8.u8_weights(np.random.default_rng(1).integers(-128, 128, (40, 16)).astype(np.int8))
    want = int8.code_products_u8(x, t, w, 16, 2)[1]  # the parent's helpers exist now
    pid = os.fork()
    if pid == 0:  # the child: exit 0 when its products are the parent's
        os._exit(0 if np.array_equal(int8.code_products_u8(x, t, w, 16, 2)[1], want) else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
