"""`edge-asr data connected`: connected-digit utterances for word error rate measurement.

Each file holds 2-5 digits spoken one by one by the same held-out voice, separated by
150-600 ms pauses, with light noise. `manifest.csv` rows carry the spoken digit sequence
in `text`. Voices come from the test split by default; `split="valid"` takes the
validation voices instead, so that decision settings can be tuned without touching the
test voices.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soxr

from ..atomic import atomic_dir, refuse_existing
from ..errors import InputError, ToolMissingError
from ..frontend.audio import write_wav
from . import DIGITS
from . import augment as aug
from .manifest import Row, write_manifest
from .synth import speaker_split
from .tts import available_voices, render

SR = 16000


def make_connected_set(out: str | Path, n: int = 50, seed: int = 0, force: bool = False, log=print,
                       split: str = "test") -> Path:
    """Write `n` files of 2-5 digits spoken with pauses by the `split` split's voices
    (test or valid), with manifest.csv holding the digit sequence in `text`.

    Raises:
        InputError: another split; OutputExistsError: `out` exists without force;
        ToolMissingError: no TTS engine speaks.
    """
    out = Path(out)
    if split not in ("test", "valid"):
        raise InputError(f"connected-digit split must be 'test' or 'valid', not {split!r}")
    refuse_existing(out, force)
    voices, warnings = available_voices()
    for w in warnings:
        log(f"warning: {w}")
    voices = [v for v in voices if speaker_split(v.speaker) == split]
    if not voices:
        raise ToolMissingError(f"no TTS voice of the {split} split is installed; install espeak-ng or flite")
    rng = np.random.default_rng(seed)
    cache: dict[tuple[str, str], np.ndarray] = {}
    with atomic_dir(out) as tmp:
        (tmp / "wav").mkdir()
        rows = []
        for i in range(n):
            v = voices[int(rng.integers(len(voices)))]
            words = [DIGITS[int(k)] for k in rng.integers(0, 10, int(rng.integers(2, 6)))]
            parts = [np.zeros(int(rng.uniform(0.2, 0.5) * SR), np.float32)]
            for w in words:
                if (v.id, w) not in cache:
                    audio, sr = render(v, w)
                    audio = aug.trim_silence(soxr.resample(audio, sr, SR).astype(np.float32))
                    cache[(v.id, w)] = audio / (np.abs(audio).max() + 1e-9)
                parts += [cache[(v.id, w)], np.zeros(int(rng.uniform(0.15, 0.6) * SR), np.float32)]
            x = np.concatenate(parts)
            x = aug.add_noise(x, aug.make_noise("pink", x.size, rng), float(rng.uniform(20, 35)))
            x = aug.set_peak_db(x, float(rng.uniform(-12, -3)))
            rel = f"wav/connected-{i:04d}.wav"
            write_wav(tmp / rel, x)
            rows.append(Row(rel, "connected", " ".join(words), v.engine, v.name, v.speaker, "pink-noise",
                            split, round(x.size / SR, 3)))
        write_manifest(tmp, rows)
        (tmp / "data.json").write_text(json.dumps({"kind": "connected", "n": n, "seed": seed, "split": split,
                                                   "voices": sorted({r.speaker for r in rows})}, indent=1) + "\n")
    log(f"wrote {n} connected-digit files to {out}")
    return out


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Word error rate of hypotheses against references (jiwer), an empty reference counted as one word."""
    import jiwer
    refs = [r if r.strip() else "<empty>" for r in references]
    return float(jiwer.wer(refs, [h if h.strip() else "" for h in hypotheses]))
