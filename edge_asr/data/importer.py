"""`edge-asr data import`: a real corpus in the manifest format `data synth` writes.

Three layouts:
- speech-commands: Google Speech Commands (v1 or v2). Word folders of
  `<speaker>_nohash_<n>.wav`, `validation_list.txt` and `testing_list.txt` naming the
  held-out clips (the corpus's own speaker-disjoint splits; without the lists, the rule its
  README gives: a hash of the speaker), and `_background_noise_/` whose long recordings
  are cut into one-second `_silence_` clips (the first 80 % of each file for train, the
  next 10 % for valid, the last 10 % for test, so that no window spans two splits).
- folders: a folder per word (`SRC/<word>/*.wav`), or per split and word
  (`SRC/<train|valid|test>/<word>/*.wav`); a top-level `_background_noise_/` is cut
  into silence as above. Without split folders, clips are split by
  speaker with the same hash rule; the speaker is the file name up to its first `_`
  (Speech Commands' convention), else the whole name.
- csv: a CSV file with columns `path` and `label` (or `word`), and optionally `speaker`
  and `split`; paths relative to the CSV's folder.

Words become the task's labels through a map: by default the digit words keep their
names, every other word is `_unknown_` and background noise `_silence_`; `--map FILE`
(CSV rows `word,label`) names other words' labels. Every clip is read (any format
soundfile reads), made mono, resampled to 16 kHz and centre-cropped or padded to one
second, as the rest of edge-asr expects. Files that cannot be read are skipped and
counted in data.json.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir, refuse_existing
from ..errors import AudioError, InputError
from ..frontend.audio import SAMPLE_RATE, audio_seconds, fit_length, read_audio, write_wav
from . import DIGITS, LABELS, SILENCE, UNKNOWN
from .loading import progress_bar
from .manifest import SPLITS, Row, write_manifest

LAYOUTS = ("speech-commands", "folders", "csv")
BACKGROUND = "_background_noise_"
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3"}
SPLIT_NAMES = {"train": "train", "training": "train", "valid": "valid", "validation": "valid", "dev": "valid",
               "test": "test", "testing": "test"}
MAX_NUM_WAVS_PER_CLASS = 2 ** 27 - 1  # Speech Commands README's which_set()
SILENCE_SHARES = (0.8, 0.1)           # train, valid; test takes the rest of each noise file


@dataclass
class Clip:
    """One clip to import: where it is, the word said (or "" for noise), whose voice, and its split."""
    path: Path
    word: str
    speaker: str
    split: str


@dataclass(frozen=True)
class SplitRule:
    """Where `data import` puts each clip, overriding the layout's own split (its lists, split
    folders or CSV column, else the speaker hash). First match wins: `split` puts every clip
    in one split (a corpus for validation or testing only); then a clip whose path matches
    a glob of `test_paths` / `valid_paths`; then one of `test_speakers` / `valid_speakers`;
    with any of the last four given, every other clip goes to train.

    Attributes:
        split: one split for every clip, or None.
        valid_speakers, test_speakers: speakers held out for validation and testing.
        valid_paths, test_paths: fnmatch globs on the clip's path (e.g. `*view-glass*`), for
            corpora without speaker names.
    """
    split: str | None = None
    valid_speakers: tuple[str, ...] = ()
    test_speakers: tuple[str, ...] = ()
    valid_paths: tuple[str, ...] = ()
    test_paths: tuple[str, ...] = ()

    @property
    def overrides(self) -> bool:
        """True when any rule past `split` is given (the rest then trains)."""
        return bool(self.valid_speakers or self.test_speakers or self.valid_paths or self.test_paths)

    def check(self) -> None:
        """InputError for a split name that is not one, or a speaker in two held-out sets."""
        if self.split is not None and self.split not in SPLITS:
            raise InputError(f"--split {self.split}: use train, valid or test")
        both = sorted(set(self.valid_speakers) & set(self.test_speakers))
        if both:
            raise InputError(f"speaker {both[0]!r} is in both --valid-speakers and --test-speakers; give it one")

    def split_of(self, clip: Clip) -> str:
        """The split this rule gives a clip."""
        if self.split:
            return self.split
        path = clip.path.as_posix()
        if any(fnmatch.fnmatch(path, g) for g in self.test_paths):
            return "test"
        if any(fnmatch.fnmatch(path, g) for g in self.valid_paths):
            return "valid"
        if clip.speaker in self.test_speakers:
            return "test"
        if clip.speaker in self.valid_speakers:
            return "valid"
        return "train" if self.overrides else clip.split

    def to_dict(self) -> dict:
        """The rule as data.json's `split_rule` (empty parts left out)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if v}


