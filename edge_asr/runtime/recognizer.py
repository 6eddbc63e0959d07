"""Streaming keyword recognition, shaped like sherpa-onnx's streaming API.

    from edge_asr import Recognizer
    rec = Recognizer.from_design("kws-design")         # or from_model(dir), from_bundle(dir)
    stream = rec.create_stream()
    stream.accept_waveform(16000, samples)             # any chunk size, any rate, many times
    while rec.is_ready(stream):
        rec.decode_stream(stream)
    stream.input_finished()                            # at the end of the audio
    while rec.is_ready(stream):
        rec.decode_stream(stream)
    rec.get_result(stream)                             # {"events": [...], "text": "...", ...}

Every `stride_ms` the model runs on the last window (clip_seconds) of features; the
posteriors are averaged over the last `smooth` runs; a word is emitted when its smoothed
posterior reaches `threshold`, then no word is emitted for `refractory_ms` and the same
word not again for `repeat_ms`. `_unknown_` and `_silence_` are never emitted. The stream
is taken to start after `lead_ms` of silence, so decisions begin one stride into the
audio and a word at the very start is seen alone in a window, as in training.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..frontend.features import FeatureConfig
from ..frontend.streaming import StreamingFeatures
from ..ir.design import Design
from ..sim.fixed import FixedType, cast
from .backends import get_backend
from .detection import decision_step
from .modeldir import load_model_dir, read_json
from .stream import Stream

DEFAULT_THRESHOLD = 0.55


@dataclass
class RecognizerConfig:
    """Decision settings, chosen on connected digits and single clips spoken by the
    validation voices (`edge-asr data connected --split valid`), never the test voices.

    Attributes:
        stride_ms: the model runs every this many ms (`--stride-ms`).
        smooth: posteriors averaged over this many runs.
        threshold: smoothed posterior at which a word is emitted (`--threshold`); None: the
            model's operating threshold (model.json's `operating_point`, chosen on validation
            for a false-alarm rate by `edge-asr eval --set-threshold`), else DEFAULT_THRESHOLD.
        refractory_ms: after any word, no word for this long.
        repeat_ms: the same word again only after this long (a word stays in the window ~1 s).
        tail_ms: silence appended at the end so that a final word is seen whole.
        lead_ms: silence before the start; None: one window less one stride.
    """

    stride_ms: float = 100.0
    smooth: int = 5
    threshold: float | None = None
    refractory_ms: float = 200.0
    repeat_ms: float = 1100.0
    tail_ms: float = 500.0
    lead_ms: float | None = None


def operating_threshold(meta: dict) -> float | None:
    """The threshold model.json (or a bundle's feature.json) records as its operating point.

    Raises InputError when it is there and not a number in (0, 1)."""
    point = meta.get("operating_point")
    if point is None:
        return None
    t = point.get("threshold") if isinstance(point, dict) else None
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 < t < 1:
        raise InputError(f"model.json's operating_point.threshold is {t!r}, not a number between 0 and 1; "
                         "choose it again with `edge-asr eval --set-threshold`")
    return float(t)


class Recognizer:
    """Keyword recognition over any backend: streams of audio in, words out.

    Make one with `from_model`, `from_design` or `from_bundle`; the constructor takes a
    backend made by `get_backend` for callers who make their own.

    Args:
        backend: an object with run(x) -> posteriors (see edge_asr.runtime.backends).
        labels: the model's output labels.
        feature: the front end the model was trained with.
        config: decision settings (RecognizerConfig()).
        input_type: a design's input type: features are coded into it before the backend
            sees them (None for a float model).
    """

    def __init__(self, backend, labels: list[str], feature: FeatureConfig, config: RecognizerConfig | None = None,
                 input_type: FixedType | None = None, operating_threshold: float | None = None):
        self.backend = backend
        self.labels = labels
        self.feature = feature
        config = config or RecognizerConfig()
        if config.threshold is None:
            config = replace(config, threshold=operating_threshold if operating_threshold is not None
                             else DEFAULT_THRESHOLD)
        self.config = config
        self.input_type = input_type  # a design's input FixedType: features are coded here, and only here

    def code(self, windows: np.ndarray) -> np.ndarray:
        """Features -> the exact values of the design's input type (the host's coding).

        Backends get values already on the input grid, so their own conversion (the
        simulator's, C-sim's bridge, the board's DMA packing) changes nothing."""
        return windows if self.input_type is None else cast(windows, self.input_type)

    @classmethod
    def open(cls, model: str | Path | None = None, design: str | Path | None = None,
             bundle: str | Path | None = None, backend: str | None = None,
             config: RecognizerConfig | None = None) -> "Recognizer":
        """A recognizer over exactly one of a model directory, a design or a bundle, on its
        default backend (onnx, sim, pynq) or the one named; `edge-asr recognize`'s choice.

        Raises:
            InputError: not exactly one source, or a backend that does not run it.
        """
        if sum(bool(v) for v in (model, design, bundle)) != 1:
            raise InputError("give exactly one of --model DIR, --design DIR or --bundle DIR")
        if bundle:
            if backend not in (None, "pynq", "sim"):
                raise InputError("--bundle runs on the pynq (board) or sim backend")
            return cls.from_bundle(bundle, backend or "pynq", config)
        if model:
            if backend not in (None, "onnx"):
                raise InputError("--model runs on the onnx backend; use --design for sim/csim")
            return cls.from_model(model, config)
        return cls.from_design(design, backend or "sim", config)

    @classmethod
    def from_model(cls, model_dir: str | Path, config: RecognizerConfig | None = None) -> "Recognizer":
        """A recognizer over a float model directory (model.onnx + model.json), on onnxruntime.

        Raises:
            InputError: not a model directory, or onnxruntime cannot load its model.
        """
        info = load_model_dir(model_dir)
        return cls(get_backend("onnx", info), info.labels, info.feature, config,
                   operating_threshold=operating_threshold(info.meta))

    @classmethod
    def from_design(cls, design_dir: str | Path, backend: str = "sim",
                    config: RecognizerConfig | None = None) -> "Recognizer":
        """A recognizer over a converted design, in the simulator (sim) or C simulation (csim).

        Raises:
            InputError: the design has no labels/feature configuration, or another backend.
            DesignError, ManifestError: the design does not load or does not match its manifest.
        """
        design_dir = Path(design_dir)
        if (design_dir / "bundle.json").is_file():
            raise InputError(f"{design_dir}: is a deployment bundle, not a design; give it as --bundle "
                             "(with --backend sim to run its design in the simulator)")
        meta_path = design_dir / "model.json"
        meta = read_json(meta_path) if meta_path.is_file() else {}
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
        design = Design.load(folder)
        b = get_backend(backend, design if backend == "sim" else folder)
        return cls(b, meta["labels"], FeatureConfig.from_dict(meta["feature"]), config, design.input_type,
                   operating_threshold(meta))

    @classmethod
    def from_bundle(cls, bundle_dir: str | Path, backend: str = "pynq",
                    config: RecognizerConfig | None = None) -> "Recognizer":
        """A deployment bundle: on the board (pynq), or its design through the simulator (sim).

        Raises:
            BundleError: the bundle does not match its manifest, or is for another board.
        """
        from ..deploy.bundle import verify_bundle
        bundle_dir = Path(bundle_dir)
        if backend != "pynq":
            # the pynq backend's overlay verifies the bundle itself, against its board and part
            verify_bundle(bundle_dir)
        meta = read_json(bundle_dir / "feature.json")
        return cls._fixed_point(bundle_dir, meta, backend, ("pynq", "sim"), config)

    def create_stream(self) -> Stream:
        """A new stream, starting after `lead_ms` of silence."""
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
        """Whether the stream holds windows the model has not run on yet."""
        return bool(stream.queue)

    def reset_stream(self, stream: Stream) -> None:
        """Start the stream's decisions afresh, as sherpa-onnx's reset_stream does after a
        keyword: the events, smoothing history and queued windows go; the audio position,
        the front end and the statistics stay, and the last word is still not emitted
        again within repeat_ms."""
        stream.reset()

    def decode_stream(self, stream: Stream) -> None:
        """Run the model on every queued window and update the stream's decisions."""
        if not stream.queue:
            return
        t0 = time.perf_counter()
        windows = self.code(np.stack([q[0] for q in stream.queue]))
        probs = self.backend.run(windows)
        cfg = self.config
        for (_, start, end, arrival), p in zip(stream.queue, probs, strict=True):
            event = decision_step(stream, p, start, end, self.labels, cfg, cfg.threshold)
            if event is not None:
                stream.events.append(event)
            stream.latencies.add(time.perf_counter() - arrival)
        stream.queue.clear()
        stream.compute_seconds += time.perf_counter() - t0

    def get_result(self, stream: Stream) -> dict:
        """The stream's result so far.

        Returns:
            dict with events (word, start, end, score; seconds into the audio), text (the
            words joined by spaces), audio_seconds, words_per_hour (on audio without
            keywords: false alarms per hour), decisions (windows run), latency_ms_p50
            and latency_ms_p99 (chunk arrival to decision, host time), rtf (compute time /
            audio time).
        """
        audio_s = stream.audio_seconds  # the audio's own length, not the padding added at its end
        lat = stream.latencies
        return {
            "events": [asdict(e) for e in stream.events],
            "text": " ".join(e.word for e in stream.events),
            "audio_seconds": round(audio_s, 3),
            # on audio without keywords (edge-asr data running), false alarms per hour
            "words_per_hour": round(len(stream.events) * 3600 / audio_s, 3) if audio_s else None,
            "decisions": len(stream.latencies),
            "latency_ms_p50": round(lat.percentile(50) * 1000, 3),
            "latency_ms_p99": round(lat.percentile(99) * 1000, 3),
            "rtf": round(stream.compute_seconds / audio_s, 5) if audio_s else None,
        }

    def recognize_chunks(self, chunks, on_event=None) -> dict:
        """Run an iterable of float32 chunks at the feature sample rate through one stream.

        Args:
            chunks: iterable of 1-D float32 arrays (e.g. frontend.audio.pcm_stdin_chunks).
            on_event: called with each word's dict as soon as it is decided (live input).

        Returns:
            get_result's dict for the whole stream.
        """
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
        """Stream an audio file (WAV/FLAC/OGG, any rate) through the recognizer, chunk by
        chunk (constant memory); returns get_result's dict.

        Raises:
            AudioError: the file is missing, not audio, empty or holds NaN/Inf.
        """
        from ..frontend.audio import stream_audio
        return self.recognize_chunks(stream_audio(path, self.feature.sample_rate, block_seconds=chunk_seconds))
