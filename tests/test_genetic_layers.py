"""Gene-encoded layers, model conversion and parameter accounting (methods/genetic)."""

import copy
import math
import pickle
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.methods.genetic import (
    GeneConv2d,
    GeneDimWarning,
    GeneInteraction,
    GeneLinear,
    Genome,
    apply_genome,
    gene_layers,
    genetic_encode,
    parameter_report,
)
from spikesculpt.methods.genetic.convert import break_even_gene_dim
from spikesculpt.models import MODELS, create_model

T, B = 2, 3


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- exact values
def test_gene_linear_weight_is_alpha_xout_o_xin_t_by_hand():
    inter = GeneInteraction(3, gen(1))
    layer = GeneLinear(5, 4, inter, generator=gen(2))
    xo, o, xi, a = layer.x_out.detach(), inter.weight.detach(), layer.x_in.detach(), \
        float(layer.alpha)
    by_hand = torch.zeros(4, 5)
    for i in range(4):
        for j in range(5):
            by_hand[i, j] = a * sum(xo[i, p] * o[p, q] * xi[j, q]
                                    for p in range(3) for q in range(3))
    assert torch.allclose(layer.weight, by_hand, atol=1e-6, rtol=1e-5)
    x = torch.randn(T, B, 5, generator=gen(3))
    assert torch.allclose(layer(x), x @ by_hand.t() + layer.bias, atol=1e-6)


def test_gene_conv2d_equals_conv_with_the_reshaped_weight():
    inter = GeneInteraction(4, gen(1))
    layer = GeneConv2d(3, 5, 3, inter, stride=2, padding=1, bias=True, generator=gen(2))
    with torch.no_grad():
        layer.bias.normal_(generator=gen(4))
    w = layer.alpha * layer.x_out @ inter.weight @ layer.x_in.t()      # [5, 3*3*3]
    w = w.reshape(5, 3, 3, 3)
    # row c*9 + i*3 + j of X_in is input channel c, kernel position (i, j)
    c, i, j = 2, 1, 0
    manual = layer.alpha * layer.x_out[:, :] @ inter.weight @ layer.x_in[c * 9 + i * 3 + j]
    assert torch.allclose(w[:, c, i, j], manual)
    x = torch.randn(B, 3, 7, 7, generator=gen(3))
    assert torch.allclose(layer(x), F.conv2d(x, w, layer.bias, 2, 1), atol=1e-6)
    assert layer.weight.shape == (5, 3, 3, 3)


@pytest.mark.parametrize("make, fan_in", [
    (lambda inter, g: GeneLinear(300, 200, inter, generator=g), 300),
    (lambda inter, g: GeneConv2d(16, 64, 3, inter, generator=g), 144),
])
def test_alpha_gives_kaiming_variance_at_init(make, fan_in):
    for seed in range(3):
        inter = GeneInteraction(8, gen(seed))
        layer = make(inter, gen(seed + 10))
        w = layer.weight.detach()
        assert float(w.square().mean()) == pytest.approx(2.0 / fan_in, rel=1e-4)
        assert abs(float(w.mean())) < 0.1 * math.sqrt(2.0 / fan_in)
    # alpha is a fixed buffer, not a parameter
    assert "alpha" not in dict(layer.named_parameters())
    assert "alpha" in dict(layer.named_buffers())


def test_alpha_rescales_a_structured_interaction_too():
    inter = GeneInteraction(6, gen(0))
    with torch.no_grad():
        inter.weight.copy_(torch.diag(torch.arange(1.0, 7.0)) * 50)   # evolved-looking O
    layer = GeneLinear(40, 30, inter, generator=gen(1))
    assert float(layer.weight.detach().square().mean()) == pytest.approx(2 / 40, rel=1e-4)


# --------------------------------------------------------------------------- sharing
def test_one_interaction_shared_by_every_layer_and_gradient_from_each():
    torch.manual_seed(0)
    model = genetic_encode(create_model("mlp", hidden=(12, 10)), 4, generator=gen(0))
    layers = gene_layers(model)
    assert len(layers) == 3
    assert all(m.gene_interaction is model.gene_interaction.weight for _, m in layers)
    names = [n for n, _ in model.named_parameters()]
    assert names.count("gene_interaction.weight") == 1
    assert not any(n.endswith("interaction.weight") and n != "gene_interaction.weight"
                   for n in model.state_dict())
    x = torch.rand(T, B, 1, 8, 8, generator=gen(1)) * 3
    o = model.gene_interaction.weight
    for name, layer in layers:  # the gradient reaches O through every layer on its own
        w = layer.weight
        (grad,) = torch.autograd.grad(w.square().sum(), o)
        assert grad.abs().sum() > 0, name
    model(x).square().mean().backward()
    assert o.grad is not None and o.grad.abs().sum() > 0