def which_set(name: str, valid_percent: float = 10.0, test_percent: float = 10.0) -> str:
    """Speech Commands' split of a clip by its speaker (the README's which_set): a SHA-1 of
    the file name without its `_nohash_` part decides, so a speaker's clips share a split."""
    hash_name = re.sub(r"_nohash_.*$", "", name)
    h = int(hashlib.sha1(hash_name.encode()).hexdigest(), 16)
    percent = (h % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if percent < valid_percent:
        return "valid"
    return "test" if percent < valid_percent + test_percent else "train"


def label_map(spec: str | None) -> dict[str, str]:
    """Words -> labels: "digits" (or None) maps nothing beyond the digit words; a CSV file
    of `word,label` rows adds its words. Labels must be the task's (`LABELS`)."""
    mapping = {d: d for d in DIGITS} | {SILENCE: SILENCE, UNKNOWN: UNKNOWN}
    if spec in (None, "digits"):
        return mapping
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"--map {spec}: not 'digits' and no such file; give a CSV of word,label rows")
    with path.open(newline="") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row or row[0].startswith("#") or [c.strip() for c in row] == ["word", "label"]:
                continue
            if len(row) != 2:
                raise InputError(f"{path}:{n}: want two columns, word,label")
            word, label = row[0].strip().lower(), row[1].strip()
            if label not in LABELS:
                raise InputError(f"{path}:{n}: label {label!r} is not one of {', '.join(LABELS)}")
            mapping[word] = label
    return mapping


def _speaker_of(stem: str) -> str:
    return stem.split("_nohash_")[0] if "_nohash_" in stem else stem.split("_")[0]


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def speech_commands_clips(src: Path) -> tuple[list[Clip], list[Path]]:
    """(word clips, background-noise files) of a Speech Commands folder."""
    lists = {}
    for split, name in (("valid", "validation_list.txt"), ("test", "testing_list.txt")):
        f = src / name
        if f.is_file():
            lists.update({line.strip(): split for line in f.read_text().splitlines() if line.strip()})
    words = sorted(d for d in src.iterdir() if d.is_dir() and d.name != BACKGROUND and not d.name.startswith("."))
    if not words:
        raise InputError(f"{src}: no word folders; a Speech Commands folder holds one folder per word")
    clips = []
    for d in words:
        for p in _audio_files(d):
            rel = p.relative_to(src).as_posix()
            split = lists.get(rel) if lists else which_set(p.name)
            clips.append(Clip(p, d.name.lower(), _speaker_of(p.stem), split or "train"))
    noise = _audio_files(src / BACKGROUND) if (src / BACKGROUND).is_dir() else []
    return clips, noise


