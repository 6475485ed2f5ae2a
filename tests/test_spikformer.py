"""Spikformer architecture and patch tickets (token selection by spike count)."""

import math

import pytest
import torch

from spikesculpt.core.errors import UserError
from spikesculpt.models import count_parameters, create_model, prunable_parameters
from spikesculpt.models.spikformer import kept_tokens, select_tokens

pytestmark = pytest.mark.usefixtures("one_thread")


def small_former(keep=1.0, dim=16, **kw):
    torch.manual_seed(0)
    return create_model("spikformer", in_channels=1, image_size=8, num_classes=10, dim=dim,
                        heads=2, patch_keep=keep, neuron_kwargs={"v_threshold": 0.3}, **kw)


def test_paper_configurations():
    with torch.device("meta"):
        small = create_model("spikformer", in_channels=3, image_size=32, num_classes=10,
                             size="small")
        tiny = create_model("spikformer", in_channels=2, image_size=128, num_classes=10,
                            size="tiny")
    # Zhou et al. 2023, Table: Spikformer-4-384 on CIFAR-10 9.32 M, Spikformer-2-256 on DVS 2.57 M
    assert round(count_parameters(small) / 1e6, 2) == 9.32
    assert round(count_parameters(tiny) / 1e6, 2) == 2.57
    assert (small.depth, small.dim, small.heads) == (4, 384, 12) and small.token_grid() == (8, 8)
    assert (tiny.depth, tiny.dim) == (2, 256) and tiny.token_grid() == (8, 8)
    names = [n for n, _ in prunable_parameters(small)]
    assert names[0] == "patch_embed.stages.0.conv.weight" and names[-1] == "readout.weight"
    assert "patch_embed.rpe.conv.weight" in names and "blocks.3.attn.q.fc.weight" in names


def test_tokens_are_sps_output_positions_and_cpu_size_fits_digits():
    model = create_model("spikformer", in_channels=1, image_size=8, num_classes=10)
    assert model.token_grid() == (4, 4)
    with torch.no_grad():
        assert model(torch.rand(2, 3, 1, 8, 8)).shape == (2, 3, 10)
    assert model.patch_embed.n_tokens == 16 and model.tokens_kept == 1.0


def test_select_tokens_keeps_the_top_spike_counts_per_sample():
    t, b, d, h, w = 3, 2, 4, 2, 3
    feats = torch.zeros(t, b, d, h, w)
    counts = torch.tensor([[5, 0, 3, 9, 1, 3], [0, 2, 2, 2, 7, 1]])   # per sample, per token
    for s in range(b):
        for n in range(h * w):
            spikes = torch.zeros(t * d)
            spikes[:int(counts[s, n])] = 1.0
            feats[:, s, :, n // w, n % w] = spikes.reshape(t, d)
    idx, scores = select_tokens(feats, 0.5)
    assert torch.equal(scores, counts.float())
    assert idx.tolist() == [[0, 2, 3], [1, 2, 4]]     # ties -> earlier position
    assert select_tokens(feats, 0.34)[0].shape == (2, math.ceil(0.34 * 6))
    assert [kept_tokens(16, k) for k in (1.0, 0.5, 0.3, 0.01)] == [16, 8, 5, 1]


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.8, 1.0])
def test_patch_keep_keeps_exactly_ceil_keep_n_tokens_chosen_by_spike_count(keep):
    model = small_former(keep, pools=1)
    seen = {}
    model.patch_embed.stages[-1].spike.register_forward_hook(
        lambda m, i, o: seen.__setitem__("feats", o.detach()))
    tokens = {}
    model.blocks.register_forward_pre_hook(lambda m, args: tokens.__setitem__("x", args[0]))
    x = torch.rand(2, 5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        model(x)
    n = 16
    k = math.ceil(keep * n)
    assert tokens["x"].shape == (2, 5, k, model.dim)
    assert model.tokens_kept == k / n
    counts = seen["feats"].sum(dim=(0, 2)).reshape(5, n)
    idx = model.patch_embed.last_keep_index if keep < 1 else torch.arange(n).expand(5, n)
    for s in range(5):
        kept = set(idx[s].tolist())
        dropped = [j for j in range(n) if j not in kept]
        if dropped:
            assert min(counts[s, list(kept)]) >= max(counts[s, dropped])


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_dropped_tokens_contribute_nothing_downstream(mode):
    model = small_former(0.5, pools=1)
    model.train(mode == "train")
    held = {}

    def keep_grad(module, inputs, output):
        output.retain_grad()
        held["feats"] = output

    model.patch_embed.stages[-1].spike.register_forward_hook(keep_grad)
    x = torch.rand(2, 4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    model(x).square().sum().backward()
    grad = held["feats"].grad                      # [T, B, D, 4, 4]
    idx = model.patch_embed.last_keep_index        # [B, 8]
    on = torch.zeros(4, 16, dtype=torch.bool)
    on.scatter_(1, idx, True)
    per_token = grad.abs().sum(dim=(0, 2)).reshape(4, 16)
    assert (per_token[~on] == 0).all()             # dropped: features and position embedding gone
    assert (per_token[on] > 0).any()


def test_patch_keep_range_is_checked():
    for bad in (0, -0.5, 1.5, float("nan"), True):
        with pytest.raises(UserError, match="patch_keep"):
            small_former(bad)
    with pytest.raises(UserError, match="size"):
        create_model("spikformer", in_channels=1, image_size=8, num_classes=10, size="huge")
    with pytest.raises(UserError, match="pools"):
        create_model("spikformer", in_channels=1, image_size=8, num_classes=10, pools=5)
