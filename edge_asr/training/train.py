"""`edge-asr train`: CPU training with validation each epoch, early stopping and seed control,
in one process or data-parallel over several (torch.distributed; see distributed.py).

A run directory holds `best.pt` (a state dict, loaded with weights_only=True) and
`train.json` (net, its arguments, labels, feature configuration with the normalisation
statistics, data summary and the per-epoch history). `edge-asr export` reads both. While
it trains, the run lives in OUT.incomplete with a per-epoch checkpoint (checkpoint.py).
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

from ..data import LABELS
from ..data.loading import feature_matrix, label_indices
from ..data.manifest import read_manifest
from ..errors import EdgeAsrError, InputError
from ..frontend.features import FeatureConfig
from . import checkpoint, distributed
from .batches import BucketBatchSampler, FrontEnd, augment_batch, log_mel_config, mix_noise, noise_rows, shard_batch
from .checkpoint import Progress
from .distributed import AllReduceTimer, Launch
from .nets import build_net, count_parameters
from .teacher import distill_loss, load_teacher


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


LR_REFERENCE_BATCH = 64  # the batch --lr's default was tuned at; --lr-scaling scales from it


def peak_lr(cfg: TrainConfig) -> float:
    """The one-cycle schedule's peak: --lr, scaled with the global batch by --lr-scaling
    (linear: Goyal et al. 2017's rule, the one-cycle's first 30 % of steps its warm-up)."""
    ratio = cfg.batch_size / LR_REFERENCE_BATCH
    return cfg.lr * {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[cfg.lr_scaling]


def _check(cfg: TrainConfig, where: Launch) -> None:
    """InputError for settings that cannot make a run (before anything is written)."""
    where.check()
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise InputError("--epochs and --batch-size must be at least 1")
    if cfg.batch_size < where.nproc * where.nnodes:
        raise InputError(f"--batch-size {cfg.batch_size} is the global batch: give at least one clip per "
                         f"process ({where.nproc * where.nnodes})")
    if cfg.lr_scaling not in ("none", "linear", "sqrt"):
        raise InputError(f"--lr-scaling {cfg.lr_scaling}: choose none, linear or sqrt")
    if not 0.0 <= cfg.noise_mix <= 1.0:
        raise InputError(f"--noise-mix {cfg.noise_mix}: give a share between 0 and 1")
    if cfg.teacher and not (0.0 <= cfg.distill_weight <= 1.0 and cfg.distill_temperature > 0):
        raise InputError(f"--distill-weight {cfg.distill_weight} / --distill-temperature "
                         f"{cfg.distill_temperature}: give a weight between 0 and 1 and a temperature above 0")


def train(data_dir: str | Path, out: str | Path, cfg: TrainConfig, feature_cfg: FeatureConfig | None = None,
          force: bool = False, progress: bool = True, log=print, extra_train: list[str | Path] = (),
          resume: bool = False, where: Launch | None = None, debug: bool = False) -> Path:
    """Train on data_dir's train split, plus the train splits of `extra_train` (other data
    sets, e.g. `data synth` with other seeds or `data import`ed corpora); validation uses
    data_dir's valid split alone. In this process, or on `where`'s worker processes
    (data-parallel); `resume` continues the stopped run at `out` from its last checkpoint."""
    data_dir, out = Path(data_dir), Path(out)
    where = where or Launch()
    _check(cfg, where)
    for d in [data_dir, *map(Path, extra_train)]:
        read_manifest(d)  # a missing or malformed data set fails here, before a folder is made
    spec = {"data_dir": str(data_dir), "extra_train": [str(d) for d in extra_train], "cfg": dict(cfg.__dict__),
            "feature": feature_cfg.to_dict() if feature_cfg else None, "resume": resume, "progress": progress,
            "partial": str(checkpoint.incomplete_dir(out))}
    group = None
    if distributed.under_torchrun():  # this process is one rank of a run torchrun started
        if where.distributed:
            raise InputError("--nproc/--nnodes: under torchrun its own options place the workers; leave them out")
        group = distributed.join_group()
    writes = group.is_main if group else where.node_rank == 0  # global rank 0's folder holds the run
    partial = checkpoint.prepare(out, force, resume) if writes else None
    if resume and writes:  # refuse another recipe or other data here, before any worker starts
        checkpoint.load(partial, _recipe(spec), checkpoint.data_fingerprint([data_dir, *map(Path, extra_train)]))
    try:
        if group is not None:
            run_training(spec, group)
            distributed.leave_group()
        elif where.distributed:
            distributed.launch(spec, where, log, debug)
        else:
            run_training(spec, distributed.Group(), log)
    except BaseException as exc:
        kept = checkpoint.abandon(partial) if writes else ""
        if kept and isinstance(exc, EdgeAsrError):
            raise type(exc)(f"{exc}; {kept}") from None
        if kept:
            log(kept)
        raise
    if not writes:
        if group is None:
            log(f"node {where.node_rank}: done; node 0 saves the run")
        return out
    checkpoint.finish(partial, out)
    log(f"run saved to {out}")
    return out


def _recipe(spec: dict) -> dict:
    """What a checkpoint must match to be resumed: the training settings and the front end's flags."""
    return {**spec["cfg"], "feature": spec["feature"]}


