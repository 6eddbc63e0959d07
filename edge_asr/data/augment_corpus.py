"""`edge-asr data augment`: copies of a data directory's training clips as real microphones,
rooms and backgrounds would have given them, written as a data directory of its own.

Each copy of a clip draws its own chain from a generator seeded by (seed, clip, copy), so a
run is reproducible clip for clip and the same on any number of workers:
- speed: with SPEED_P probability the word played 0.85-1.2 times as fast, pitch and
  formants moving with it (a shorter or longer vocal tract: Ko et al. 2015's perturbation);
- time shift: the word (silence trimmed) at a random place in the one-second window;
- level: a peak of PEAK_DB dBFS, and with HIGHPASS_P a microphone's low cut (a 2nd-order
  high-pass at 60-300 Hz);
- room: with `reverb` probability, a shoebox room (pyroomacoustics' image-source model:
  3-10 m x 3-8 m x 2.5-4 m, RT60 0.15-0.8 s by Sabine's formula, talker 0.5-4 m from the
  microphone);
- background: with `noise_p` probability a random one-second clip of the noise data set
  (its `_silence_` training clips: real recordings such as Speech Commands' background
  noise, imported with `data import`), or generated noise without one, at a random SNR;
- telephone band: with `telephone` probability, 300-3400 Hz, 8 kHz mu-law and back.
The valid and test clips are copied unchanged, so the output is a whole data directory;
data.json records the source, seed and every setting, and each row its steps.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir, refuse_existing, worker_signals
from ..errors import InputError
from ..frontend.audio import SAMPLE_RATE, fit_length, read_audio, write_wav
from . import SILENCE
from . import augment as aug
from .loading import progress_bar
from .manifest import Row, read_manifest, write_manifest

SPEED_P, SPEED = 0.5, (0.85, 1.2)
PEAK_DB = (-30.0, -1.0)
HIGHPASS_P = 0.3
ROOM = {"length": (3.0, 10.0), "width": (3.0, 8.0), "height": (2.5, 4.0), "rt60": (0.15, 0.8),
        "distance": (0.5, 4.0)}
# Image sources up to the order Sabine's formula asks for (a short order cuts the tail: at
# order 12 a 0.6 s room measures 0.2 s); the cap bounds the time of the largest, most
# reverberant rooms (about 0.3 s per impulse response at order 80).
MAX_IMAGE_ORDER = 100


@dataclass(frozen=True)
class AugmentSpec:
    """What `data augment` does to each training clip (recorded in data.json).

    Attributes:
        copies: augmented copies per training clip (the clean clip is kept too).
        seed: the seed of every draw.
        noise_p: probability of a background; snr_db its range.
        reverb: probability of a room; telephone: of the telephone band.
    """
    copies: int = 4
    seed: int = 0
    noise_p: float = 0.8
    snr_db: tuple[float, float] = (0.0, 20.0)
    reverb: float = 0.5
    telephone: float = 0.2

    def check(self) -> None:
        """InputError for counts and probabilities that cannot be."""
        if not 1 <= self.copies <= 100:
            raise InputError(f"--copies {self.copies}: give 1 to 100")
        for flag, p in (("--noise-p", self.noise_p), ("--reverb", self.reverb), ("--telephone", self.telephone)):
            if not 0.0 <= p <= 1.0:
                raise InputError(f"{flag} {p}: give a probability between 0 and 1")
        lo, hi = self.snr_db
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise InputError(f"--snr {lo},{hi}: give LOW,HIGH in dB with LOW <= HIGH")


def room_rir(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A shoebox room's impulse response between a random talker and microphone, and its description."""
    import pyroomacoustics as pra
    for _ in range(50):  # a large room cannot be as dry as a short RT60 asks (absorption past 1): draw again
        dims = [rng.uniform(*ROOM["length"]), rng.uniform(*ROOM["width"]), rng.uniform(*ROOM["height"])]
        rt60 = rng.uniform(*ROOM["rt60"])
        try:
            absorption, order = pra.inverse_sabine(rt60, dims)
            break
        except ValueError:
            continue
    else:
        dims, rt60 = [4.0, 3.5, 2.7], 0.4
        absorption, order = pra.inverse_sabine(rt60, dims)
    mic = np.array([rng.uniform(0.5, d - 0.5) for d in dims])
    for _ in range(20):  # a talker at the drawn distance, inside the room
        direction = rng.standard_normal(3)
        src = mic + direction / np.linalg.norm(direction) * rng.uniform(*ROOM["distance"])
        if all(0.3 < s < d - 0.3 for s, d in zip(src, dims, strict=True)):
            break
    else:
        src = np.array(dims) / 2
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(order, MAX_IMAGE_ORDER))
    room.add_source(src.tolist())
    room.add_microphone(mic.tolist())
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], np.float64)
    return rir, f"room={dims[0]:.1f}x{dims[1]:.1f}x{dims[2]:.1f}m rt60={rt60:.2f}s d={np.linalg.norm(src - mic):.1f}m"


