"""One function per layer kind, as hls4ml 1.3's C++ kernels compute it, and their registry.

Every function takes the layer (`edge_asr.ir.Layer`) and its input tensor(s) and returns
the output tensor, batched over inputs. Each follows its kernel's order of casts:
Dense/Conv (io_stream, Latency and Resource strategies): product -> accum_t, bias ->
accum_t, sum in accum_t, then the cast to the result type (`exact`); ApplyAlpha:
x * scale + bias exactly, then the cast; ReLU: x or 0, cast; max pooling; the stable
softmax with its lookup tables. A kernel registers itself with `@kernel("Kind", ...)`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import SimError
from ..ir.design import Layer
from . import fused, native
from .exact import (
    Matrix,
    dense_result,
    finish_float,
    float_plan,
    recast,
    shifted_products,
)
from .fixed import FixedType, requantize
from .tables import (
    activation_table,
    cast_table,
    code_indexed_table,
    float_softmax,
    float_table_index,
    idx_from_codes,
    reduce_add,
    softmax_tables,
)
from .tensor import Tensor

LAYERS: dict[str, Callable[[Layer, Tensor], Tensor]] = {}      # one input
MERGES: dict[str, Callable[[Layer, Tensor, Tensor], Tensor]] = {}  # two inputs


def kernel(*kinds: str, inputs: int = 1):
    """Register the decorated function as the kernel of these layer kinds (class_name)."""
    def register(fn):
        for kind in kinds:
            (MERGES if inputs == 2 else LAYERS)[kind] = fn
        return fn
    return register


def _matrix(layer: Layer, acc_t: FixedType, in_t: FixedType, order: tuple[int, ...]) -> tuple[Matrix, FixedType]:
    """The layer's weights as one (n_in, n_out) matrix, made once per layer (kept in the
    layer's cache). The Resource strategy stores them in another order (`order` undoes it)
    and sums in another order, which only matters when the accumulator rounds or
    saturates; that case is refused."""
    w, wt = layer.weight("weight")
    resource = layer.attributes.get("strategy", "latency").lower() == "resource"
    if resource and (acc_t.saturation != "AP_WRAP" or acc_t.fractional < in_t.fractional + wt.fractional):
        raise SimError(f"{layer.name}: Resource strategy with a rounding or saturating accumulator "
                       "is not simulated (its summation order differs); use an exact accumulator")
    key = ("matrix", resource)
    if key not in layer.cache:
        m = np.transpose(w, order) if resource else w
        layer.cache[key] = Matrix.of(m.reshape(-1, m.shape[-1]))
    return layer.cache[key], wt


def _bias(layer: Layer) -> tuple[np.ndarray | None, FixedType | None]:
    return layer.weight("bias") if "bias" in layer.weights else (None, None)


@kernel("Dense")
def dense(layer: Layer, x: Tensor, product: np.ndarray | None = None, after: tuple[Layer, ...] = ()) -> Tensor:
    """nnet::dense (Latency or Resource): products into accum_t, summed, cast to the result
    type. `product`: the integer product of x's codes with the weights when already made
    (sim/int8.py), else made here. `after`: the layers after it that its compiled pass may
    run too (`fused.chains`); the Tensor's `fused` names those it ran."""
    acc_t, res_t = layer.type("accum_t"), layer.result_type()
    m, wt = _matrix(layer, acc_t, x.type, (1, 0))  # Resource: stored (n_out, n_in)
    b, bt = _bias(layer)
    plan = _plan(layer, x.type, m, wt, b, bt, acc_t, res_t)
    done = None
    if product is not None and plan is not None:
        then, ran = fused.after(layer, after, product.shape[1])
        out = fused.tensor(layer, native.affine_finish(product, None, plan, layer.cache, then), ran, product.shape)
        if out is not None:
            return out
        done = finish_float(product.astype(np.float64), plan)
    if done is None and product is None and len(x.codes):
        rows = x.codes.reshape(len(x.codes), 1, -1)
        out = _native_result(layer, x.type, m, plan, rows, 1, 1, 1, after, (len(x.codes), -1))
        if out is not None:
            return out
    if done is None:
        done = dense_result(x.codes.reshape(len(x.codes), -1), x.type, m, wt, b, bt, acc_t, res_t, plan)
    return Tensor(done[0], res_t, done[1])


