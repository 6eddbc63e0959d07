"""Streamed keyword-spotting figures of a model on data sets (`edge-asr eval --running`).

Clips are streamed whole through a Recognizer, as `recognize` streams a file: a digit clip
is missed when its digit is not emitted; an other-word clip fires when any digit is; every
word emitted on the running-speech set (`edge-asr data running`) is a false alarm. The
model runs once per file; the decisions are replayed over a sweep of thresholds for the
DET curve (runtime/detection.py), and the operating point is the one with the fewest
misses within a false-alarm target.
"""

from __future__ import annotations

from pathlib import Path

from ..atomic import write_text_atomic
from ..data import SILENCE, UNKNOWN
from ..data.loading import progress_bar
from ..data.manifest import read_manifest
from ..errors import InputError
from ..frontend.audio import read_audio
from ..runtime.detection import THRESHOLDS, detection_curve, operating_point, stream_posteriors
from ..runtime.modeldir import read_json, update_model_json


def _posteriors(recognizer, data_dir: Path, rows, progress: bool, what: str) -> list:
    sr = recognizer.feature.sample_rate
    return [stream_posteriors(recognizer, read_audio(data_dir / r.path, sr), sr)
            for r in progress_bar(rows, progress, f"streaming {what}", "file")]


def running_posteriors(recognizer, running_dir: str | Path, progress: bool = True) -> list:
    """The posteriors of every running-speech file (to hand to streamed_figures more than once)."""
    running_dir = Path(running_dir)
    rows = read_manifest(running_dir)
    if not rows:
        raise InputError(f"{running_dir}: no running speech in its manifest; make it with `edge-asr data running`")
    return _posteriors(recognizer, running_dir, rows, progress, "running speech")


def streamed_figures(recognizer, data_dir: str | Path, split: str, running_dir: str | Path,
                     target_fa_per_hour: float = 1.0, progress: bool = True, running: list | None = None,
                     target_fire_rate: float | None = None) -> dict:
    """False alarms per hour on `running_dir`, miss rate on `data_dir`'s digit clips and fire
    rate on its other-word clips, over a sweep of thresholds; the point at the recognizer's
    threshold and the operating point for `target_fa_per_hour`. `running`: the running set's
    posteriors when already computed (running_posteriors).

    Raises:
        InputError: no manifest, an empty split, a running set without files.
    """
    data_dir, running_dir = Path(data_dir), Path(running_dir)
    if target_fa_per_hour <= 0:
        raise InputError(f"--target-fa-per-hour {target_fa_per_hour}: give a rate above 0")
    rows = read_manifest(data_dir, split)
    running_rows = read_manifest(running_dir)
    labels = recognizer.labels
    keyword_rows = [r for r in rows if r.label not in (UNKNOWN, SILENCE)]
    other_rows = [r for r in rows if r.label == UNKNOWN]
    unknown = sorted({r.label for r in keyword_rows} - set(labels))
    if unknown:
        raise InputError(f"{data_dir}: labels {unknown} are not the model's")
    if running is None:
        running = running_posteriors(recognizer, running_dir, progress)
    keywords = list(zip(_posteriors(recognizer, data_dir, keyword_rows, progress, "keyword clips"),
                        [r.label for r in keyword_rows], strict=True))
    others = _posteriors(recognizer, data_dir, other_rows, progress, "other-word clips")
    cfg = recognizer.config
    thresholds = sorted(set(THRESHOLDS) | {round(cfg.threshold, 4)})
    curve = detection_curve(running, keywords, others, labels, cfg, thresholds)
    at = next(c for c in curve if c["threshold"] == round(cfg.threshold, 4))
    by_source = {}
    for source in sorted({r.engine == "human" for r in running_rows}):
        part = [p for p, r in zip(running, running_rows, strict=True) if (r.engine == "human") == source]
        fa = detection_curve(part, [], [], labels, cfg, [cfg.threshold])[0]
        by_source["human prompts" if source else "tts sentences"] = {
            "hours": round(sum(p.seconds for p in part) / 3600, 4), "false_alarms": fa["false_alarms"],
            "fa_per_hour": fa["fa_per_hour"]}
    return {
        "data": str(data_dir), "split": split, "running": str(running_dir),
        "running_hours": round(sum(p.seconds for p in running) / 3600, 4),
        "n_keyword_clips": len(keywords), "n_other_clips": len(others),
        "threshold": cfg.threshold, "at_threshold": at, "running_by_source": by_source,
        "target_fa_per_hour": target_fa_per_hour, "target_fire_rate": target_fire_rate,
        "operating_point": operating_point(curve, target_fa_per_hour, target_fire_rate),
        "det": curve,
    }


