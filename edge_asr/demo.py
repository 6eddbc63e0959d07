"""`edge-asr demo`: the README's main job, on the shipped model.

1. convert models/kws-digits for pynq-z2 (cached under the edge-asr cache folder);
2. check the bit-exact simulator against hls4ml's C simulation on the shipped
   calibration windows (and their agreement with the float model);
3. classify the shipped example clips and stream a connected-digit example through the
   simulator backend;
4. print a short table, and write an HTML report with plots to a path it prints.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import refuse_existing, write_text_atomic
from .data.loading import features_of_files
from .errors import InputError
from .frontend.audio import read_audio
from .runtime.modeldir import load_model_dir

CONNECTED = ["seven", "three", "nine", "one"]


def _design_for(model_dir: Path, cache: Path, log) -> Path:
    from .hw.convert import ConvertOptions, convert
    from .ir.manifest import ManifestError, verify_manifest
    h = hashlib.sha256()
    for name in ("model.onnx", "model.json", "calib.npy", "model_qonnx.onnx"):
        if (model_dir / name).is_file():  # model_qonnx.onnx: a quantization-aware model's types
            h.update((model_dir / name).read_bytes())
    design = cache / "designs" / f"{model_dir.name}-{h.hexdigest()[:12]}"
    try:
        verify_manifest(design, "design")
        return design
    except ManifestError:
        pass
    log(f"converting {model_dir} for pynq-z2 (once) ...")
    convert(model_dir, design, ConvertOptions(calib=str(model_dir / "calib.npy")), force=True, log=lambda m: None)
    return design


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _plots(meta: dict, design, saturation: dict) -> list[tuple[str, str]]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = []
    conf = meta.get("metrics", {}).get("test_confusion")
    if conf:
        c = np.array(conf, float)
        c = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=(6.5, 5.5))
        im = ax.imshow(c, cmap="Blues", vmin=0, vmax=1)
        labels = [label.strip("_")[:7] for label in meta["labels"]]
        ax.set_xticks(range(len(labels)), labels, rotation=60)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"test split confusion (rows normalised), accuracy {meta['metrics']['test_accuracy']:.1%}")
        fig.colorbar(im, ax=ax)
        out.append(("Confusion matrix of the float model on the held-out-voice test split", _png(fig)))
    names = [layer.name for layer in design.layers]
    widths = [layer.output_type.width if layer.output_type else 0 for layer in design.layers]
    ints = [layer.output_type.integer if layer.output_type else 0 for layer in design.layers]
    sat = [saturation.get(n, 0) for n in names]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    a1.bar(range(len(names)), widths, label="width")
    a1.bar(range(len(names)), ints, label="integer bits")
    a1.set_ylabel("bits")
    a1.legend()
    a1.set_title("output type of every layer")
    a2.bar(range(len(names)), sat, color="tab:red")
    a2.set_ylim(0, max(1, max(sat) * 1.15))
    if not any(sat):
        a2.text(0.5, 0.5, "no value reached the edge of its type", ha="center", transform=a2.transAxes)
    a2.set_ylabel("values at type edge")
    a2.set_title("saturation/overflow counts on the calibration windows")
    a2.set_xticks(range(len(names)), names, rotation=70, fontsize=8)
    out.append(("Per-layer types and overflow counts", _png(fig)))
    return out


def _cost_plot(hw: dict) -> tuple[str, str]:
    """Each layer's share of each resource the design uses (the cost model's estimate)."""
    import matplotlib.pyplot as plt
    layers = [c for c in hw["layers"] if any(c[k] for k in ("dsp", "bram18", "lut", "ff"))]
    keys = ("dsp", "bram18", "lut", "ff")
    fig, ax = plt.subplots(figsize=(9, 4))
    bottom = np.zeros(len(keys))
    for c in layers:
        share = np.array([c[k] / hw["available"][k] if hw["available"] else 0 for k in keys])
        ax.bar(range(len(keys)), share, bottom=bottom, label=c["name"])
        bottom += share
    ax.axhline(hw["budget"], color="k", ls="--", lw=1, label=f"budget {hw['budget']:.0%}")
    ax.set_xticks(range(len(keys)), [k.upper() for k in keys])
    ax.set_ylabel(f"share of {hw['board']}")
    ax.legend(fontsize=6, ncol=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.set_title("each layer's share of each resource (estimated from hls4ml's rules, not synthesized)")
    return "Estimated resources by layer", _png(fig)


def _example_clips(model_dir: Path, info, examples: str | None) -> list[Path]:
    """The .wav clips the demo classifies: --examples, the model's own, or (for a model with
    none, such as kws-digits-w4a4) the keyword spotter's when the labels are the same."""
    folder = Path(examples) if examples else model_dir / "examples"
    if not examples and not folder.is_dir():
        from .resources import shipped_model
        spotter = shipped_model()
        if load_model_dir(spotter).labels == info.labels:
            folder = spotter / "examples"
    wavs = sorted(folder.glob("*.wav"))
    if not wavs:
        raise InputError(f"{folder}: no .wav files to classify; pass --examples DIR")
    return wavs


