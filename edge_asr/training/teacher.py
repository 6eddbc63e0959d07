"""Knowledge distillation: a trained run as the teacher, and the loss that learns its
softened posteriors beside the labels (`edge-asr train --teacher`)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..frontend.features import FeatureConfig
from .batches import FrontEnd, log_mel_config
from .rundir import load_run


def load_teacher(run: Path, mel_cfg: FeatureConfig, labels: list[str]) -> tuple[nn.Module, FrontEnd]:
    """The teacher net of a run directory in eval mode, with its own front end (its DCT, mean
    normalisation and scaling) over the student's log-mel batches."""
    # Building the net draws its (discarded) initial weights: from a forked generator, so a
    # teacher leaves the student's initialisation and batches as they would be without it.
    with torch.random.fork_rng(devices=[]):
        try:
            model, meta = load_run(run)
        except InputError as exc:
            raise InputError(f"--teacher {exc}") from exc
    if meta["labels"] != labels:
        raise InputError(f"--teacher {run}: its labels {meta['labels']} differ from the task's {labels}")
    teacher_cfg = FeatureConfig(**meta["feature"])
    if log_mel_config(teacher_cfg) != mel_cfg:
        raise InputError(f"--teacher {run}: its mel front end differs from this run's (sample rate, window, "
                         "hop, mel bins, band, clip length must match); train the teacher with the same ones")
    for p in model.parameters():
        p.requires_grad_(False)
    return model, FrontEnd(teacher_cfg)


def distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(teacher || student) of the softened posteriors (Hinton et al. 2015): the T^2
    keeps its gradients on the scale of the cross-entropy's as T changes."""
    t = temperature
    return nn.functional.kl_div(nn.functional.log_softmax(student_logits / t, dim=1),
                                nn.functional.log_softmax(teacher_logits / t, dim=1),
                                reduction="batchmean", log_target=True) * t * t