def dense_matrix(layer: Layer, in_t: FixedType) -> Matrix | None:
    """A Dense layer's weight matrix for inputs of in_t, or None where it is not simulated."""
    try:
        return _matrix(layer, layer.type("accum_t"), in_t, (1, 0))[0]
    except SimError:
        return None


def dense_plan(layer: Layer, in_t: FixedType):
    """A Dense layer's float plan for inputs of in_t (`_plan`), or None where its float path
    does not run."""
    acc_t = layer.type("accum_t")
    try:
        m, wt = _matrix(layer, acc_t, in_t, (1, 0))
    except SimError:
        return None
    b, bt = _bias(layer)
    return _plan(layer, in_t, m, wt, b, bt, acc_t, layer.result_type())


def _native_result(layer: Layer, x_type: FixedType, m: Matrix, plan, x: np.ndarray, k: int, stride: int, out_w: int,
                   after: tuple[Layer, ...], shape: tuple) -> Tensor | None:
    """The layer's output from the compiled kernel (`native.layer_products`), with what it
    could run of `after` (`fused.after`); None where the kernel does not run."""
    then, ran = fused.after(layer, after, m.f64.shape[1])
    return fused.tensor(layer, native.layer_products(layer.cache, x_type, m, plan, x, k, stride, out_w, then), ran,
                        shape)


def _plan(layer: Layer, x_type: FixedType, m: Matrix, wt: FixedType, b, bt, acc_t: FixedType, res_t: FixedType):
    """The layer's float_plan for inputs of x_type, made once (it is per layer and input
    type, and making it costs a bias cast and a pass over the bias)."""
    key = ("plan", x_type)
    if key not in layer.cache:
        layer.cache[key] = float_plan(x_type, m, wt, b, bt, acc_t, res_t)
    return layer.cache[key]


@kernel("Conv1D")
def conv1d(layer: Layer, x: Tensor, after: tuple[Layer, ...] = ()) -> Tensor:
    """nnet::conv_1d (io_stream): the Dense arithmetic on each window of filt_width pixels
    (compiled, `native`, with `after` as in `dense`; else at stride 1 one product per tap,
    `shifted_products`; else, or when the integer path runs, im2col)."""
    a = layer.attributes
    width, n_chan, n_filt = a["in_width"], a["n_chan"], a["n_filt"]
    k, stride, out_w = a["filt_width"], a["stride_width"], a["out_width"]
    pl, pr = a.get("pad_left", 0), a.get("pad_right", 0)
    if a.get("dilation_width", a.get("dilation", 1)) not in (1, None):
        raise SimError(f"{layer.name}: dilated Conv1D is not simulated")
    codes = x.codes.reshape(len(x.codes), width, n_chan)
    if pl or pr:
        codes = np.pad(codes, ((0, 0), (pl, pr), (0, 0)))
    acc_t, res_t = layer.type("accum_t"), layer.result_type()
    # (k, n_chan, n_filt) -> (k * n_chan, n_filt); Resource stores (n_filt, k, n_chan)
    m, wt = _matrix(layer, acc_t, x.type, (1, 2, 0))
    b, bt = _bias(layer)
    n = len(codes)
    plan = _plan(layer, x.type, m, wt, b, bt, acc_t, res_t) if n else None
    # a window of k pixels is k * n_chan consecutive codes of the (n, width, n_chan) rows
    out = _native_result(layer, x.type, m, plan, codes, k, stride, out_w, after, (n, out_w, n_filt)) if n else None
    if out is not None:
        return out
    if codes.dtype.kind != "f":  # after the compiled kernel, which copies the codes anyway
        codes = codes.astype(np.float64)  # exact: |code| < 2**53
    if plan is not None and stride == 1:
        done = finish_float(shifted_products(codes, m, x.type, k), plan)
        if done is not None:
            return Tensor(done[0].reshape(n, out_w, n_filt), res_t, done[1])
    # im2col, [k][c] order: one strided slice copy per tap (numpy's fancy indexing of the
    # same windows is ~20x slower and was most of the simulator's time)
    windows = np.empty((n, out_w, k, n_chan))
    for j in range(k):
        windows[:, :, j, :] = codes[:, j:j + stride * (out_w - 1) + 1:stride, :]
    windows = windows.reshape(n * out_w, k * n_chan)
    out, edges = dense_result(windows, x.type, m, wt, b, bt, acc_t, res_t, plan)
    return Tensor(out.reshape(n, out_w, n_filt), res_t, edges)


