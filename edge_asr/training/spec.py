"""What a training run is asked to do: the recipe (TrainConfig, `edge-asr train`'s flags)
and the whole request (TrainSpec: the recipe, the data, the front end and where the run
is written), typed. A TrainSpec crosses into every worker process of a data-parallel run,
so it holds only plain values."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import InputError
from ..frontend.features import FeatureConfig
from .distributed import Launch


@dataclass
class TrainConfig:
    """Training settings, recorded in train.json; `edge-asr train`'s flags set them."""
    net: str = "conv1d"
    net_options: dict = field(default_factory=dict)  # extra constructor arguments of the net
    epochs: int = 40
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 8
    seed: int = 0
    label_smoothing: float = 0.05
    # Draw training clips with weight (1 / clips of their engine) ** engine_balance: 0 draws
    # uniformly, 1 gives every TTS engine the same share. espeak-ng alone makes most of a
    # corpus, and its formant voices are the least like people.
    engine_balance: float = 0.0
    # Share of each batch's clips that get one more noise, drawn afresh each time: a training
    # `_silence_` clip's noise mixed in at 0-20 dB. The corpus's own noisy clips keep one
    # noise each for all epochs. 0 turns it off.
    noise_mix: float = 0.0
    # Knowledge distillation: a trained run directory (a bigger net, free of the FPGA's size
    # limit) whose softened posteriors on each augmented batch are learnt beside the labels.
    # The loss is (1 - w) * cross-entropy + w * T^2 * KL(teacher || student) at temperature T.
    teacher: str = ""
    distill_weight: float = 0.5
    distill_temperature: float = 2.0
    threads: int = 0  # 0: torch's default
    # Quantization-aware training (qat.QuantSpec as a dict: weight_bits, act_bits, ...), or
    # None for a float net; `init`: a float run or model directory to start from.
    qat: dict | None = None
    init: str = ""
    # The batch is the global one, split over a data-parallel run's processes; --lr is scaled
    # with it by this rule (none, linear, sqrt; see peak_lr).
    lr_scaling: str = "none"
    profile: bool = False  # time the gradient all-reduce apart (it then stops overlapping the backward pass)
    # Data directory (as given) -> how often each of its training clips is drawn against a
    # clip of weight 1 (--data-weight): real and synthetic corpora mixed in every batch in the
    # shares these set. Empty: every clip alike.
    data_weights: dict = field(default_factory=dict)

    def check(self, where: Launch) -> None:
        """InputError for settings that cannot make a run (before anything is written)."""
        where.check()
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError("--epochs and --batch-size must be at least 1")
        if self.batch_size < where.nproc * where.nnodes:
            raise InputError(f"--batch-size {self.batch_size} is the global batch: give at least one clip per "
                             f"process ({where.nproc * where.nnodes})")
        if self.lr_scaling not in ("none", "linear", "sqrt"):
            raise InputError(f"--lr-scaling {self.lr_scaling}: choose none, linear or sqrt")
        if not 0.0 <= self.noise_mix <= 1.0:
            raise InputError(f"--noise-mix {self.noise_mix}: give a share between 0 and 1")
        for d, w in self.data_weights.items():
            if not (isinstance(w, (int, float)) and math.isfinite(w) and w > 0):
                raise InputError(f"--data-weight {d}={w}: give a weight above 0")
        if self.teacher and not (0.0 <= self.distill_weight <= 1.0 and self.distill_temperature > 0):
            raise InputError(f"--distill-weight {self.distill_weight} / --distill-temperature "
                             f"{self.distill_temperature}: give a weight between 0 and 1 and a temperature above 0")


LR_REFERENCE_BATCH = 64  # the batch --lr's default was tuned at; --lr-scaling scales from it


def peak_lr(cfg: TrainConfig) -> float:
    """The one-cycle schedule's peak: --lr, scaled with the global batch by --lr-scaling
    (linear: Goyal et al. 2017's rule, the one-cycle's first 30 % of steps its warm-up)."""
    ratio = cfg.batch_size / LR_REFERENCE_BATCH
    return cfg.lr * {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[cfg.lr_scaling]


@dataclass
class TrainSpec:
    """One training run as every rank receives it.

    Attributes:
        data_dir: the data set whose train split is trained on and whose valid split validates.
        extra_train: other data sets whose train splits are trained on too.
        cfg: the training settings.
        feature: the front end's settings (None: the default), before statistics.
        partial: the folder the run trains in (checkpoint.incomplete_dir of its --out).
        resume: continue from partial's checkpoint.
        progress: show progress bars (on rank 0).
        extra_valid: other data sets whose valid splits are validated too; with any, the
            epoch is chosen by the mean accuracy over them and data_dir's valid split.
    """
    data_dir: Path
    extra_train: list[Path]
    cfg: TrainConfig
    feature: FeatureConfig | None
    partial: Path
    resume: bool = False
    progress: bool = True
    extra_valid: list[Path] = field(default_factory=list)

    @property
    def data_dirs(self) -> list[Path]:
        """Every data set the run trains on, the validating one first."""
        return [self.data_dir, *self.extra_train]

    def weight_of(self, data_dir: Path) -> float:
        """The --data-weight of a training data set (1 unless given)."""
        for d, w in self.cfg.data_weights.items():
            if Path(d).resolve() == data_dir.resolve():
                return float(w)
        return 1.0

    def check_weights(self) -> None:
        """InputError for a --data-weight naming a folder the run does not train on."""
        trained = {d.resolve() for d in self.data_dirs}
        for d in self.cfg.data_weights:
            if Path(d).resolve() not in trained:
                raise InputError(f"--data-weight {d}: not a data set this run trains on; give DATA or an "
                                 "--extra-train folder")

    def recipe(self) -> dict:
        """What a checkpoint must match to be resumed: the training settings and the front end's
        flags (the checkpoint's `recipe`), and the validation sets when there are any."""
        recipe = {**asdict(self.cfg), "feature": self.feature.to_dict() if self.feature else None}
        if not self.cfg.data_weights:
            recipe.pop("data_weights")  # as a checkpoint written before the option has it
        if self.extra_valid:
            recipe["extra_valid"] = [str(d) for d in self.extra_valid]
        return recipe
