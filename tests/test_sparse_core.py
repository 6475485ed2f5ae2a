"""The sparse core: masks, layer allocation, enforcement through optimizer hooks, drop/grow, scores."""

import copy
import math

import pytest
import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.models import create_model, prunable_parameters
from spikesculpt.sparse import (
    HebbianRecorder,
    Mask,
    MaskEnforcer,
    coincidence,
    cosine_fraction,
    drop_and_grow,
    is_update_step,
    layer_counts,
    random_mask,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- Mask
def test_mask_validation_density_and_packed_roundtrip(tmp_path):
    m = Mask({"a": torch.tensor([[1, 0, 1], [0, 0, 1]]), "b": torch.ones(5, dtype=torch.bool)})
    assert m["a"].dtype == torch.bool
    assert m.density("a") == pytest.approx(0.5) and m.density("b") == 1.0
    assert m.density() == pytest.approx(8 / 11)
    m.save(tmp_path / "m.safetensors")
    assert Mask.load(tmp_path / "m.safetensors") == m
    # 1 bit per connection (rounded up to bytes per layer)
    from safetensors.torch import load_file
    packed = load_file(str(tmp_path / "m.safetensors"))
    assert packed["a"].dtype == torch.uint8 and packed["a"].numel() == 1
    with pytest.raises(UserError, match="other than 0 and 1"):
        Mask({"a": torch.tensor([0.0, 0.5])})
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    with pytest.raises(UserError, match="corrupt"):
        Mask.load(tmp_path / "bad.safetensors")


def test_mask_validate_against_model_names_and_shapes():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    Mask({"0.weight": torch.ones(3, 4)}).validate(model)
    with pytest.raises(UserError, match="not a parameter"):
        Mask({"fc.weight": torch.ones(3, 4)}).validate(model)
    with pytest.raises(UserError, match="shape"):
        Mask({"0.weight": torch.ones(4, 3)}).validate(model)


# ---------------------------------------------------------------- allocation
SHAPES = {"conv1": (16, 2, 3, 3), "conv2": (32, 16, 3, 3), "fc": (128, 512), "out": (10, 128)}


@pytest.mark.parametrize("rule", ["uniform", "er", "erk"])
@pytest.mark.parametrize("density", [0.02, 0.1, 0.5, 0.9])
def test_allocation_meets_the_budget_exactly(rule, density):
    counts = layer_counts(SHAPES, density, rule)
    total = sum(math.prod(s) for s in SHAPES.values())
    assert sum(counts.values()) == round(density * total)
    for n, s in SHAPES.items():
        assert 1 <= counts[n] <= math.prod(s)


def test_er_and_erk_follow_their_formulas():
    shapes = {"a": (100, 400), "b": (400, 400), "c": (50, 20, 3, 3)}
    er = layer_counts(shapes, 0.1, "er")
    erk = layer_counts(shapes, 0.1, "erk")
    # ER: d_l ∝ (n_in + n_out)/(n_in n_out); ratio of two linear layers' densities
    d = {n: er[n] / math.prod(s) for n, s in shapes.items()}
    assert d["a"] / d["b"] == pytest.approx((500 / 40000) / (800 / 160000), rel=1e-3)
    # ERK counts the kernel too: the conv is relatively sparser under ERK than under ER
    dk = {n: erk[n] / math.prod(s) for n, s in shapes.items()}
    assert dk["c"] / dk["a"] < d["c"] / d["a"]
    assert dk["c"] / dk["a"] == pytest.approx(((20 + 50 + 6) / (20 * 50 * 9)) / (500 / 40000),
                                              rel=1e-2)
    uni = layer_counts(shapes, 0.1, "uniform")
    assert all(abs(uni[n] / math.prod(s) - 0.1) < 1e-3 for n, s in shapes.items())


def test_layers_that_would_exceed_one_become_dense_and_the_rest_rescale():
    shapes = {"tiny": (4, 4), "big": (1000, 1000)}
    counts = layer_counts(shapes, 0.1, "er")
    assert counts["tiny"] == 16  # ER would give it > 1
    assert counts["big"] == round(0.1 * 1_000_016) - 16


def test_dense_layers_count_towards_the_budget():
    counts = layer_counts(SHAPES, 0.2, "uniform", dense={"out"})
    total = sum(math.prod(s) for s in SHAPES.values())
    assert counts["out"] == 1280 and sum(counts.values()) == round(0.2 * total)
    with pytest.raises(UserError, match="dense"):
        layer_counts({"a": (10, 10), "b": (100, 10)}, 0.05, "er", dense={"b"})
    with pytest.raises(UserError, match="no prunable"):
        layer_counts({}, 0.1)


def test_random_mask_exact_counts_and_seeded():
    counts = layer_counts(SHAPES, 0.1, "er")
    a = random_mask(SHAPES, counts, gen(3))
    b = random_mask(SHAPES, counts, gen(3))
    c = random_mask(SHAPES, counts, gen(4))
    assert a == b and not a == c
    assert all(a.active(n) == counts[n] for n in SHAPES)


# ---------------------------------------------------------------- enforcement
def _masked_model(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    shapes = {n: tuple(p.shape) for n, p in prunable_parameters(model)}
    mask = random_mask(shapes, layer_counts(shapes, 0.3, "er"), gen(seed))
    mask.apply_(model)
    return model, mask


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True),
    lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1, amsgrad=True),
    lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5, weight_decay=0.1),
    # the fused kernels the training loop builds (no post-step re-zeroing: keeps_zeros)
    lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1, fused=True),
    lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1, fused=True),
    lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01, fused=True),
])
def test_pruned_weights_state_and_grads_stay_zero(make_opt):
    model, mask = _masked_model()
    opt = make_opt(model.parameters())
    # state that already holds values everywhere (e.g. an optimizer used densely before)
    x = torch.randn(8, 20)
    model(x).pow(2).mean().backward()
    opt.step()
    mask.apply_(model)
    MaskEnforcer(model, opt, mask).attach()
    params = dict(model.named_parameters())
    for _ in range(20):
        opt.zero_grad()
        model(torch.randn(8, 20)).pow(2).mean().backward()
        opt.step()
        assert all(torch.isfinite(p).all() for p in model.parameters())
        for n in mask:
            assert torch.all(params[n][~mask[n]] == 0)
            for v in opt.state[params[n]].values():
                if torch.is_tensor(v) and v.shape == params[n].shape:
                    assert torch.all(v[~mask[n]] == 0)
    # the kept weights did train
    assert all(torch.count_nonzero(params[n]) == mask.active(n) for n in mask)


