"""Run a design.json on numpy, bit for bit as hls4ml 1.3's C++ kernels compute it.

Every tensor is carried as int64 codes plus its FixedType. Each layer function follows
its kernel's order of casts: Dense/Conv (io_stream, latency and resource strategies):
product -> accum_t, bias -> accum_t, sum in accum_t, then cast to the result type;
ApplyAlpha: x * scale + bias exactly, then cast; ReLU: x or 0, cast; max/average pooling;
the stable softmax with its lookup tables. Layers are batched over inputs.
"""

from __future__ import annotations

import json
import os
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .blas import can_hold_blas, one_blas_thread
from .fixed import FixedType, overflow, quantize, requantize, to_float
from .tables import idx_from_codes, softmax_exp_table, softmax_inv_table

_EXACT = 2 ** 52


class SimError(Exception):
    """A design the simulator cannot run (unknown layer kind, unsupported option)."""


@dataclass
class Tensor:
    codes: np.ndarray        # int64, shape (batch, ...)
    type: FixedType

    @property
    def values(self) -> np.ndarray:
        return to_float(self.codes, self.type)


@dataclass
class Design:
    path: Path | None
    data: dict
    layers: list[dict] = field(default_factory=list)

    @property
    def input_type(self) -> FixedType:
        return FixedType.from_dict(self.data["input"]["type"])

    @property
    def output_type(self) -> FixedType:
        return FixedType.from_dict(self.data["output"]["type"])


def load_design(path: str | Path) -> Design:
    path = Path(path)
    file = path / "design.json" if path.is_dir() else path
    data = json.loads(file.read_text())
    if data.get("schema_version") != 1:
        raise SimError(f"{file}: design schema version {data.get('schema_version')} is not 1")
    # layer copies that carry their prepared weights; data["layers"] stays as written
    return Design(file.parent, data, [{**layer, _CACHE_KEY: {}} for layer in data["layers"]])


@dataclass
class SimResult:
    outputs: np.ndarray                 # exact output values, float64 (batch, n_out)
    codes: np.ndarray                   # their integer codes
    output_type: FixedType
    trace: dict[str, np.ndarray] | None = None       # layer name -> output values
    saturation: dict[str, int] = field(default_factory=dict)   # layer -> values at the edge of their type


def _t(d: dict) -> FixedType:
    return FixedType.from_dict(d)


# Weights converted from design.json's lists once per layer, not once per batch. A design
# from load_design carries the cache in its own layer copies (it goes when the design
# goes); a layer dict from elsewhere is cached by id, holding the dict itself so a reused
# id is never mistaken for it.
_CACHE_KEY = "_edge_asr_cache"
_PREPARED: dict[int, tuple[dict, dict]] = {}


def _prepared(layer: dict) -> dict:
    cache = layer.get(_CACHE_KEY)
    if cache is not None:
        return cache
    entry = _PREPARED.get(id(layer))
    if entry is None or entry[0] is not layer:
        entry = _PREPARED[id(layer)] = (layer, {})
    return entry[1]


def _weights(layer: dict, name: str) -> tuple[np.ndarray, FixedType]:
    cache = _prepared(layer)
    if name not in cache:
        w = layer["weights"][name]
        codes = np.asarray(w["codes"], dtype=np.int64).reshape(w["shape"])
        codes.flags.writeable = False
        cache[name] = (codes, _t(w["type"]))
    return cache[name]


def _cast(codes: np.ndarray, frac: int, t: FixedType) -> np.ndarray:
    return requantize(codes, frac, t)


def _recast(codes: np.ndarray, src: FixedType, t: FixedType) -> np.ndarray:
    """Codes of type src -> type t; free when both have the same grid and range (the
    common ReLU/pooling case), except that AP_SAT_SYM drops the most negative code."""
    if (src.width, src.integer, src.signed) == (t.width, t.integer, t.signed) and t.lowest_code == t.min_code:
        return codes
    return requantize(codes, src.fractional, t)


# float64 copy and column bound of each weight matrix, made once; an entry goes when its
# matrix goes (the matrix lives in its layer's cache, i.e. as long as the design)
_MATRICES: dict[int, tuple[weakref.ref, np.ndarray, float]] = {}