def share_of_batch(loss: torch.Tensor, clips: int, batch: int, world: int) -> torch.Tensor:
    """A rank's mean loss over its `clips` of a global `batch`, weighted so that DDP's average
    of the ranks' gradients is the gradient of the global batch's mean loss (ranks' shares
    differ when the batch does not divide evenly). The loss itself on one process."""
    return loss * (clips * world / batch) if world > 1 else loss


def _resume(saved: dict, net: nn.Module, opt, sched, gen: torch.Generator, group: distributed.Group,
            seed: int, log) -> Progress:
    """Load a checkpoint's weights, optimizer, schedule and random states; its Progress."""
    net.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    sched.load_state_dict(saved["scheduler"])
    if saved["world"] == group.world:  # each rank takes up its own random streams: as if never stopped
        gen.set_state(saved["random"][group.rank]["gen"])
        torch.set_rng_state(saved["random"][group.rank]["torch"])
    else:
        fresh = int(np.random.SeedSequence([seed, saved["epoch"], group.rank]).generate_state(1)[0])
        gen.manual_seed(fresh)
        torch.manual_seed(fresh)
        log(f"resuming on {group.world} processes, the checkpoint's run had {saved['world']}: the same batches "
            "and schedule, new augmentation and dropout draws")
    log(f"resuming after epoch {saved['epoch']} (best valid accuracy {saved['progress']['best']:.4f})")
    return Progress.from_checkpoint(saved)


def _stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _silent(message: str) -> None:
    pass


