"""What a training step reads: batches of clips (length-bucketed, and sharded over the
ranks of a data-parallel run, balanced in work), the torch front end after the log-mel,
and the on-the-fly augmentation (shifts, level, frequency warping, masks, noise mixing)."""

from __future__ import annotations

import heapq
import math

import numpy as np
import torch

from ..errors import InputError
from ..frontend.features import FeatureConfig


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


def shard_batch(batch: list[int], seconds: np.ndarray, world: int, rank: int) -> list[int]:
    """Rank `rank`'s part of one global batch of a `world`-rank run, balanced in work: clips
    go longest first to the rank with the least audio so far (LPT scheduling), so ranks
    finish a step together even where lengths differ; with equal lengths it deals them out
    evenly by count. The rank's clips keep their order in the batch; one rank gets it whole."""
    if world == 1:
        return batch
    load = [(0.0, 0, r) for r in range(world)]  # (seconds, clips, rank): a min-heap
    mine = []
    for i in sorted(batch, key=lambda i: (-seconds[i], i)):
        secs, clips, r = heapq.heappop(load)
        heapq.heappush(load, (secs + float(seconds[i]), clips + 1, r))
        if r == rank:
            mine.append(i)
    keep = set(mine)
    return [i for i in batch if i in keep]


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


def augment_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
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


def noise_rows(rows: list) -> list[int]:
    """Indices of the training clips that are noise alone (`_silence_`, not digital zero)."""
    idx = [i for i, r in enumerate(rows) if r.label == "_silence_" and "digital-zero" not in r.augmentation]
    if not idx:
        raise InputError("--noise-mix needs noise clips (_silence_) in the train split; make the data with "
                         "`edge-asr data synth` or leave --noise-mix at 0")
    return idx


def mix_noise(x: torch.Tensor, bank: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
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


def log_mel_config(cfg: FeatureConfig) -> FeatureConfig:
    """cfg up to the log: the part a training batch holds (no cepstra, no normalisation)."""
    return FeatureConfig(**{**cfg.to_dict(), "mean": [], "std": [], "n_mfcc": 0, "cmn": False})