def _matrix_f64(b: np.ndarray) -> tuple[np.ndarray, float]:
    entry = _MATRICES.get(id(b))
    if entry is None or entry[0]() is not b:
        entry = (weakref.ref(b), b.astype(np.float64), float(np.abs(b).sum(axis=0).max(initial=0)))
        _MATRICES[id(b)] = entry
        weakref.finalize(b, _MATRICES.pop, id(b), None)
    return entry[1], entry[2]


def _exact_matmul(a: np.ndarray, b: np.ndarray, a_type: FixedType) -> np.ndarray:
    """Integer matrix product, on BLAS (float64) when every partial sum stays below 2**52.

    `a` holds codes of `a_type` (int64, or float64 holding integers: the convolution
    windows are built so); the bound comes from the type's code range, so it costs no pass
    over the data. `b` is a weight matrix; its float64 copy is made once.
    """
    b64, col_bound = _matrix_f64(b)
    a_max = float(max(abs(a_type.min_code), abs(a_type.max_code)))
    if a_max * col_bound < _EXACT:
        return (a if a.dtype == np.float64 else a.astype(np.float64)) @ b64
    return a.astype(np.int64) @ b


def dense_codes(x: Tensor, w: np.ndarray, wt: FixedType, b: np.ndarray | None, bt: FixedType | None,
                acc_t: FixedType) -> tuple[np.ndarray, int]:
    """hls4ml's DenseLatency/DenseResource arithmetic. x.codes (N, n_in), w (n_in, n_out).

    Returns accumulator codes (N, n_out) with acc_t's fractional bits.
    """
    prod_frac = x.type.fractional + wt.fractional
    n_out = w.shape[1]
    if b is not None:
        acc0 = _cast(b, bt.fractional, acc_t)
    else:
        acc0 = np.zeros(n_out, dtype=np.int64)
    exact_products = acc_t.fractional >= prod_frac
    if exact_products and acc_t.saturation == "AP_WRAP":
        # every product fits the accumulator's lsb; wrapping sums are modular, so one wrap at
        # the end equals a wrap after every addition. Overflow of a single product into the
        # accumulator type also wraps, which the same final wrap covers.
        shift = acc_t.fractional - prod_frac
        s = _exact_matmul(x.codes, w, x.type)
        if max(abs(s.max(initial=0)), abs(s.min(initial=0))) >= (1 << (62 - shift)):
            raise SimError("accumulator sum exceeds exact int64 range")
        s = s.astype(np.int64)
        if shift:
            s <<= shift
        s += acc0[None, :]
        return overflow(s, acc_t), acc_t.fractional
    # General path: each product is cast into accum_t, then summed in order ii = 0..n_in-1
    # with the accumulator's overflow mode applied after every addition.
    acc = np.broadcast_to(acc0, (x.codes.shape[0], n_out)).copy()
    xc = x.codes.astype(np.int64)
    for ii in range(w.shape[0]):
        p = xc[:, ii:ii + 1] * w[ii][None, :]
        p = _cast(p, prod_frac, acc_t)
        acc = overflow(acc + p, acc_t)
    return acc, acc_t.fractional


