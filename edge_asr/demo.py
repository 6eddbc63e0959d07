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
    from .hw.cost import cost_record
    from .hw.cost_check import error_line, model_error
    from .ir.design import Design
    from .resources import cache_root
    from .runtime.backends import get_backend
    from .runtime.recognizer import Recognizer
    from .sim.engine import simulate
    t_start = time.time()
    info = load_model_dir(model_dir)
    folder = Path(examples) if examples else model_dir / "examples"
    if not examples and not folder.is_dir():
        # a model without clips of its own (kws-digits-w4a4) shares the keyword spotter's,
        # when it has its labels
        from .resources import shipped_model
        spotter = shipped_model()
        if load_model_dir(spotter).labels == info.labels:
            folder = spotter / "examples"
    wavs = sorted(folder.glob("*.wav"))
    if not wavs:
        raise InputError(f"{folder}: no .wav files to classify; pass --examples DIR")
    if not (model_dir / "calib.npy").is_file():
        raise InputError(f"{model_dir}: no calib.npy (calibration inputs) to convert with")
    cache = cache_root()
    design_dir = _design_for(model_dir, cache, log)
    design = Design.load(design_dir)

    # 2. bit-exact check on the calibration windows
    calib = np.load(model_dir / "calib.npy").astype(np.float64)
    sim_res = simulate(design, calib)
    csim = get_backend("csim", design_dir, log=log).run(calib)
    mismatches = int(np.count_nonzero(sim_res.outputs != csim))
    ref = get_backend("onnx", info).run(calib.astype(np.float32))
    agreement = float((sim_res.outputs.argmax(1) == ref.argmax(1)).mean())

    # 3. example clips (offline windows) and a connected-digit stream, through the simulator
    x = features_of_files(wavs, info.feature)
    sim_probs = simulate(design, x).outputs
    rows = []
    for w, p in zip(wavs, sim_probs, strict=True):
        k = int(p.argmax())
        rows.append((w.name, w.name.split("-")[0], info.labels[k], float(p[k])))
    accuracy = float(np.mean([r[1] == r[2] for r in rows]))
    rec = Recognizer.from_design(design_dir, "sim")
    parts = []
    for word in CONNECTED:
        clip = next((w for w in wavs if w.name.startswith(f"{word}-")), None)
        if clip is not None:
            parts += [read_audio(clip, info.feature.sample_rate), np.zeros(4000, np.float32)]
    stream_res = rec.recognize_chunks(np.array_split(np.concatenate(parts), 40)) if parts else None
    hw = cost_record(design)

    out(f"model {info.meta.get('name', model_dir.name)}: {info.meta.get('net')}, {info.meta.get('parameters')} "
        f"parameters; design {design_dir}")
    out(f"{'clip':<46} {'label':<10} {'score':>6}   (fixed point, bit-exact simulator)")
    for name, _, label, score in rows:
        out(f"{name:<46} {label:<10} {score:6.3f}")
    out("")
    out(f"{'example clips correct':<34} {accuracy:.1%} ({sum(r[1] == r[2] for r in rows)} of {len(rows)})")
    out(f"{'top-1 agreement, fixed vs float':<34} {agreement:.1%} on {len(calib)} calibration windows")
    out(f"{'simulator vs C-sim, differing bits':<34} {mismatches} values")
    if stream_res:
        out(f"{'connected digits (streamed, sim)':<34} said '{' '.join(CONNECTED)}' -> heard '{stream_res['text']}'")
        out(f"{'decision latency p50 / p99':<34} {stream_res['latency_ms_p50']:.2f} / "
            f"{stream_res['latency_ms_p99']:.2f} ms   RTF {stream_res['rtf']:.4f}")
    t, a = hw["totals"], hw["available"]
    bits = (design.data.get("calibration") or {}).get("bits")
    out(f"{'FPGA cost, estimated':<34} {'fits' if hw['fits'] else 'does NOT fit'} {hw['board']} within "
        f"{hw['budget']:.0%} at {f'{bits} bits' if bits else 'its trained widths'}: DSP {t['dsp']}/{a['dsp']}, BRAM18 {t['bram18']}/{a['bram18']}, LUT {t['lut']}/{a['lut']}, "
        f"FF {t['ff']}/{a['ff']}")
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
        out(f"{kind + ', test split accuracy':<34} {test_acc:.1%} (held-out voices)")

    report_path = Path(report) if report else cache / "demo" / "report.html"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    figs = _plots(info.meta, design, sim_res.saturation) + [_cost_plot(hw)]
    table = "".join(f"<tr><td>{html.escape(n)}</td><td>{html.escape(lab)}</td><td>{s:.3f}</td></tr>"
                    for n, _, lab, s in rows)
    body = [f"<h1>edge-asr demo: {html.escape(str(info.meta.get('name')))}</h1>",
            f"<p>Design <code>{html.escape(str(design_dir))}</code>; simulator vs C-sim differing values: "
            f"<b>{mismatches}</b>; fixed/float top-1 agreement {agreement:.1%}; example clips correct "
            f"{accuracy:.1%}; FPGA cost estimated from hls4ml's rules, not synthesized: "
            f"{'fits' if hw['fits'] else 'does not fit'} {hw['board']} within {hw['budget']:.0%}, interval "
            f"{hw['interval_us']:.1f} us, latency {hw['latency_us']:.1f} us ({html.escape(error_line())}).</p>",
            f"<table border=1 cellpadding=3><tr><th>clip</th><th>label</th><th>score</th></tr>{table}</table>"]
    if stream_res:
        body.append(f"<p>Connected digits: said <b>{' '.join(CONNECTED)}</b>, heard <b>{stream_res['text']}</b>; "
                    f"latency p50 {stream_res['latency_ms_p50']:.2f} ms, p99 {stream_res['latency_ms_p99']:.2f} ms, "
                    f"RTF {stream_res['rtf']:.4f}.</p>")
    for title, png in figs:
        body.append(f"<h2>{html.escape(title)}</h2><img src='data:image/png;base64,{png}'>")
    write_text_atomic(report_path, "<!doctype html><html><head><meta charset='utf-8'><title>edge-asr demo</title>"
                      "</head><body style='font-family:sans-serif'>" + "".join(body) + "</body></html>\n")
    out(f"report: {report_path}   ({time.time() - t_start:.1f} s)")
    return 0 if mismatches == 0 else 1