def test_functional_call_swaps_the_shared_interaction_for_every_layer():
    model = genetic_encode(create_model("mlp", hidden=(8,)), 3, generator=gen(0))
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    params["gene_interaction.weight"] = torch.zeros(3, 3)
    x = torch.rand(T, B, 1, 8, 8)
    out = torch.func.functional_call(model, params, (x,))
    bias = model.readout.bias.detach()
    assert torch.allclose(out, bias.expand_as(out))   # W = 0 everywhere: only the bias is left


# --------------------------------------------------------------------------- cache
def test_cached_in_inference_and_invalidated_when_parameters_change():
    inter = GeneInteraction(3, gen(0))
    layer = GeneLinear(5, 4, inter, generator=gen(1))
    opt = torch.optim.SGD(list(layer.parameters()) + list(inter.parameters()), lr=0.1)
    with torch.no_grad():
        assert layer.weight is not layer.weight         # training mode: never kept
        layer.eval()
        w1 = layer.weight
        assert layer.weight is w1                       # eval mode, autograd off: cached
    assert layer.weight is not w1 and layer.weight.requires_grad   # autograd on: regenerated
    layer(torch.randn(2, 5)).sum().backward()
    opt.step()                                           # in-place update of X and O
    with torch.no_grad():
        w2 = layer.weight
        assert w2 is not w1 and not torch.equal(w2, w1)
        assert torch.allclose(w2, layer.generate_weight())
        inter.weight.mul_(2)                             # the shared O changes
        assert torch.allclose(layer.weight, 2 * w2)
        layer.load_state_dict({k: v * 0 + 1 for k, v in layer.state_dict().items()})
        assert torch.allclose(layer.weight, layer.generate_weight())
    clone = copy.deepcopy(layer)
    assert clone._cache is None
    assert pickle.loads(pickle.dumps(layer))._cache is None


def _fused_adam(params):
    """Adam with the fused kernel (what ``spikesculpt train`` uses): it writes the parameters
    without bumping their version counters."""
    return torch.optim.Adam(params, lr=0.01, fused=True)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_eval_output_follows_a_fused_optimizer_step(kind):
    # issue 11 item 1: the cached weight was keyed on the factors' ``_version``; a fused step
    # changed X and O without a new key, so every later evaluation reused the first weight.
    torch.manual_seed(0)
    if kind == "linear":
        layer, x = GeneLinear(6, 5, gene_dim=3, bias=False, generator=gen(1)), torch.randn(4, 6)
        plain = lambda w: F.linear(x, w, layer.bias)                          # noqa: E731
    else:
        layer = GeneConv2d(2, 3, 3, gene_dim=3, bias=False, generator=gen(1))
        x = torch.randn(2, 2, 5, 5)
        plain = lambda w: F.conv2d(x, w, layer.bias)                          # noqa: E731
    opt = _fused_adam(layer.parameters())
    layer.eval()
    with torch.no_grad():
        before = layer(x)                                     # builds the cache
    for _ in range(2):
        layer(x).square().mean().backward()                   # still in eval mode
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            after = layer(x)
            assert not torch.allclose(after, before)
            assert torch.allclose(after, plain(layer.generate_weight()), atol=1e-6)
            before = after


def test_method_hook_invalidates_when_no_training_forward_follows_the_eval():
    # gradient computed, then an evaluation (cache built), then the step: only the method's
    # optimizer post-step hook can tell the cache that the factors moved
    from spikesculpt.methods import create_method

    method = create_method("genetic", gene_dim=3, seed=0)
    model = method.prepare_model(create_model("mlp", hidden=(8,)))
    opt = _fused_adam(model.parameters())
    method.attach(model, opt, total_steps=1)
    x = torch.rand(T, B, 1, 8, 8, generator=gen(2))
    model.eval()
    model(x).square().mean().backward()
    with torch.no_grad():
        stale = model(x)
    opt.step()
    fresh = copy.deepcopy(model)                               # no cache in a copy
    with torch.no_grad():
        assert not torch.allclose(model(x), stale)
        assert torch.equal(model(x), fresh(x))


def test_cache_is_dropped_by_load_state_dict_mode_switch_and_invalidate():
    from spikesculpt.methods.genetic.layers import invalidate_generated_weights

    model = genetic_encode(create_model("mlp", hidden=(8,)), 3, generator=gen(0))
    other = genetic_encode(create_model("mlp", hidden=(8,)), 3, generator=gen(1))
    x = torch.rand(T, B, 1, 8, 8, generator=gen(2))
    model.eval()
    other.eval()
    with torch.no_grad():
        model(x)
        model.load_state_dict(other.state_dict())
        assert torch.equal(model(x), other(x))
        layer = gene_layers(model)[0][1]
        cached = layer.weight
        assert layer.weight is cached                          # eval + no grad: cached
        model.train()
        assert layer.weight is not cached                      # training mode: never cached
        model.eval()
        cached = layer.weight
        invalidate_generated_weights(model)
        assert layer.weight is not cached


