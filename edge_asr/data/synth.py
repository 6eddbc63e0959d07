"""`edge-asr data synth`: a spoken-digit corpus from the TTS engines present.

Work is split into one task per voice (plus silence tasks), each with its own random
generator seeded from (--seed, task index), so the output does not depend on how the
tasks are scheduled over the worker processes. Splits are by speaker: a test speaker
is never heard in training, under any engine.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soxr
from tqdm import tqdm

from ..atomic import atomic_dir, refuse_existing, worker_signals
from ..errors import EdgeAsrError, InputError, ToolMissingError
from ..frontend.audio import write_wav
from . import DIGITS, MONTHS, SILENCE, UNKNOWN
from . import augment as aug
from .manifest import Row, write_manifest
from .tts import INSTALL_HINT, LATE_ENGINE_GENERATIONS, LATE_ENGINES, Voice, available_voices, prepare, render

SR = 16000
CLIP = SR  # 1 s clips

# Other words, near-misses first. No homophones of digits ("won", "for", "to", "ate").
UNKNOWN_WORDS = [
    "tree", "free", "fine", "ten", "hundred", "nineteen", "seventy", "eleven", "twelve",
    "twenty", "thirty", "forty", "fifty", "sixty", "thousand", "heaven", "sticks", "wine",
    "hero", "tea", "dog", "cat", "bed", "bird", "yes", "no", "up", "down", "left", "right",
    "on", "off", "stop", "go", "house", "happy", "wow", "marvin", "sheila", "learn",
    "follow", "forward", "backward", "visual", "weight", "night", "sir", "zebra",
]
# Words that sound most like a digit ("free"/"three", "hero"/"zero", "heaven"/"seven",
# "down"/"nine"): a training voice draws these twice as often as the rest.
NEAR_MISSES = {"tree", "free", "fine", "ten", "nineteen", "seventy", "eleven", "forty", "fifty",
               "sixty", "heaven", "sticks", "wine", "hero", "tea", "weight", "night", "down", "wow", "sir"}
# Words said around digits in real speech (spelled codes, amounts, dates) that the list
# above lacks. On recordings of a person, 81 of 105 errors were other words taken for
# digits, most of them such words: "h" as eight, "u" and "million" as zero, "v" and "z" as
# three. Training voices only, drawn from a generator of their own, so the valid and test
# splits hold the same clips as before. Letters by their single character, which
# espeak-ng (and so piper, MBROLA and Kokoro, which speak its phonemes), flite and festival
# read as its name (checked in their phoneme output; SVOX Pico and RHVoice not checked),
# but for "a" (festival reads the article) and "o" (said for zero in digit strings).
TRAIN_ONLY_UNKNOWN_WORDS = [
    *"bcdefghijklmnpqrstuvwxyz", "million", "billion", "minus", *MONTHS,
]

# Speakers held out of training. Voices of one speaker under different engines share a split.
TEST_SPEAKERS = {"slt"}
VALID_SPEAKERS = {"rms"}
TEST_ESPEAK_BASES = {"en-gb-scotland"}
VALID_ESPEAK_BASES = {"en-029"}
TEST_ESPEAK_VARIANTS = {"f2", "m3"}
VALID_ESPEAK_VARIANTS = {"f4", "m5"}


def speaker_split(speaker: str) -> str:
    """The split (train, valid, test) a speaker belongs to: splits are disjoint by speaker."""
    if speaker.startswith("espeak:"):
        base, _, var = speaker[len("espeak:"):].partition("+")
        if base in TEST_ESPEAK_BASES or var in TEST_ESPEAK_VARIANTS:
            return "test"
        if base in VALID_ESPEAK_BASES or var in VALID_ESPEAK_VARIANTS:
            return "valid"
        return "train"
    if speaker in TEST_SPEAKERS:
        return "test"
    if speaker in VALID_SPEAKERS:
        return "valid"
    return "train"


NATURAL_VOICE_SCALE = 4


@dataclass
class SizePlan:
    """How much a --size synthesizes per voice and split."""
    prosodies: int          # (rate, pitch) settings per word
    augmented: int          # augmented copies per rendering, besides the clean one
    unknown_words: int      # other words per voice
    # Other words per training voice, each spoken in proportionally fewer renderings so the
    # share of unknown clips stays the same: more distinct near-misses per voice, the
    # errors that dominate held-out voices. None: unknown_words.
    train_unknown_words: int | None = None
    # Words from TRAIN_ONLY_UNKNOWN_WORDS per training voice, besides those above, each
    # spoken as often as one of them (`--train-only-words`).
    train_only_unknown_words: int = 0
    silence_per_split: dict = field(default_factory=dict)
    espeak_per_split: dict | None = None  # cap on espeak voices per split (None = all)


SIZES = {
    "small": SizePlan(prosodies=1, augmented=1, unknown_words=2,
                      silence_per_split={"train": 24, "valid": 8, "test": 8},
                      espeak_per_split={"train": 4, "valid": 2, "test": 2}),
    "full": SizePlan(prosodies=3, augmented=2, unknown_words=4, train_unknown_words=12,
                     silence_per_split={"train": 2000, "valid": 300, "test": 400}),
}


def size_plan(size: str, train_only_words: int | None = None) -> SizePlan:
    """The plan of a --size, with --train-only-words in place of its own count if given."""
    plan = SIZES[size]
    return plan if train_only_words is None else replace(plan, train_only_unknown_words=train_only_words)


@dataclass
class Task:
    """One worker's share of a corpus: one voice's words (or silence clips) in one split."""
    index: int
    split: str
    voice: Voice | None      # None: a silence task
    words: list[str]
    n_silence: int = 0
    unknown_share: float = 1.0  # fraction of a word's renderings an unknown word gets


def plan_tasks(voices: list[Voice], size: str, seed: int, train_only_words: int | None = None) -> list[Task]:
    """Every task of a corpus, in a fixed order from `seed` (the same seed gives the same corpus)."""
    plan = size_plan(size, train_only_words)
    rng = np.random.default_rng(seed)
    by_split: dict[str, list[Voice]] = {"train": [], "valid": [], "test": []}
    for v in voices:
        if v.engine not in LATE_ENGINES:
            by_split[speaker_split(v.speaker)].append(v)
    tasks: list[Task] = []
    for split, vs in by_split.items():
        if plan.espeak_per_split is not None:
            esp = [v for v in vs if v.engine == "espeak-ng"]
            keep = set(rng.choice(len(esp), min(len(esp), plan.espeak_per_split[split]), replace=False)) if esp else set()
            others = [v for v in vs if v.engine != "espeak-ng"]
            vs = [v for i, v in enumerate(esp) if i in keep] + _one_per_engine(others)
        for v in vs:
            tasks.append(_voice_task(len(tasks), split, v, plan, seed, rng))
        n_sil = plan.silence_per_split[split]
        per_task = 100
        for start in range(0, n_sil, per_task):
            tasks.append(Task(len(tasks), split, None, [], n_silence=min(per_task, n_sil - start)))
    # Late engines come after every other task, a generation at a time, each voice drawing
    # its other words from a generator of its own: the tasks before them, their random
    # streams and so their clips are the same as before those engines existed.
    for generation in LATE_ENGINE_GENERATIONS:
        for split in ("train", "valid", "test"):
            vs = [v for v in voices if v.engine in generation and speaker_split(v.speaker) == split]
            if plan.espeak_per_split is not None:
                vs = _one_per_engine(vs)
            for v in vs:
                tasks.append(_voice_task(len(tasks), split, v, plan, seed, np.random.default_rng([seed, 2, len(tasks)])))
    return tasks


def _one_per_engine(voices: list[Voice]) -> list[Voice]:
    """The first voice of each engine: a small corpus keeps every engine family in play."""
    return list({v.engine: v for v in reversed(voices)}.values())


def _voice_task(index: int, split: str, v: Voice, plan: SizePlan, seed: int, rng: np.random.Generator) -> Task:
    """A voice's task: the digits and some other words (drawn from rng, or for a training
    voice with train_unknown_words, from a generator of its own)."""
    unk = list(rng.choice(UNKNOWN_WORDS, plan.unknown_words, replace=False))
    share = 1.0
    if split == "train" and plan.train_unknown_words:
        # A generator of its own, so valid and test draw the same words as before.
        own = np.random.default_rng([seed, 1, index])
        p = np.array([2.0 if w in NEAR_MISSES else 1.0 for w in UNKNOWN_WORDS])
        unk = list(own.choice(UNKNOWN_WORDS, plan.train_unknown_words, replace=False, p=p / p.sum()))
        share = plan.unknown_words / plan.train_unknown_words
    if split == "train" and plan.train_only_unknown_words:
        # After the others, so the renderings of the words above keep their random draws.
        extra = np.random.default_rng([seed, 3, index])
        unk += list(extra.choice(TRAIN_ONLY_UNKNOWN_WORDS, plan.train_only_unknown_words, replace=False))
    return Task(index, split, v, DIGITS + unk, unknown_share=share)


def _fit_word(x: np.ndarray, max_len: int) -> tuple[np.ndarray, float]:
    """Speed up a rendering longer than max_len so it fits; returns audio and the factor."""
    if x.size <= max_len:
        return x, 1.0
    factor = x.size / max_len * 1.01
    return aug.change_speed(x, factor)[:max_len], factor


def _place(word: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, slice]:
    clip = np.zeros(CLIP, np.float32)
    start = int(rng.integers(0, CLIP - word.size + 1))
    clip[start:start + word.size] = word
    return clip, slice(start, start + word.size)


def _augment_clip(word: np.ndarray, rng: np.random.Generator, babble: list[np.ndarray]) -> tuple[np.ndarray, list[str]]:
    steps: list[str] = []
    f = float(rng.uniform(0.88, 1.12))
    word = aug.change_speed(word, f)
    steps.append(f"speed={f:.2f}")
    word, fit = _fit_word(word, int(0.97 * CLIP))
    clip, where = _place(word, rng)
    if rng.random() < 0.35:
        rt60 = float(rng.uniform(0.15, 0.8))
        clip = aug.reverb(clip, rng, rt60)
        steps.append(f"reverb={rt60:.2f}")
    if rng.random() < 0.85:
        speech_rms = aug.rms(clip[where])
        snr = float(rng.uniform(5, 30))
        if babble and rng.random() < 0.25:
            noise = np.zeros(CLIP, np.float32)
            for b in rng.choice(len(babble), min(3, len(babble)), replace=False):
                seg = babble[b][:CLIP]
                off = int(rng.integers(0, CLIP - seg.size + 1))
                noise[off:off + seg.size] += seg / (aug.rms(seg) + 1e-9)
            noise += 0.01 * rng.standard_normal(CLIP).astype(np.float32)
            kind, snr = "babble", max(snr, 8.0)
        else:
            kind = str(rng.choice(aug.NOISE_KINDS))
            noise = aug.make_noise(kind, CLIP, rng)
        clip = aug.add_noise(clip, noise, snr, signal_rms=speech_rms)
        steps.append(f"noise={kind}@{snr:.0f}dB")
    if rng.random() < 0.25:
        clip = aug.telephone(clip, rng)
        steps.append("telephone")
    peak = float(rng.uniform(-35, -1)) if rng.random() > 0.05 else float(rng.uniform(1, 8))
    clip = aug.set_peak_db(clip, peak)
    steps.append(f"peak={peak:.0f}dB")
    return clip, steps


def _silence_clip(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    r = rng.random()
    if r < 0.05:
        return np.zeros(CLIP, np.float32), ["digital-zero"]
    kind = str(rng.choice(aug.NOISE_KINDS))
    x = aug.make_noise(kind, CLIP, rng)
    steps = [f"noise={kind}"]
    if rng.random() < 0.3:
        x = aug.telephone(x, rng)
        steps.append("telephone")
    level = float(rng.uniform(-75, -15))
    x = aug.set_peak_db(x, level)
    steps.append(f"peak={level:.0f}dB")
    return x, steps


def run_task(task: Task, seed: int, out_dir: str, plan: SizePlan) -> list[Row]:
    """Render, augment and write one task's clips into out_dir; returns their manifest rows."""
    rng = np.random.default_rng([seed, task.index])
    out = Path(out_dir)
    rows: list[Row] = []
    if task.voice is None:
        folder = out / "wav" / task.split / SILENCE
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(task.n_silence):
            clip, steps = _silence_clip(rng)
            rel = f"wav/{task.split}/{SILENCE}/noise-t{task.index}-{k:04d}.wav"
            write_wav(out / rel, clip)
            rows.append(Row(rel, SILENCE, "", "noise", "noise", "noise", ";".join(steps), task.split, 1.0))
        return rows
    v = task.voice
    # The few voices recorded from people (all but espeak-ng's) are worth more than
    # another espeak-ng formant voice: give them more renderings and augmented copies.
    scale = 1 if v.engine == "espeak-ng" else NATURAL_VOICE_SCALE
    renders: dict[tuple[str, int], np.ndarray] = {}
    shifts: dict[tuple[str, int], float] = {}
    for word in task.words:
        renderings = plan.prosodies * scale
        if word not in DIGITS:
            renderings = max(1, round(renderings * task.unknown_share))
        for p in range(renderings):
            rate = 1.0 if p == 0 else float(rng.uniform(0.75, 1.3))
            pitch = 1.0 if p == 0 else float(rng.uniform(0.8, 1.25))
            # Most recorded voices are male (Pico's, RHVoice's clb and lyubov and MBROLA's us1
            # are not). Speaking slower and playing faster by the same factor raises pitch and
            # formants together at the same duration: a shorter vocal tract, the main acoustic
            # difference of a female or young speaker. Half the renderings of recorded voices
            # get such a shift.
            shift = float(rng.uniform(1.12, 1.35)) if scale > 1 and p % 2 == 1 else 1.0
            audio, sr = render(v, word, rate / shift, pitch)
            if sr != SR:
                audio = soxr.resample(audio, sr, SR).astype(np.float32)
            if shift != 1.0:
                audio = aug.change_speed(audio, shift)
                shifts[(word, p)] = shift
            audio = aug.trim_silence(audio)
            if audio.size == 0 or np.abs(audio).max() == 0:
                continue
            renders[(word, p)] = audio / np.abs(audio).max()
    babble = [a for (w, _), a in renders.items() if w not in DIGITS]
    for (word, p), audio in renders.items():
        label = word if word in DIGITS else UNKNOWN
        folder = out / "wav" / task.split / label
        folder.mkdir(parents=True, exist_ok=True)
        for a in range(1 + plan.augmented * (1 if scale == 1 else 2)):
            if a == 0:
                fitted, fit = _fit_word(audio, int(0.97 * CLIP))
                clip, _ = _place(fitted, rng)
                peak = float(rng.uniform(-20, -1))
                clip = aug.set_peak_db(clip, peak)
                steps = ["clean", f"peak={peak:.0f}dB"] + ([f"fit={fit:.2f}"] if fit != 1.0 else [])
            else:
                clip, steps = _augment_clip(audio, rng, babble)
            if (word, p) in shifts:
                steps.insert(0, f"shift={shifts[(word, p)]:.2f}")
            rel = f"wav/{task.split}/{label}/{v.id}-{word}-p{p}-a{a}.wav"
            write_wav(out / rel, clip)
            rows.append(Row(rel, label, word, v.engine, v.name, v.speaker, ";".join(steps), task.split, 1.0))
    return rows


