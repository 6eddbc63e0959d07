"""`edge-asr data running`: long running speech without digits, for false alarms per hour.

A keyword spotter is judged by how often it fires on speech that holds no keyword. This
set is that speech: sentences read by the TTS voices of one split (held-out `test` voices
by default; `valid` voices to choose a threshold on), with the corpus's augmentations
(reverb, noise, telephone band, level), in files of about a minute; and for the test
split, when Debian's Asterisk prompts are installed, the human set's non-digit prompts
(numbers, letters, days, months, ...) said one after another with pauses, the real speech
of `data human` (test data, so never in a validation set).

The text is English prose every machine here has (no corpus can be downloaded): the
licence texts in /usr/share/common-licenses (Debian's base-files) and the Python language
reference's topics that pydoc shows (`pydoc_data.topics`), cut into sentences; a
sentence with a digit word, a homophone of one ("oh", "won", "to", "too", "for", "ate",
...) or a numeral is left out, so that everything the recognizer emits here is a false
alarm. Words that only hold a digit's sound ("someone", "often") stay: people say them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir, refuse_existing
from ..errors import InputError, ToolMissingError
from ..frontend.audio import read_audio, write_wav
from . import DIGITS, UNKNOWN
from . import augment as aug
from .loading import progress_bar
from .manifest import Row, write_manifest

SR = 16000
TEXT_DIR = Path("/usr/share/common-licenses")
DIGIT_SOUNDS = frozenset(DIGITS) | {"oh", "o", "won", "to", "too", "for", "fore", "ate", "nought", "naught", "tu",
                                    "wun", "free", "tree", "sicks", "nein"}
# Words that sound like a digit and are not one: every sentence of read speech holds them.
# `--homophones` keeps the sentences that hold them (still none with a digit word or a
# numeral), so that their false alarms are measured rather than designed away.
HOMOPHONES = frozenset({"oh", "o", "won", "to", "too", "for", "fore", "ate", "nought", "naught"})
FILE_SECONDS = 60.0
MIN_WORDS, MAX_WORDS = 4, 24


def sentences(text: str, excluded: frozenset = DIGIT_SOUNDS) -> list[str]:
    """Sentences of `text` that hold no word of `excluded` (digit words and their homophones)
    or numeral, 4 to 24 words each."""
    out = []
    for piece in re.split(r"(?<=[.!?;:])\s+|\n\s*\n", text):
        s = " ".join(piece.split())
        if not s or re.search(r"\d", s):
            continue
        words = re.findall(r"[a-z']+", s.lower())
        if not MIN_WORDS <= len(words) <= MAX_WORDS or excluded & set(words):
            continue
        if sum(c.isalpha() for c in s) < 0.7 * len(s) or re.search(r"[=(){}\[\]<>*_#@/\\`|~^%$]", s):
            continue  # headers, rules, URLs, code
        out.append(re.sub(r"[^A-Za-z',.;:!? -]", " ", s).strip())
    return out


def text_sentences(text_dir: Path = TEXT_DIR, excluded: frozenset = DIGIT_SOUNDS) -> list[str]:
    """Every distinct sentence of the licence texts and pydoc's topics without a word of
    `excluded`, in a fixed order."""
    from pydoc_data.topics import topics
    texts = [topics[k] for k in sorted(topics)]
    if text_dir.is_dir():
        texts += [p.read_text(errors="replace") for p in sorted(text_dir.iterdir()) if p.is_file()]
    seen: dict[str, None] = {}
    for text in texts:
        for s in sentences(text, excluded):
            seen.setdefault(s, None)
    if not seen:
        raise InputError("no sentence without a digit word found in the texts")
    return list(seen)


def _augment_long(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """The corpus's augmentations (data synth's odds and ranges), over a whole file."""
    steps: list[str] = []
    if rng.random() < 0.35:
        rt60 = float(rng.uniform(0.15, 0.8))
        x = aug.reverb(x, rng, rt60)
        steps.append(f"reverb={rt60:.2f}")
    if rng.random() < 0.85:
        kind, snr = str(rng.choice(aug.NOISE_KINDS)), float(rng.uniform(5, 30))
        voiced = x[np.abs(x) > 0.05 * (np.abs(x).max() + 1e-9)]
        x = aug.add_noise(x, aug.make_noise(kind, x.size, rng), snr, signal_rms=aug.rms(voiced) if voiced.size else None)
        steps.append(f"noise={kind}@{snr:.0f}dB")
    if rng.random() < 0.25:
        x = aug.telephone(x, rng)
        steps.append("telephone")
    peak = float(rng.uniform(-35, -1))
    return aug.set_peak_db(x, peak), steps + [f"peak={peak:.0f}dB"]


def _join(parts: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Utterances one after another, 0.2-1.2 s of silence around each."""
    out = [np.zeros(int(rng.uniform(0.2, 1.2) * SR), np.float32)]
    for p in parts:
        out += [p.astype(np.float32), np.zeros(int(rng.uniform(0.2, 1.2) * SR), np.float32)]
    return np.concatenate(out)


