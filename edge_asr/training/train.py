"""`edge-asr train`: CPU training with validation each epoch, early stopping and seed control.

A run directory holds `best.pt` (a state dict, loaded with weights_only=True) and
`train.json` (net, its arguments, labels, feature configuration with the normalisation
statistics, data summary and the per-epoch history). `edge-asr export` reads both.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..atomic import atomic_dir, refuse_existing
from ..data import LABELS
from ..data.loading import feature_matrix, label_indices
from ..data.manifest import read_manifest
from ..errors import InputError
from ..frontend.features import FeatureConfig
from .nets import build_net, count_parameters


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


class BucketBatchSampler(torch.utils.data.Sampler):
    """Batches of similar-length utterances: lengths are sorted into buckets, each batch is
    drawn from one bucket, batch order is shuffled. Work per batch stays balanced when clip
    lengths differ; with fixed-length KWS clips it reduces to a plain shuffled sampler."""

    def __init__(self, lengths: list[float], batch_size: int, seed: int, bucket_width: float = 0.25,
                 weights: np.ndarray | None = None):
        self.lengths = np.asarray(lengths, dtype=np.float64)
        self.batch_size = batch_size
        self.seed = seed
        self.bucket_width = bucket_width
        self.weights = None if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
        self.epoch = 0

    def batches(self) -> list[list[int]]:
        """This epoch's batches of indices."""
        rng = np.random.default_rng([self.seed, self.epoch])
        keys = np.floor(self.lengths / self.bucket_width).astype(np.int64)
        if self.weights is not None:  # an epoch of len(lengths) weighted draws
            drawn = np.sort(rng.choice(len(keys), len(keys), replace=True, p=self.weights))
        else:
            drawn = np.arange(len(keys))
        out: list[list[int]] = []
        for k in np.unique(keys):
            idx = drawn[keys[drawn] == k]
            rng.shuffle(idx)
            out += [idx[i:i + self.batch_size].tolist() for i in range(0, idx.size, self.batch_size)]
        order = rng.permutation(len(out))
        return [out[i] for i in order]

    def __iter__(self):
        batches = self.batches()
        self.epoch += 1
        return iter(batches)

    def __len__(self) -> int:
        keys = np.floor(self.lengths / self.bucket_width).astype(np.int64)
        return int(sum(math.ceil(c / self.batch_size) for c in np.unique(keys, return_counts=True)[1]))


class FrontEnd:
    """The part of features.log_mel after the log: DCT, CMN, normalisation, on torch batches
    of (batch, n_mels, frames) log-mel. Equal to the numpy front end (tested)."""

    def __init__(self, cfg: FeatureConfig):
        from ..frontend.features import dct_matrix
        self.cfg = cfg
        self.dct = torch.from_numpy(dct_matrix(cfg.n_mels, cfg.n_mfcc).astype(np.float32)) if cfg.n_mfcc else None
        self.mean = torch.tensor(cfg.mean, dtype=torch.float32)[None, :, None] if cfg.mean else None
        self.std = torch.tensor(cfg.std, dtype=torch.float32)[None, :, None] if cfg.mean else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.dct is not None:
            x = torch.einsum("bft,fk->bkt", x, self.dct)
        if self.cfg.cmn:
            x = x - x.mean(dim=2, keepdim=True)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x


