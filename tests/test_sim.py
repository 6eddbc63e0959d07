"""The simulator against hls4ml's C simulation (real g++): zero differing bits is the only pass."""

import json

import numpy as np
import pytest
import torch
import yaml

from edge_asr.cli import main
from edge_asr.hw.convert import ConvertOptions, convert
from edge_asr.hw.csim import CsimBackend
from edge_asr.sim.engine import load_design, simulate
from edge_asr.sim.fixed import OVERFLOW, QUANTIZATION, FixedType

from .conftest import SHIPPED_INPUT, SHIPPED_MODEL, torch_to_onnx

QUIET = dict(log=lambda m: None)


def mismatches(design_dir, x):
    sim = simulate(load_design(design_dir), x)
    csim = CsimBackend(design_dir).run(x)
    return int(np.count_nonzero(sim.outputs != csim)), sim, csim


def test_shipped_design_bit_exact(shipped_design):
    x = np.load(SHIPPED_MODEL / "calib.npy").astype(np.float64)
    rng = np.random.default_rng(0)
    # beyond the calibrated range too: saturation in every layer
    wild = rng.standard_normal((64,) + x.shape[1:]) * 6
    n, sim, _ = mismatches(shipped_design, np.concatenate([x, wild]))
    assert n == 0
    assert sum(sim.saturation.values()) > 0  # the wild inputs did reach the edges of some types


