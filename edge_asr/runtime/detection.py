"""Keyword-spotting measures on streamed audio: false alarms per hour, miss rate, a DET curve.

The recognizer's decision (smoothed posterior at or over a threshold, then a refractory
time) depends on the threshold only through that comparison, so the model runs once per
file and the decisions are replayed for every threshold of a sweep (`replay`). The
recognizer itself takes its decisions with the same `decision_step`, so a sweep's point
at the recognizer's threshold is what `recognize` emits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .stream import Event

NON_WORDS = {"_unknown_", "_silence_"}
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.30, 1.0, 0.01))
BATCH = 512  # windows per backend call: bounds memory on hour-long files


@dataclass
class DecisionState:
    """What a decision remembers: the recent posteriors and the last word emitted."""

    history: list = field(default_factory=list)
    last_word: int | None = None
    last_time: float = -1e9


def smooth_step(state, p: np.ndarray, labels: list[str], cfg) -> tuple[int | None, float]:
    """Add a window's posteriors to `state.history`; returns the word on top of the smoothed
    posteriors (label index, None when only non-words are left) and its smoothed score. It
    does not depend on the threshold."""
    state.history.append(p)
    del state.history[:-cfg.smooth]
    smoothed = np.mean(state.history, axis=0)
    order = np.argsort(smoothed)[::-1]
    best = next((int(k) for k in order if labels[k] not in NON_WORDS), None)
    return best, float(smoothed[best]) if best is not None else 0.0


def emit_step(state, best: int | None, score: float, start: float, end: float, labels: list[str], cfg,
              threshold: float) -> Event | None:
    """Emit `best` when its score reaches the threshold and the refractory time since the
    last word (longer for the same word) has passed; updates state.last_word/last_time."""
    wait = cfg.repeat_ms if best == state.last_word else cfg.refractory_ms
    if best is not None and score >= threshold and end - state.last_time >= wait / 1000:
        state.last_word, state.last_time = best, end
        return Event(labels[best], round(start, 3), round(end, 3), score)
    return None


def decision_step(state, p: np.ndarray, start: float, end: float, labels: list[str], cfg,
                  threshold: float) -> Event | None:
    """One window's decision (smooth_step, then emit_step). `state` is a DecisionState or a
    Stream (same attributes); `cfg` a RecognizerConfig (smooth, refractory_ms, repeat_ms).
    Returns the word emitted, if any."""
    best, score = smooth_step(state, p, labels, cfg)
    return emit_step(state, best, score, start, end, labels, cfg, threshold)


@dataclass
class Posteriors:
    """The model's posteriors on every window of one streamed file."""

    probs: np.ndarray      # (windows, labels)
    starts: np.ndarray     # seconds into the audio
    ends: np.ndarray
    seconds: float         # the audio's length
    smoothed: tuple | None = None  # (smoothing length, [(best, score)] per window), made by replay


def stream_posteriors(recognizer, audio: np.ndarray, sample_rate: int) -> Posteriors:
    """Stream `audio` through the recognizer's front end (as `recognize` does, lead and tail
    silence included) and run its model on every window, without deciding anything."""
    stream = recognizer.create_stream()
    stream.accept_waveform(sample_rate, audio)
    stream.input_finished()
    queue, probs = stream.queue, []
    for i in range(0, len(queue), BATCH):
        windows = np.stack([q[0] for q in queue[i:i + BATCH]])
        probs.append(recognizer.backend.run(recognizer.code(windows)))
    n = len(recognizer.labels)
    return Posteriors(np.concatenate(probs) if probs else np.zeros((0, n)),
                      np.array([q[1] for q in queue]), np.array([q[2] for q in queue]), audio.size / sample_rate)


def replay(post: Posteriors, labels: list[str], cfg, threshold: float) -> list[Event]:
    """The words the recognizer emits on these posteriors at `threshold`. The smoothing does
    not depend on the threshold: it is done once per file (and smoothing length) and kept
    on `post`, so a sweep over thresholds only repeats emit_step."""
    if post.smoothed is None or post.smoothed[0] != cfg.smooth:
        state = DecisionState()
        post.smoothed = (cfg.smooth, [smooth_step(state, p, labels, cfg) for p in post.probs])
    state, events = DecisionState(), []
    for (best, score), s, e in zip(post.smoothed[1], post.starts, post.ends, strict=True):
        ev = emit_step(state, best, score, float(s), float(e), labels, cfg, threshold)
        if ev is not None:
            events.append(ev)
    return events


def detection_curve(running: list[Posteriors], keywords: list[tuple[Posteriors, str]],
                    others: list[Posteriors], labels: list[str], cfg,
                    thresholds=THRESHOLDS) -> list[dict]:
    """Per threshold: false alarms on running speech (every word emitted there is one) and per
    hour of it; on keyword clips, the share whose word is not emitted (miss rate) and of
    those with another word emitted instead; on other-word clips, the share that emit any
    word (fire rate)."""
    hours = sum(p.seconds for p in running) / 3600
    curve = []
    for t in thresholds:
        fa = sum(len(replay(p, labels, cfg, t)) for p in running)
        misses = wrong = 0
        for p, word in keywords:
            said = {e.word for e in replay(p, labels, cfg, t)}
            misses += word not in said
            wrong += bool(said - {word})
        fired = sum(bool(replay(p, labels, cfg, t)) for p in others)
        curve.append({
            "threshold": t, "false_alarms": fa, "fa_per_hour": fa / hours if hours else None,
            "miss_rate": misses / len(keywords) if keywords else None,
            "other_word_rate": wrong / len(keywords) if keywords else None,
            "fire_rate": fired / len(others) if others else None})
    return curve


def operating_point(curve: list[dict], target_fa_per_hour: float, target_fire_rate: float | None = None) -> dict:
    """The curve's point with the fewest misses among those within the false-alarm target
    and, when given, with at most `target_fire_rate` of the other-word clips firing (the
    lowest such threshold); the highest threshold when none is."""
    ok = [c for c in curve if c["fa_per_hour"] is not None and c["fa_per_hour"] <= target_fa_per_hour
          and (target_fire_rate is None or c["fire_rate"] is None or c["fire_rate"] <= target_fire_rate)]
    if not ok:
        return dict(curve[-1], meets_target=False)
    best = min(ok, key=lambda c: (c["miss_rate"] if c["miss_rate"] is not None else 0, c["threshold"]))
    return dict(best, meets_target=True)