def folder_clips(src: Path) -> tuple[list[Clip], list[Path]]:
    """(clips, background-noise files) of a folder-per-word tree, with or without split
    folders above the words; a top-level `_background_noise_` folder is noise, as in
    Speech Commands."""
    tops = [d for d in src.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name != BACKGROUND]
    split_dirs = [d for d in tops if d.name.lower() in SPLIT_NAMES]
    if split_dirs and len(split_dirs) != len(tops):
        others = sorted(d.name for d in tops if d not in split_dirs)
        raise InputError(f"{src}: split folders ({', '.join(d.name for d in split_dirs)}) beside others "
                         f"({', '.join(others[:3])}); use one layout: SRC/<word>/ or SRC/<split>/<word>/")
    clips = []
    for top in tops:
        roots = [(d, SPLIT_NAMES[top.name.lower()]) for d in sorted(top.iterdir()) if d.is_dir()] \
            if split_dirs else [(top, None)]
        for word_dir, split in roots:
            for p in _audio_files(word_dir):
                speaker = _speaker_of(p.stem)
                clips.append(Clip(p, word_dir.name.lower(), speaker, split or which_set(speaker)))
    noise = _audio_files(src / BACKGROUND) if (src / BACKGROUND).is_dir() else []
    return clips, noise


def csv_clips(src: Path) -> tuple[list[Clip], list[Path]]:
    """(word clips, background-noise files) a CSV file lists (columns path, label or word, and
    optionally speaker, split); a row labelled `_silence_` longer than RECORDING_SECONDS is a
    noise recording, cut into one-second windows as a `_background_noise_` folder's are."""
    with src.open(newline="") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        word_col = "label" if "label" in cols else "word" if "word" in cols else None
        if "path" not in cols or word_col is None:
            raise InputError(f"{src}: want columns path and label (or word); it has {', '.join(sorted(cols)) or 'none'}")
        clips, noise = [], []
        for n, r in enumerate(reader, 2):
            path = (src.parent / r["path"]).resolve()
            if r[word_col].strip().lower() == SILENCE and _is_recording(path):
                noise.append(path)
                continue
            speaker = (r.get("speaker") or "").strip() or _speaker_of(path.stem)
            split = (r.get("split") or "").strip().lower()
            if split and split not in SPLIT_NAMES:
                raise InputError(f"{src}:{n}: split {split!r}; use train, valid or test")
            clips.append(Clip(path, r[word_col].strip().lower(), speaker,
                              SPLIT_NAMES[split] if split else which_set(speaker)))
    return clips, noise


RECORDING_SECONDS = 2.0  # a `_silence_` row longer than this is a recording to cut, not one clip


def _is_recording(path: Path) -> bool:
    """True for an audio file longer than RECORDING_SECONDS (an unreadable one is not: it is
    read, and skipped, as a clip)."""
    try:
        return audio_seconds(path) > RECORDING_SECONDS
    except AudioError:
        return False


def detect_layout(src: Path) -> str:
    """The layout of SRC: csv for a file, speech-commands when its lists or noise folder are there, else folders."""
    if src.is_file():
        return "csv"
    if (src / "validation_list.txt").is_file() or (src / BACKGROUND).is_dir():
        return "speech-commands"
    return "folders"


def _silence_clips(noise_files: list[Path], fixed_split: str | None = None) -> list[tuple[np.ndarray, str, str]]:
    """One-second windows of background noise: (audio, split, source name), each file's
    windows split by position so that no window spans two splits (or all in `fixed_split`)."""
    out = []
    for f in noise_files:
        audio = read_audio(f)
        n = audio.size // SAMPLE_RATE
        cut_train, cut_valid = int(n * SILENCE_SHARES[0]), int(n * sum(SILENCE_SHARES))
        for i in range(n):
            split = fixed_split or ("train" if i < cut_train else "valid" if i < cut_valid else "test")
            out.append((audio[i * SAMPLE_RATE:(i + 1) * SAMPLE_RATE], split, f"{f.stem}-{i:04d}"))
    return out


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "clip"


