import numpy as np
import pytest
import torch

from edge_asr.errors import InputError
from edge_asr.training.batches import BucketBatchSampler
from edge_asr.training.nets import NETS, build_net, count_parameters, fold_batchnorm


def test_conv1d_fits_pynq_z2_budget():
    assert count_parameters(build_net("conv1d")) <= 60_000


@pytest.mark.parametrize("name", sorted(NETS))
def test_shapes(name):
    net = build_net(name).eval()
    assert net(torch.zeros(3, 40, 98)).shape == (3, 12)


def test_fold_batchnorm_keeps_outputs():
    torch.manual_seed(0)
    net = build_net("conv1d")
    # give the BatchNorms non-trivial statistics
    net.train()
    for _ in range(3):
        net(torch.randn(16, 40, 98) * 2 + 1)
    net.eval()
    x = torch.randn(4, 40, 98)
    before = net(x).detach()
    fold_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules())
    torch.testing.assert_close(net(x).detach(), before, atol=1e-5, rtol=1e-5)


def test_unknown_net_and_too_short_window():
    with pytest.raises(InputError, match="unknown net"):
        build_net("transformer")
    with pytest.raises(InputError, match="too few"):
        build_net("conv1d", frames=10)


def test_bucket_sampler_groups_lengths_and_covers_all():
    rng = np.random.default_rng(0)
    lengths = list(rng.uniform(0.5, 3.0, 500))
    s = BucketBatchSampler(lengths, batch_size=16, seed=0, bucket_width=0.5)
    batches = list(s)
    assert len(batches) == len(s)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        keys = {int(lengths[i] // 0.5) for i in b}
        assert len(keys) == 1 and len(b) <= 16
    assert [b for b in s] != batches  # a new order each epoch