def run_training(spec: dict, group: distributed.Group, log=None) -> None:
    """The training itself, on one rank of `group`: load, train epoch by epoch, and on rank 0
    validate, checkpoint and write best.pt and train.json into spec["partial"]."""
    log = log or (_stderr_log if group.is_main else _silent)
    progress = spec["progress"] and group.is_main
    rank, world = group.rank, group.world
    cfg = TrainConfig(**spec["cfg"])
    data_dir, extra_train, partial = Path(spec["data_dir"]), [Path(d) for d in spec["extra_train"]], Path(spec["partial"])
    recipe = _recipe(spec)
    feature_cfg = FeatureConfig.from_dict(spec["feature"]) if spec["feature"] else None
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
    fingerprint = checkpoint.data_fingerprint([data_dir, *extra_train])
    if len(set(group.all_gather_object(fingerprint))) > 1:
        raise InputError(f"{data_dir}: the data differ between the nodes of the run; every node needs the same "
                         "data directories (a copy of each, or a shared file system)")
    noise_idx = noise_rows(train_rows) if cfg.noise_mix > 0 else None

    # Features are held as log-mel; augmentation works there (a mel axis to warp and mask),
    # then FrontEnd applies the rest of the front end: DCT, mean normalisation, scaling.
    # Each rank computes every world-th clip; the ranks then swap them.
    mel_cfg = log_mel_config(fcfg)
    teacher_net, teacher_front = load_teacher(Path(cfg.teacher), mel_cfg, labels) if cfg.teacher else (None, None)

    def features(d: Path, rows: list, desc: str) -> np.ndarray:
        return group.gather_rows(feature_matrix(d, rows[rank::world], mel_cfg, progress, desc), len(rows))

    xtr = torch.from_numpy(np.concatenate([features(d, rows, "features (train)") for d, rows in train_sets]))
    xva = torch.from_numpy(features(data_dir, valid_rows, "features (valid)"))
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
        net = quantized_net(cfg.net, net_kwargs, QuantSpec(**cfg.qat))
        if init_kernels is not None:
            load_float_weights(net, init_kernels, cfg.init)
    else:
        net = build_net(cfg.net, **net_kwargs)
    # Every rank builds the same initial weights (seeded alike; DDP also broadcasts rank 0's);
    # dropout and augmentation then draw their own numbers on each rank.
    gen = torch.Generator().manual_seed(cfg.seed + 7919 * rank)
    if rank:
        torch.manual_seed(cfg.seed + 7919 * rank)
    opt = torch.optim.AdamW(net.parameters(), lr=peak_lr(cfg), weight_decay=cfg.weight_decay)
    engine_counts = Counter(r.engine for r in train_rows)
    weights = np.array([(1.0 / engine_counts[r.engine]) ** cfg.engine_balance for r in train_rows])
    seconds = np.array([r.seconds for r in train_rows])
    sampler = BucketBatchSampler(seconds, cfg.batch_size, cfg.seed, weights=weights if cfg.engine_balance else None)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peak_lr(cfg), total_steps=cfg.epochs * len(sampler))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    state = Progress()
    if spec["resume"]:
        saved = group.broadcast_object(checkpoint.load(partial, recipe, fingerprint) if group.is_main else None)
        state = _resume(saved, net, opt, sched, gen, group, cfg.seed, log)
        fcfg = FeatureConfig.from_dict(saved["feature"])
    sampler.epoch = state.epoch  # the sampler's epochs count from 0
    model = net
    allreduce = AllReduceTimer() if cfg.profile and world > 1 else None
    if world > 1:
        # BatchNorm stays per rank (torch's SyncBatchNorm runs on GPUs only). Training uses
        # batch statistics, so the running ones never reach a gradient; rank 0's own are the
        # ones validation and export use. Not broadcasting them every step (DDP's default)
        # takes a collective off each step: 1.47x -> 1.67x over one process at 64 clips each.
        model = nn.parallel.DistributedDataParallel(net, broadcast_buffers=False)
        if allreduce is not None:
            model.register_comm_hook(None, allreduce.hook)
    log(f"training {cfg.net} ({count_parameters(net)} parameters) on {len(train_rows)} clips, validating on "
        f"{len(valid_rows)}" + (f"; {world} processes, {cfg.batch_size // world}-{-(-cfg.batch_size // world)} "
                                f"clips each per step" if world > 1 else ""))

    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        model.train()
        t0, total, n, t_data, t_compute = time.perf_counter(), 0.0, 0, 0.0, 0.0
        if allreduce is not None:
            allreduce.seconds = 0.0
        bar = tqdm(sampler, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=not progress,
                   file=sys.stderr, leave=False)
        for batch in bar:
            if len(batch) < world:  # a bucket's last few clips, fewer than the ranks: skipped
                sched.step()
                continue
            ta = time.perf_counter()
            idx = shard_batch(batch, seconds, world, rank)
            xb = xtr[idx] if noise_bank is None else mix_noise(xtr[idx], noise_bank, cfg.noise_mix, gen)
            xb = augment_batch(xb, gen)
            inputs = front(xb)
            tb = time.perf_counter()
            logits = model(inputs)
            loss = loss_fn(logits, ytr[idx])
            if teacher_net is not None:
                with torch.no_grad():
                    teacher_logits = teacher_net(teacher_front(xb))
                loss = ((1 - cfg.distill_weight) * loss
                        + cfg.distill_weight * distill_loss(logits, teacher_logits, cfg.distill_temperature))
            opt.zero_grad()
            share_of_batch(loss, len(idx), len(batch), world).backward()
            opt.step()
            sched.step()
            t_data += tb - ta
            t_compute += time.perf_counter() - tb
            total += loss.item() * len(idx)
            n += len(idx)
        train_seconds = time.perf_counter() - t0
        total, n = group.sum([total, n])
        timing = {"samples_per_second": round(n / train_seconds, 1), "data_seconds": round(t_data, 3),
                  "compute_seconds": round(t_compute, 3)}
        if allreduce is not None:
            timing["allreduce_seconds"] = round(allreduce.seconds, 3)
            timing["compute_seconds"] = round(t_compute - allreduce.seconds, 3)
        stop = False
        if group.is_main:
            acc = _accuracy(net, xva, yva)
            state.history.append({"epoch": epoch, "loss": total / n, "valid_accuracy": acc,
                                  "seconds": round(time.perf_counter() - t0, 2), "processes": world, **timing})
            log(f"epoch {epoch}: loss {total / n:.4f}, valid accuracy {acc:.4f} ({time.perf_counter() - t0:.1f} s)")
            stop = state.after_epoch(epoch, acc, net, cfg.patience)
            if stop:
                log(f"early stop: no gain in {cfg.patience} epochs")
        random_states = group.all_gather_object({"gen": gen.get_state(), "torch": torch.get_rng_state()})
        if group.is_main:
            checkpoint.save(partial, {**state.to_dict(), "epoch": epoch, "world": world, "model": net.state_dict(),
                                      "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                      "random": random_states, "recipe": recipe, "fingerprint": fingerprint,
                                      "feature": fcfg.to_dict()})
        if group.broadcast_object(stop):
            break
    if not group.is_main:
        return
    torch.save(state.best_state, partial / "best.pt")
    meta = {
        "net": cfg.net, "net_kwargs": net_kwargs, "labels": labels,
        "feature": fcfg.to_dict(), "train_config": cfg.__dict__,
        "data_dir": str(data_dir.resolve()),
        "data": _data_summary(data_dir),
        "extra_train": [{"data_dir": str(d.resolve()), "clips": len(rows), "data": _data_summary(d)}
                        for d, rows in train_sets[1:]],
        "parameters": count_parameters(net), "processes": world,
        **({"quantization": QuantSpec(**cfg.qat).to_dict()} if cfg.qat is not None else {}),
        "best_epoch": state.best_epoch, "valid_accuracy": state.best, "history": state.history,
    }
    (partial / "train.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"best valid accuracy {state.best:.4f} at epoch {state.best_epoch}")