@kernel("ApplyAlpha", "BatchNormalization")  # the same nnet::normalize kernel: x * scale + bias
def apply_alpha(layer: Layer, x: Tensor, after: tuple[Layer, ...] = ()) -> Tensor:
    """nnet::normalize: x * scale + bias exactly, then the cast to the result type (in one
    compiled pass, `native.affine_finish`, with `after` as in `dense`; else in float64
    where exact, `fused.alpha_cast`; else on int64)."""
    res_t = layer.result_type()
    shape = x.codes.shape
    n = int(np.prod(shape[1:]))
    cast = fused.alpha_cast(layer, x.type, n)
    if cast.plan is not None:
        flat = x.codes.reshape(shape[0], n)
        then, ran = fused.after(layer, after, n)
        out = fused.tensor(layer, native.affine_finish(flat, cast.scale, cast.plan, layer.cache, then), ran, shape)
        if out is not None:
            return out
        # copies: finish_float works in place, and the input may be traced or shared
        total = flat.astype(np.float64)
        if cast.scale is not None:
            total *= cast.scale
        done = finish_float(total, cast.plan)
        if done is not None:
            return Tensor(done[0].reshape(shape), res_t, done[1])
    _, bt = layer.weight("bias")
    flat = x.ints.reshape(shape[0], n)
    total = (flat * cast.s[None, :]) * (1 << (cast.frac - cast.prod_frac)) + (cast.b[None, :] << (cast.frac - bt.fractional))
    return Tensor(requantize(total, cast.frac, res_t).reshape(shape), res_t)


