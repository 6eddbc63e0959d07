"""The argument parser of every verb; docs/cli.md is its reference."""

from __future__ import annotations

import argparse
import math
import re

from .. import __version__
from .verbs import (
    cmd_build,
    cmd_bundle,
    cmd_check,
    cmd_convert,
    cmd_cost,
    cmd_data_augment,
    cmd_data_connected,
    cmd_data_human,
    cmd_data_import,
    cmd_data_mine,
    cmd_data_running,
    cmd_data_synth,
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


def _ranged(kind, lo=None, hi=None, above: bool = False):
    """An argparse type: an int or a finite float, at least `lo` (above it with `above`) and at
    most `hi`; anything else is refused at parse time, in one line."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from exc
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        if lo is not None and (value <= lo if above else value < lo):
            raise argparse.ArgumentTypeError(f"{text} must be {'above' if above else 'at least'} {lo}"
                                             + (f" and at most {hi}" if hi is not None else ""))
        if hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"{text} must be at most {hi}")
        return value
    parse.__name__ = kind.__name__
    return parse


COUNT = _ranged(int, 1)          # a count of things: 1 or more
SHARE = _ranged(float, 0, 1)     # a share: 0 to 1


def _writes(parser: argparse.ArgumentParser, what: str, quiet: bool = False) -> None:
    """The options of a verb that writes a folder: --out, --force (and --quiet for long work)."""
    parser.add_argument("--out", required=True, help=what)
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    if quiet:
        parser.add_argument("--quiet", action="store_true", help="no progress bars")


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
    data_sub = data.add_subparsers(dest="data_verb", metavar="ACTION", required=True)
    s = data_sub.add_parser("synth", help="synthesize the spoken-digit corpus from TTS engines",
                            description="Synthesize 16 kHz one-second clips of the digits, other words "
                            "(_unknown_) and noise (_silence_) with every TTS engine found (espeak-ng, flite, "
                            "festival, piper, SVOX Pico, RHVoice, MBROLA, Kokoro), augment them, and write WAVs plus "
                            "manifest.csv split by voice.")
    _writes(s, "output data directory", quiet=True)
    s.add_argument("--size", choices=["small", "full"], default="small",
                   help="small: a few hundred clips for tests; full: the training corpus (default: small)")
    s.add_argument("--seed", type=int, default=0, help="random seed; same seed, same corpus (default 0)")
    s.add_argument("--jobs", type=COUNT, default=None, help="worker processes (default: all cores)")
    s.add_argument("--exclude-engine", action="append", default=[], metavar="ENGINE",
                   help="leave this engine out even if installed (repeatable); leaving out engines that came "
                   "late (kokoro; rhvoice and mbrola) gives the corpus as it was before them, clip for clip")
    s.add_argument("--train-only-words", type=int, default=None, metavar="N",
                   help="each training voice also says N words heard around digits in real speech "
                   "(letter names, million, billion, minus, months) as _unknown_; validation and test clips "
                   "stay the same (default 0)")
    s.set_defaults(func=cmd_data_synth)
    h = data_sub.add_parser("human", help="a test set of real human speech from Debian's Asterisk prompts",
                            description="Make a test-only data directory from the real recordings in "
                            "asterisk-core-sounds-en-wav (one speaker, 8 kHz telephone band): digits, and "
                            "numbers, letters, days and months as _unknown_. Never used for training.")
    _writes(h, "output data directory")
    h.add_argument("--copies", type=_ranged(int, 0), default=4, help="augmented copies per recording (default 4)")
    h.add_argument("--seed", type=int, default=0)
    h.set_defaults(func=cmd_data_human)
    cd = data_sub.add_parser("connected", help="connected-digit files from test-split voices, for word error rate",
                             description="Write N files of 2-5 digits spoken by held-out voices with pauses "
                             "between them; manifest.csv holds the digit sequence in `text`.")
    _writes(cd, "output data directory")
    cd.add_argument("--n", type=COUNT, default=50, help="number of files (default 50)")
    cd.add_argument("--seed", type=int, default=0)
    cd.add_argument("--split", choices=("test", "valid"), default="test",
                    help="whose voices speak: the test split's (default) or the validation split's, "
                    "for tuning recognizer settings without the test voices")
    cd.set_defaults(func=cmd_data_connected)
    rn = data_sub.add_parser("running", help="long running speech without digit words, for false alarms per hour",
                             description="Sentences (licence texts and Python's reference, none with a digit word, "
                             "a homophone or a numeral) read by one split's TTS voices, augmented as the corpus is, "
                             "in files of about a minute; plus the human set's non-digit prompts said one after "
                             "another, when Asterisk's prompts are installed. Every word a recognizer emits on it is "
                             "a false alarm: `edge-asr eval --running DIR`.")
    _writes(rn, "output data directory")
    rn.add_argument("--hours", type=_ranged(float, 0, 100, above=True), default=1.0,
                    help="hours of TTS sentences (default 1)")
    rn.add_argument("--split", choices=("test", "valid", "train"), default="test",
                    help="whose voices read: the held-out test split's (default), the validation split's, to choose "
                    "an operating threshold on, or (with --windows) the training split's")
    rn.add_argument("--homophones", action="store_true",
                    help="keep sentences with words that sound like digits (to, too, for, won, ate, oh): false "
                    "alarms as read speech gives them (still no digit word or numeral)")
    rn.add_argument("--windows", type=_ranged(int, 1), default=0, metavar="N",
                    help="instead of long files, N one-second windows cut at random from the speech, as _unknown_ "
                    "clips to train on (`train DATA --extra-train OUT`)")
    rn.add_argument("--seed", type=int, default=0)
    rn.add_argument("--quiet", action="store_true", help="no progress bar")
    rn.set_defaults(func=cmd_data_running)

    im = data_sub.add_parser("import", help="a real corpus (Speech Commands, a folder per word, a CSV) as a data directory",
                             description="Read a corpus in one of three layouts and write it as `data synth` "
                             "writes a data directory (16 kHz one-second WAVs, manifest.csv with speaker-disjoint "
                             "splits, data.json), so that train, eval and `train --extra-train` take it. Digit "
                             "words keep their names, other words become _unknown_, background noise _silence_.")
    im.add_argument("src", help="the corpus: a Speech Commands folder, a folder of word folders (optionally under "
                    "train/valid/test folders), or a CSV file with path and label columns")
    _writes(im, "output data directory", quiet=True)
    im.add_argument("--layout", choices=("speech-commands", "folders", "csv"),
                    help="the corpus's layout (default: csv for a file, speech-commands when validation_list.txt "
                    "or _background_noise_ is there, else folders)")
    im.add_argument("--map", default="digits", metavar="digits|FILE.csv",
                    help="words to the task's labels: digits (default: digit words keep their names, the rest "
                    "_unknown_), or a CSV of word,label rows for other words")
    sp = im.add_argument_group("splits (default: the corpus's own lists, split folders or CSV column, else a hash "
                               "of the speaker)")
    sp.add_argument("--split", choices=("train", "valid", "test"),
                    help="put every clip in this split (a corpus to validate or test on only)")
    sp.add_argument("--valid-speakers", metavar="S1,S2", default="",
                    help="these speakers' clips are the valid split, the rest train (with --test-speakers: test)")
    sp.add_argument("--test-speakers", metavar="S1,S2", default="", help="these speakers' clips are the test split")
    sp.add_argument("--valid-paths", metavar="GLOB", action="append", default=[],
                    help="clips whose path matches this glob (e.g. '*view-glass*') are the valid split "
                    "(repeatable; for corpora without speaker names)")
    sp.add_argument("--test-paths", metavar="GLOB", action="append", default=[],
                    help="clips whose path matches this glob are the test split (repeatable)")
    im.set_defaults(func=cmd_data_import)

    au = data_sub.add_parser("augment", help="augmented copies of a data set's training clips (rooms, real "
                             "backgrounds, microphones, telephone band)",
                             description="Write a data directory with SRC's clips and augmented copies of each "
                             "training clip: a random time shift and level, a microphone's low cut, a shoebox "
                             "room (pyroomacoustics), a background from --noise's _silence_ clips at a random SNR, "
                             "the telephone band. Seeded clip by clip; data.json and each row record the steps.")
    au.add_argument("src", help="data directory to augment (e.g. a `data import`ed corpus)")
    _writes(au, "output data directory", quiet=True)
    au.add_argument("--noise", metavar="DIR", help="data directory whose _silence_ training clips are the "
                    "backgrounds (e.g. `data import` of real background noise); default: generated noise")
    au.add_argument("--copies", type=_ranged(int, 1, 100), default=4, help="copies per training clip (default 4)")
    au.add_argument("--noise-p", type=_ranged(float, 0, 1), default=0.8,
                    help="share of copies with a background (default 0.8)")
    au.add_argument("--snr", default="0,20", metavar="LOW,HIGH", help="background SNR range in dB (default 0,20)")
    au.add_argument("--reverb", type=_ranged(float, 0, 1), default=0.5, help="share of copies in a room (default 0.5)")
    au.add_argument("--telephone", type=_ranged(float, 0, 1), default=0.2,
                    help="share of copies through the telephone band (default 0.2)")
    au.add_argument("--seed", type=int, default=0)
    au.add_argument("--jobs", type=_ranged(int, 1), default=None, help="worker processes (default: all cores)")
    au.set_defaults(func=cmd_data_augment)

    mi = data_sub.add_parser("mine", help="hard negatives: the other-word clips a model takes for a keyword",
                             description="Score SRC's _unknown_ clips (e.g. `data running --split train --windows N`) "
                             "with MODEL and write those whose top posterior is a keyword at --threshold or above "
                             "as a data directory, to train the next model on (`train ... --extra-train OUT`).")
    mi.add_argument("model", help="model directory (model.onnx + model.json)")
    mi.add_argument("src", help="data directory whose _unknown_ clips are scored")
    _writes(mi, "output data directory", quiet=True)
    mi.add_argument("--threshold", type=_ranged(float, 0, 1, above=True), default=0.5,
                    help="posterior at which a clip counts as firing (default 0.5)")
    mi.add_argument("--split", default="train", choices=("train", "valid", "test"), help="SRC's split (default train)")
    mi.set_defaults(func=cmd_data_mine)

    t = verb("train", "train a model from the zoo on a data directory")
    t.add_argument("data", help="data directory made by `edge-asr data synth`")
    _writes(t, "run directory to write (best.pt, train.json)", quiet=True)
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
                        "over these sets")
    t.add_argument("--net", default="conv1d", help="conv1d (default) or mlp")
    t.add_argument("--epochs", type=COUNT, default=40)
    t.add_argument("--batch-size", type=COUNT, default=64)
    t.add_argument("--lr", type=_ranged(float, 0, above=True), default=3e-3, help="peak learning rate (one-cycle schedule)")
    t.add_argument("--patience", type=COUNT, default=8, help="early stop after this many epochs without gain")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--n-mels", type=COUNT, default=40, help="mel bins (default 40)")
    t.add_argument("--fmax", type=_ranged(float, 0, above=True), default=7600.0, help="highest mel frequency in Hz (default 7600)")
    t.add_argument("--n-mfcc", type=_ranged(int, 0), default=0, help="cepstral coefficients per frame; 0: log-mel (default)")
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
    t.add_argument("--distill-temperature", type=_ranged(float, 0, above=True), default=None,
                   help="softmax temperature of the distillation (default 2)")
    t.add_argument("--threads", type=_ranged(int, 0), default=0,
                   help="torch threads per process (default: torch's choice; 1 with --nproc above 1)")
    t.add_argument("--resume", action="store_true",
                   help="continue the stopped run at --out from its last checkpoint (OUT.incomplete), with the "
                        "same settings and data; --nproc may differ")
    d = t.add_argument_group("data-parallel training (torch.distributed, gloo; --batch-size is the global batch)")
    d.add_argument("--nproc", type=COUNT, default=1, help="worker processes on this node (default 1: no workers)")
    d.add_argument("--nnodes", type=COUNT, default=1, help="machines in the run, each started with the same command")
    d.add_argument("--node-rank", type=_ranged(int, 0), default=0, help="this machine's rank, 0 to --nnodes - 1; "
                   "node 0 hosts the rendezvous and writes the run")
    d.add_argument("--master-addr", default="127.0.0.1", help="node 0's address, reachable from every node")
    d.add_argument("--master-port", type=_ranged(int, 1, 65535), default=29500, help="a free TCP port on node 0 (default 29500)")
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
    q.add_argument("--weight-bits", type=_ranged(int, 2), default=4, help="weight width (default 4)")
    q.add_argument("--act-bits", type=_ranged(int, 2), default=4, help="width after each ReLU (default 4)")
    q.add_argument("--bias-bits", type=_ranged(int, 4), default=16,
                   help="bias width, on the accumulator's grid (default 16)")
    q.add_argument("--first-last-bits", type=_ranged(int, 2), default=None,
                   help="weight width of the first and last layer (default: --weight-bits)")
    q.add_argument("--init", metavar="RUN",
                   help="start from this float run or model directory (its net, front end and weights, "
                        "BatchNorm folded in); recommended, with a lower --lr such as 1e-3")
    t.set_defaults(func=cmd_train)

    e = verb("export", "export a training run to ONNX + model.json, checked against PyTorch")
    e.add_argument("run", help="run directory made by `edge-asr train`")
    _writes(e, "model directory to write", quiet=True)
    e.add_argument("--data", help="data directory for the parity check (default: the one trained on)")
    e.add_argument("--name", help="model name recorded in model.json (default: the --out folder name)")
    e.add_argument("--opset", type=_ranged(int, 13), default=13, help="ONNX opset (>= 13, default 13)")
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
    v.add_argument("--target-fa-per-hour", type=_ranged(float, 0, above=True), default=1.0,
                   help="false alarms per hour the operating point may reach (default 1)")
    v.add_argument("--target-fire-rate", type=_ranged(float, 0, 1), default=None, metavar="R",
                   help="and at most this share of the split's other-word clips may fire (e.g. 0.02); default: "
                   "no bound")
    v.add_argument("--set-threshold", action="store_true",
                   help="write the operating point's threshold into model.json (recognize's default); only on "
                   "validation data and a running set of validation voices")
    v.add_argument("--report", metavar="FILE.html", help="with --running: an HTML report with the DET curve")
    v.set_defaults(func=cmd_eval)

    c = verb("convert", "convert a (Q)ONNX model to an hls4ml dataflow design with design.json")
    c.add_argument("model", help="model directory (model.onnx + model.json) or a bare .onnx file")
    _writes(c, "design directory to write")
    c.add_argument("--board", default="pynq-z2", choices=["pynq-z2", "zcu104", "none"],
                   help="pynq-z2: board project (VivadoAccelerator); zcu104/none: HLS IP only (default pynq-z2)")
    c.add_argument("--io", default="stream", choices=["stream", "parallel"], help="dataflow io type (default stream)")
    c.add_argument("--reuse", type=COUNT, default=None,
                   help="one reuse factor for every layer (above 1 the Resource strategy); default: the fit "
                        "chooses each layer's strategy and reuse factor to fit the board")
    c.add_argument("--budget", type=_ranged(float, 0, 1, above=True), default=0.7,
                   help="share of the board's DSP, BRAM, LUT and FF the design may use (default 0.7)")
    c.add_argument("--bits", type=_ranged(int, 4, 32), default=None,
                   help="width of activations and weights (default 16; for a board, the widest of 16, 14, 12, 10 "
                   "and 8 whose design fits it)")
    c.add_argument("--clock-ns", type=_ranged(float, 0, 1000, above=True), default=10.0, help="clock period in ns (default 10: 100 MHz)")
    c.add_argument("--calib", help="calibration inputs: a data directory, a folder of audio, or X.npy; "
                   "without it activations get a default 6 integer bits")
    c.add_argument("--config", help="hls4ml-style YAML (LayerName/Model sections) overriding chosen types")
    c.set_defaults(func=cmd_convert)

    co = verb("cost", "the design's estimated resources, interval and latency per layer, against its board")
    co.add_argument("design", help="design directory")
    co.add_argument("--budget", type=_ranged(float, 0, 1, above=True), default=None, help="share of the board (default: the one it was fit to)")
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
    vf.add_argument("--min-agreement", type=_ranged(float, 0), default=0.99, help="exit 1 below this top-1 agreement")
    vf.add_argument("--bitexact", action="store_true",
                    help="also run the bit-exact simulator on the same inputs and count values whose bits "
                    "differ from C-sim (exit 1 on any)")
    vf.add_argument("--max-products", type=COUNT, default=None,
                    help="with --against rtl: skip kernels with more constant products (their builds take minutes)")
    vf.add_argument("--json", action="store_true", help="print one JSON object")
    vf.set_defaults(func=cmd_verify)

    rt = verb("rtl", "Verilog of a design's kernels (da4ml), from design.json; no vendor tools")
    rt.add_argument("design", help="design directory made by `edge-asr convert`")
    _writes(rt, "folder to write (one folder of Verilog per kernel, rtl.json, manifest.json)")
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
    gv.add_argument("--wild", type=_ranged(int, 0), default=0, help="also add this many out-of-range random inputs")
    _writes(gv, "vector folder, e.g. sim/vectors/kws-digits")
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
    r.add_argument("--stride-ms", "--stride", type=_ranged(float, 10, 1000), default=100.0,
                   help="run the model every this many ms (default 100)")
    r.add_argument("--threshold", type=_ranged(float, 0, 1, above=True), default=None,
                   help="smoothed posterior to emit a word (default: the model's operating threshold in model.json, "
                   "chosen for a false-alarm rate by `eval --set-threshold`; 0.55 without one)")
    r.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    r.set_defaults(func=cmd_recognize)

    bu = verb("bundle", "gather what a board needs (bitstream, hwh, design.json, features) into a verified folder")
    bu.add_argument("design", help="design directory")
    _writes(bu, "bundle directory to write")
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
