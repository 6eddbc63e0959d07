"""One rank's training run, in the parts it is made of:

    load_init -> seed -> prepare_data -> build_model -> make_steps -> (resume) ->
    epochs of train_epoch + validate + a checkpoint -> finish_run

`run_training` composes them; `train.train` (one process) and `distributed.launch` (each
worker of a data-parallel run) call it. Rank 0 validates, checkpoints and writes best.pt
and train.json into the run's folder; the other ranks only train.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data import LABELS
from ..errors import InputError
from ..frontend.features import FeatureConfig
from . import checkpoint
from .batches import BucketBatchSampler, FrontEnd, augment_batch, log_mel_config, mix_noise, shard_batch
from .checkpoint import Progress
from .distributed import AllReduceTimer, Group
from .nets import build_net, count_parameters
from .rundata import TrainData, front_end, prepare_data
from .rundir import Init, float_kernels
from .spec import TrainConfig, TrainSpec, peak_lr
from .teacher import distill_loss, load_teacher


def load_init(cfg: TrainConfig, labels: list[str]) -> tuple[TrainConfig, Init | None]:
    """The settings with the net of `cfg.init` in place of cfg's own, and that float model's
    kernels and metadata (cfg and None without --init)."""
    if not cfg.init:
        return cfg, None
    if cfg.qat is None:
        raise InputError("--init starts quantization-aware training from a float model: give --qat as well")
    kernels, meta = float_kernels(Path(cfg.init))
    if meta.get("labels") != labels:
        raise InputError(f"--init {cfg.init}: its labels {meta.get('labels')} differ from the task's {labels}")
    data_derived = ("n_features", "frames", "n_classes")
    options = {k: v for k, v in meta["net_kwargs"].items() if k not in data_derived}
    return replace(cfg, net=meta["net"], net_options=options), Init(kernels, meta)


def seed(cfg: TrainConfig) -> None:
    """Seed Python's, numpy's and torch's generators; set torch's thread count."""
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)


def build_model(cfg: TrainConfig, fcfg: FeatureConfig, labels: list[str], init: Init | None) -> tuple[nn.Module, dict]:
    """The net (its quantization-aware twin for --qat, with --init's float weights) and its
    constructor arguments."""
    net_kwargs = {"n_features": fcfg.n_features, "frames": fcfg.clip_frames, "n_classes": len(labels),
                  **cfg.net_options}
    if cfg.qat is None:
        return build_net(cfg.net, **net_kwargs), net_kwargs
    from .qat import QuantSpec, load_float_weights, quantized_net
    net = quantized_net(cfg.net, net_kwargs, QuantSpec(**cfg.qat))
    if init is not None:
        load_float_weights(net, init.kernels, cfg.init)
    return net, net_kwargs


@dataclass
class Steps:
    """What turns batches into weight updates: the sampler, optimizer, schedule, loss, this
    rank's augmentation generator, and the teacher when distilling."""
    sampler: BucketBatchSampler
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    loss_fn: nn.Module
    gen: torch.Generator
    seconds: np.ndarray  # each training clip's length
    teacher: tuple[nn.Module, FrontEnd] | None
    allreduce: AllReduceTimer | None = None


def make_steps(cfg: TrainConfig, net: nn.Module, data: TrainData, teacher: tuple[nn.Module, FrontEnd] | None,
               group: Group) -> Steps:
    """The sampler (clips weighted by --engine-balance), AdamW with the one-cycle schedule,
    and the random streams of this rank."""
    # Every rank builds the same initial weights (seeded alike; DDP also broadcasts rank 0's);
    # dropout and augmentation then draw their own numbers on each rank.
    gen = torch.Generator().manual_seed(cfg.seed + 7919 * group.rank)
    if group.rank:
        torch.manual_seed(cfg.seed + 7919 * group.rank)
    opt = torch.optim.AdamW(net.parameters(), lr=peak_lr(cfg), weight_decay=cfg.weight_decay)
    engine_counts = Counter(r.engine for r in data.train_rows)
    weights = np.array([(1.0 / engine_counts[r.engine]) ** cfg.engine_balance for r in data.train_rows])
    weighted = bool(cfg.engine_balance) or bool(np.any(data.set_weights != 1.0))
    seconds = np.array([r.seconds for r in data.train_rows])
    sampler = BucketBatchSampler(seconds, cfg.batch_size, cfg.seed,
                                 weights=weights * data.set_weights if weighted else None)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peak_lr(cfg), total_steps=cfg.epochs * len(sampler))
    return Steps(sampler, opt, sched, nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), gen, seconds, teacher)