def _dense_float(x: Tensor, w: np.ndarray, wt: FixedType, b: np.ndarray | None, bt: FixedType | None,
                 acc_t: FixedType, res_t: FixedType) -> np.ndarray | None:
    """dense_codes followed by the cast to res_t, all in float64, for the common case; None
    when the case is not common (then the integer path runs).

    Exact because every value is an integer multiple of a power of two below 2**52 in
    magnitude (checked from the types' code ranges, no pass over the data): the matrix
    product is exact on BLAS, scaling by a power of two is exact, np.rint is half-to-even
    (AP_RND_CONV), np.floor is AP_TRN, floor(v + 0.5) is AP_RND, and clipping is AP_SAT.
    The accumulator must be a wrapping type that every sum fits without wrapping."""
    prod_frac = x.type.fractional + wt.fractional
    shift = acc_t.fractional - prod_frac          # product lsb -> accumulator lsb (exact products)
    drop = acc_t.fractional - res_t.fractional    # accumulator lsb -> result lsb
    if shift < 0 or acc_t.saturation != "AP_WRAP" or res_t.rounding not in ("AP_TRN", "AP_RND_CONV", "AP_RND"):
        return None
    if res_t.saturation not in ("AP_SAT", "AP_SAT_SYM"):
        return None
    col_bound = _matrix_f64(w)[1]
    a_max = float(max(abs(x.type.min_code), abs(x.type.max_code)))
    acc0 = _cast(b, bt.fractional, acc_t) if b is not None else None
    bound = a_max * col_bound * 2.0 ** shift + (float(np.abs(acc0).max(initial=0)) if acc0 is not None else 0.0)
    if bound >= _EXACT or bound * 2.0 ** max(0, -drop) >= _EXACT:
        return None
    s = _exact_matmul(x.codes, w, x.type)         # product units, float64
    if acc0 is not None:
        s += np.ldexp(acc0.astype(np.float64), -shift)[None, :]
    if bound > acc_t.max_code or -bound < acc_t.min_code:  # the types allow a wrap: does one happen?
        scale = 2.0 ** shift
        if s.size and (s.max() * scale > acc_t.max_code or s.min() * scale < acc_t.min_code):
            return None
    s *= 2.0 ** (shift - drop)                    # result units
    if drop > 0:
        if res_t.rounding == "AP_RND_CONV":
            np.rint(s, out=s)
        elif res_t.rounding == "AP_RND":
            s += 0.5
            np.floor(s, out=s)
        else:
            np.floor(s, out=s)
    np.clip(s, res_t.lowest_code, res_t.max_code, out=s)
    return s.astype(np.int64)


def dense_result(x: Tensor, w: np.ndarray, wt: FixedType, b: np.ndarray | None, bt: FixedType | None,
                 acc_t: FixedType, res_t: FixedType) -> np.ndarray:
    """A Dense/Conv layer's result codes in res_t: accumulate as hls4ml does, then cast."""
    fast = _dense_float(x, w, wt, b, bt, acc_t, res_t)
    if fast is not None:
        return fast
    acc, frac = dense_codes(x, w, wt, b, bt, acc_t)
    return _cast(acc, frac, res_t)


def _resource(layer: dict, acc_t: FixedType, in_t: FixedType, wt: FixedType) -> bool:
    """The Resource strategy stores weights transposed and sums in another order; the order
    only matters when the accumulator rounds or saturates, which is not simulated there."""
    if layer["attributes"].get("strategy", "latency").lower() != "resource":
        return False
    if acc_t.saturation != "AP_WRAP" or acc_t.fractional < in_t.fractional + wt.fractional:
        raise SimError(f"{layer['name']}: Resource strategy with a rounding or saturating accumulator "
                       "is not simulated (its summation order differs); use an exact accumulator")
    return True


def _matrix(layer: dict, acc_t: FixedType, in_t: FixedType, order: tuple[int, ...]) -> tuple[np.ndarray, FixedType]:
    """The layer's weights as one (n_in, n_out) matrix, made once per layer. Resource
    strategy stores them in another order (`order` undoes it)."""
    w, wt = _weights(layer, "weight")
    resource = _resource(layer, acc_t, in_t, wt)
    cache = _prepared(layer)
    key = ("matrix", resource)
    if key not in cache:
        m = np.transpose(w, order) if resource else w
        m = np.ascontiguousarray(m.reshape(-1, m.shape[-1]))
        m.flags.writeable = False
        cache[key] = m
    return cache[key], wt


def _layer_dense(layer: dict, x: Tensor) -> Tensor:
    acc_t = _t(layer["types"]["accum_t"])
    w, wt = _matrix(layer, acc_t, x.type, (1, 0))  # Resource: stored (n_out, n_in)
    b, bt = _weights(layer, "bias") if "bias" in layer["weights"] else (None, None)
    res_t = _t(layer["output_type"])
    flat = Tensor(x.codes.reshape(len(x.codes), -1), x.type)
    return Tensor(dense_result(flat, w, wt, b, bt, acc_t, res_t), res_t)


