"""The arguments of `edge-asr data ACTION`: synth, human, connected, running, import,
augment and mine; docs/cli.md is their reference."""

from __future__ import annotations

from .args import COUNT, ranged, writes
from .verbs import (
    cmd_data_augment,
    cmd_data_connected,
    cmd_data_human,
    cmd_data_import,
    cmd_data_mine,
    cmd_data_running,
    cmd_data_synth,
)


def _synth(data_sub) -> None:
    """`data synth`."""
    s = data_sub.add_parser("synth", help="synthesize the spoken-digit corpus from TTS engines",
                            description="Synthesize 16 kHz one-second clips of the digits, other words "
                            "(_unknown_) and noise (_silence_) with every TTS engine found (espeak-ng, flite, "
                            "festival, piper, SVOX Pico, RHVoice, MBROLA, Kokoro), augment them, and write WAVs plus "
                            "manifest.csv split by voice.")
    writes(s, "output data directory", quiet=True)
    s.add_argument("--size", choices=["small", "full"], default="small",
                   help="small: a few hundred clips for tests; full: the training corpus (default: small)")
    s.add_argument("--seed", type=int, default=0, help="random seed; same seed, same corpus (default 0)")
    s.add_argument("--jobs", type=COUNT, default=None, help="worker processes (default: all cores)")
    s.add_argument("--exclude-engine", action="append", default=[], metavar="ENGINE",
                   help="leave this engine out even if installed (repeatable); leaving out engines that came "
                   "late (kokoro; rhvoice and mbrola) gives the corpus as it was before them, clip for clip")
    s.add_argument("--train-only-words", type=int, default=None, metavar="N",
                   help="each training voice also says N words heard around digits in real speech "
                   "(letter names, million, billion, minus, months) as _unknown_; validation and test clips "
                   "stay the same (default 0)")
    s.set_defaults(func=cmd_data_synth)


def _human(data_sub) -> None:
    """`data human`."""
    h = data_sub.add_parser("human", help="a test set of real human speech from Debian's Asterisk prompts",
                            description="Make a test-only data directory from the real recordings in "
                            "asterisk-core-sounds-en-wav (one speaker, 8 kHz telephone band): digits, and "
                            "numbers, letters, days and months as _unknown_. Never used for training.")
    writes(h, "output data directory")
    h.add_argument("--copies", type=ranged(int, 0), default=4, help="augmented copies per recording (default 4)")
    h.add_argument("--seed", type=int, default=0)
    h.set_defaults(func=cmd_data_human)


def _connected(data_sub) -> None:
    """`data connected`."""
    cd = data_sub.add_parser("connected", help="connected-digit files from test-split voices, for word error rate",
                             description="Write N files of 2-5 digits spoken by held-out voices with pauses "
                             "between them; manifest.csv holds the digit sequence in `text`.")
    writes(cd, "output data directory")
    cd.add_argument("--n", type=COUNT, default=50, help="number of files (default 50)")
    cd.add_argument("--seed", type=int, default=0)
    cd.add_argument("--split", choices=("test", "valid"), default="test",
                    help="whose voices speak: the test split's (default) or the validation split's, "
                    "for tuning recognizer settings without the test voices")
    cd.set_defaults(func=cmd_data_connected)


def _running(data_sub) -> None:
    """`data running`."""
    rn = data_sub.add_parser("running", help="long running speech without digit words, for false alarms per hour",
                             description="Sentences (licence texts and Python's reference, none with a digit word, "
                             "a homophone or a numeral) read by one split's TTS voices, augmented as the corpus is, "
                             "in files of about a minute; plus the human set's non-digit prompts said one after "
                             "another, when Asterisk's prompts are installed. Every word a recognizer emits on it is "
                             "a false alarm: `edge-asr eval --running DIR`.")
    writes(rn, "output data directory")
    rn.add_argument("--hours", type=ranged(float, 0, 100, above=True), default=1.0,
                    help="hours of TTS sentences (default 1)")
    rn.add_argument("--split", choices=("test", "valid", "train"), default="test",
                    help="whose voices read: the held-out test split's (default), the validation split's, to choose "
                    "an operating threshold on, or (with --windows) the training split's")
    rn.add_argument("--homophones", action="store_true",
                    help="keep sentences with words that sound like digits (to, too, for, won, ate, oh): false "
                    "alarms as read speech gives them (still no digit word or numeral)")
    rn.add_argument("--windows", type=ranged(int, 1), default=0, metavar="N",
                    help="instead of long files, N one-second windows cut at random from the speech, as _unknown_ "
                    "clips to train on (`train DATA --extra-train OUT`)")
    rn.add_argument("--seed", type=int, default=0)
    rn.add_argument("--quiet", action="store_true", help="no progress bar")
    rn.set_defaults(func=cmd_data_running)