def _augment_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """On-the-fly augmentation of log-mel batches: time shift, level offset, frequency
    warping, frequency and time masks (filled with the clip's mean)."""
    b, f, t = x.shape
    x = x.clone()
    shifts = torch.randint(-8, 9, (b,), generator=gen)
    for i in range(b):
        s = int(shifts[i])
        if s:
            x[i] = torch.roll(x[i], s, dims=1)
            fill = x[i].min()
            if s > 0:
                x[i, :, :s] = fill
            else:
                x[i, :, s:] = fill
    x = x + (torch.rand(b, 1, 1, generator=gen) - 0.5) * 2.0  # +-1 in natural log: about +-4 dB
    # Frequency warping (as in VTLP): stretch the mel axis by 0.88-1.12, a cheap stand-in
    # for speakers with other vocal-tract lengths than the few voices in the corpus.
    alpha = 0.88 + 0.24 * torch.rand(b, 1, generator=gen)
    src = (torch.arange(f, dtype=torch.float32)[None, :] * alpha).clamp(0, f - 1)
    lo = src.floor().long().clamp(max=f - 2)
    w = (src - lo).unsqueeze(-1)
    rows = torch.arange(b)[:, None]
    x = x[rows, lo] * (1 - w) + x[rows, lo + 1] * w
    for i in range(b):
        fill = x[i].mean()
        w = int(torch.randint(0, 7, (1,), generator=gen))
        f0 = int(torch.randint(0, f - w + 1, (1,), generator=gen))
        x[i, f0:f0 + w, :] = fill
        w = int(torch.randint(0, 11, (1,), generator=gen))
        t0 = int(torch.randint(0, t - w + 1, (1,), generator=gen))
        x[i, :, t0:t0 + w] = fill
    return x


NOISE_MIX_SNR_DB = (0.0, 20.0)


def _noise_rows(rows: list) -> list[int]:
    """Indices of the training clips that are noise alone (`_silence_`, not digital zero)."""
    idx = [i for i, r in enumerate(rows) if r.label == "_silence_" and "digital-zero" not in r.augmentation]
    if not idx:
        raise InputError("--noise-mix needs noise clips (_silence_) in the train split; make the data with "
                         "`edge-asr data synth` or leave --noise-mix at 0")
    return idx