def resume(saved: dict, net: nn.Module, steps: Steps, group: Group, seed_: int, log) -> Progress:
    """Load a checkpoint's weights, optimizer, schedule and random states; its Progress."""
    net.load_state_dict(saved["model"])
    steps.opt.load_state_dict(saved["optimizer"])
    steps.sched.load_state_dict(saved["scheduler"])
    if saved["world"] == group.world:  # each rank takes up its own random streams: as if never stopped
        steps.gen.set_state(saved["random"][group.rank]["gen"])
        torch.set_rng_state(saved["random"][group.rank]["torch"])
    else:
        fresh = int(np.random.SeedSequence([seed_, saved["epoch"], group.rank]).generate_state(1)[0])
        steps.gen.manual_seed(fresh)
        torch.manual_seed(fresh)
        log(f"resuming on {group.world} processes, the checkpoint's run had {saved['world']}: the same batches "
            "and schedule, new augmentation and dropout draws")
    log(f"resuming after epoch {saved['epoch']} (best valid accuracy {saved['progress']['best']:.4f})")
    return Progress.from_checkpoint(saved)


def data_parallel(net: nn.Module, steps: Steps, cfg: TrainConfig, group: Group) -> nn.Module:
    """The module a step runs: the net itself on one process, DDP over the group's ranks."""
    if group.world == 1:
        return net
    # BatchNorm stays per rank (torch's SyncBatchNorm runs on GPUs only). Training uses
    # batch statistics, so the running ones never reach a gradient; rank 0's own are the
    # ones validation and export use. Not broadcasting them every step (DDP's default)
    # takes a collective off each step: 1.47x -> 1.67x over one process at 64 clips each.
    model = nn.parallel.DistributedDataParallel(net, broadcast_buffers=False)
    if cfg.profile:
        steps.allreduce = AllReduceTimer()
        model.register_comm_hook(None, steps.allreduce.hook)
    return model


def share_of_batch(loss: torch.Tensor, clips: int, batch: int, world: int) -> torch.Tensor:
    """A rank's mean loss over its `clips` of a global `batch`, weighted so that DDP's average
    of the ranks' gradients is the gradient of the global batch's mean loss (ranks' shares
    differ when the batch does not divide evenly). The loss itself on one process."""
    return loss * (clips * world / batch) if world > 1 else loss


def _loss(model: nn.Module, steps: Steps, cfg: TrainConfig, xb: torch.Tensor, inputs: torch.Tensor,
          y: torch.Tensor) -> torch.Tensor:
    """The batch's loss: cross-entropy, blended with the teacher's when distilling."""
    logits = model(inputs)
    loss = steps.loss_fn(logits, y)
    if steps.teacher is None:
        return loss
    teacher_net, teacher_front = steps.teacher
    with torch.no_grad():
        teacher_logits = teacher_net(teacher_front(xb))
    return (1 - cfg.distill_weight) * loss + cfg.distill_weight * distill_loss(logits, teacher_logits,
                                                                              cfg.distill_temperature)


def train_epoch(epoch: int, model: nn.Module, steps: Steps, data: TrainData, cfg: TrainConfig, group: Group,
                progress: bool) -> dict:
    """One pass over the sampler's batches, this rank's share of each; the history entry's
    loss and timing fields, summed over the ranks."""
    model.train()
    t0, total, n, t_data, t_compute = time.perf_counter(), 0.0, 0, 0.0, 0.0
    if steps.allreduce is not None:
        steps.allreduce.seconds = 0.0
    bar = tqdm(steps.sampler, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=not progress,
               file=sys.stderr, leave=False)
    for batch in bar:
        if len(batch) < group.world:  # a bucket's last few clips, fewer than the ranks: skipped
            steps.sched.step()
            continue
        ta = time.perf_counter()
        idx = shard_batch(batch, steps.seconds, group.world, group.rank)
        xb = data.xtr[idx] if data.noise_bank is None else mix_noise(data.xtr[idx], data.noise_bank,
                                                                     cfg.noise_mix, steps.gen)
        xb = augment_batch(xb, steps.gen)
        inputs = data.front(xb)
        tb = time.perf_counter()
        loss = _loss(model, steps, cfg, xb, inputs, data.ytr[idx])
        steps.opt.zero_grad()
        share_of_batch(loss, len(idx), len(batch), group.world).backward()
        steps.opt.step()
        steps.sched.step()
        t_data += tb - ta
        t_compute += time.perf_counter() - tb
        total += loss.item() * len(idx)
        n += len(idx)
    train_seconds = time.perf_counter() - t0
    total, n = group.sum([total, n])
    timing = {"samples_per_second": round(n / train_seconds, 1), "data_seconds": round(t_data, 3),
              "compute_seconds": round(t_compute, 3)}
    if steps.allreduce is not None:
        timing["allreduce_seconds"] = round(steps.allreduce.seconds, 3)
        timing["compute_seconds"] = round(t_compute - steps.allreduce.seconds, 3)
    return {"loss": total / n, **timing}


def validate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    """Accuracy of `net` on the validation clips."""
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return correct / max(1, len(x))


def _data_summary(data_dir: Path) -> dict:
    """data.json written by `data synth` (empty for a hand-made data set)."""
    path = data_dir / "data.json"
    return json.loads(path.read_text()) if path.exists() else {}