def _import(data_sub) -> None:
    """`data import`."""
    im = data_sub.add_parser("import", help="a real corpus (Speech Commands, a folder per word, a CSV) as a data directory",
                             description="Read a corpus in one of three layouts and write it as `data synth` "
                             "writes a data directory (16 kHz one-second WAVs, manifest.csv with speaker-disjoint "
                             "splits, data.json), so that train, eval and `train --extra-train` take it. Digit "
                             "words keep their names, other words become _unknown_, background noise _silence_.")
    im.add_argument("src", help="the corpus: a Speech Commands folder, a folder of word folders (optionally under "
                    "train/valid/test folders), or a CSV file with path and label columns")
    writes(im, "output data directory", quiet=True)
    im.add_argument("--layout", choices=("speech-commands", "folders", "csv"),
                    help="the corpus's layout (default: csv for a file, speech-commands when validation_list.txt "
                    "or _background_noise_ is there, else folders)")
    im.add_argument("--map", default="digits", metavar="digits|FILE.csv",
                    help="words to the task's labels: digits (default: digit words keep their names, the rest "
                    "_unknown_), or a CSV of word,label rows for other words")
    sp = im.add_argument_group("splits (default: the corpus's own lists, split folders or CSV column, else a hash "
                               "of the speaker)")
    sp.add_argument("--split", choices=("train", "valid", "test"),
                    help="put every clip in this split (a corpus to validate or test on only)")
    sp.add_argument("--valid-speakers", metavar="S1,S2", default="",
                    help="these speakers' clips are the valid split, the rest train (with --test-speakers: test)")
    sp.add_argument("--test-speakers", metavar="S1,S2", default="", help="these speakers' clips are the test split")
    sp.add_argument("--valid-paths", metavar="GLOB", action="append", default=[],
                    help="clips whose path matches this glob (e.g. '*view-glass*') are the valid split "
                    "(repeatable; for corpora without speaker names)")
    sp.add_argument("--test-paths", metavar="GLOB", action="append", default=[],
                    help="clips whose path matches this glob are the test split (repeatable)")
    im.set_defaults(func=cmd_data_import)


def _augment(data_sub) -> None:
    """`data augment`."""
    au = data_sub.add_parser("augment", help="augmented copies of a data set's training clips (rooms, real "
                             "backgrounds, microphones, telephone band)",
                             description="Write a data directory with SRC's clips and augmented copies of each "
                             "training clip: a random time shift and level, a microphone's low cut, a shoebox "
                             "room (pyroomacoustics), a background from --noise's _silence_ clips at a random SNR, "
                             "the telephone band. Seeded clip by clip; data.json and each row record the steps.")
    au.add_argument("src", help="data directory to augment (e.g. a `data import`ed corpus)")
    writes(au, "output data directory", quiet=True)
    au.add_argument("--noise", metavar="DIR", help="data directory whose _silence_ training clips are the "
                    "backgrounds (e.g. `data import` of real background noise); default: generated noise")
    au.add_argument("--copies", type=ranged(int, 1, 100), default=4, help="copies per training clip (default 4)")
    au.add_argument("--noise-p", type=ranged(float, 0, 1), default=0.8,
                    help="share of copies with a background (default 0.8)")
    au.add_argument("--snr", default="0,20", metavar="LOW,HIGH", help="background SNR range in dB (default 0,20)")
    au.add_argument("--reverb", type=ranged(float, 0, 1), default=0.5, help="share of copies in a room (default 0.5)")
    au.add_argument("--telephone", type=ranged(float, 0, 1), default=0.2,
                    help="share of copies through the telephone band (default 0.2)")
    au.add_argument("--seed", type=int, default=0)
    au.add_argument("--jobs", type=ranged(int, 1), default=None, help="worker processes (default: all cores)")
    au.set_defaults(func=cmd_data_augment)


def _mine(data_sub) -> None:
    """`data mine`."""
    mi = data_sub.add_parser("mine", help="hard negatives: the other-word clips a model takes for a keyword",
                             description="Score SRC's _unknown_ clips (e.g. `data running --split train --windows N`) "
                             "with MODEL and write those whose top posterior is a keyword at --threshold or above "
                             "as a data directory, to train the next model on (`train ... --extra-train OUT`).")
    mi.add_argument("model", help="model directory (model.onnx + model.json)")
    mi.add_argument("src", help="data directory whose _unknown_ clips are scored")
    writes(mi, "output data directory", quiet=True)
    mi.add_argument("--threshold", type=ranged(float, 0, 1, above=True), default=0.5,
                    help="posterior at which a clip counts as firing (default 0.5)")
    mi.add_argument("--split", default="train", choices=("train", "valid", "test"), help="SRC's split (default train)")
    mi.set_defaults(func=cmd_data_mine)


def add_data_verbs(data_sub) -> None:
    """Add every `data` action to the `data` verb's subparsers."""
    for add in (_synth, _human, _connected, _running, _import, _augment, _mine):
        add(data_sub)