def _layer_conv1d(layer: dict, x: Tensor) -> Tensor:
    a = layer["attributes"]
    width, n_chan, n_filt = a["in_width"], a["n_chan"], a["n_filt"]
    k, stride, out_w = a["filt_width"], a["stride_width"], a["out_width"]
    pl, pr = a.get("pad_left", 0), a.get("pad_right", 0)
    if a.get("dilation_width", a.get("dilation", 1)) not in (1, None):
        raise SimError(f"{layer['name']}: dilated Conv1D is not simulated")
    codes = x.codes.reshape(len(x.codes), width, n_chan).astype(np.float64)  # exact: |code| < 2**53
    if pl or pr:
        codes = np.pad(codes, ((0, 0), (pl, pr), (0, 0)))
    # im2col, [k][c] order: one strided slice copy per tap (numpy's fancy indexing of the
    # same windows is ~20x slower and was most of the simulator's time)
    windows = np.empty((len(codes), out_w, k, n_chan))
    for j in range(k):
        windows[:, :, j, :] = codes[:, j:j + stride * (out_w - 1) + 1:stride, :]
    windows = windows.reshape(len(codes) * out_w, k * n_chan)
    acc_t = _t(layer["types"]["accum_t"])
    # (k, n_chan, n_filt) -> (k * n_chan, n_filt); Resource stores (n_filt, k, n_chan)
    w, wt = _matrix(layer, acc_t, x.type, (1, 2, 0))
    b, bt = _weights(layer, "bias") if "bias" in layer["weights"] else (None, None)
    res_t = _t(layer["output_type"])
    out = dense_result(Tensor(windows, x.type), w, wt, b, bt, acc_t, res_t)
    return Tensor(out.reshape(len(codes), out_w, n_filt), res_t)


def _layer_apply_alpha(layer: dict, x: Tensor) -> Tensor:
    s, st = _weights(layer, "scale")
    b, bt = _weights(layer, "bias")
    res_t = _t(layer["output_type"])
    shape = x.codes.shape
    flat = x.codes.reshape(shape[0], -1)
    n = flat.shape[1]
    s = np.broadcast_to(s.reshape(-1), (n,)) if s.size in (1, n) else np.resize(s.reshape(-1), n)
    b = np.broadcast_to(b.reshape(-1), (n,)) if b.size in (1, n) else np.resize(b.reshape(-1), n)
    prod_frac = x.type.fractional + st.fractional
    frac = max(prod_frac, bt.fractional)
    total = (flat * s[None, :]) * (1 << (frac - prod_frac)) + (b[None, :] << (frac - bt.fractional))
    return Tensor(_cast(total, frac, res_t).reshape(shape), res_t)