class _DriftingAdam(torch.optim.Adam):
    """A custom rule: Adam, then every weight moves by +1e-3 without any gradient."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(1e-3)
        return loss


def test_post_step_rezeroing_only_where_the_optimizer_does_not_keep_zeros():
    """SGD / Adam / AdamW (exactly those classes) keep pruned weights at 0 by themselves, so the
    enforcer skips re-zeroing after their steps; any other optimizer, a subclass included,
    keeps the safety net — without it the drifting rule would revive pruned weights."""
    for make, keeps in ((lambda p: torch.optim.Adam(p, lr=0.01), True),
                        (lambda p: torch.optim.RMSprop(p, lr=0.01), False),
                        (lambda p: _DriftingAdam(p, lr=0.01), False)):
        model, mask = _masked_model()
        opt = make(model.parameters())
        assert MaskEnforcer(model, opt, mask).attach().keeps_zeros is keeps
        params = dict(model.named_parameters())
        for _ in range(3):
            opt.zero_grad()
            model(torch.randn(8, 20)).pow(2).mean().backward()
            opt.step()
        assert all(torch.all(params[n][~mask[n]] == 0) for n in mask)


def test_without_enforcement_momentum_revives_weights():
    """The pitfall the enforcer exists for (design notes, section 6)."""
    model, mask = _masked_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    model(torch.randn(8, 20)).pow(2).sum().backward()
    opt.step()
    mask.apply_(model)
    opt.zero_grad()
    model(torch.randn(8, 20)).pow(2).sum().backward()
    opt.step()
    name = mask.names()[0]
    assert torch.count_nonzero(dict(model.named_parameters())[name]) > mask.active(name)


def test_masked_model_deepcopies_and_state_dict_is_plain():
    model, mask = _masked_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    MaskEnforcer(model, opt, mask).attach()
    model(torch.randn(2, 20))
    clone = copy.deepcopy(model)
    assert set(clone.state_dict()) == {"0.weight", "0.bias", "2.weight", "2.bias"}


# ---------------------------------------------------------------- drop / grow
def test_drop_and_grow_invariants():
    g = gen(0)
    w = torch.randn(40, 30)
    mask = torch.rand(40, 30, generator=g) < 0.2
    w = w * mask
    score = torch.rand(40, 30, generator=g)
    new, dropped, grown = drop_and_grow(mask, w, 50, score, gen(1))
    assert int(new.sum()) == int(mask.sum())
    assert len(dropped) == len(grown) == 50
    assert not set(dropped.tolist()) & set(grown.tolist())
    flat_mask, flat_w = mask.reshape(-1), w.reshape(-1).abs()
    assert flat_mask[dropped].all() and not flat_mask[grown].any()
    kept = flat_mask.clone()
    kept[dropped] = False
    assert flat_w[dropped].max() <= flat_w[kept].min()
    # grown = the best-scored previously-inactive connections
    cand = (~flat_mask).nonzero().squeeze(1)
    best = cand[torch.argsort(score.reshape(-1)[cand], descending=True)[:50]]
    assert set(grown.tolist()) == set(best.tolist())


def test_drop_and_grow_random_growth_is_seeded_and_clipped():
    mask = torch.zeros(10, dtype=torch.bool)
    mask[:8] = True
    w = torch.arange(10.0)
    a = drop_and_grow(mask, w, 5, None, gen(2))
    b = drop_and_grow(mask, w, 5, None, gen(2))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert len(a[1]) == 2  # only 2 inactive: clipped
    same, d, g_ = drop_and_grow(mask, w, 0, None, gen(0))
    assert torch.equal(same, mask) and len(d) == len(g_) == 0


def test_cosine_schedule():
    assert cosine_fraction(0, 0.3, 100) == pytest.approx(0.3)
    assert cosine_fraction(50, 0.3, 100) == pytest.approx(0.15)
    assert cosine_fraction(100, 0.3, 100) == 0.0
    assert [s for s in range(0, 100) if is_update_step(s, 20, 75)] == [20, 40, 60]


# ---------------------------------------------------------------- Hebbian scores
def test_linear_coincidence_is_post_transpose_pre():
    layer = nn.Linear(5, 3)
    pre = (torch.rand(4, 2, 5) < 0.5).float()
    post = (torch.rand(4, 2, 3) < 0.5).float()
    expected = torch.einsum("tbo,tbi->oi", post, pre)
    assert torch.equal(coincidence(layer, pre, post), expected)


def test_conv_coincidence_counts_every_kernel_offset():
    layer = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    pre = (torch.rand(6, 2, 5, 5) < 0.4).float()
    post = (torch.rand(6, 3, 5, 5) < 0.4).float()
    c = coincidence(layer, pre, post)
    padded = torch.nn.functional.pad(pre, (1, 1, 1, 1))
    ref = torch.zeros(3, 2, 3, 3)
    for ky in range(3):
        for kx in range(3):
            ref[:, :, ky, kx] = torch.einsum("bohw,bihw->oi", post,
                                             padded[:, :, ky:ky + 5, kx:kx + 5])
    assert torch.allclose(c, ref)


def test_hebbian_recorder_pairs_each_layer_with_the_neuron_it_drives():
    torch.manual_seed(0)
    model = create_model("conv", in_channels=1, image_size=8, num_classes=10, channels=[4, 6])
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    layers = {f"{n}.weight": m for n, m in layers.items()}
    rec = HebbianRecorder(model, layers).attach()
    spikes = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: spikes.__setitem__(n, o))
             for n, m in model.named_modules() if n.endswith("spike")]
    x = torch.rand(3, 2, 1, 8, 8)
    model.train()
    model(x)
    scores = rec.detach()
    for h in hooks:
        h.remove()
    assert set(scores) == set(layers)
    # conv of block 1: its input is x, its post-synaptic spikes are block 1's neuron output
    conv0 = model.features[0].conv
    ref = coincidence(conv0, x.reshape(6, 1, 8, 8), spikes["features.0.spike"])
    assert torch.allclose(scores["features.0.conv.weight"], ref.abs())
    # the readout drives no neuron: its output current is the post activity
    assert scores["readout.weight"].shape == model.readout.weight.shape
    # eval-mode forwards record nothing
    rec2 = HebbianRecorder(model, layers).attach()
    model.eval()
    model(x)
    assert rec2.detach() == {}



def test_drop_and_grow_breaks_ties_at_random_not_by_index():
    """All inactive connections score the same: the grown set is a seeded random draw."""
    mask = torch.zeros(1000, dtype=torch.bool)
    mask[:100] = True
    w = torch.linspace(1, 2, 1000) * mask
    score = torch.zeros(1000)
    score[500] = 5.0  # one clear winner, the rest tied
    _, dropped, grown = drop_and_grow(mask, w, 50, score, gen(0))
    assert 500 in grown.tolist() and len(set(grown.tolist())) == 50
    assert max(grown.tolist()) > 600  # not simply the lowest indices after the winner
    assert sorted(dropped.tolist()) == list(range(50))  # the 50 smallest |w|
    _, _, again = drop_and_grow(mask, w, 50, score, gen(0))
    assert torch.equal(grown, again)


def test_dropping_among_few_active_connections_breaks_ties_at_random():
    """Dropping ranks only the active connections when they are few (rewire.py); a tie across
    the cut is still drawn at random among the tied, with every strictly smaller one dropped."""
    mask = torch.zeros(1000, dtype=torch.bool)
    mask[::10] = True                                  # 100 active of 1000: the subset path
    w = torch.zeros(1000)
    active = mask.nonzero().squeeze(1)
    w[active[:30]] = torch.linspace(0.1, 0.2, 30)      # 30 clearly smallest
    w[active[30:]] = 1.0                               # 70 tied at the cut
    score = torch.rand(1000, generator=gen(3))
    _, dropped, _ = drop_and_grow(mask, w, 50, score, gen(0))
    d = set(dropped.tolist())
    assert set(active[:30].tolist()) <= d and len(d) == 50 and d <= set(active.tolist())
    assert max(d) > int(active[50])                    # not the lowest indices of the tied
    _, again, _ = drop_and_grow(mask, w, 50, score, gen(0))
    assert torch.equal(dropped, again)