def _tts_file(voice, texts: list[str], rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, list[str]]:
    from .tts import render
    parts, said = [], []
    total = 0.0
    while total < seconds:
        text = texts[int(rng.integers(len(texts)))]
        audio, rate = render(voice, text, rate=float(rng.uniform(0.9, 1.1)))
        if rate != SR:
            import soxr
            audio = soxr.resample(audio, rate, SR)
        audio = aug.trim_silence(np.asarray(audio, np.float32))
        if audio.size < SR // 4:
            continue
        parts.append(audio / (np.abs(audio).max() + 1e-9))
        said.append(text)
        total += audio.size / SR + 0.7
    return _join(parts, rng), said


def _human_files(rng: np.random.Generator, copies: int) -> list[tuple[np.ndarray, list[str], str]]:
    """The human set's non-digit prompts, shuffled and said one after another, clean and in
    `copies` augmented versions."""
    from .human import SPOKEN, UNKNOWN_FILES, find_sounds
    src = find_sounds()
    words = []
    for stem in UNKNOWN_FILES:
        wav = src / f"{stem}.wav"
        name = stem.split("/")[-1]
        if wav.is_file() and SPOKEN.get(name, name) not in DIGIT_SOUNDS:  # the letter o is said "oh", a zero
            w = aug.trim_silence(read_audio(wav))
            words.append((w / (np.abs(w).max() + 1e-9), SPOKEN.get(name, name)))
    out = []
    for k in range(1 + copies):
        order = rng.permutation(len(words))
        x = _join([words[i][0] for i in order], rng)
        steps = ["clean"]
        if k:
            x, steps = _augment_long(x, rng)
        out.append((x, [words[i][1] for i in order], ";".join(steps)))
    return out


def _cut_windows(tmp: Path, x: np.ndarray, said: list[str], steps: list[str], voice, split: str, i: int, count: int,
                 rng: np.random.Generator) -> list[Row]:
    """`count` one-second windows cut at random from file i's speech, written as `_unknown_` clips."""
    rows = []
    for k in range(count):
        at = int(rng.integers(0, max(1, x.size - SR)))
        rel = f"wav/{split}/{UNKNOWN}/run-{i:04d}-{k:03d}.wav"
        write_wav(tmp / rel, np.pad(x[at:at + SR], (0, max(0, SR - x[at:at + SR].size))))
        rows.append(Row(rel, UNKNOWN, f"running speech at {at / SR:.2f} s: " + " | ".join(said)[:200],
                        voice.engine, voice.id, voice.speaker, ";".join(steps + [f"window={at / SR:.2f}"]),
                        split, 1.0))
    return rows


def _write_human_part(tmp: Path, rng: np.random.Generator, copies: int, log) -> list[Row]:
    """The human non-digit prompts as running files (none, said in the log, without Asterisk's)."""
    try:
        human = _human_files(rng, copies)
    except ToolMissingError as exc:
        log(f"no human part: {exc}")
        return []
    rows = []
    for k, (x, said, steps) in enumerate(human):
        rel = f"wav/running/human-{k:02d}.wav"
        write_wav(tmp / rel, x)
        rows.append(Row(rel, UNKNOWN, " | ".join(said), "human", "asterisk-allison", "allison", steps, "test",
                        round(x.size / SR, 3)))
    return rows