def _layer_activation(layer: dict, x: Tensor) -> Tensor:
    kind = layer["attributes"].get("activation", "linear").lower()
    res_t = _t(layer["output_type"])
    if kind == "relu":
        return Tensor(_recast(np.maximum(x.codes, 0), x.type, res_t), res_t)
    if kind == "linear":
        return Tensor(_cast(x.codes, x.type.fractional, res_t), res_t)
    if kind in ("sigmoid", "tanh"):
        # index = int(x * N / R2) + N / 2 with R2 = 16 (sigmoid) or 8 (tanh), the division
        # and the conversion to int rounding toward zero, clamped to the table
        from .tables import sigmoid_table, tanh_table
        n = int(layer["attributes"].get("table_size", 1024))
        table_t = _t(layer["types"]["table_t"])
        table = sigmoid_table(table_t, n) if kind == "sigmoid" else tanh_table(table_t, n)
        r2 = 16 if kind == "sigmoid" else 8
        num = x.codes * n
        den = r2 << x.type.fractional if x.type.fractional >= 0 else None
        if den is None:
            q = num * (1 << -x.type.fractional) // r2
        else:
            q = np.sign(num) * (np.abs(num) // den)
        index = np.clip(q + (8 if kind == "sigmoid" else 4) * n // r2, 0, n - 1)
        return Tensor(_cast(table[index], table_t.fractional, res_t), res_t)
    raise SimError(f"{layer['name']}: activation '{kind}' is not simulated yet")


def _layer_pool1d(layer: dict, x: Tensor) -> Tensor:
    a = layer["attributes"]
    n_in, n_filt, n_out = a["n_in"], a["n_filt"], a["n_out"]
    pw, stride = a["pool_width"], a["stride_width"]
    if a.get("pad_left", 0) or a.get("pad_right", 0):
        raise SimError(f"{layer['name']}: padded pooling is not simulated")
    codes = x.codes.reshape(len(x.codes), n_in, n_filt)
    res_t = _t(layer["output_type"])
    # the stream kernel casts each window value into accum_t before reducing
    acc_t = _t(layer["types"]["accum_t"]) if "accum_t" in layer["types"] else x.type
    acc = _recast(codes, x.type, acc_t)
    op = a.get("pool_op", "Max")
    if op == "Max":
        # the maximum over the window's taps, one strided slice per tap
        best = acc[:, 0:stride * (n_out - 1) + 1:stride, :].copy()
        for j in range(1, pw):
            np.maximum(best, acc[:, j:j + stride * (n_out - 1) + 1:stride, :], out=best)
        return Tensor(_recast(best, acc_t, res_t), res_t)
    # Average pooling: QONNX's channels-last conversion leaves ONNX AveragePool alone, so
    # the converter cannot produce it yet, and it has no differential test to pass.
    raise SimError(f"{layer['name']}: pooling '{op}' is not simulated")


def _reduce_add(values: list[np.ndarray], t: FixedType, frac: int) -> np.ndarray:
    """hls4ml's reduce<T, N, Op_add<T>>: a binary tree, each addition cast to T."""
    n = len(values)
    if n == 1:
        return values[0]
    if n == 2:
        return _cast(values[0] + values[1], frac, t)
    left = 1 << int(np.floor(np.log2(n - 1)))
    return _cast(_reduce_add(values[:left], t, frac) + _reduce_add(values[left:], t, frac), frac, t)


def softmax_tables(layer: dict) -> tuple[np.ndarray, np.ndarray]:
    tables = layer.get("tables")
    if tables:
        return np.asarray(tables["exp"], np.int64), np.asarray(tables["inv"], np.int64)
    ty, a = layer["types"], layer["attributes"]
    exp_size = int(a.get("exp_table_size", a.get("table_size", 1024)))
    inv_size = int(a.get("inv_table_size", a.get("table_size", 1024)))
    exp = softmax_exp_table(_t(ty["inp_norm_t"]), _t(ty["exp_table_t"]), exp_size, negative=True,
                            scale=float(a.get("exp_scale", 1.0)))
    inv = softmax_inv_table(_t(ty["inv_inp_t"]), _t(ty["inv_table_t"]), inv_size)
    return exp, inv


def _layer_softmax(layer: dict, x: Tensor) -> Tensor:
    a, ty = layer["attributes"], layer["types"]
    if a.get("implementation", "stable") != "stable":
        raise SimError(f"{layer['name']}: softmax implementation {a.get('implementation')} is not simulated")
    norm_t, exp_t = _t(ty["inp_norm_t"]), _t(ty["exp_table_t"])
    inv_inp_t, inv_t = _t(ty["inv_inp_t"]), _t(ty["inv_table_t"])
    acc_t, res_t = _t(ty["accum_t"]), _t(layer["output_type"])
    exp_table, inv_table = softmax_tables(layer)
    codes = x.codes.reshape(len(x.codes), -1)
    x_max = codes.max(axis=1, keepdims=True)
    d = _cast(x_max - codes, x.type.fractional, norm_t)
    e = exp_table[idx_from_codes(d, norm_t, len(exp_table))]
    e = _cast(e, exp_t.fractional, acc_t)                               # exp_res[j] is accum_t
    s = _reduce_add([e[:, j] for j in range(e.shape[1])], acc_t, acc_t.fractional)
    s = _cast(s, acc_t.fractional, inv_inp_t)
    inv = inv_table[idx_from_codes(s, inv_inp_t, len(inv_table))]
    out = _cast(e * inv[:, None], acc_t.fractional + inv_t.fractional, res_t)
    return Tensor(out, res_t)


def _layer_transpose(layer: dict, x: Tensor) -> Tensor:
    perm = layer["attributes"]["perm"]
    return Tensor(np.transpose(x.codes, [0] + [p + 1 for p in perm]), x.type)


def _layer_reshape(layer: dict, x: Tensor) -> Tensor:
    res_t = _t(layer["output_type"])
    codes = x.codes.reshape([len(x.codes)] + layer["output_shape"])
    return Tensor(_cast(codes, x.type.fractional, res_t), res_t)


def _layer_zeropad1d(layer: dict, x: Tensor) -> Tensor:
    a = layer["attributes"]
    res_t = _t(layer["output_type"])
    codes = x.codes.reshape(len(x.codes), a["in_width"], a["n_chan"])
    padded = np.pad(codes, ((0, 0), (a.get("pad_left", 0), a.get("pad_right", 0)), (0, 0)))
    return Tensor(_cast(padded, x.type.fractional, res_t), res_t)


def _align(a: Tensor, b: Tensor) -> tuple[np.ndarray, np.ndarray, int]:
    f = max(a.type.fractional, b.type.fractional)
    return a.codes << (f - a.type.fractional), b.codes << (f - b.type.fractional), f


def _layer_merge(layer: dict, a: Tensor, b: Tensor) -> Tensor:
    """nnet_merge: the operation in full precision, then cast to the result type."""
    op = layer["attributes"].get("op", "add").lower()
    res_t = _t(layer["output_type"])
    if a.codes.shape != b.codes.shape:
        # hls4ml's merge kernels walk both inputs element by element over the first one's
        # size; numpy would broadcast instead, and a result the board does not compute is
        # worse than none.
        raise SimError(f"{layer['name']}: merge '{op}' of shapes {a.codes.shape[1:]} and {b.codes.shape[1:]} "
                       "(broadcast) is not simulated; give both inputs the same shape")
    if op == "multiply":
        return Tensor(_cast(a.codes * b.codes, a.type.fractional + b.type.fractional, res_t), res_t)
    x, y, f = _align(a, b)
    if op == "add":
        return Tensor(_cast(x + y, f, res_t), res_t)
    if op == "subtract":
        return Tensor(_cast(x - y, f, res_t), res_t)
    if op == "average":
        return Tensor(_cast(x + y, f + 1, res_t), res_t)  # (a + b) * ap_ufixed<1,0>(0.5)
    if op in ("maximum", "minimum"):
        pick_a = x > y if op == "maximum" else x < y
        return Tensor(np.where(pick_a, _cast(a.codes, a.type.fractional, res_t), _cast(b.codes, b.type.fractional, res_t)),
                      res_t)
    raise SimError(f"{layer['name']}: merge '{op}' is not simulated")


def _layer_concatenate(layer: dict, a: Tensor, b: Tensor) -> Tensor:
    res_t = _t(layer["output_type"])
    out_shape = list(layer["output_shape"])
    sa = list(a.codes.shape[1:])
    sb = list(b.codes.shape[1:])
    # hls4ml's `axis` counts the batch dimension for ONNX and not for Keras: take the axis
    # on which the shapes add up instead
    axes = [i for i in range(len(out_shape)) if sa[i] + sb[i] == out_shape[i]
            and all(sa[j] == sb[j] == out_shape[j] for j in range(len(out_shape)) if j != i)]
    if len(axes) != 1:
        raise SimError(f"{layer['name']}: cannot tell the concatenation axis from shapes {sa} + {sb} -> {out_shape}")
    parts = [_cast(t.codes, t.type.fractional, res_t) for t in (a, b)]
    return Tensor(np.concatenate(parts, axis=axes[0] + 1), res_t)


MERGES = {"Merge": _layer_merge, "Concatenate": _layer_concatenate}


LAYERS = {
    "Dense": _layer_dense, "Conv1D": _layer_conv1d, "ApplyAlpha": _layer_apply_alpha,
    "BatchNormalization": _layer_apply_alpha,  # the same nnet::normalize kernel: x * scale + bias
    "Activation": _layer_activation, "ReLU": _layer_activation, "Pooling1D": _layer_pool1d,
    "Softmax": _layer_softmax, "Transpose": _layer_transpose, "Reshape": _layer_reshape,
    "ZeroPadding1D": _layer_zeropad1d,
    "Clone": lambda layer, x: x,  # io_stream fan-out: the same values on every output stream
}


def code_input(design: Design, x: np.ndarray) -> Tensor:
    """Float input in the ONNX layout (batch first) -> input codes (the host's coding)."""
    shape = design.data["input"]["onnx_shape"][1:]
    x = np.asarray(x, dtype=np.float64)
    if list(x.shape[1:]) != list(shape):
        raise SimError(f"inputs of shape {list(x.shape[1:])}, the design takes {shape}")
    t = design.input_type
    return Tensor(quantize(x, t).reshape([len(x)] + design.data["input"]["shape"]), t)


def _edge_count(t: Tensor) -> int:
    """Values at the largest code, or at the smallest of a signed type: where saturation lands."""
    if not t.codes.size:
        return 0
    n = int(np.count_nonzero(t.codes == t.type.max_code)) if t.codes.max() >= t.type.max_code else 0
    if t.type.signed and t.codes.min() <= t.type.min_code:
        n += int(np.count_nonzero(t.codes == t.type.min_code))
    return n


CHUNK = 64  # inputs per pass: temporaries stay in cache and are reused by malloc (no page faults)


_POOL: ThreadPoolExecutor | None = None


def _workers() -> int:
    return max(1, int(os.environ.get("EDGE_ASR_SIM_THREADS", os.cpu_count() or 1)))


def _run_chunks(design: Design, x: Tensor, trace: bool) -> list[SimResult]:
    """Chunks on all cores. numpy releases the GIL in its kernels, so threads overlap; BLAS
    is held to one thread per call meanwhile (threadpoolctl, when installed), else the two
    levels of threads fight over the same cores."""
    global _POOL
    starts = range(0, len(x.codes), CHUNK)

    def chunk(i: int) -> SimResult:
        return _simulate(design, Tensor(x.codes[i:i + CHUNK], x.type), trace)

    workers = _workers() if can_hold_blas() else 1
    if workers == 1 or len(starts) == 1:
        return [chunk(i) for i in starts]
    if _POOL is None or _POOL._max_workers != workers:
        _POOL = ThreadPoolExecutor(workers, thread_name_prefix="edge-asr-sim")
    with one_blas_thread():
        return list(_POOL.map(chunk, starts))


def simulate(design: Design, x: np.ndarray, trace: bool = False) -> SimResult:
    """Run the design on float inputs x (batch first, ONNX layout); see SimResult."""
    return _simulate_coded(design, code_input(design, x), trace)


def simulate_codes(design: Design, codes: np.ndarray, trace: bool = False) -> SimResult:
    """Run the design on input codes (batch first, one row of the input type's codes per
    input, in the design's stream order), as the fabric receives them from the DMA: no
    float step in between. Codes outside the input type's range are an error, since the
    stream cannot carry them."""
    t = design.input_type
    codes = np.asarray(codes)
    n = int(np.prod(design.data["input"]["shape"]))
    if codes.ndim != 2 or codes.shape[1] != n:
        raise SimError(f"input codes of shape {list(codes.shape)}, the design takes (batch, {n})")
    if codes.size and (codes.min() < t.min_code or codes.max() > t.max_code):
        raise SimError(f"input codes outside {t.cpp()}'s range {t.min_code}..{t.max_code}")
    shaped = codes.astype(np.int64).reshape([len(codes)] + design.data["input"]["shape"])
    return _simulate_coded(design, Tensor(shaped, t), trace)


def _simulate_coded(design: Design, x: Tensor, trace: bool) -> SimResult:
    if len(x.codes) <= CHUNK:
        # one chunk, as a streaming decision (a batch of one) is: see edge_asr/blas.py
        with one_blas_thread():
            return _simulate(design, x, trace)
    parts = _run_chunks(design, x, trace)
    first = parts[0]
    return SimResult(
        np.concatenate([p.outputs for p in parts]), np.concatenate([p.codes for p in parts]), first.output_type,
        {k: np.concatenate([p.trace[k] for p in parts]) for k in first.trace} if trace else None,
        {k: sum(p.saturation[k] for p in parts) for k in first.saturation})


def _simulate(design: Design, cur: Tensor, trace: bool) -> SimResult:
    traced: dict[str, np.ndarray] = {} if trace else None
    edges: dict[str, int] = {}
    by_output: dict[str, Tensor] = {}
    for layer in design.layers:
        kind = layer["class_name"]
        if kind in ("Input", "InputLayer"):
            out = cur
        elif kind in MERGES:
            a, b = (by_output[i] for i in layer["inputs"][:2])
            out = MERGES[kind](layer, a, b)
        else:
            fn = LAYERS.get(kind)
            if fn is None:
                raise SimError(f"layer {layer['name']}: kind {kind} is not simulated yet")
            src = by_output.get(layer["inputs"][0], cur) if layer.get("inputs") else cur
            out = fn(layer, src)
        for name in layer["outputs"]:
            by_output[name] = out
        edges[layer["name"]] = _edge_count(out)
        if trace:
            traced[layer["name"]] = out.values
        cur = out
    codes = cur.codes.reshape(len(cur.codes), -1)
    return SimResult(to_float(codes, cur.type), codes, cur.type, traced, edges)