def finish_run(spec: TrainSpec, cfg: TrainConfig, net_kwargs: dict, parameters: int, data: TrainData,
               feature: FeatureConfig, state: Progress, world: int, log) -> None:
    """Write best.pt and train.json into the run's folder (rank 0)."""
    from .qat import QuantSpec
    torch.save(state.best_state, spec.partial / "best.pt")
    meta = {
        "net": cfg.net, "net_kwargs": net_kwargs, "labels": list(LABELS),
        "feature": feature.to_dict(), "train_config": cfg.__dict__,
        "data_dir": str(spec.data_dir.resolve()),
        "data": _data_summary(spec.data_dir),
        "extra_train": [{"data_dir": str(d.resolve()), "clips": len(rows), "data": _data_summary(d),
                         **({"weight": spec.weight_of(d)} if cfg.data_weights else {})}
                        for d, rows in data.train_sets[1:]],
        **({"extra_valid": [{"data_dir": str(d.resolve()), "data": _data_summary(d)} for d in spec.extra_valid]}
           if spec.extra_valid else {}),
        "parameters": parameters, "processes": world,
        **({"quantization": QuantSpec(**cfg.qat).to_dict()} if cfg.qat is not None else {}),
        "best_epoch": state.best_epoch, "valid_accuracy": state.best, "history": state.history,
    }
    (spec.partial / "train.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"best valid accuracy {state.best:.4f} at epoch {state.best_epoch}")


def _stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _silent(message: str) -> None:
    pass


def run_training(spec: TrainSpec, group: Group, log=None) -> None:
    """The training itself, on one rank of `group`: load, train epoch by epoch, and on rank 0
    validate, checkpoint and write best.pt and train.json into spec.partial."""
    log = log or (_stderr_log if group.is_main else _silent)
    labels = list(LABELS)
    cfg, init = load_init(spec.cfg, labels)
    seed(cfg)
    fcfg = front_end(spec, init)
    teacher = load_teacher(Path(cfg.teacher), log_mel_config(fcfg), labels) if cfg.teacher else None
    data = prepare_data(spec, cfg, fcfg, init, labels, group)
    net, net_kwargs = build_model(cfg, data.feature, labels, init)
    steps = make_steps(cfg, net, data, teacher, group)
    state, feature = Progress(), data.feature
    if spec.resume:
        saved = group.broadcast_object(checkpoint.load(spec.partial, spec.recipe(), data.fingerprint)
                                       if group.is_main else None)
        state = resume(saved, net, steps, group, cfg.seed, log)
        feature = FeatureConfig.from_dict(saved["feature"])
    steps.sampler.epoch = state.epoch  # the sampler's epochs count from 0
    model = data_parallel(net, steps, cfg, group)
    world = group.world
    log(f"training {cfg.net} ({count_parameters(net)} parameters) on {len(data.train_rows)} clips, validating on "
        f"{len(data.valid_rows)}" + (f"; {world} processes, {cfg.batch_size // world}-{-(-cfg.batch_size // world)} "
                                     f"clips each per step" if world > 1 else ""))
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        entry = train_epoch(epoch, model, steps, data, cfg, group, spec.progress and group.is_main)
        stop = group.is_main and _after_epoch(epoch, entry, net, data, state, cfg, world, t0, log)
        random_states = group.all_gather_object({"gen": steps.gen.get_state(), "torch": torch.get_rng_state()})
        if group.is_main:
            checkpoint.save(spec.partial, {
                **state.to_dict(), "epoch": epoch, "world": world, "model": net.state_dict(),
                "optimizer": steps.opt.state_dict(), "scheduler": steps.sched.state_dict(), "random": random_states,
                "recipe": spec.recipe(), "fingerprint": data.fingerprint, "feature": feature.to_dict()})
        if group.broadcast_object(stop):
            break
    if group.is_main:
        finish_run(spec, cfg, net_kwargs, count_parameters(net), data, feature, state, world, log)


def _after_epoch(epoch: int, entry: dict, net: nn.Module, data: TrainData, state: Progress, cfg: TrainConfig,
                 world: int, t0: float, log) -> bool:
    """Rank 0 after an epoch: validate, log, record the history; True when early stopping ends the run.
    With --extra-valid sets, the epoch's accuracy is the mean over them and DATA's own valid
    split: real speakers choose, and the synthetic split keeps one vote, which steadies the
    choice (small real sets move by a clip's worth from epoch to epoch)."""
    acc = validate(net, data.xva, data.yva)
    sets = {name: validate(net, x, y) for name, x, y in data.extra_valid}
    extra = {"valid_sets": {"data": acc, **sets}} if sets else {}
    if sets:
        acc = float(np.mean(list(extra["valid_sets"].values())))
    state.history.append({"epoch": epoch, "loss": entry["loss"], "valid_accuracy": acc,
                          "seconds": round(time.perf_counter() - t0, 2), "processes": world,
                          **{k: v for k, v in entry.items() if k != "loss"}, **extra})
    shown = "".join(f", {name} {a:.4f}" for name, a in extra.get("valid_sets", {}).items())
    log(f"epoch {epoch}: loss {entry['loss']:.4f}, valid accuracy {acc:.4f}{shown} ({time.perf_counter() - t0:.1f} s)")
    stop = state.after_epoch(epoch, acc, net, cfg.patience)
    if stop:
        log(f"early stop: no gain in {cfg.patience} epochs")
    return stop