@kernel("Activation", "ReLU")
def activation(layer: Layer, x: Tensor) -> Tensor:
    """ReLU, linear, and the table-based sigmoid and tanh, as hls4ml indexes their tables."""
    kind = layer.attributes.get("activation", "linear").lower()
    res_t = layer.result_type()
    if kind == "relu":
        return Tensor(recast(np.maximum(x.codes, 0), x.type, res_t, lowest=0), res_t)
    if kind == "linear":
        return Tensor(recast(x.codes, x.type, res_t), res_t)
    if kind in ("sigmoid", "tanh"):
        # index = int(x * N / R2) + N / 2 with R2 = 16 (sigmoid) or 8 (tanh), the division
        # and the conversion to int rounding toward zero, clamped to the table
        n = int(layer.attributes.get("table_size", 1024))
        table_t = layer.type("table_t")
        table = activation_table(layer.cache, kind, table_t, n)
        r2 = 16 if kind == "sigmoid" else 8
        offset = (8 if kind == "sigmoid" else 4) * n // r2
        # the table cast to the result type once: the cast is per value, so it commutes
        # with the lookup; for narrow inputs, looked up once more for every input code
        cast, edges = cast_table(layer.cache, kind, table, table_t, res_t)
        full = code_indexed_table(layer.cache, kind, cast, x.type, n, r2, offset)
        if full is not None:
            return Tensor(full[x.codes.astype(np.intp)], res_t, edges)
        index = float_table_index(x.codes, x.type, n, r2, offset)
        if index is not None:
            return Tensor(cast[index], res_t, edges)
        num = x.ints * n
        if x.type.fractional >= 0:
            den = r2 << x.type.fractional
            q = np.sign(num) * (np.abs(num) // den)
        else:
            q = num * (1 << -x.type.fractional) // r2
        index = np.clip(q + offset, 0, n - 1)
        return Tensor(requantize(table[index], table_t.fractional, res_t), res_t)
    raise SimError(f"{layer.name}: activation '{kind}' is not simulated yet")


@kernel("Pooling1D")
def pool1d(layer: Layer, x: Tensor) -> Tensor:
    """1-D max pooling (stream kernel): window values cast into accum_t, then the maximum."""
    a = layer.attributes
    n_in, n_filt, n_out = a["n_in"], a["n_filt"], a["n_out"]
    pw, stride = a["pool_width"], a["stride_width"]
    if a.get("pad_left", 0) or a.get("pad_right", 0):
        raise SimError(f"{layer.name}: padded pooling is not simulated")
    codes = x.codes.reshape(len(x.codes), n_in, n_filt)
    res_t = layer.result_type()
    # the stream kernel casts each window value into accum_t before reducing
    acc_t = layer.type("accum_t") if layer.types.get("accum_t") else x.type
    acc = recast(codes, x.type, acc_t)
    op = a.get("pool_op", "Max")
    if op == "Max":
        # the maximum over the window's taps, one strided slice per tap
        best = acc[:, 0:stride * (n_out - 1) + 1:stride, :].copy()
        for j in range(1, pw):
            np.maximum(best, acc[:, j:j + stride * (n_out - 1) + 1:stride, :], out=best)
        return Tensor(recast(best, acc_t, res_t), res_t)
    # Average pooling: QONNX's channels-last conversion leaves ONNX AveragePool alone, so
    # the converter cannot produce it yet, and it has no differential test to pass.
    raise SimError(f"{layer.name}: pooling '{op}' is not simulated")


def _softmax_tables(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """The stored tables (design.json holds them as codes), else computed as hls4ml does."""
    if "tables" not in layer.cache:
        t = layer.tables
        if t:
            layer.cache["tables"] = (np.asarray(t["exp"], np.int64), np.asarray(t["inv"], np.int64))
        else:
            types = {k: layer.type(k) for k in ("inp_norm_t", "exp_table_t", "inv_inp_t", "inv_table_t")}
            layer.cache["tables"] = softmax_tables(types, layer.attributes)
    return layer.cache["tables"]


@kernel("Softmax")
def softmax(layer: Layer, x: Tensor) -> Tensor:
    """The stable softmax: x_max - x, exp and inverse tables, the adder tree in accum_t (in
    float64 where exact: tables.float_softmax)."""
    if layer.attributes.get("implementation", "stable") != "stable":
        raise SimError(f"{layer.name}: softmax implementation {layer.attributes.get('implementation')} "
                       "is not simulated")
    types = {k: layer.type(k) for k in ("inp_norm_t", "exp_table_t", "inv_inp_t", "inv_table_t", "accum_t")}
    norm_t, exp_t, inv_inp_t, inv_t, acc_t = types.values()
    res_t = types["result_t"] = layer.result_type()
    exp_table, inv_table = _softmax_tables(layer)
    out = float_softmax(x.codes.reshape(len(x.codes), -1), x.type, types, exp_table, inv_table, layer.cache)
    if out is not None:
        return Tensor(out, res_t)
    codes = x.ints.reshape(len(x.codes), -1)
    x_max = codes.max(axis=1, keepdims=True)
    d = requantize(x_max - codes, x.type.fractional, norm_t)
    e = exp_table[idx_from_codes(d, norm_t, len(exp_table))]
    e = requantize(e, exp_t.fractional, acc_t)                          # exp_res[j] is accum_t
    s = reduce_add([e[:, j] for j in range(e.shape[1])], acc_t, acc_t.fractional)
    s = requantize(s, acc_t.fractional, inv_inp_t)
    inv = inv_table[idx_from_codes(s, inv_inp_t, len(inv_table))]
    out = requantize(e * inv[:, None], acc_t.fractional + inv_t.fractional, res_t)
    return Tensor(out, res_t)


@kernel("Transpose")
def transpose(layer: Layer, x: Tensor) -> Tensor:
    """A transpose of the non-batch dimensions; codes unchanged."""
    perm = layer.attributes["perm"]
    return Tensor(np.transpose(x.codes, [0] + [p + 1 for p in perm]), x.type)


@kernel("Reshape")
def reshape(layer: Layer, x: Tensor) -> Tensor:
    """A reshape, cast to the result type."""
    res_t = layer.result_type()
    codes = x.codes.reshape([len(x.codes)] + layer.output_shape)
    return Tensor(recast(codes, x.type, res_t), res_t)


@kernel("ZeroPadding1D")
def zeropad1d(layer: Layer, x: Tensor) -> Tensor:
    """Zero padding in width, cast to the result type."""
    a = layer.attributes
    res_t = layer.result_type()
    codes = x.codes.reshape(len(x.codes), a["in_width"], a["n_chan"])
    padded = np.pad(codes, ((0, 0), (a.get("pad_left", 0), a.get("pad_right", 0)), (0, 0)))
    return Tensor(recast(padded, x.type, res_t), res_t)


@kernel("Clone")
def clone(layer: Layer, x: Tensor) -> Tensor:
    """io_stream fan-out: the same values on every output stream."""
    return x


def _align(a: Tensor, b: Tensor) -> tuple[np.ndarray, np.ndarray, int]:
    f = max(a.type.fractional, b.type.fractional)
    return a.ints << (f - a.type.fractional), b.ints << (f - b.type.fractional), f


@kernel("Merge", inputs=2)
def merge(layer: Layer, a: Tensor, b: Tensor) -> Tensor:
    """nnet_merge: the operation in full precision, then cast to the result type."""
    op = layer.attributes.get("op", "add").lower()
    res_t = layer.result_type()
    if a.codes.shape != b.codes.shape:
        # hls4ml's merge kernels walk both inputs element by element over the first one's
        # size; numpy would broadcast instead, and a result the board does not compute is
        # worse than none.
        raise SimError(f"{layer.name}: merge '{op}' of shapes {a.codes.shape[1:]} and {b.codes.shape[1:]} "
                       "(broadcast) is not simulated; give both inputs the same shape")
    if op == "multiply":
        return Tensor(requantize(a.ints * b.ints, a.type.fractional + b.type.fractional, res_t), res_t)
    x, y, f = _align(a, b)
    if op == "add":
        return Tensor(requantize(x + y, f, res_t), res_t)
    if op == "subtract":
        return Tensor(requantize(x - y, f, res_t), res_t)
    if op == "average":
        return Tensor(requantize(x + y, f + 1, res_t), res_t)  # (a + b) * ap_ufixed<1,0>(0.5)
    if op in ("maximum", "minimum"):
        pick_a = x > y if op == "maximum" else x < y
        return Tensor(np.where(pick_a, requantize(a.codes, a.type.fractional, res_t),
                               requantize(b.codes, b.type.fractional, res_t)), res_t)
    raise SimError(f"{layer.name}: merge '{op}' is not simulated")


@kernel("Concatenate", inputs=2)
def concatenate(layer: Layer, a: Tensor, b: Tensor) -> Tensor:
    """Concatenation of two inputs on the axis their shapes add up on, each cast to the result type."""
    res_t = layer.result_type()
    out_shape = list(layer.output_shape)
    sa, sb = list(a.codes.shape[1:]), list(b.codes.shape[1:])
    # hls4ml's `axis` counts the batch dimension for ONNX and not for Keras: take the axis
    # on which the shapes add up instead
    axes = [i for i in range(len(out_shape)) if sa[i] + sb[i] == out_shape[i]
            and all(sa[j] == sb[j] == out_shape[j] for j in range(len(out_shape)) if j != i)]
    if len(axes) != 1:
        raise SimError(f"{layer.name}: cannot tell the concatenation axis from shapes {sa} + {sb} -> {out_shape}")
    parts = [requantize(t.codes, t.type.fractional, res_t) for t in (a, b)]
    return Tensor(np.concatenate(parts, axis=axes[0] + 1), res_t)