def _run_task_star(args):
    return run_task(*args)


def synth(out: str | Path, size: str = "small", seed: int = 0, jobs: int | None = None,
          force: bool = False, progress: bool = True, log=print, exclude_engines: Sequence[str] = (),
          train_only_words: int | None = None) -> Path:
    """Synthesize a corpus into `out` (WAVs plus manifest.csv) with every TTS engine found;
    returns `out`. `size` is small (tests) or full; the same `seed` gives the same corpus;
    `jobs` workers (default: all cores); `exclude_engines` are left out; `train_only_words`:
    letter names, amounts and months per training voice as _unknown_. Raises EdgeAsrError
    for a bad size or count, an unknown engine, no engine at all, or a failed worker."""
    out = Path(out)
    if size not in SIZES:
        raise EdgeAsrError(f"unknown --size {size}; use small or full")
    if train_only_words is not None and not 0 <= train_only_words <= len(TRAIN_ONLY_UNKNOWN_WORDS):
        raise InputError(f"--train-only-words {train_only_words}: use 0 to {len(TRAIN_ONLY_UNKNOWN_WORDS)} "
                         "(the number of such words)")
    unknown = sorted(set(exclude_engines) - set(INSTALL_HINT))
    if unknown:
        raise InputError(f"--exclude-engine {unknown[0]}: no such engine; the engines are {', '.join(INSTALL_HINT)}")
    refuse_existing(out, force)
    voices, warnings = available_voices(exclude=exclude_engines)
    for w in warnings:
        log(f"warning: {w}")
    if not voices and exclude_engines:
        raise InputError("--exclude-engine leaves no TTS engine installed here; exclude fewer")
    if not voices:
        raise ToolMissingError("no TTS engine found; install espeak-ng (apt-get install espeak-ng) "
                               "or another engine listed in docs/cli.md")
    prepare(voices)
    tasks = plan_tasks(voices, size, seed, train_only_words)
    plan = size_plan(size, train_only_words)
    jobs = jobs or min(len(tasks), os.cpu_count() or 1)
    with atomic_dir(out) as tmp:
        rows: list[Row] = []
        args = [(t, seed, str(tmp), plan) for t in tasks]
        # Voices with many words first so the last task to finish is a short one.
        args.sort(key=lambda a: (a[0].voice is None, a[0].voice.engine != "festival" if a[0].voice else 0))
        bar = tqdm(total=len(tasks), desc="synth", unit="voice", disable=not progress, file=sys.stderr)
        if jobs > 1:
            with mp.get_context("fork").Pool(jobs, initializer=worker_signals) as pool:
                for r in pool.imap_unordered(_run_task_star, args):
                    rows += r
                    bar.update()
        else:
            for a in args:
                rows += _run_task_star(a)
                bar.update()
        bar.close()
        rows.sort(key=lambda r: r.path)
        write_manifest(tmp, rows)
        summary = {
            "size": size, "seed": seed, "clips": len(rows),
            "engines_missing": warnings,
            "engines_excluded": sorted(set(exclude_engines)),
            "train_only_words": plan.train_only_unknown_words,
            "per_split": dict(Counter(r.split for r in rows)),
            "per_label": {s: dict(sorted(Counter(r.label for r in rows if r.split == s).items()))
                          for s in ("train", "valid", "test")},
            "per_engine": dict(Counter(r.engine for r in rows)),
            "speakers": {s: sorted({r.speaker for r in rows if r.split == s and r.speaker != "noise"})
                         for s in ("train", "valid", "test")},
        }
        (tmp / "data.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"wrote {len(rows)} clips to {out} ({', '.join(f'{k}: {v}' for k, v in summary['per_split'].items())})")
    return out
