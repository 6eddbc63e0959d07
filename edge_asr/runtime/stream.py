"""A recognition stream: its audio front end, pending windows and decision state.

Shaped like a sherpa-onnx stream: `accept_waveform(rate, samples)` any number of times,
`input_finished()` at the end. The recognizer that made it decodes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..frontend.streaming import StreamingFeatures
from ..sim.blas import one_blas_thread


@dataclass
class Event:
    """A word heard: its label, the window it was decided on (seconds into the audio), and
    its smoothed posterior."""

    word: str
    start: float
    end: float
    score: float


class LatencyHistogram:
    """Decision latencies in constant memory: log-spaced bins from 1 us to 100 s, 64 per
    decade (percentiles within 4 %), so a 10-hour stream does not keep 360,000 floats."""

    EDGES = np.logspace(-6, 2, 8 * 64 + 1)

    def __init__(self):
        self.counts = np.zeros(len(self.EDGES) + 1, np.int64)  # [under, bins..., over]
        self.n = 0

    def add(self, seconds: float) -> None:
        """Count one latency, in seconds."""
        self.counts[int(np.searchsorted(self.EDGES, seconds, side="right"))] += 1
        self.n += 1

    def __len__(self) -> int:
        return self.n

    def percentile(self, q: float) -> float:
        """The q-th percentile in seconds (a bin's upper edge), 0 when empty."""
        if not self.n:
            return 0.0
        k = int(np.searchsorted(np.cumsum(self.counts), q / 100 * self.n, side="left"))
        return float(self.EDGES[min(k, len(self.EDGES) - 1)])


@dataclass
class Stream:
    """One audio stream's state: the streaming front end, the windows waiting for the
    model, and the decisions so far. Made by `Recognizer.create_stream()`; the recognizer
    that made it decodes it and reads its result.

    Attributes:
        features: the streaming front end.
        queue: windows waiting for the model: (features, start s, end s, arrival time).
        history: the last posteriors, for smoothing.
        events: the words emitted so far (Event).
        latencies: chunk arrival to decision, per window (LatencyHistogram).
        samples_in: samples fed to the front end at the model's rate (the end's padding included).
        audio_seconds: seconds of audio accepted, at the rate each chunk came in.
        compute_seconds: host time spent on this stream.
        finished: input_finished() was called.
        last_word, last_time: the last word emitted (label index) and when its window ended.
    """

    features: StreamingFeatures
    sample_rate: int
    stride_frames: float = 10.0
    tail_ms: float = 500.0
    lead_samples: int = 0                              # silence fed before the audio; times exclude it
    _resampler: object = None
    _rate_in: int | None = None
    queue: list = field(default_factory=list)          # (window, start_s, end_s, arrival time)
    history: list = field(default_factory=list)        # recent posteriors
    events: list = field(default_factory=list)
    latencies: LatencyHistogram = field(default_factory=LatencyHistogram)  # chunk arrival -> decision
    samples_in: int = 0
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0
    finished: bool = False
    _next_decision: int = 0                            # frames_seen at which the next window is taken
    last_word: int | None = None                       # index of the last word emitted, and when it ended
    last_time: float = -1e9

    def __post_init__(self):
        # frames_seen stays below one window here, so the lead alone takes no decision
        self.features.accept(np.zeros(self.lead_samples, np.float32))

    def accept_waveform(self, sample_rate: int, samples) -> None:
        """Append audio: float samples at any rate (resampled to the model's), any chunk size.

        Raises InputError after input_finished(), or for NaN/Inf samples."""
        if self.finished:
            raise InputError("stream already finished; create a new stream")
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not np.isfinite(x).all():
            raise InputError("audio chunk contains NaN or Inf samples")
        self.audio_seconds += x.size / sample_rate
        t0 = time.perf_counter()
        if sample_rate != self.sample_rate:
            if self._rate_in != sample_rate:
                import soxr
                self._resampler = soxr.ResampleStream(sample_rate, self.sample_rate, 1, dtype="float32")
                self._rate_in = sample_rate
            x = self._resampler.resample_chunk(x)
        with one_blas_thread():  # the per-frame front end's small products: see blas.py
            self._push(x, t0)
        self.compute_seconds += time.perf_counter() - t0

    def _push(self, x: np.ndarray, arrival: float) -> None:
        f = self.features
        cfg = f.cfg
        stride = max(1, int(round(self.stride_frames)))
        self.samples_in += x.size
        # Feed exactly up to each decision frame, so that decisions fall on the same frames
        # whatever the chunk sizes (a pipe's partial reads included).
        while True:
            target = max(cfg.clip_frames, self._next_decision)
            need = f.samples_until(target)
            f.accept(x[:need])
            x = x[need:]
            if f.frames_seen < target:
                return
            start = (f.window_start_sample - self.lead_samples) / cfg.sample_rate
            self.queue.append((f.window(), max(start, 0.0), start + cfg.clip_seconds, arrival))
            self._next_decision = target + stride

    def input_finished(self) -> None:
        """End of audio: pad a short clip to one window, and add a little silence."""
        if self.finished:
            return
        cfg = self.features.cfg
        pad = int(self.tail_ms * cfg.sample_rate / 1000)
        if self.features.frames_seen < cfg.clip_frames:
            missing = (cfg.clip_frames - self.features.frames_seen - 1) * cfg.hop_length + cfg.win_length
            pad = max(pad, missing)
        self._push(np.zeros(pad, np.float32), time.perf_counter())
        self.finished = True

    def reset(self) -> None:
        """Forget the decisions so far (events, smoothing history, queued windows), keep the
        audio position and the front end's frames; the same word is still not emitted again
        within repeat_ms of its last emission. See Recognizer.reset_stream."""
        self.queue.clear()
        self.history.clear()
        self.events.clear()