def test_weight_generated_under_autocast_is_not_kept_for_full_precision():
    # the trainer evaluates under autocast with --amp; the efficiency metrics run after it in
    # full precision and were handed the half-precision weight kept from that evaluation
    layer = GeneLinear(6, 5, gene_dim=3, generator=gen(1)).eval()
    x = torch.randn(4, 6, generator=gen(2))
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert layer(x).dtype == torch.bfloat16
        y = layer(x)
    assert y.dtype == torch.float32
    assert torch.allclose(y, F.linear(x, layer.generate_weight(), layer.bias))


def test_deepcopy_keeps_one_shared_interaction():
    model = genetic_encode(create_model("mlp", hidden=(8,)), 3, generator=gen(0))
    x = torch.rand(T, B, 1, 8, 8)
    with torch.no_grad():
        model(x)
        clone = copy.deepcopy(model)
        assert all(m.interaction is clone.gene_interaction for _, m in gene_layers(clone))
        assert clone.gene_interaction is not model.gene_interaction
        assert torch.equal(clone(x), model(x))


# --------------------------------------------------------------------------- accounting
def test_compression_matches_a_hand_count():
    torch.manual_seed(0)
    plain = create_model("mlp", hidden=(256, 256))
    n_plain = sum(p.numel() for p in plain.parameters())
    assert n_plain == 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    g = 8
    model = genetic_encode(plain, g, generator=gen(0))
    rep = parameter_report(model)
    by_hand = g * (64 + 256) + g * (256 + 256) + g * (256 + 10) + g * g + 256 + 256 + 10
    assert rep["params_total"] == by_hand == sum(p.numel() for p in model.parameters())
    assert rep["params_plain"] == n_plain
    assert rep["compression"] == pytest.approx(1 - by_hand / n_plain)
    assert rep["generation_macs"] == sum(n_out * g * g + n_out * g * n_in for n_in, n_out in
                                         ((64, 256), (256, 256), (256, 10)))


def test_keep_first_and_last_and_conv_accounting():
    torch.manual_seed(0)
    plain = create_model("conv", in_channels=2, image_size=8, channels=(4, 6))
    n_plain = sum(p.numel() for p in plain.parameters())
    model = genetic_encode(plain, 2, keep_first=True, keep_last=True, generator=gen(0))
    names = [n for n, _ in gene_layers(model)]
    assert names == ["features.2.conv"]          # first conv and readout kept plain
    assert isinstance(model.features[0].conv, nn.Conv2d)
    assert isinstance(model.readout, nn.Linear)
    rep = parameter_report(model)
    assert rep["params_plain"] == n_plain
    assert rep["params_total"] == n_plain - 6 * 4 * 9 + 2 * (4 * 9 + 6) + 2 * 2


def test_break_even_gene_dim():
    shapes = [(64, 256), (256, 256), (256, 10)]
    g = break_even_gene_dim(shapes)
    s, p = sum(a + b for a, b in shapes), sum(a * b for a, b in shapes)
    assert g * s + g * g < p <= (g + 1) * s + (g + 1) ** 2