def make_running_set(out: str | Path, hours: float = 1.0, split: str = "test", seed: int = 0,
                     human_copies: int = 4, force: bool = False, progress: bool = True, log=print,
                     windows: int = 0, homophones: bool = False) -> Path:
    """Write the running-speech set: about `hours` of TTS sentences by `split`'s voices in
    files of about a minute, plus (test split) the human non-digit prompts when Asterisk's
    are installed.

    With `windows`, no long files: that many one-second windows cut at random from the speech
    instead (wav/<split>/_unknown_/*.wav), other words for training (`--split train`, then
    `edge-asr train DATA --extra-train OUT`): pieces of words and word boundaries, which
    single-word clips never show and a streaming recognizer meets all the time.
    With `homophones`, sentences may hold the words that sound like digits (HOMOPHONES: "to",
    "for", "won", "ate", "oh", ...), as all read speech does.

    Returns the folder: the audio, manifest.csv (label `_unknown_`, the sentences said as
    text) and data.json (`kind` running or running-windows, `seconds` per source).

    Raises:
        InputError: a bad split, length or count; ToolMissingError: no TTS voice of that split.
    """
    from .synth import speaker_split
    from .tts import available_voices, prepare
    if split not in ("train", "valid", "test") or (split == "train" and not windows):
        raise InputError(f"--split {split}: running files are for choosing (valid) or measuring (test); training "
                         "voices (--split train) give --windows to train on")
    if windows < 0:
        raise InputError(f"--windows {windows}: give a count of at least 1")
    if not 0 < hours <= 100:
        raise InputError(f"--hours {hours}: give a length between 0 and 100 hours")
    out = Path(out)
    refuse_existing(out, force)
    voices = [v for v in available_voices()[0] if speaker_split(v.speaker) == split]
    if not voices:
        raise ToolMissingError(f"no TTS voice of the {split} split is installed; see `edge-asr data synth --help`")
    prepare(voices)
    excluded = DIGIT_SOUNDS - HOMOPHONES if homophones else DIGIT_SOUNDS
    texts = text_sentences(excluded=excluded)
    rng = np.random.default_rng([seed, 7])
    n_files = int(np.ceil(hours * 3600 / FILE_SECONDS))
    order = rng.permutation(len(voices))
    rows: list[Row] = []
    seconds = {"tts": 0.0, "human": 0.0}
    per_file = int(np.ceil(windows / n_files)) if windows else 0
    with atomic_dir(out) as tmp:
        (tmp / "wav" / ("running" if not windows else f"{split}/{UNKNOWN}")).mkdir(parents=True)
        for i in progress_bar(range(n_files), progress, f"running speech ({split} voices)", "min"):
            voice = voices[order[i % len(voices)]]
            x, said = _tts_file(voice, texts, rng, min(FILE_SECONDS, hours * 3600 - i * FILE_SECONDS))
            x, steps = _augment_long(x, rng)
            seconds["tts"] += x.size / SR
            if windows:
                rows += _cut_windows(tmp, x, said, steps, voice, split, i, min(per_file, windows - i * per_file), rng)
                continue
            rel = f"wav/running/tts-{i:04d}.wav"
            write_wav(tmp / rel, x)
            rows.append(Row(rel, UNKNOWN, " | ".join(said), voice.engine, voice.id, voice.speaker,
                            ";".join(steps) or "clean", split, round(x.size / SR, 3)))
        if split == "test" and not windows:  # the human recordings are test data: never chosen or trained on
            human = _write_human_part(tmp, rng, human_copies, log)
            rows += human
            seconds["human"] = sum(r.seconds for r in human)
        write_manifest(tmp, rows)
        (tmp / "data.json").write_text(json.dumps({
            "kind": "running-windows" if windows else "running", "split": split, "seed": seed,
            "windows": windows or None, "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "files": len(rows), "sentences": len(texts), "text": [str(TEXT_DIR), "pydoc_data.topics"],
            "excluded_words": sorted(excluded), "homophones": homophones}, indent=2) + "\n")
    log(f"wrote {len(rows)} {'one-second windows' if windows else 'files'} of running speech without digits to "
        f"{out}: {seconds['tts'] / 3600:.2f} h of "
        f"{split} voices, {seconds['human'] / 60:.1f} min of human prompts")
    return out
