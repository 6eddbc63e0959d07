"""The argument parser of every verb; docs/cli.md is its reference."""

from __future__ import annotations

import argparse
import re

from .. import __version__
from .args import COUNT, SHARE, ranged, writes
from .data_parser import add_data_verbs
from .verbs import (
    cmd_build,
    cmd_bundle,
    cmd_check,
    cmd_convert,
    cmd_cost,
    cmd_demo,
    cmd_eval,
    cmd_export,
    cmd_recognize,
    cmd_rtl,
    cmd_sim,
    cmd_synth,
    cmd_train,
    cmd_vectors,
    cmd_verify,
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, as every other error of edge-asr is."""

    def error(self, message: str):
        # "argument --noise-mix: 1.5 must be at most 1" -> "--noise-mix 1.5 must be at most 1"
        m = re.fullmatch(r"argument ([^:/ ]+)[^:]*: (.*)", message)
        if m:
            message = f"{m.group(1)} {m.group(2)}"
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every verb (docs/cli.md is its reference)."""
    p = _Parser(prog="edge-asr", description="Speech acoustic models to PYNQ FPGA designs, "
                                "checkable without a board.")
    p.add_argument("--version", action="version", version=f"edge-asr {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, help: str, **kw) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help, **kw)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
        return sp

    data = verb("data", "make and inspect data sets")
    add_data_verbs(data.add_subparsers(dest="data_verb", metavar="ACTION", required=True))

    t = verb("train", "train a model from the zoo on a data directory")
    t.add_argument("data", help="data directory made by `edge-asr data synth`")
    writes(t, "run directory to write (best.pt, train.json)", quiet=True)
    t.add_argument("--extra-train", action="append", default=[], metavar="DIR",
                   help="also train on this data set's train split (repeatable; e.g. `data synth` with another "
                        "--seed, or a `data import`ed corpus); validation stays on DATA's valid split")
    t.add_argument("--data-weight", action="append", default=[], metavar="DIR=W",
                   help="draw each training clip of data set DIR (DATA or an --extra-train) W times as often as "
                        "a clip of weight 1 (repeatable; default 1): the shares of real and synthetic speech in "
                        "every batch")
    t.add_argument("--extra-valid", action="append", default=[], metavar="DIR",
                   help="also validate on this data set's valid split (repeatable; real speakers, e.g. a `data "
                        "import --split valid`); with any, the epoch kept is the one with the best mean accuracy "
                        "over these sets and DATA's valid split")
    t.add_argument("--net", default="conv1d", help="conv1d (default) or mlp")
    t.add_argument("--epochs", type=COUNT, default=40)
    t.add_argument("--batch-size", type=COUNT, default=64)
    t.add_argument("--lr", type=ranged(float, 0, above=True), default=3e-3, help="peak learning rate (one-cycle schedule)")
    t.add_argument("--patience", type=COUNT, default=8, help="early stop after this many epochs without gain")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--n-mels", type=COUNT, default=40, help="mel bins (default 40)")
    t.add_argument("--fmax", type=ranged(float, 0, above=True), default=7600.0, help="highest mel frequency in Hz (default 7600)")
    t.add_argument("--n-mfcc", type=ranged(int, 0), default=0, help="cepstral coefficients per frame; 0: log-mel (default)")
    t.add_argument("--cmn", action="store_true", help="subtract each feature's mean over the window")
    t.add_argument("--engine-balance", type=SHARE, default=0.0,
                   help="0: draw clips uniformly; 1: every TTS engine gets the same share (default 0)")
    t.add_argument("--noise-mix", type=SHARE, default=0.0,
                   help="share of clips per batch that get one more noise, drawn afresh each time (a training "
                        "_silence_ clip's, at 0-20 dB); 0: off (default)")
    t.add_argument("--net-option", action="append", default=[], metavar="KEY=INT",
                   help="a constructor argument of the net (repeatable), e.g. channels=128 hidden=64 for a "
                        "teacher; conv1d takes channels, hidden, kernel, blocks")
    t.add_argument("--teacher", metavar="RUN",
                   help="distil from this training run (same labels and mel front end; typically a bigger net)")
    t.add_argument("--distill-weight", type=SHARE, default=None,
                   help="weight of the teacher's posteriors against the labels, 0-1 (default 0.5)")
    t.add_argument("--distill-temperature", type=ranged(float, 0, above=True), default=None,
                   help="softmax temperature of the distillation (default 2)")
    t.add_argument("--threads", type=ranged(int, 0), default=0,
                   help="torch threads per process (default: torch's choice; 1 with --nproc above 1)")
    t.add_argument("--resume", action="store_true",
                   help="continue the stopped run at --out from its last checkpoint (OUT.incomplete), with the "
                        "same settings and data; --nproc may differ")
    d = t.add_argument_group("data-parallel training (torch.distributed, gloo; --batch-size is the global batch)")
    d.add_argument("--nproc", type=COUNT, default=1, help="worker processes on this node (default 1: no workers)")
    d.add_argument("--nnodes", type=COUNT, default=1, help="machines in the run, each started with the same command")
    d.add_argument("--node-rank", type=ranged(int, 0), default=0, help="this machine's rank, 0 to --nnodes - 1; "
                   "node 0 hosts the rendezvous and writes the run")
    d.add_argument("--master-addr", default="127.0.0.1", help="node 0's address, reachable from every node")
    d.add_argument("--master-port", type=ranged(int, 1, 65535), default=29500, help="a free TCP port on node 0 (default 29500)")
    d.add_argument("--lr-scaling", choices=("none", "linear", "sqrt"), default="none",
                   help="scale --lr with the global batch over 64: linear (with the one-cycle's warm-up) or "
                        "sqrt; none (default) keeps --lr")
    d.add_argument("--profile", action="store_true",
                   help="time each gradient all-reduce apart in train.json's history (it then stops overlapping "
                        "the backward pass)")
    q = t.add_argument_group("quantization-aware training (Brevitas; the qat extra)")
    q.add_argument("--qat", action="store_true",
                   help="train on fixed-point grids (power-of-two scales); export then writes QONNX and convert "
                        "takes its types")
    q.add_argument("--weight-bits", type=ranged(int, 2), default=4, help="weight width (default 4)")
    q.add_argument("--act-bits", type=ranged(int, 2), default=4, help="width after each ReLU (default 4)")
    q.add_argument("--bias-bits", type=ranged(int, 4), default=16,
                   help="bias width, on the accumulator's grid (default 16)")
    q.add_argument("--first-last-bits", type=ranged(int, 2), default=None,
                   help="weight width of the first and last layer (default: --weight-bits)")
    q.add_argument("--init", metavar="RUN",
                   help="start from this float run or model directory (its net, front end and weights, "
                        "BatchNorm folded in); recommended, with a lower --lr such as 1e-3")
    t.set_defaults(func=cmd_train)

    e = verb("export", "export a training run to ONNX + model.json, checked against PyTorch")
    e.add_argument("run", help="run directory made by `edge-asr train`")
    writes(e, "model directory to write", quiet=True)
    e.add_argument("--data", help="data directory for the parity check (default: the one trained on)")
    e.add_argument("--name", help="model name recorded in model.json (default: the --out folder name)")
    e.add_argument("--opset", type=ranged(int, 13), default=13, help="ONNX opset (>= 13, default 13)")
    e.set_defaults(func=cmd_export)

    v = verb("eval", "accuracy and confusion matrix of a model on a data split")
    v.add_argument("model", help="model directory (model.onnx + model.json)")
    v.add_argument("data", help="data directory with manifest.csv")
    v.add_argument("--split", default="test", choices=["train", "valid", "test"], help="default: test")
    v.add_argument("--json", action="store_true", help="print one JSON object")
    v.add_argument("--record", action="store_true",
                   help="write the accuracy (and with --running the streamed figures) into the model's model.json")
    v.add_argument("--record-as", metavar="NAME",
                   help="with --record: the name the figures are recorded under (default: the split), e.g. human "
                   "for `data human`, whose split is test too (keys NAME_accuracy, NAME_streamed, ...)")
    v.add_argument("--quiet", action="store_true", help="no progress bars")
    v.add_argument("--running", metavar="DIR",
                   help="running speech without digits (`edge-asr data running`): also stream the split's clips and "
                   "this set through the recognizer for false alarms per hour, miss rate and a DET curve")
    v.add_argument("--target-fa-per-hour", type=ranged(float, 0, above=True), default=1.0,
                   help="false alarms per hour the operating point may reach (default 1)")
    v.add_argument("--target-fire-rate", type=ranged(float, 0, 1), default=None, metavar="R",
                   help="and at most this share of the split's other-word clips may fire (e.g. 0.02); default: "
                   "no bound")
    v.add_argument("--set-threshold", action="store_true",
                   help="write the operating point's threshold into model.json (recognize's default); only on "
                   "validation data and a running set of validation voices")
    v.add_argument("--report", metavar="FILE.html", help="with --running: an HTML report with the DET curve")
    v.set_defaults(func=cmd_eval)

    c = verb("convert", "convert a (Q)ONNX model to an hls4ml dataflow design with design.json")
    c.add_argument("model", help="model directory (model.onnx + model.json) or a bare .onnx file")
    writes(c, "design directory to write")
    c.add_argument("--board", default="pynq-z2", choices=["pynq-z2", "zcu104", "none"],
                   help="pynq-z2: board project (VivadoAccelerator); zcu104/none: HLS IP only (default pynq-z2)")
    c.add_argument("--io", default="stream", choices=["stream", "parallel"], help="dataflow io type (default stream)")
    c.add_argument("--reuse", type=COUNT, default=None,
                   help="one reuse factor for every layer (above 1 the Resource strategy); default: the fit "
                        "chooses each layer's strategy and reuse factor to fit the board")
    c.add_argument("--budget", type=ranged(float, 0, 1, above=True), default=0.7,
                   help="share of the board's DSP, BRAM, LUT and FF the design may use (default 0.7)")
    c.add_argument("--bits", type=ranged(int, 4, 32), default=None,
                   help="width of activations and weights (default 16; for a board, the widest of 16, 14, 12, 10 "
                   "and 8 whose design fits it)")
    c.add_argument("--clock-ns", type=ranged(float, 0, 1000, above=True), default=10.0, help="clock period in ns (default 10: 100 MHz)")
    c.add_argument("--calib", help="calibration inputs: a data directory, a folder of audio, or X.npy; "
                   "without it activations get a default 6 integer bits")
    c.add_argument("--config", help="hls4ml-style YAML (LayerName/Model sections) overriding chosen types")
    c.set_defaults(func=cmd_convert)

    co = verb("cost", "the design's estimated resources, interval and latency per layer, against its board")
    co.add_argument("design", help="design directory")
    co.add_argument("--budget", type=ranged(float, 0, 1, above=True), default=None, help="share of the board (default: the one it was fit to)")
    co.add_argument("--synth", action="store_true",
                    help="also map each kernel's RTL with Yosys (edge-asr synth) and show its counts beside the "
                    "estimates (the rtl extra and yosys)")
    co.add_argument("--max-products", type=COUNT, default=None, help="with --synth: skip larger kernels")
    co.add_argument("--json", action="store_true", help="print one JSON object")
    co.set_defaults(func=cmd_cost)

    k = verb("check", "verify a design or bundle directory against its manifest.json")
    k.add_argument("dir", help="design or bundle directory")
    k.set_defaults(func=cmd_check)

    vf = verb("verify", "compare a design's fixed point (C simulation) with the float model")
    vf.add_argument("design", help="design directory made by `edge-asr convert`")
    vf.add_argument("--against", default="csim", choices=["csim", "onnx", "qonnx", "rtl"],
                    help="csim: fixed point from hls4ml's C simulation (default); onnx: from the bit-exact "
                    "simulator, no compiler needed. The float side is always onnxruntime. qonnx (a design "
                    "converted from QONNX): the simulator's logits against QONNX's executor, value for value "
                    "(exit 1 on any difference). rtl: each kernel's Verilog (edge-asr rtl) built with Verilator "
                    "against the simulator, code for code (exit 1 on any difference)")
    vf.add_argument("--n", type=COUNT, default=200, help="number of inputs (default 200)")
    vf.add_argument("--data", help="data directory (its test split), folder of WAVs, or X.npy; default: "
                    "random inputs")
    vf.add_argument("--min-agreement", type=ranged(float, 0), default=0.99, help="exit 1 below this top-1 agreement")
    vf.add_argument("--bitexact", action="store_true",
                    help="also run the bit-exact simulator on the same inputs and count values whose bits "
                    "differ from C-sim (exit 1 on any)")
    vf.add_argument("--max-products", type=COUNT, default=None,
                    help="with --against rtl: skip kernels with more constant products (their builds take minutes)")
    vf.add_argument("--json", action="store_true", help="print one JSON object")
    vf.set_defaults(func=cmd_verify)

    rt = verb("rtl", "Verilog of a design's kernels (da4ml), from design.json; no vendor tools")
    rt.add_argument("design", help="design directory made by `edge-asr convert`")
    writes(rt, "folder to write (one folder of Verilog per kernel, rtl.json, manifest.json)")
    rt.set_defaults(func=cmd_rtl)

    sy = verb("synth", "Yosys synth_xilinx of each kernel's Verilog: LUT, FF, DSP, BRAM counted")
    sy.add_argument("design", help="design directory made by `edge-asr convert`")
    sy.add_argument("--max-products", type=COUNT, default=None, help="skip kernels with more constant products")
    sy.add_argument("--json", action="store_true", help="print one JSON object")
    sy.set_defaults(func=cmd_synth)

    sm = verb("sim", "run the bit-exact simulator on inputs (.npy) or an audio clip")
    sm.add_argument("design", help="design directory")
    sm.add_argument("input", help="INPUT.npy (one input or a batch, ONNX layout) or AUDIO.wav")
    sm.add_argument("--trace", action="store_true", help="include every layer's output")
    sm.add_argument("--json", action="store_true", help="print one JSON object")
    sm.set_defaults(func=cmd_sim)

    gv = verb("vectors", "write golden vectors (C-sim outputs) for a design, or --check them with the simulator")
    gv.add_argument("design", nargs="?", help="design directory (to write vectors)")
    gv.add_argument("--inputs", help="inputs .npy (ONNX layout) for the vectors")
    gv.add_argument("--wild", type=ranged(int, 0), default=0, help="also add this many out-of-range random inputs")
    writes(gv, "vector folder, e.g. sim/vectors/kws-digits")
    gv.add_argument("--check", action="store_true", help="run the simulator on --out and count differences")
    gv.set_defaults(func=cmd_vectors)

    r = verb("recognize", "stream audio through a model or design and print keyword events")
    r.add_argument("audio", nargs="+", help="WAV/FLAC/OGG files (any rate), or - for raw S16_LE 16 kHz PCM on stdin")
    r.add_argument("--model", help="model directory (float, onnxruntime)")
    r.add_argument("--design", help="design directory (fixed point)")
    r.add_argument("--bundle", help="deployment bundle (`edge-asr bundle`), run on a PYNQ board")
    r.add_argument("--backend", choices=["onnx", "sim", "csim", "pynq"],
                   help="default: onnx for --model, sim for --design, pynq for --bundle "
                        "(EDGE_ASR_PYNQ_DEVICE=simulated runs pynq against the simulated device)")
    r.add_argument("--stride-ms", "--stride", type=ranged(float, 10, 1000), default=100.0,
                   help="run the model every this many ms (default 100)")
    r.add_argument("--threshold", type=ranged(float, 0, 1, above=True), default=None,
                   help="smoothed posterior to emit a word (default: the model's operating threshold in model.json, "
                   "chosen for a false-alarm rate by `eval --set-threshold`; 0.55 without one)")
    r.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    r.set_defaults(func=cmd_recognize)

    bu = verb("bundle", "gather what a board needs (bitstream, hwh, design.json, features) into a verified folder")
    bu.add_argument("design", help="design directory")
    writes(bu, "bundle directory to write")
    bu.add_argument("--bit", help="bitstream (default: found in the design after `edge-asr build`)")
    bu.add_argument("--hwh", help="hardware description matching --bit")
    bu.set_defaults(func=cmd_bundle)

    b = verb("build", "run the vendor flow (Vivado/Vitis) to a bitstream")
    b.add_argument("design", help="design directory")
    b.set_defaults(func=cmd_build)

    d = verb("demo", "the main job: convert the shipped model, check the simulator against C-sim bit for bit, "
                     "recognize the example clips through it, and write an HTML report")
    d.add_argument("--model", default=None, help="model directory, or the name of a shipped model (kws-digits, the "
                   "default, travels with the package; see models/ for the others)")
    d.add_argument("--examples", default=None, help="folder of WAVs (default: the model's examples/)")
    d.add_argument("--report", default=None, help="HTML report path (default: in the edge-asr cache folder)")
    d.add_argument("--force", action="store_true", help="replace an existing --report file")
    d.set_defaults(func=cmd_demo)
    return p
