"""`edge-asr data human`: a test set of real human speech, from Debian's Asterisk prompts.

No speech corpus can be downloaded here, but Debian's asterisk-core-sounds-en-wav holds
studio recordings of one real person (Allison Smith) reading digits, numbers, letters,
days and months, stored as 8 kHz telephone-band WAV. They are nothing like any TTS voice
used for training, and they are telephone band: the check the shipped model needs.
Every clip lands in the `test` split; this set is never trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir, refuse_existing
from ..errors import ToolMissingError
from ..frontend.audio import fit_length, read_audio, write_wav
from . import DIGITS, MONTHS, UNKNOWN
from . import augment as aug
from .manifest import Row, write_manifest

ASTERISK_DIRS = [Path("/usr/share/asterisk/sounds/en_US_f_Allison"), Path("/usr/share/asterisk/sounds/en")]
INSTALL = "apt-get install asterisk-core-sounds-en-wav"

# (file stem, label): digits are spoken twice by Allison (plain and "h-" prosody).
DIGIT_FILES = [(f"digits/{i}", d) for i, d in enumerate(DIGITS)] + \
              [(f"digits/h-{i}", d) for i, d in enumerate(DIGITS) if i > 0]
UNKNOWN_FILES = ([f"digits/{n}" for n in (10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 30, 40, 50, 60, 70, 80, 90)]
                 + [f"digits/{w}" for w in ("hundred", "thousand", "million", "billion", "today", "tomorrow",
                                            "yesterday", "dollars", "minus", "pound", "star")]
                 + [f"digits/day-{i}" for i in range(7)] + [f"digits/mon-{i}" for i in range(12)]
                 + [f"letters/{c}" for c in "abcdefghijklmnopqrstuvwxyz"])

# Asterisk numbers its day and month prompts as C's struct tm does (day-0 Sunday, mon-0
# January); the manifest's text names them, so reports read "june", not "mon-5".
SPOKEN = {**{f"day-{i}": d for i, d in enumerate(("sunday", "monday", "tuesday", "wednesday", "thursday",
                                                  "friday", "saturday"))},
          **{f"mon-{i}": m for i, m in enumerate(MONTHS)}}


def find_sounds() -> Path:
    """The folder of Asterisk's English prompts; ToolMissingError naming the package when absent."""
    for d in ASTERISK_DIRS:
        if (d / "digits" / "7.wav").is_file():
            return d
    raise ToolMissingError(f"Asterisk's English prompts not found in {ASTERISK_DIRS[0]}; install them with `{INSTALL}`")


def make_human_set(out: str | Path, copies: int = 4, seed: int = 0, force: bool = False, log=print) -> Path:
    """Clean clips plus `copies` augmented copies (noise, reverb, gain; all telephone band)."""
    out = Path(out)
    refuse_existing(out, force)
    src = find_sounds()
    rng = np.random.default_rng(seed)
    with atomic_dir(out) as tmp:
        rows: list[Row] = []
        items = DIGIT_FILES + [(u, UNKNOWN) for u in UNKNOWN_FILES]
        for stem, label in items:
            wav = src / f"{stem}.wav"
            if not wav.is_file():
                continue
            word = aug.trim_silence(read_audio(wav))
            word = word / (np.abs(word).max() + 1e-9)
            (tmp / "wav" / label).mkdir(parents=True, exist_ok=True)
            for k in range(1 + copies):
                if word.size > 0.97 * 16000:
                    word_k = aug.change_speed(word, word.size / (0.96 * 16000))
                else:
                    word_k = word
                clip = fit_length(word_k, 16000)
                steps = ["clean"]
                if k > 0:
                    clip = np.roll(clip, int(rng.integers(-(16000 - word_k.size) // 2, (16000 - word_k.size) // 2 + 1)))
                    if rng.random() < 0.4:
                        rt60 = float(rng.uniform(0.15, 0.6))
                        clip = aug.reverb(clip, rng, rt60)
                        steps = [f"reverb={rt60:.2f}"]  # as synth writes it, so eval's by-reverb counts it
                    kind = str(rng.choice(aug.NOISE_KINDS))
                    snr = float(rng.uniform(10, 30))
                    clip = aug.add_noise(clip, aug.make_noise(kind, 16000, rng), snr, signal_rms=aug.rms(word_k))
                    steps.append(f"noise={kind}@{snr:.0f}dB")
                peak = float(rng.uniform(-25, -3))
                clip = aug.set_peak_db(clip, peak)
                steps += ["telephone", f"peak={peak:.0f}dB"]  # the source is 8 kHz telephone band
                rel = f"wav/{label}/allison-{stem.replace('/', '_')}-c{k}.wav"
                write_wav(tmp / rel, clip)
                name = stem.split("/")[-1]
                text = label if label in DIGITS else SPOKEN.get(name, name)
                rows.append(Row(rel, label, text, "human", "allison", "allison", ";".join(steps), "test", 1.0))
        write_manifest(tmp, rows)
        (tmp / "data.json").write_text(json.dumps({
            "source": str(src), "speaker": "Allison Smith (Asterisk prompts, 8 kHz)", "clips": len(rows),
            "copies": copies, "seed": seed, "per_split": {"test": len(rows)},
        }, indent=2) + "\n")
    log(f"wrote {len(rows)} clips of real human speech to {out} (split: test)")
    return out