@dataclass
class DemoRun:
    """What the demo measured: the design, the bit-exact check, the clips and the stream."""
    info: object
    design_dir: Path
    design: object
    calib: np.ndarray
    saturation: dict
    mismatches: int
    agreement: float
    rows: list[tuple[str, str, str, float]]  # clip, label, predicted, score
    stream: dict | None
    hw: dict

    @property
    def accuracy(self) -> float:
        """Share of the example clips classified as their label."""
        return float(np.mean([r[1] == r[2] for r in self.rows]))


def _run(model_dir: Path, wavs: list[Path], cache: Path, log) -> DemoRun:
    """Convert (cached), check the simulator against C-sim on the calibration windows, and run
    the clips and a connected-digit stream through the simulator."""
    from .hw.cost import cost_record
    from .ir.design import Design
    from .runtime.backends import get_backend
    from .runtime.recognizer import Recognizer
    from .sim.engine import simulate
    info = load_model_dir(model_dir)
    design_dir = _design_for(model_dir, cache, log)
    design = Design.load(design_dir)
    calib = np.load(model_dir / "calib.npy").astype(np.float64)
    sim_res = simulate(design, calib)
    csim = get_backend("csim", design_dir, log=log).run(calib)
    ref = get_backend("onnx", info).run(calib.astype(np.float32))
    sim_probs = simulate(design, features_of_files(wavs, info.feature)).outputs
    rows = []
    for w, p in zip(wavs, sim_probs, strict=True):
        k = int(p.argmax())
        rows.append((w.name, w.name.split("-")[0], info.labels[k], float(p[k])))
    parts = []
    for word in CONNECTED:
        clip = next((w for w in wavs if w.name.startswith(f"{word}-")), None)
        if clip is not None:
            parts += [read_audio(clip, info.feature.sample_rate), np.zeros(4000, np.float32)]
    rec = Recognizer.from_design(design_dir, "sim")
    stream = rec.recognize_chunks(np.array_split(np.concatenate(parts), 40)) if parts else None
    return DemoRun(info=info, design_dir=design_dir, design=design, calib=calib, saturation=sim_res.saturation,
                   mismatches=int(np.count_nonzero(sim_res.outputs != csim)),
                   agreement=float((sim_res.outputs.argmax(1) == ref.argmax(1)).mean()), rows=rows, stream=stream,
                   hw=cost_record(design))


def _print_summary(run: DemoRun, model_dir: Path, out) -> None:
    """The table on the terminal."""
    from .hw.cost_check import model_error
    info, hw, stream = run.info, run.hw, run.stream
    out(f"model {info.meta.get('name', model_dir.name)}: {info.meta.get('net')}, {info.meta.get('parameters')} "
        f"parameters; design {run.design_dir}")
    out(f"{'clip':<46} {'label':<10} {'score':>6}   (fixed point, bit-exact simulator)")
    for name, _, label, score in run.rows:
        out(f"{name:<46} {label:<10} {score:6.3f}")
    out("")
    out(f"{'example clips correct':<34} {run.accuracy:.1%} ({sum(r[1] == r[2] for r in run.rows)} of {len(run.rows)})")
    out(f"{'top-1 agreement, fixed vs float':<34} {run.agreement:.1%} on {len(run.calib)} calibration windows")
    out(f"{'simulator vs C-sim, differing bits':<34} {run.mismatches} values")
    if stream:
        out(f"{'connected digits (streamed, sim)':<34} said '{' '.join(CONNECTED)}' -> heard '{stream['text']}'")
        out(f"{'decision latency p50 / p99':<34} {stream['latency_ms_p50']:.2f} / "
            f"{stream['latency_ms_p99']:.2f} ms   RTF {stream['rtf']:.4f}")
    t, a = hw["totals"], hw["available"]
    bits = (run.design.data.get("calibration") or {}).get("bits")
    out(f"{'FPGA cost, estimated':<34} {'fits' if hw['fits'] else 'does NOT fit'} {hw['board']} within "
        f"{hw['budget']:.0%} at {f'{bits} bits' if bits else 'its trained widths'}: DSP {t['dsp']}/{a['dsp']}, "
        f"BRAM18 {t['bram18']}/{a['bram18']}, LUT {t['lut']}/{a['lut']}, FF {t['ff']}/{a['ff']}")
    out(f"{'estimated FPGA latency / interval':<34} {hw['latency_cycles']} / {hw['interval_cycles']} cycles = "
        f"{hw['latency_us']:.1f} / {hw['interval_us']:.1f} us at {1000 / hw['clock_ns']:.0f} MHz "
        "(from hls4ml's rules, not synthesized)")
    err = model_error()
    out(f"{'cost model error, measured':<34} median LUT {err['lut']['median']:.0%}, FF {err['ff']['median']:.0%}, "
        f"DSP {err['dsp']['median']:.0%}, latency {err['latency']['median']:.0%} against {err['lut']['n']} published "
        "Vivado HLS reports")
    test_acc = info.meta.get("metrics", {}).get("test_accuracy")
    if test_acc is not None:
        kind = "quantized model" if info.meta.get("quantization") else "float model"
        out(f"{kind + ', test split accuracy':<34} {test_acc:.1%} (held-out synthetic voices)")
    for line in real_speech_lines(info.meta):
        out(line)