def test_verify_bitexact_cli(shipped_design, capsys):
    rc = main(["verify", str(shipped_design), "--bitexact", "--n", "20", "--json", "--min-agreement", "0"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["mismatches"] == 0
    assert res["seconds_sim"] > 0 and res["seconds_csim"] > 0 and res["n"] == 20


class _Net(torch.nn.Module):
    def __init__(self, conv: bool, pool: bool, dense_hidden: int, softmax: bool):
        super().__init__()
        self.conv = torch.nn.Conv1d(3, 4, 3) if conv else None
        self.pool = torch.nn.MaxPool1d(2) if pool else None
        width = 12 if not conv else (10 // 2 if pool else 10)
        ch = 4 if conv else 3
        self.fc1 = torch.nn.Linear(ch * width, dense_hidden) if dense_hidden else None
        self.fc2 = torch.nn.Linear(dense_hidden or ch * width, 5)
        self.softmax = softmax

    def forward(self, x):
        if self.conv is not None:
            x = torch.relu(self.conv(x))
        if self.pool is not None:
            x = self.pool(x)
        x = torch.flatten(x, 1)
        if self.fc1 is not None:
            x = torch.relu(self.fc1(x))
        x = self.fc2(x)
        return torch.softmax(x, 1) if self.softmax else x


def _random_overrides(rng, prepared_names, bits, narrow_accum=True):
    """Random quantization/overflow modes on every result, and narrow accumulators."""
    layers = {}
    for name in prepared_names:
        q, o = rng.choice(QUANTIZATION), rng.choice(OVERFLOW)
        prec = {}
        op = name.split("_")[0]
        if op in ("Conv", "MatMul", "Add"):
            integer = int(rng.integers(1, 4))
            prec["result"] = f"fixed<{bits},{integer},{q[3:]},{o[3:]}>"
        if op in ("Conv", "MatMul") and narrow_accum and rng.random() < 0.5:
            qa, oa = rng.choice(QUANTIZATION), rng.choice(OVERFLOW)
            prec["accum"] = f"fixed<{bits + 6},{int(rng.integers(3, 7))},{qa[3:]},{oa[3:]}>"
        if prec:
            layers[name] = {"Precision": prec}
    return {"LayerName": layers}


CASES = [
    # (seed, bits, conv, pool, hidden, softmax, io, reuse)
    (0, 16, True, True, 6, True, "stream", 1),
    (1, 8, True, False, 0, False, "parallel", 1),
    (2, 4, False, False, 7, False, "stream", 1),
    (3, 12, True, True, 0, True, "stream", 4),
    (4, 24, True, True, 5, False, "parallel", 1),
    (5, 32, False, False, 6, True, "stream", 1),
    (6, 16, True, True, 8, True, "stream", 16),       # Resource at a higher reuse factor
]


@pytest.mark.parametrize("seed,bits,conv,pool,hidden,softmax,io,reuse", CASES)
def test_random_models_bit_exact(tmp_path, seed, bits, conv, pool, hidden, softmax, io, reuse):
    from edge_asr.hw import onnxprep
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = _Net(conv, pool, hidden, softmax)
    path = torch_to_onnx(net, (1, 3, 12), tmp_path / "net.onnx")
    calib = rng.standard_normal((32, 3, 12)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    prepared, _ = onnxprep.prepare(onnxprep.load(path), "net")
    names = [n.name for n in prepared.graph.node]
    (tmp_path / "modes.yml").write_text(yaml.safe_dump(_random_overrides(rng, names, bits, narrow_accum=reuse == 1)))
    design = convert(path, tmp_path / "d", ConvertOptions(board="none", bits=bits, io=io, reuse=reuse,
                                                          calib=str(tmp_path / "calib.npy"),
                                                          config=str(tmp_path / "modes.yml")), **QUIET)
    t_in = FixedType.from_dict(json.loads((design / "design.json").read_text())["input"]["type"])
    # inputs: ordinary, far outside the input type's range, and exactly on rounding ties
    ties = (np.round(rng.standard_normal((16, 3, 12)) * 2 ** t_in.fractional) + 0.5) * 2.0 ** -t_in.fractional
    x = np.concatenate([rng.standard_normal((32, 3, 12)), rng.standard_normal((16, 3, 12)) * 4 * 2 ** t_in.integer,
                        ties])
    n, sim, csim = mismatches(design, x)
    assert n == 0, f"{n} values differ; first: sim {sim.outputs[sim.outputs != csim][:4]} csim {csim[sim.outputs != csim][:4]}"



@pytest.mark.parametrize("bits", [10, 12])
def test_board_project_at_a_narrow_width_is_bit_exact(tmp_path, bits):
    """A pynq-z2 design (hls4ml's Vivado templates and AXI wrapper) narrower than 16 bits. Two
    things hid here: its stream type is the input type widened to whole bytes, so the C
    simulation must see the inputs the host codes (not round twice); and hls4ml caps its
    softmax's exp table at the input's range (512 entries for 10 bits, not table_size)."""
    torch.manual_seed(bits)
    rng = np.random.default_rng(bits)
    path = torch_to_onnx(_Net(True, True, 6, True), (1, 3, 12), tmp_path / "net.onnx")
    np.save(tmp_path / "calib.npy", rng.standard_normal((32, 3, 12)).astype(np.float32))
    design = convert(path, tmp_path / "d", ConvertOptions(board="pynq-z2", bits=bits, calib=str(tmp_path / "calib.npy")),
                     **QUIET)
    t_in = FixedType.from_dict(json.loads((design / "design.json").read_text())["input"]["type"])
    assert t_in.width == bits
    # values a quarter LSB either side of the input type's rounding ties: a second rounding
    # through the 16-bit stream type moves them onto the tie
    grid = np.round(rng.standard_normal((48, 3, 12)) * 2 ** t_in.fractional)
    near_ties = (grid + 0.5 + rng.choice([-0.25, 0.25], grid.shape) * 2.0 ** -(16 - bits)) * 2.0 ** -t_in.fractional
    n, sim, csim = mismatches(design, np.concatenate([rng.standard_normal((16, 3, 12)), near_ties]))
    assert n == 0, f"{n} values differ"


GOLDEN = SHIPPED_MODEL.parents[1] / "sim" / "vectors" / "kws-digits"


def test_golden_vectors_reproduced_by_simulator():
    # numpy only: no compiler, no hls4ml
    from edge_asr.sim.vectors import check_vectors
    assert check_vectors(GOLDEN) == 0


def test_threaded_chunks_equal_serial(monkeypatch):
    """simulate() runs passes of engine.chunk_rows inputs on all cores; the result is the
    serial one, and so are the per-layer saturation counters."""
    from edge_asr.sim import engine
    from edge_asr.sim.engine import load_design, simulate
    design = load_design(GOLDEN / "design.json")
    rng = np.random.default_rng(3)
    rows = engine.chunk_rows(design, 10 ** 6, 1)
    x = rng.normal(0, 6, size=(3 * rows + 5, *SHIPPED_INPUT))
    assert -(-len(x) // engine.chunk_rows(design, len(x), 2)) == 4  # four passes, two per worker
    monkeypatch.setenv("EDGE_ASR_SIM_THREADS", "2")
    threaded = simulate(design, x, trace=True)
    monkeypatch.setenv("EDGE_ASR_SIM_THREADS", "1")
    serial = simulate(design, x, trace=True)
    assert engine._workers() == 1
    assert np.array_equal(threaded.codes, serial.codes) and threaded.saturation == serial.saturation
    assert sum(serial.saturation.values()) > 0  # inputs this wide do saturate somewhere
    assert all(np.array_equal(threaded.trace[k], serial.trace[k]) for k in serial.trace)
    one_by_one = np.concatenate([simulate(design, x[i:i + 1]).codes for i in range(0, len(x), 37)])
    assert np.array_equal(one_by_one, serial.codes[::37])


def test_simulate_codes_equals_simulate_on_coded_floats():
    """The board's simulated core takes the DMA's codes as they are (simulate_codes): the
    same result as coding floats on the host and simulating them, over more than one chunk,
    and a code the stream cannot carry, or a wrong row length, is refused."""
    from edge_asr.sim.engine import SimError, chunk_rows, code_input, simulate_codes
    design = load_design(GOLDEN / "design.json")
    t = design.input_type
    x = np.random.default_rng(5).normal(0, 8, size=(chunk_rows(design, 10 ** 6, 1) + 7, *SHIPPED_INPUT))
    codes = code_input(design, x).codes.reshape(len(x), -1)
    assert codes.min() == t.lowest_code and codes.max() == t.max_code  # the range's edges are in
    direct, via_floats = simulate_codes(design, codes), simulate(design, x)
    assert np.array_equal(direct.codes, via_floats.codes) and direct.saturation == via_floats.saturation
    with pytest.raises(SimError, match="range"):
        simulate_codes(design, np.full_like(codes[:1], t.max_code + 1))
    with pytest.raises(SimError, match="shape"):
        simulate_codes(design, codes[:, :-1])


def test_golden_vectors_match_fresh_csim(shipped_design):
    from edge_asr.ir.design import Design
    from edge_asr.sim.fixed import to_float
    from edge_asr.sim.vectors import load_vectors
    _, x_codes, y_codes, meta = load_vectors(GOLDEN)
    fresh = json.loads((shipped_design / "design.json").read_text())
    assert Design(fresh).digest() == meta["design_digest"], \
        "the shipped model now converts to another design: regenerate sim/vectors/kws-digits (sim/README.md)"
    x = to_float(x_codes, FixedType.from_dict(meta["input_type"]))
    y = CsimBackend(shipped_design).run(x)
    assert np.array_equal(y, to_float(y_codes, FixedType.from_dict(meta["output_type"])))


def test_sim_cli(shipped_design, capsys, tmp_path):
    wav = sorted((SHIPPED_MODEL / "examples").glob("seven-*.wav"))[0]
    assert main(["sim", str(shipped_design), str(wav), "--json", "--trace"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 1 and len(res["outputs"][0]) == 12 and "Softmax_0" in res["trace"]
    assert res["labels"][0] == "seven"
    np.save(tmp_path / "x.npy", np.zeros(SHIPPED_INPUT, np.float32))
    assert main(["sim", str(shipped_design), str(tmp_path / "x.npy")]) == 0
    assert "values at the edge" in capsys.readouterr().out
    np.save(tmp_path / "bad.npy", np.zeros((3, 3), np.float32))
    assert main(["sim", str(shipped_design), str(tmp_path / "bad.npy")]) == 2


def test_sim_imports_numpy_only():
    import subprocess
    import sys
    code = ("import sys, edge_asr.sim.engine, edge_asr.sim.fixed, edge_asr.sim.tables, edge_asr.sim.vectors; "
            "bad = [m for m in ('hls4ml', 'onnx', 'torch', 'onnxruntime', 'qonnx') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


class _BNNet(torch.nn.Module):
    """Dense -> BatchNorm (kept: hls4ml only fuses it into an 'auto'-typed Dense) -> ReLU -> Dense."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(12, 8)
        self.bn = torch.nn.BatchNorm1d(8)
        self.fc2 = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


def test_batchnorm_layer_bit_exact(tmp_path):
    torch.manual_seed(7)
    net = _BNNet()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
        net.bn.weight.uniform_(0.5, 1.5)
        net.bn.bias.uniform_(-0.5, 0.5)
    path = torch_to_onnx(net, (1, 12), tmp_path / "bn.onnx")
    rng = np.random.default_rng(7)
    np.save(tmp_path / "calib.npy", rng.standard_normal((32, 12)).astype(np.float32))
    design = convert(path, tmp_path / "d", ConvertOptions(board="none", calib=str(tmp_path / "calib.npy")), **QUIET)
    kinds = [layer["class_name"] for layer in json.loads((design / "design.json").read_text())["layers"]]
    assert "BatchNormalization" in kinds or "ApplyAlpha" in kinds
    n, _, _ = mismatches(design, rng.standard_normal((64, 12)) * 3)
    assert n == 0


class _TableNet(torch.nn.Module):
    """Dense -> sigmoid -> Dense -> tanh: hls4ml's table-based activations."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(10, 8)
        self.fc2 = torch.nn.Linear(8, 6)

    def forward(self, x):
        return torch.tanh(self.fc2(torch.sigmoid(self.fc1(x))) * 1.0)


@pytest.mark.parametrize("io", ["stream", "parallel"])
def test_sigmoid_tanh_tables_bit_exact(tmp_path, io):
    torch.manual_seed(3)
    path = torch_to_onnx(_TableNet(), (1, 10), tmp_path / "t.onnx")
    rng = np.random.default_rng(3)
    np.save(tmp_path / "calib.npy", (rng.standard_normal((32, 10)) * 3).astype(np.float32))
    design = convert(path, tmp_path / "d", ConvertOptions(board="none", io=io, calib=str(tmp_path / "calib.npy")),
                     **QUIET)
    acts = [layer["attributes"].get("activation") for layer in json.loads((design / "design.json").read_text())["layers"]]
    assert "sigmoid" in acts and "tanh" in acts
    n, sim, csim = mismatches(design, rng.standard_normal((200, 10)) * 4)
    assert n == 0, f"{n} differ: {sim.outputs[sim.outputs != csim][:4]} vs {csim[sim.outputs != csim][:4]}"


MERGE_OPS = {"add": torch.add, "subtract": torch.sub, "multiply": torch.mul,
             "maximum": torch.maximum, "minimum": torch.minimum}


class _Residual(torch.nn.Module):
    def __init__(self, op: str = "add"):
        super().__init__()
        self.op = MERGE_OPS[op]
        self.conv1 = torch.nn.Conv1d(4, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv1d(4, 2, 3, padding=1)
        self.fc = torch.nn.Linear(6 * 12, 4)

    def forward(self, x):
        a = self.op(torch.relu(self.conv1(x)), x)      # an elementwise op on two tensors: a Merge layer
        c = torch.cat([a, self.conv2(x)], 1)           # channel concatenation
        return self.fc(torch.flatten(c, 1))


def test_merge_of_unequal_shapes_is_refused():
    # numpy would broadcast; hls4ml's kernels do not, so the simulator must not answer
    from edge_asr.ir.design import Layer
    from edge_asr.sim.engine import SimError, Tensor
    from edge_asr.sim.kernels import merge
    t = FixedType.parse("fixed<16,6>")
    layer = Layer({"name": "add1", "class_name": "Merge", "inputs": ["a", "b"], "outputs": ["c"],
                   "output_shape": [4, 3], "attributes": {"op": "add"}, "output_type": t.to_dict(), "types": {},
                   "weights": {}}, "test")
    a, b = Tensor(np.ones((2, 4, 3), np.int64), t), Tensor(np.ones((2, 1, 3), np.int64), t)
    with pytest.raises(SimError, match="add1: merge 'add' of shapes"):
        merge(layer, a, b)
    assert (merge(layer, a, Tensor(np.ones((2, 4, 3), np.int64), t)).codes == 2).all()


@pytest.mark.parametrize("op", ["subtract", "multiply", "maximum", "minimum"])
def test_merge_ops_bit_exact(tmp_path, op):
    torch.manual_seed(6)
    path = torch_to_onnx(_Residual(op), (1, 4, 12), tmp_path / "r.onnx")
    rng = np.random.default_rng(6)
    np.save(tmp_path / "calib.npy", rng.standard_normal((32, 4, 12)).astype(np.float32))
    design = convert(path, tmp_path / "d", ConvertOptions(board="none", calib=str(tmp_path / "calib.npy")), **QUIET)
    merges = [layer for layer in json.loads((design / "design.json").read_text())["layers"] if layer["class_name"] == "Merge"]
    assert merges and merges[0]["attributes"]["op"] == op
    n, _, _ = mismatches(design, rng.standard_normal((100, 4, 12)) * 2)
    assert n == 0


@pytest.mark.parametrize("io", ["stream", "parallel"])
def test_merge_and_concatenate_bit_exact(tmp_path, io):
    torch.manual_seed(5)
    path = torch_to_onnx(_Residual(), (1, 4, 12), tmp_path / "r.onnx")
    rng = np.random.default_rng(5)
    np.save(tmp_path / "calib.npy", rng.standard_normal((32, 4, 12)).astype(np.float32))
    design = convert(path, tmp_path / "d", ConvertOptions(board="none", io=io, calib=str(tmp_path / "calib.npy")),
                     **QUIET)
    kinds = [layer["class_name"] for layer in json.loads((design / "design.json").read_text())["layers"]]
    assert "Merge" in kinds and "Concatenate" in kinds, kinds
    n, sim, csim = mismatches(design, rng.standard_normal((100, 4, 12)) * 2)
    assert n == 0


def test_verify_against_onnx_uses_the_simulator(shipped_design):
    from edge_asr.hw.verify import verify
    calib = str(SHIPPED_MODEL / "calib.npy")
    a = verify(shipped_design, against="onnx", n=40, data=calib, **QUIET)
    b = verify(shipped_design, against="csim", n=40, data=calib, **QUIET)
    # bit-exact fixed point on both sides: the same comparison with the float model
    assert a["top1_agreement"] == b["top1_agreement"] and a["max_abs_error"] == b["max_abs_error"] > 0
    assert "seconds_sim" in a and "seconds_csim" in b


def test_vectors_cli_refuses_and_explains(shipped_design, tmp_path, capsys):
    out = tmp_path / "v"
    x = tmp_path / "x.npy"
    np.save(x, np.load(SHIPPED_MODEL / "calib.npy")[:4])
    assert main(["vectors", str(shipped_design), "--inputs", str(x), "--out", str(out)]) == 0
    assert main(["vectors", "--check", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["vectors", str(shipped_design), "--inputs", str(x), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["vectors", "--out", str(out)]) == 2
    assert "needs DESIGN and --inputs" in capsys.readouterr().err
    assert main(["vectors", "--check", "--out", str(tmp_path / "none")]) == 2
    assert "not a golden-vector folder" in capsys.readouterr().err
    assert main(["verify", str(shipped_design), "--data", str(tmp_path / "missing.npy")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_single_chunk_runs_with_blas_held_to_one_thread(monkeypatch):
    """A streaming decision (one window) is simulated with BLAS on one thread: its threads
    cost more than they give on matrices this small (edge_asr/blas.py). The limit is lifted
    afterwards, and the result does not depend on it."""
    import threadpoolctl  # a dependency: without it this test must fail, not skip

    from edge_asr.sim import engine
    design = load_design(GOLDEN / "design.json")
    x = np.random.default_rng(6).normal(0, 1, size=(1, *SHIPPED_INPUT))

    def blas_threads() -> int:
        return max(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        seen, real = [], engine._simulate
        monkeypatch.setattr(engine, "_simulate", lambda *a: (seen.append(blas_threads()), real(*a))[1])
        before = blas_threads()
        out = simulate(design, x)
        assert seen == [1] and blas_threads() == before == 2
    monkeypatch.undo()
    assert np.array_equal(out.codes, simulate(design, x).codes)


@pytest.mark.parametrize("rewrite_manifest, message", [(False, "altered since it was written"),
                                                      (True, "outside ap_fixed<")], ids=["edited", "out of range"])
def test_a_tampered_design_is_refused_by_sim_and_recognize(tmp_path, capsys, rewrite_manifest, message):
    """A weight code changed in design.json: refused by its manifest; a code of 99999 (beyond
    any type of 16 bits or fewer) with the manifest written again: refused by the type's
    range. Neither runs."""
    import shutil

    from edge_asr.ir import write_manifest
    d = tmp_path / "d"
    shutil.copytree(GOLDEN, d)
    record = json.loads((d / "design.json").read_text())
    layer = next(x for x in record["layers"] if x["class_name"] == "Conv1D")
    layer["weights"]["weight"]["codes"][0] = 99999
    (d / "design.json").write_text(json.dumps(record))
    if rewrite_manifest:
        write_manifest(d, "vectors")
    clip = sorted((SHIPPED_MODEL / "examples").glob("seven-*.wav"))[0]
    for argv in (["sim", str(d), str(clip)], ["recognize", "--design", str(d), str(clip)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