def format_streamed(res: dict) -> str:
    """streamed_figures' result as lines for a terminal."""
    at, op = res["at_threshold"], res["operating_point"]

    def share(v) -> str:
        return "-" if v is None else f"{v:.1%}"  # a set without digit (or other-word) clips has none

    def point(c: dict) -> str:
        return (f"threshold {c['threshold']:.2f}: {c['fa_per_hour']:.2f} false alarms per hour, miss rate "
                f"{share(c['miss_rate'])} ({share(c['other_word_rate'])} another digit), other words firing "
                f"{share(c['fire_rate'])}")

    lines = [f"streamed: {res['running_hours']:.2f} h of running speech without digits ({res['running']}), "
             f"{res['n_keyword_clips']} digit and {res['n_other_clips']} other-word clips of {res['data']}",
             "  at the recognizer's " + point(at)]
    for name, s in res["running_by_source"].items():
        lines.append(f"    {name}: {s['false_alarms']} false alarms in {s['hours']:.2f} h")
    fire = res.get("target_fire_rate")
    lines.append(f"  operating point for <= {res['target_fa_per_hour']:g} per hour"
                 + (f" and <= {fire:.1%} of other words firing" if fire is not None else "")
                 + ("" if op["meets_target"] else " (not met at any threshold)") + ": " + point(op))
    return "\n".join(lines)


def check_threshold_sets(data_dir: str | Path, split: str, running_dir: str | Path) -> None:
    """A threshold is chosen on validation only: the split must be `valid` and the running
    set made of validation voices (its data.json says so); InputError otherwise."""
    if split != "valid":
        raise InputError(f"--set-threshold on the {split} split: choose the threshold on validation (--split valid), "
                         "and measure it on test")
    info = Path(running_dir) / "data.json"
    made = read_json(info) if info.is_file() else {}
    if made.get("kind") != "running" or made.get("split") != "valid":
        raise InputError(f"{running_dir}: not a running set of validation voices; make one with "
                         "`edge-asr data running --split valid`")


def record_threshold(model_dir: str | Path, res: dict) -> None:
    """Write the operating point into model.json (`operating_point`: threshold, the target,
    its false alarms per hour and miss rate, and what it was chosen on), atomically."""
    op = res["operating_point"]
    update_model_json(model_dir, lambda meta: meta.update(operating_point={
        "threshold": op["threshold"], "target_fa_per_hour": res["target_fa_per_hour"],
        **({"target_fire_rate": res["target_fire_rate"]} if res.get("target_fire_rate") is not None else {}),
        "meets_target": op["meets_target"], "fa_per_hour": op["fa_per_hour"], "miss_rate": op["miss_rate"],
        "fire_rate": op["fire_rate"],
        "chosen_on": {"data": res["data"], "split": res["split"], "running": res["running"],
                      "running_hours": res["running_hours"]}}))


def record_streamed(model_dir: str | Path, res: dict, name: str | None = None) -> None:
    """Write the streamed figures at the recognizer's threshold into model.json's metrics
    (`<name>_streamed`, name by default the split: false alarms per hour overall and per
    source, miss rate, other words firing, and the sets they were measured on), atomically."""
    at = res["at_threshold"]
    figures = {"threshold": res["threshold"], "fa_per_hour": at["fa_per_hour"], "miss_rate": at["miss_rate"],
               "other_word_rate": at["other_word_rate"], "fire_rate": at["fire_rate"],
               "running_by_source": res["running_by_source"], "data": res["data"], "running": res["running"],
               "running_hours": res["running_hours"], "n_keyword_clips": res["n_keyword_clips"],
               "n_other_clips": res["n_other_clips"]}
    update_model_json(model_dir, lambda meta: meta.setdefault("metrics", {}).update(
        {f"{name or res['split']}_streamed": figures}))


def detection_report(res: dict, out: str | Path) -> Path:
    """An HTML page with the DET curve (miss rate against false alarms per hour over the
    threshold), the recognizer's point and the operating point; written atomically."""
    import base64
    import html
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    curve = [c for c in res["det"] if c["fa_per_hour"] is not None and c["miss_rate"] is not None]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot([c["fa_per_hour"] for c in curve], [100 * c["miss_rate"] for c in curve], ".-", label="DET")
    for key, marker, name in (("at_threshold", "o", "recognizer"), ("operating_point", "s", "operating point")):
        c = res[key]
        ax.plot([c["fa_per_hour"]], [100 * c["miss_rate"]], marker, ms=9,
                label=f"{name}, threshold {c['threshold']:.2f}")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("false alarms per hour (running speech without digits)")
    ax.set_ylabel("miss rate on digit clips (%)")
    ax.axvline(res["target_fa_per_hour"], ls=":", c="gray")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    rows = "".join(f"<tr><td>{c['threshold']:.2f}</td><td>{c['fa_per_hour']:.2f}</td><td>{c['miss_rate']:.1%}</td>"
                   f"<td>{c['fire_rate'] if c['fire_rate'] is None else format(c['fire_rate'], '.1%')}</td></tr>"
                   for c in curve)
    page = (f"<html><head><meta charset='utf-8'><title>edge-asr detection</title></head><body>"
            f"<h1>Keyword detection on streamed audio</h1><pre>{html.escape(format_streamed(res))}</pre>"
            f"<img src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"
            "<table border=1 cellpadding=3><tr><th>threshold</th><th>false alarms / h</th><th>miss rate</th>"
            f"<th>other words firing</th></tr>{rows}</table></body></html>")
    return write_text_atomic(Path(out), page)
