"""Streaming keyword recognition, shaped like sherpa-onnx's streaming API.

    rec = Recognizer.from_model("models/kws-digits")            # or from_design(dir, backend="sim")
    stream = rec.create_stream()
    stream.accept_waveform(16000, samples)                       # any chunk size, any rate
    while rec.is_ready(stream):
        rec.decode_stream(stream)
    rec.get_result(stream)                                       # {"events": [...], "text": "..."}

Every `stride_ms` the model runs on the last window (clip_seconds) of features; the
posteriors are averaged over the last `smooth` runs; a word is emitted when its smoothed
posterior reaches `threshold`, then no word is emitted for `refractory_ms` and the same
word not again for `repeat_ms`. `_unknown_` and `_silence_` are never emitted. The stream
is taken to start after `lead_ms` of silence, so decisions begin one stride into the
audio and a word at the very start is seen alone in a window, as in training.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..frontend.features import FeatureConfig
from ..frontend.streaming import StreamingFeatures
from ..sim.blas import one_blas_thread
from ..sim.fixed import FixedType, cast

NON_WORDS = {"_unknown_", "_silence_"}


@dataclass
class RecognizerConfig:
    # Decision settings chosen on connected digits and single clips spoken by the
    # validation voices (`edge-asr data connected --split valid`), never the test voices.
    stride_ms: float = 100.0
    smooth: int = 5
    threshold: float = 0.55
    refractory_ms: float = 200.0  # after any word, no word for this long
    repeat_ms: float = 1100.0     # the same word again only after this long: a word stays in the window ~1 s
    tail_ms: float = 500.0  # silence appended at the end so a final word is seen whole
    lead_ms: float | None = None  # silence before the start; None: one window less one stride


@dataclass
class Event:
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
    compute_seconds: float = 0.0
    finished: bool = False
    _next_decision: int = 0                            # frames_seen at which the next window is taken
    _last_word: int | None = None
    _last_time: float = -1e9

    def __post_init__(self):
        # frames_seen stays below one window here, so the lead alone takes no decision
        self.features.accept(np.zeros(self.lead_samples, np.float32))

    def accept_waveform(self, sample_rate: int, samples) -> None:
        if self.finished:
            raise InputError("stream already finished; create a new stream")
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not np.isfinite(x).all():
            raise InputError("audio chunk contains NaN or Inf samples")
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


class Recognizer:
    def __init__(self, backend, labels: list[str], feature: FeatureConfig, config: RecognizerConfig | None = None,
                 input_type=None):
        self.backend = backend
        self.labels = labels
        self.feature = feature
        self.config = config or RecognizerConfig()
        self.input_type = input_type  # a design's input FixedType: features are coded here, and only here

    def code(self, windows: np.ndarray) -> np.ndarray:
        """Features -> the exact values of the design's input type (the host's coding).

        Backends get values already on the input grid, so their own conversion (the
        simulator's, C-sim's bridge, the board's DMA packing) changes nothing."""
        return windows if self.input_type is None else cast(windows, self.input_type)

    @classmethod
    def from_model(cls, model_dir: str | Path, config: RecognizerConfig | None = None) -> "Recognizer":
        from .backends.onnx import OnnxBackend
        from .modeldir import load_model_dir
        info = load_model_dir(model_dir)
        return cls(OnnxBackend(info), info.labels, info.feature, config)

    @classmethod
    def from_design(cls, design_dir: str | Path, backend: str = "sim",
                    config: RecognizerConfig | None = None) -> "Recognizer":
        design_dir = Path(design_dir)
        meta_path = design_dir / "model.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        if not meta.get("feature") or not meta.get("labels"):
            raise InputError(f"{design_dir}: the design has no labels/feature configuration (converted from a bare "
                             ".onnx); convert the model directory instead")
        return cls._fixed_point(design_dir, meta, backend, ("sim", "csim"), config)

    @classmethod
    def _fixed_point(cls, folder: Path, meta: dict, backend: str, allowed: tuple[str, ...],
                     config: RecognizerConfig | None) -> "Recognizer":
        """A recognizer over a design.json folder (a design or a bundle) on a fixed-point backend."""
        if backend not in allowed:
            raise InputError(f"unknown backend {backend} for {folder}; use {' or '.join(allowed)}")
        if backend == "sim":
            from .backends.sim import SimBackend
            b = SimBackend(folder)
        elif backend == "csim":
            from ..hw.csim import CsimBackend
            b = CsimBackend(folder)
        else:
            from .backends.pynq import PynqBackend
            b = PynqBackend(folder)
        input_type = FixedType.from_dict(json.loads((folder / "design.json").read_text())["input"]["type"])
        return cls(b, meta["labels"], FeatureConfig.from_dict(meta["feature"]), config, input_type)

    @classmethod
    def from_bundle(cls, bundle_dir: str | Path, backend: str = "pynq",
                    config: RecognizerConfig | None = None) -> "Recognizer":
        """A deployment bundle: on the board (pynq), or its design through the simulator (sim)."""
        from ..deploy.bundle import verify_bundle
        bundle_dir = Path(bundle_dir)
        if backend != "pynq":
            # the pynq backend's overlay verifies the bundle itself, against its board and part
            verify_bundle(bundle_dir)
        meta = json.loads((bundle_dir / "feature.json").read_text())
        return cls._fixed_point(bundle_dir, meta, backend, ("pynq", "sim"), config)

    def create_stream(self) -> Stream:
        cfg, feat = self.config, self.feature
        window_ms = feat.clip_seconds * 1000
        lead_ms = cfg.lead_ms if cfg.lead_ms is not None else window_ms - cfg.stride_ms
        # under one window, so that every decision's window holds some of the audio
        lead = int(round(min(max(lead_ms, 0.0), window_ms - feat.hop_ms) * feat.sample_rate / 1000))
        # whole hops only, so that the audio's frames line up with the offline front end's
        lead -= lead % feat.hop_length
        return Stream(StreamingFeatures(feat), feat.sample_rate, stride_frames=cfg.stride_ms / feat.hop_ms,
                      tail_ms=cfg.tail_ms, lead_samples=lead)

    def is_ready(self, stream: Stream) -> bool:
        return bool(stream.queue)

    def decode_stream(self, stream: Stream) -> None:
        """Run the model on every queued window and update the decisions."""
        if not stream.queue:
            return
        t0 = time.perf_counter()
        windows = self.code(np.stack([q[0] for q in stream.queue]))
        probs = self.backend.run(windows)
        cfg = self.config
        for (_, start, end, arrival), p in zip(stream.queue, probs, strict=True):
            stream.history.append(p)
            del stream.history[:-cfg.smooth]
            smoothed = np.mean(stream.history, axis=0)
            order = np.argsort(smoothed)[::-1]
            best = next((int(k) for k in order if self.labels[k] not in NON_WORDS), None)
            wait = cfg.repeat_ms if best == stream._last_word else cfg.refractory_ms
            if best is not None and smoothed[best] >= cfg.threshold and end - stream._last_time >= wait / 1000:
                stream.events.append(Event(self.labels[best], round(start, 3), round(end, 3), float(smoothed[best])))
                stream._last_word, stream._last_time = best, end
            stream.latencies.add(time.perf_counter() - arrival)
        stream.queue.clear()
        stream.compute_seconds += time.perf_counter() - t0

    def get_result(self, stream: Stream) -> dict:
        audio_s = stream.samples_in / self.feature.sample_rate
        lat = stream.latencies
        return {
            "events": [asdict(e) for e in stream.events],
            "text": " ".join(e.word for e in stream.events),
            "audio_seconds": round(audio_s, 3),
            "decisions": len(stream.latencies),
            "latency_ms_p50": round(lat.percentile(50) * 1000, 3),
            "latency_ms_p99": round(lat.percentile(99) * 1000, 3),
            "rtf": round(stream.compute_seconds / audio_s, 5) if audio_s else None,
        }

    def recognize_chunks(self, chunks, on_event=None) -> dict:
        """Run an iterable of float32 chunks at the feature sample rate through one stream.
        `on_event(event_dict)` is called for each word as soon as it is decided (live input)."""
        stream = self.create_stream()
        told = 0

        def decode():
            nonlocal told
            while self.is_ready(stream):
                self.decode_stream(stream)
            if on_event is not None:
                for e in stream.events[told:]:
                    on_event(asdict(e))
                told = len(stream.events)

        for chunk in chunks:
            stream.accept_waveform(self.feature.sample_rate, chunk)
            decode()
        stream.input_finished()
        decode()
        return self.get_result(stream)

    def recognize_file(self, path: str | Path, chunk_seconds: float = 0.1) -> dict:
        """Stream a file through the recognizer, chunk by chunk (constant memory)."""
        from ..frontend.audio import stream_audio
        return self.recognize_chunks(stream_audio(path, self.feature.sample_rate, block_seconds=chunk_seconds))


def pcm_stdin_chunks(stdin, chunk_samples: int = 1600):
    """Raw 16-bit little-endian mono PCM (16 kHz) from a binary stream, as float32 chunks.
    A stream that ends mid-sample drops the odd byte."""
    while True:
        data = stdin.read(chunk_samples * 2)
        if not data:
            return
        usable = len(data) - len(data) % 2
        if usable:
            yield np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