def import_corpus(src: str | Path, out: str | Path, layout: str | None = None, mapping: str | None = None,
                  force: bool = False, progress: bool = True, log=print, splits: SplitRule | None = None) -> Path:
    """Import a corpus in one of LAYOUTS into a data directory (manifest.csv, wav/, data.json);
    `splits` overrides the layout's own split of the clips.

    Raises InputError: SRC missing, a layout's files absent, an unknown label in the map,
    or no clip that could be read; OutputExistsError: out exists without force.
    """
    src, out = Path(src), Path(out)
    splits = splits or SplitRule()
    splits.check()
    refuse_existing(out, force)
    if not src.exists():
        raise InputError(f"{src}: no such corpus folder or CSV file")
    layout = layout or detect_layout(src)
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if (layout == "csv") != src.is_file():
        raise InputError(f"{src}: layout {layout} wants {'a CSV file' if layout == 'csv' else 'a folder'}")
    words = label_map(mapping)
    noise: list[Path] = []
    if layout == "speech-commands":
        clips, noise = speech_commands_clips(src)
    elif layout == "folders":
        clips, noise = folder_clips(src)
    else:
        clips, noise = csv_clips(src)
    clips = [replace(c, split=splits.split_of(c)) for c in clips]
    if not clips and not noise:
        raise InputError(f"{src}: no audio clips found ({', '.join(sorted(AUDIO_SUFFIXES))}) in layout {layout}")
    skipped: list[str] = []
    rows: list[Row] = []
    with atomic_dir(out) as tmp:
        for c in progress_bar(clips, progress, f"importing {src.name}", "clip"):
            label = words.get(c.word, UNKNOWN)
            try:
                audio = fit_length(read_audio(c.path), SAMPLE_RATE)
            except AudioError as exc:
                skipped.append(str(exc))
                continue
            rel = f"wav/{c.split}/{label}/{_safe(c.word)}-{_safe(c.speaker)}-{len(rows):06d}.wav"
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            write_wav(tmp / rel, audio)
            rows.append(Row(rel, label, c.word, layout, c.speaker, c.speaker, "clean", c.split, 1.0))
        for audio, split, name in _silence_clips(noise, splits.split):
            rel = f"wav/{split}/{SILENCE}/{_safe(name)}.wav"
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            write_wav(tmp / rel, audio)
            rows.append(Row(rel, SILENCE, "", layout, "noise", f"noise:{name.rsplit('-', 1)[0]}", "clean", split, 1.0))
        if not rows:
            first = f"first error: {skipped[0]}" if skipped else "its noise files are shorter than a second"
            raise InputError(f"{src}: none of its {len(clips)} clips could be read; {first}")
        write_manifest(tmp, rows)
        summary = _summary(src, layout, mapping, rows, skipped)
        if splits.to_dict():
            summary["split_rule"] = splits.to_dict()
        (tmp / "data.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"imported {len(rows)} clips from {src} ({layout}) to {out}: "
        + ", ".join(f"{s} {summary['per_split'].get(s, 0)}" for s in SPLITS)
        + (f"; skipped {len(skipped)} unreadable files (data.json lists them)" if skipped else ""))
    if summary["speakers_in_more_than_one_split"]:
        log(f"warning: {summary['speakers_in_more_than_one_split']} speakers have clips in more than one split "
            "(the corpus's lists put them there); figures on valid and test are then not on unheard voices")
    for s in SPLITS:
        if not summary["per_split"].get(s):
            log(f"warning: the {s} split is empty")
    return out


def _summary(src: Path, layout: str, mapping: str | None, rows: list[Row], skipped: list[str]) -> dict:
    """data.json of an imported corpus: source, counts per split and label, speaker overlap, skipped files."""
    per_split: dict[str, int] = {}
    per_label: dict[str, dict[str, int]] = {}
    speakers: dict[str, set] = {}
    for r in rows:
        per_split[r.split] = per_split.get(r.split, 0) + 1
        per_label.setdefault(r.split, {})
        per_label[r.split][r.label] = per_label[r.split].get(r.label, 0) + 1
        if r.label != SILENCE:
            speakers.setdefault(r.speaker, set()).add(r.split)
    return {"source": str(src), "layout": layout, "map": mapping or "digits", "clips": len(rows),
            "per_split": per_split, "per_label": per_label, "speakers": len(speakers),
            "speakers_in_more_than_one_split": sum(len(s) > 1 for s in speakers.values()),
            "skipped": skipped[:100], "skipped_count": len(skipped)}