def test_warning_when_the_gene_dimension_saves_nothing():
    with pytest.warns(GeneDimWarning, match="saves nothing"):
        genetic_encode(create_model("mlp", hidden=(8,)), 64, generator=gen(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        genetic_encode(create_model("mlp", hidden=(64,)), 4, generator=gen(0))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_gene_dimension_is_a_user_error(bad):
    with pytest.raises(UserError, match="gene dimension"):
        genetic_encode(create_model("mlp", hidden=(8,)), bad)


def test_no_encodable_layer_is_a_user_error():
    with pytest.raises(UserError, match="no layer to encode"):
        genetic_encode(create_model("mlp", hidden=(8,)), 4, keep_first=True, keep_last=True)

    class NoLayers(nn.Module):
        def forward(self, x):
            return x
    with pytest.raises(UserError, match="no layer to encode"):
        genetic_encode(NoLayers(), 4)
    model = genetic_encode(create_model("mlp", hidden=(8,)), 4)
    with pytest.raises(UserError, match="already gene-encoded"):
        genetic_encode(model, 4)


# --------------------------------------------------------------------------- contract
@pytest.mark.parametrize("name", MODELS.names())
def test_every_registered_model_converts_and_trains(name):
    torch.manual_seed(0)
    model = create_model(name, in_channels=2, image_size=8, num_classes=3, timesteps=T,
                         width=1 / 16, neuron_kwargs={"v_threshold": 0.2})
    n_plain = sum(p.numel() for p in model.parameters())
    model = genetic_encode(model, 2, generator=gen(0), warn=False)
    assert gene_layers(model)
    assert parameter_report(model)["params_plain"] == n_plain
    x = torch.rand(T, B, 2, 8, 8, generator=gen(1))
    out = model(x)
    assert out.shape == (T, B, 3) and torch.isfinite(out).all()
    out.square().mean().backward()
    o = model.gene_interaction.weight
    assert o.grad is not None and torch.isfinite(o.grad).all() and o.grad.abs().sum() > 0
    for lname, layer in gene_layers(model):
        assert layer.x_in.grad is not None and torch.isfinite(layer.x_in.grad).all(), lname
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


# --------------------------------------------------------------------------- genome
def test_genome_vector_round_trip_and_application():
    model = genetic_encode(create_model("mlp", hidden=(8,)), 3, generator=gen(0))
    names = [n for n, _ in gene_layers(model)]
    genome = Genome.random_rule(3, names, init_std=0.5, generator=gen(1))
    genome.layers[0]["in_mean"] = 0.25
    again = Genome.from_vector(genome.to_vector(), 3, names)
    assert [la["name"] for la in again.layers] == names
    assert again.to_vector() == pytest.approx(genome.to_vector(), abs=1e-12)
    assert again.layers[0]["in_std"] == pytest.approx(0.5)
    apply_genome(model, genome, gen(2))
    assert torch.allclose(model.gene_interaction.weight.double(),
                          torch.as_tensor(genome.interaction))
    x_in = model.hidden[0].fc.x_in.detach()
    assert float(x_in.mean()) == pytest.approx(0.25, abs=0.1)
    assert float(x_in.std()) == pytest.approx(0.5, rel=0.25)
    w = model.hidden[0].fc.weight.detach()
    assert float(w.square().mean()) == pytest.approx(2 / 64, rel=1e-4)
    with pytest.raises(UserError, match="another network"):
        apply_genome(model, Genome.random_rule(4, names))


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_factorised_training_path_equals_the_generated_weight(kind):
    inter = GeneInteraction(3, gen(0))
    if kind == "linear":
        layer = GeneLinear(64, 48, inter, generator=gen(1))
        x = torch.randn(4, 16, 64, generator=gen(2))        # 64 rows: factorised is cheaper
        ref_fn = lambda w: F.linear(x, w, layer.bias)       # noqa: E731
    else:
        layer = GeneConv2d(8, 16, 3, inter, padding=1, generator=gen(1))
        x = torch.randn(4, 8, 10, 10, generator=gen(2))
        ref_fn = lambda w: F.conv2d(x, w, layer.bias, 1, 1)  # noqa: E731
    params = [layer.x_in, layer.x_out, inter.weight]
    out = layer(x)                                          # autograd on: through the factors
    grads = torch.autograd.grad(out.square().sum(), params)
    ref = ref_fn(layer.generate_weight())
    ref_grads = torch.autograd.grad(ref.square().sum(), params)
    assert torch.allclose(out, ref, atol=1e-5)
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(layer(x), ref, atol=1e-5)   # inference: the cached W


def test_gene_encoded_layers_count_synops_like_the_plain_layers():
    """SynOps of a gene-encoded network equal those of the plain network with the generated
    weights copied in (gene layers are connection layers for the efficiency metrics)."""
    from spikesculpt.methods.genetic.convert import genetic_encode
    from spikesculpt.metrics.synops import SynOpsCounter
    from spikesculpt.models import create_model as _create

    torch.manual_seed(0)
    plain = _create("conv", in_channels=1, image_size=8, num_classes=10, channels=[4, 8])
    encoded = genetic_encode(copy.deepcopy(plain), 4, generator=torch.Generator().manual_seed(0),
                             warn=False)
    with torch.no_grad():
        for name, module in encoded.named_modules():
            if getattr(module, "connection_kind", None):
                dict(plain.named_modules())[name].weight.copy_(module.weight)
    x = torch.rand(3, 5, 1, 8, 8)
    counts = []
    for model in (plain, encoded):
        model.eval()
        with SynOpsCounter(model) as counter, torch.no_grad():
            model(x)
            counter.add_samples(5)
        counts.append(counter.per_sample())
    assert counts[1]["dense"] > 0
    assert counts[0]["dense"] == counts[1]["dense"]
    assert counts[0]["effective_acs"] + counts[0]["effective_macs"] == \
        counts[1]["effective_acs"] + counts[1]["effective_macs"]