def _mix_noise(x: torch.Tensor, bank: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """Add a random bank clip's noise to a `share` of the log-mel clips in x, in the mel power
    domain (powers of independent sounds add), at a random 0-20 dB of clip-average power."""
    pick = torch.rand(len(x), generator=gen) < share
    if not pick.any():
        return x
    i = torch.nonzero(pick)[:, 0]
    noise = bank[torch.randint(0, len(bank), (len(i),), generator=gen)]
    lo, hi = NOISE_MIX_SNR_DB
    snr = lo + (hi - lo) * torch.rand(len(i), 1, 1, generator=gen)
    power = torch.exp(x[i])
    gain = power.mean(dim=(1, 2), keepdim=True) / noise.mean(dim=(1, 2), keepdim=True) / 10 ** (snr / 10)
    x = x.clone()
    x[i] = torch.log(power + gain * noise + 1e-6)
    return x


def _log_mel_config(cfg: FeatureConfig) -> FeatureConfig:
    """cfg up to the log: the part a training batch holds (no cepstra, no normalisation)."""
    return FeatureConfig(**{**cfg.to_dict(), "mean": [], "std": [], "n_mfcc": 0, "cmn": False})


def _load_teacher(run: Path, mel_cfg: FeatureConfig, labels: list[str]) -> tuple[nn.Module, FrontEnd]:
    """The teacher net of a run directory in eval mode, with its own front end (its DCT, mean
    normalisation and scaling) over the student's log-mel batches."""
    from .export import load_run
    # Building the net draws its (discarded) initial weights: from a forked generator, so a
    # teacher leaves the student's initialisation and batches as they would be without it.
    with torch.random.fork_rng(devices=[]):
        try:
            model, meta = load_run(run)
        except InputError as exc:
            raise InputError(f"--teacher {exc}") from None
    if meta["labels"] != labels:
        raise InputError(f"--teacher {run}: its labels {meta['labels']} differ from the task's {labels}")
    teacher_cfg = FeatureConfig(**meta["feature"])
    if _log_mel_config(teacher_cfg) != mel_cfg:
        raise InputError(f"--teacher {run}: its mel front end differs from this run's (sample rate, window, "
                         "hop, mel bins, band, clip length must match); train the teacher with the same ones")
    for p in model.parameters():
        p.requires_grad_(False)
    return model, FrontEnd(teacher_cfg)


def _distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(teacher || student) of the softened posteriors (Hinton et al. 2015): the T^2
    keeps its gradients on the scale of the cross-entropy's as T changes."""
    t = temperature
    return nn.functional.kl_div(nn.functional.log_softmax(student_logits / t, dim=1),
                                nn.functional.log_softmax(teacher_logits / t, dim=1),
                                reduction="batchmean", log_target=True) * t * t


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return correct / max(1, len(x))


def _data_summary(data_dir: Path) -> dict:
    """data.json written by `data synth` (empty for a hand-made data set)."""
    path = data_dir / "data.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _load_init(cfg: TrainConfig, labels: list[str]) -> tuple[list | None, dict | None]:
    """The float kernels and metadata of `cfg.init` (None, None without one); sets cfg.net
    and cfg.net_options to the init's net."""
    if not cfg.init:
        return None, None
    if cfg.qat is None:
        raise InputError("--init starts quantization-aware training from a float model: give --qat as well")
    from .qat import float_kernels
    kernels, meta = float_kernels(Path(cfg.init))
    if meta.get("labels") != labels:
        raise InputError(f"--init {cfg.init}: its labels {meta.get('labels')} differ from the task's {labels}")
    data_derived = ("n_features", "frames", "n_classes")
    cfg.net = meta["net"]
    cfg.net_options = {k: v for k, v in meta["net_kwargs"].items() if k not in data_derived}
    return kernels, meta


def train(data_dir: str | Path, out: str | Path, cfg: TrainConfig, feature_cfg: FeatureConfig | None = None,
          force: bool = False, progress: bool = True, log=print, extra_train: list[str | Path] = ()) -> Path:
    """Train on data_dir's train split, plus the train splits of `extra_train` (other data
    sets, e.g. `data synth` with other seeds: more renderings and augmentations of the
    training voices); validation uses data_dir's valid split alone."""
    data_dir, out = Path(data_dir), Path(out)
    extra_train = [Path(d) for d in extra_train]
    refuse_existing(out, force)
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise InputError("--epochs and --batch-size must be at least 1")
    if not 0.0 <= cfg.noise_mix <= 1.0:
        raise InputError(f"--noise-mix {cfg.noise_mix}: give a share between 0 and 1")
    if cfg.teacher and not (0.0 <= cfg.distill_weight <= 1.0 and cfg.distill_temperature > 0):
        raise InputError(f"--distill-weight {cfg.distill_weight} / --distill-temperature "
                         f"{cfg.distill_temperature}: give a weight between 0 and 1 and a temperature above 0")
    labels = list(LABELS)
    init_kernels, init_meta = _load_init(cfg, labels)
    if init_meta is not None:
        # the float model's front end, statistics included: its weights expect those inputs
        feature_cfg = FeatureConfig.from_dict(init_meta["feature"])
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    fcfg = feature_cfg or FeatureConfig()
    train_sets = [(d, read_manifest(d, "train")) for d in [data_dir, *extra_train]]
    train_rows = [r for _, rows in train_sets for r in rows]
    valid_rows = read_manifest(data_dir, "valid")
    # Held-out speakers stay held out: an extra set must not train on them.
    held_out = {r.speaker for r in valid_rows + read_manifest(data_dir, "test")} - {"noise"}
    for d, rows in train_sets[1:]:
        leaked = sorted({r.speaker for r in rows} & held_out)
        if leaked:
            raise InputError(f"{d}: its train split holds {leaked[0]}, a held-out speaker of {data_dir}; "
                             "extra training data must come from the same voice split")
    noise_idx = _noise_rows(train_rows) if cfg.noise_mix > 0 else None

    # Features are held as log-mel; augmentation works there (a mel axis to warp and mask),
    # then FrontEnd applies the rest of the front end: DCT, mean normalisation, scaling.
    mel_cfg = _log_mel_config(fcfg)
    teacher_net, teacher_front = _load_teacher(Path(cfg.teacher), mel_cfg, labels) if cfg.teacher else (None, None)
    xtr = torch.from_numpy(np.concatenate([feature_matrix(d, rows, mel_cfg, progress, "features (train)")
                                           for d, rows in train_sets]))
    xva = torch.from_numpy(feature_matrix(data_dir, valid_rows, mel_cfg, progress, "features (valid)"))
    if init_meta is None:
        front = FrontEnd(FeatureConfig(**{**fcfg.to_dict(), "mean": [], "std": []}))
        # Per-feature statistics from training data only; saved with the model.
        plain = front(xtr)
        fcfg = FeatureConfig(**{**fcfg.to_dict(), "mean": plain.mean(dim=(0, 2)).double().numpy().round(6).tolist(),
                                "std": (plain.std(dim=(0, 2)).double().numpy() + 1e-3).round(6).tolist()})
        del plain
    front = FrontEnd(fcfg)
    xva = front(xva)
    noise_bank = torch.exp(xtr[noise_idx]) if noise_idx else None  # mel power
    ytr = torch.from_numpy(label_indices(train_rows, labels))
    yva = torch.from_numpy(label_indices(valid_rows, labels))

    net_kwargs = {"n_features": fcfg.n_features, "frames": fcfg.clip_frames, "n_classes": len(labels),
                  **cfg.net_options}
    if cfg.qat is not None:
        from .qat import QuantSpec, load_float_weights, quantized_net
        model = quantized_net(cfg.net, net_kwargs, QuantSpec(**cfg.qat))
        if init_kernels is not None:
            load_float_weights(model, init_kernels, cfg.init)
    else:
        model = build_net(cfg.net, **net_kwargs)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    engine_counts = Counter(r.engine for r in train_rows)
    weights = np.array([(1.0 / engine_counts[r.engine]) ** cfg.engine_balance for r in train_rows])
    sampler = BucketBatchSampler([r.seconds for r in train_rows], cfg.batch_size, cfg.seed,
                                 weights=weights if cfg.engine_balance else None)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * len(sampler))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    gen = torch.Generator().manual_seed(cfg.seed)
    log(f"training {cfg.net} ({count_parameters(model)} parameters) on {len(train_rows)} clips, "
        f"validating on {len(valid_rows)}")

    with atomic_dir(out) as tmp:
        history = []
        best, best_epoch, stale = -1.0, 0, 0
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            t0, total, n = time.time(), 0.0, 0
            bar = tqdm(sampler, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=not progress,
                       file=sys.stderr, leave=False)
            for idx in bar:
                xb = xtr[idx] if noise_bank is None else _mix_noise(xtr[idx], noise_bank, cfg.noise_mix, gen)
                xb = _augment_batch(xb, gen)
                logits = model(front(xb))
                loss = loss_fn(logits, ytr[idx])
                if teacher_net is not None:
                    with torch.no_grad():
                        teacher_logits = teacher_net(teacher_front(xb))
                    loss = ((1 - cfg.distill_weight) * loss
                            + cfg.distill_weight * _distill_loss(logits, teacher_logits, cfg.distill_temperature))
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
                n += len(idx)
            acc = _accuracy(model, xva, yva)
            history.append({"epoch": epoch, "loss": total / n, "valid_accuracy": acc,
                            "seconds": round(time.time() - t0, 2)})
            log(f"epoch {epoch}: loss {total / n:.4f}, valid accuracy {acc:.4f} ({time.time() - t0:.1f} s)")
            if acc > best:
                best, best_epoch, stale = acc, epoch, 0
                torch.save(model.state_dict(), tmp / "best.pt")
            else:
                stale += 1
                if stale >= cfg.patience:
                    log(f"early stop: no gain in {cfg.patience} epochs")
                    break
        meta = {
            "net": cfg.net, "net_kwargs": net_kwargs, "labels": labels,
            "feature": fcfg.to_dict(), "train_config": cfg.__dict__,
            "data_dir": str(data_dir.resolve()),
            "data": _data_summary(data_dir),
            "extra_train": [{"data_dir": str(d.resolve()), "clips": len(rows), "data": _data_summary(d)}
                            for d, rows in train_sets[1:]],
            "parameters": count_parameters(model),
            **({"quantization": QuantSpec(**cfg.qat).to_dict()} if cfg.qat is not None else {}),
            "best_epoch": best_epoch, "valid_accuracy": best, "history": history,
        }
        (tmp / "train.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"best valid accuracy {best:.4f} at epoch {best_epoch}; run saved to {out}")
    return out