def augment_clip(x: np.ndarray, spec: AugmentSpec, rng: np.random.Generator,
                 noise_bank: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, list[str]]:
    """One augmented copy of a one-second clip, and the steps it took."""
    from scipy import signal
    steps = []
    word = aug.trim_silence(x)
    if rng.random() < SPEED_P:
        factor = rng.uniform(*SPEED)
        word = aug.change_speed(word, factor)[:SAMPLE_RATE]
        steps.append(f"speed={factor:.2f}")
    if word.size < SAMPLE_RATE:
        at = int(rng.integers(0, SAMPLE_RATE - word.size + 1))
        x = np.zeros(SAMPLE_RATE, np.float32)
        x[at:at + word.size] = word
        steps.append(f"shift={at / SAMPLE_RATE:.2f}s")
    if rng.random() < spec.reverb:
        rir, room = room_rir(rng)
        y = signal.fftconvolve(x, rir)[: x.size]
        x = (y * (np.abs(x).max() / (np.abs(y).max() + 1e-12))).astype(np.float32)
        steps.append(room)
    if rng.random() < HIGHPASS_P:
        cut = rng.uniform(60, 300)
        x = signal.sosfilt(signal.butter(2, cut, btype="highpass", fs=SAMPLE_RATE, output="sos"), x).astype(np.float32)
        steps.append(f"highpass={cut:.0f}Hz")
    speech_rms = aug.rms(aug.trim_silence(x))
    if rng.random() < spec.noise_p:
        snr = rng.uniform(*spec.snr_db)
        if noise_bank:
            name, noise = noise_bank[int(rng.integers(len(noise_bank)))]
        else:
            name = str(rng.choice(aug.NOISE_KINDS))
            noise = aug.make_noise(name, x.size, rng)
        x = aug.add_noise(x, noise, snr, speech_rms)
        steps.append(f"noise={name}@{snr:.0f}dB")
    if rng.random() < spec.telephone:
        x = aug.telephone(x, rng)
        steps.append("telephone")
    peak = rng.uniform(*PEAK_DB)
    x = aug.set_peak_db(x, peak)
    steps.append(f"peak={peak:.0f}dB")
    return fit_length(x, SAMPLE_RATE), steps


def _noise_bank(noise_dir: Path | None) -> list[tuple[str, np.ndarray]]:
    """(source name, one second of audio) of every `_silence_` training clip of a data set."""
    if noise_dir is None:
        return []
    rows = [r for r in read_manifest(noise_dir, "train") if r.label == SILENCE]
    if not rows:
        raise InputError(f"--noise {noise_dir}: no _silence_ clips in its train split; import background noise "
                         "with `edge-asr data import` (a CSV of _silence_ rows or a _background_noise_ folder)")
    # an imported recording's windows name it as their speaker ("noise:running_tap")
    return [(r.speaker.removeprefix("noise:") if r.speaker.startswith("noise:") else r.voice,
             fit_length(read_audio(noise_dir / r.path), SAMPLE_RATE)) for r in rows]


_WORK: dict = {}


def _copies_of(job: tuple[int, Row]) -> list[Row]:
    """Write the copies of one training clip (in a worker); their rows."""
    i, row = job
    src, tmp, spec, bank = _WORK["src"], _WORK["tmp"], _WORK["spec"], _WORK["bank"]
    x = fit_length(read_audio(src / row.path), SAMPLE_RATE)
    out = []
    for k in range(spec.copies):
        y, steps = augment_clip(x, spec, np.random.default_rng([spec.seed, i, k]), bank)
        rel = f"{Path(row.path).with_suffix('').as_posix()}-aug{k}.wav"
        write_wav(tmp / rel, y)
        done = ";".join(steps) if row.augmentation in ("", "clean") else f"{row.augmentation};{';'.join(steps)}"
        out.append(replace(row, path=rel, augmentation=done))
    return out


def augment_corpus(src: str | Path, out: str | Path, spec: AugmentSpec, noise: str | Path | None = None,
                   jobs: int | None = None, force: bool = False, progress: bool = True, log=print) -> Path:
    """Write `out`: SRC's clips, and `spec.copies` augmented copies of each training clip
    (`_silence_` clips are copied, not augmented). Returns `out`.

    Raises:
        InputError: SRC not a data directory, a noise set without noise, bad settings;
        OutputExistsError: out exists without force.
    """
    import shutil
    src, out = Path(src), Path(out)
    spec.check()
    refuse_existing(out, force)
    rows = read_manifest(src)
    bank = _noise_bank(Path(noise) if noise else None)
    train = [(i, r) for i, r in enumerate(rows) if r.split == "train" and r.label != SILENCE]
    if not train:
        raise InputError(f"{src}: no training clips (other than _silence_) to augment")
    with atomic_dir(out) as tmp:
        for r in rows:  # every clip as it is
            (tmp / r.path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / r.path, tmp / r.path)
        _WORK.update(src=src, tmp=tmp, spec=spec, bank=bank)
        jobs = max(1, min(jobs or os.cpu_count() or 1, len(train)))
        if jobs > 1:
            with mp.get_context("fork").Pool(jobs, initializer=worker_signals) as pool:
                made = list(progress_bar(pool.imap(_copies_of, train, chunksize=16), progress,
                                         f"augmenting {src.name}", "clip"))
        else:
            made = [_copies_of(job) for job in progress_bar(train, progress, f"augmenting {src.name}", "clip")]
        _WORK.clear()
        added = [r for group in made for r in group]
        write_manifest(tmp, rows + added)
        source = json.loads((src / "data.json").read_text()) if (src / "data.json").is_file() else {}
        (tmp / "data.json").write_text(json.dumps({
            "kind": "augmented", "source": str(src.resolve()), "source_data": source,
            "noise": str(Path(noise).resolve()) if noise else None, "augmentation": {
                **asdict(spec), "speed_p": SPEED_P, "speed": list(SPEED), "peak_db": list(PEAK_DB),
                "highpass_p": HIGHPASS_P, "room": ROOM,
                "room_model": "pyroomacoustics ShoeBox, image sources up to order "
                              f"{MAX_IMAGE_ORDER}, absorption by inverse Sabine"},
            "clips": len(rows) + len(added), "augmented": len(added)}, indent=2) + "\n")
    log(f"wrote {out}: {len(rows)} clips of {src} and {len(added)} augmented copies of its {len(train)} training "
        "clips")
    return out