def real_speech_lines(meta: dict) -> list[str]:
    """The model's recorded real-speaker figures (model.json's `real_speech`, written by
    benchmarks/real_speech.py --record), for beside the example clips, which are synthetic."""
    real = meta.get("real_speech")
    if not isinstance(real, dict) or not isinstance(real.get("sets"), dict):
        return ["real speakers                      no figures recorded for this model: the example clips above "
                "are synthetic voices, not a measure of real speech"]
    lines = [f"real speakers (recorded; the clips above are synthetic): {real.get('measured', '')}"]
    for name, fig in real["sets"].items():
        parts = []
        if fig.get("digits_right") is not None:
            parts.append(f"digits right {fig['digits_right']:.1%} of {fig.get('digits')}")
        if fig.get("others_taken_for_digit") is not None:
            parts.append(f"other words taken for a digit {fig['others_taken_for_digit']:.1%} of {fig.get('others')}")
        lines.append(f"  {name:<32} " + ", ".join(parts))
    if real.get("fa_per_hour") is not None:
        lines.append(f"  {'running speech':<32} {real['fa_per_hour']:.1f} false alarms per hour")
    if real.get("connected_wer") is not None:
        lines.append(f"  {'connected digits':<32} word error rate {real['connected_wer']:.3f}")
    return lines


def _write_report(run: DemoRun, report_path: Path) -> None:
    """The HTML report: the summary, the clips, the plots."""
    from .hw.cost_check import error_line
    hw, stream = run.hw, run.stream
    figs = _plots(run.info.meta, run.design, run.saturation) + [_cost_plot(hw)]
    table = "".join(f"<tr><td>{html.escape(n)}</td><td>{html.escape(lab)}</td><td>{s:.3f}</td></tr>"
                    for n, _, lab, s in run.rows)
    body = [f"<h1>edge-asr demo: {html.escape(str(run.info.meta.get('name')))}</h1>",
            f"<p>Design <code>{html.escape(str(run.design_dir))}</code>; simulator vs C-sim differing values: "
            f"<b>{run.mismatches}</b>; fixed/float top-1 agreement {run.agreement:.1%}; example clips correct "
            f"{run.accuracy:.1%}; FPGA cost estimated from hls4ml's rules, not synthesized: "
            f"{'fits' if hw['fits'] else 'does not fit'} {hw['board']} within {hw['budget']:.0%}, interval "
            f"{hw['interval_us']:.1f} us, latency {hw['latency_us']:.1f} us ({html.escape(error_line())}).</p>",
            f"<table border=1 cellpadding=3><tr><th>clip</th><th>label</th><th>score</th></tr>{table}</table>"]
    if stream:
        body.append(f"<p>Connected digits: said <b>{' '.join(CONNECTED)}</b>, heard <b>{stream['text']}</b>; "
                    f"latency p50 {stream['latency_ms_p50']:.2f} ms, p99 {stream['latency_ms_p99']:.2f} ms, "
                    f"RTF {stream['rtf']:.4f}.</p>")
    body.append("<h2>Real speakers</h2><pre>" + html.escape("\n".join(real_speech_lines(run.info.meta))) + "</pre>")
    for title, png in figs:
        body.append(f"<h2>{html.escape(title)}</h2><img src='data:image/png;base64,{png}'>")
    report_path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(report_path, "<!doctype html><html><head><meta charset='utf-8'><title>edge-asr demo</title>"
                      "</head><body style='font-family:sans-serif'>" + "".join(body) + "</body></html>\n")


def demo(model_dir: Path, examples: str | None = None, report: str | None = None, out=print, log=print,
         force: bool = False) -> int:
    """The main job on a model directory (default: the shipped kws-digits): convert for
    pynq-z2 (cached), check the simulator against C-sim bit for bit, classify and stream the
    example clips through the simulator, print a table and write an HTML report.

    Returns:
        0, or 1 when any output bit of the simulator differs from C-sim.

    Raises:
        InputError: no example clips or calibration inputs; OutputExistsError: --report
        exists without force; CsimError: the C simulation does not build.
    """
    if report is not None:  # the user's file: never replaced without --force (the cached one is ours)
        refuse_existing(Path(report), force, "--report")
    from .resources import cache_root
    t_start = time.time()
    wavs = _example_clips(model_dir, load_model_dir(model_dir), examples)
    if not (model_dir / "calib.npy").is_file():
        raise InputError(f"{model_dir}: no calib.npy (calibration inputs) to convert with")
    cache = cache_root()
    run = _run(model_dir, wavs, cache, log)
    _print_summary(run, model_dir, out)
    report_path = Path(report) if report else cache / "demo" / "report.html"
    _write_report(run, report_path)
    out(f"report: {report_path}   ({time.time() - t_start:.1f} s)")
    return 0 if run.mismatches == 0 else 1
