"""Model contract: every registered model, tiny inputs, forward/backward, names, bad arguments."""

import copy
import math

import pytest
import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.models import (
    MODELS,
    ConvBNSpike,
    SeqDropout,
    TimeDistributed,
    create_model,
    model_options,
    prunable_parameters,
    spiking_modules,
)
from spikesculpt.models.layers import pool2d
from spikesculpt.neurons import NEURONS, SpikingNeuron

T, B, C, CLASSES = 2, 2, 2, 3
ALL = MODELS.names()
# Firing threshold for the gradient checks: at initialisation a tiny network (a few channels,
# 1x1 maps late in the deep models, BatchNorm over T*B = 4 rows) can leave a layer silent, and a
# silent layer gives the next weight an exactly-zero gradient. A low threshold keeps every layer
# active, so the test checks the wiring (every parameter is in the graph), not the initial
# activity.
ACTIVE = {"v_threshold": 0.2}


def tiny(name, size=8, **kwargs):
    kwargs.setdefault("width", 1 / 16)
    return create_model(name, in_channels=C, image_size=size, num_classes=CLASSES, timesteps=T,
                        **kwargs)


def images(size=8, t=T, b=B, c=C, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = (size, size) if isinstance(size, int) else size
    return torch.rand(t, b, c, h, w, generator=g)


# --------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("name", ALL)
def test_forward_backward_contract(name):
    torch.manual_seed(0)
    model = tiny(name, neuron_kwargs=ACTIVE)
    x = images()
    out = model(x)
    assert out.shape == (T, B, CLASSES)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        if not p.requires_grad:
            continue
        assert p.grad is not None, f"{pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"
    model.eval()
    with torch.no_grad():
        out = model(x)
        assert torch.equal(model(x), out)  # no dropout, BatchNorm on running statistics
        assert torch.equal(copy.deepcopy(model)(x), out)  # plain modules: deepcopy after use


@pytest.mark.parametrize("name", ALL)
def test_default_neuron_settings_give_finite_logits(name):
    torch.manual_seed(0)
    with torch.no_grad():
        out = tiny(name)(images())
    assert out.shape == (T, B, CLASSES) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL)
def test_prunable_parameters_are_conv_and_linear_weights_named_as_in_state_dict(name):
    model = tiny(name)
    pruned = prunable_parameters(model)
    state = model.state_dict()
    params = dict(model.named_parameters())
    assert pruned, "a model without connections"
    for pname, p in pruned:
        assert pname in state and pname in params and params[pname] is p
        assert pname.endswith("weight") and p.dim() in (2, 3, 4)
    expected = [m.weight for m in model.modules()
                if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    assert len(pruned) == len(expected)
    assert {id(p) for _, p in pruned} == {id(w) for w in expected}
    # first layer first, the readout last
    assert pruned[-1][0] == "readout.weight" and pruned[-1][1] is model.readout.weight
    assert pruned[0][1].shape[1] in (C, C * 8 * 8)
    # no biases, no norm parameters
    norm_ids = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                for p in m.parameters()}
    assert not norm_ids & {id(p) for _, p in pruned}


@pytest.mark.parametrize("name", ALL)
def test_spiking_modules_lists_every_neuron_by_name(name):
    model = tiny(name)
    found = spiking_modules(model)
    modules = dict(model.named_modules())
    assert found and all(isinstance(m, SpikingNeuron) for _, m in found)
    assert all(modules[n] is m for n, m in found)
    assert len(found) == sum(isinstance(m, SpikingNeuron) for m in model.modules())


@pytest.mark.parametrize("neuron", NEURONS.names())
@pytest.mark.parametrize("name", ["conv", "mlp"])
def test_every_registered_neuron_plugs_in(name, neuron):
    torch.manual_seed(0)
    model = tiny(name, neuron=neuron, neuron_kwargs=ACTIVE)
    neuron_type = type(NEURONS.get(neuron)(**ACTIVE))
    assert all(type(m) is neuron_type for _, m in spiking_modules(model))
    out = model(images())
    assert out.shape == (T, B, CLASSES)
    out.square().mean().backward()
    for pname, p in model.named_parameters():  # PLIF's learnable time constant included
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, \
            pname


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("size", [(1, 1), (9, 13), (34, 34)])
def test_odd_and_tiny_image_sizes(name, size):
    model = tiny(name, size=size)
    with torch.no_grad():
        assert model(images(size)).shape == (T, B, CLASSES)


def test_mlp_on_flat_features_and_on_flattened_images():
    model = create_model("mlp", image_size=None, in_features=20, num_classes=4, hidden=[16])
    assert model(torch.rand(3, 5, 20)).shape == (3, 5, 4)
    model = create_model("mlp", in_channels=2, image_size=(3, 4), num_classes=4, hidden=16)
    assert model(torch.rand(3, 5, 2, 3, 4)).shape == (3, 5, 4)
    assert model(torch.rand(3, 5, 24)).shape == (3, 5, 4)
    assert [p.shape[0] for _, p in prunable_parameters(model)] == [16, 4]


def test_global_pool_models_accept_other_sizes_and_flatten_models_say_how():
    x = images(16)
    for name in ("vgg16", "resnet19"):
        assert tiny(name, size=8)(x).shape == (T, B, CLASSES)
    with pytest.raises(UserError, match=r"built for 8x8 images, got 16x16.*head_pool"):
        tiny("vggsnn", size=8)(x)
    assert tiny("vggsnn", size=8, head_pool=1)(x).shape == (T, B, CLASSES)


# --------------------------------------------------------------------------- architectures
def _layers(model):
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    k3 = [m for m in convs if m.kernel_size == (3, 3)]
    fcs = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return [m.out_channels for m in k3], len(convs) - len(k3), [m.out_features for m in fcs]


def _meta(name, **kwargs):
    with torch.device("meta"):  # no memory, no initialisation cost
        return create_model(name, **kwargs)


CIFAR = dict(in_channels=3, image_size=32, num_classes=10)


def test_paper_architectures_at_width_one():
    assert _layers(_meta("vggsnn", in_channels=2, image_size=48, num_classes=10)) == \
        ([64, 128, 256, 256, 512, 512, 512, 512], 0, [10])
    assert _layers(_meta("vgg9", **CIFAR)) == ([64, 64, 128, 128, 256, 256, 256], 0, [1024, 10])
    assert _layers(_meta("vgg16", **CIFAR)) == \
        ([64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512], 0, [10])
    assert _layers(_meta("6conv2fc", **CIFAR)) == ([256] * 6, 0, [2048, 10])
    assert _layers(_meta("resnet19", **CIFAR)) == \
        ([128] * 7 + [256] * 6 + [512] * 4, 2, [256, 10])  # 17 conv3x3 + 2 FC = 19 layers
    assert _layers(_meta("conv", in_channels=1, image_size=8, num_classes=10)) == \
        ([16, 32], 0, [10])
    assert _layers(_meta("mlp", in_channels=1, image_size=8, num_classes=10)) == \
        ([], 0, [256, 256, 10])


def test_prunable_parameter_counts_on_cifar10():
    def prunable(name, **kw):
        return sum(p.numel() for _, p in prunable_parameters(_meta(name, **{**CIFAR, **kw})))

    k = 9  # 3x3 kernels
    vgg16 = (3 * 64 + 64 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 2 * 256 * 256 + 256 * 512
             + 5 * 512 * 512) * k + 512 * 10
    assert prunable("vgg16") == vgg16 == 14_715_584
    six = (3 * 256 + 5 * 256 * 256) * k + 256 * 8 * 8 * 2048 + 2048 * 10
    assert prunable("6conv2fc") == six == 36_530_944
    vggsnn_dvs = (2 * 64 + 64 * 128 + 128 * 256 + 256 * 256 + 256 * 512 + 3 * 512 * 512) * k \
        + 512 * 3 * 3 * 10
    assert prunable("vggsnn", in_channels=2, image_size=48) == vggsnn_dvs
    # width scales every hidden size
    assert prunable("vgg16", width=0.5) < vgg16 / 3


def test_feature_shapes_follow_the_paper_tables():
    model = _meta("vggsnn", in_channels=2, image_size=48, num_classes=10)
    assert model.feature_shapes[-1] == (512, 3, 3)
    assert model.readout.in_features == 4608
    model = _meta("vgg9", **CIFAR)
    assert model.feature_shapes[-1] == (256, 4, 4)
    assert model.classifier[0].fc.in_features == 4096


# --------------------------------------------------------------------------- building blocks
def test_time_distributed_equals_per_step_application():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = images()
    y = TimeDistributed(conv)(x)
    assert y.shape == (T, B, 3, 8, 8)
    for t in range(T):
        assert torch.allclose(y[t], conv(x[t]), atol=1e-6)


def test_conv_block_batchnorm_sees_all_time_steps():
    block = ConvBNSpike(C, 4, lambda: NEURONS.get("lif")())
    block(images())
    assert block.bn.num_batches_tracked == 1  # one BatchNorm call over the T*B rows


def test_ceil_pooling_keeps_tiny_maps():
    pool = pool2d("avg")
    assert pool(torch.ones(T, B, 1, 1, 1)).shape == (T, B, 1, 1, 1)
    assert pool(torch.ones(T, B, 1, 9, 9)).shape == (T, B, 1, 5, 5)
    assert torch.equal(pool(torch.ones(T, B, 1, 3, 3)), torch.ones(T, B, 1, 2, 2))


def test_sequence_dropout_shares_its_mask_over_time():
    torch.manual_seed(0)
    drop = SeqDropout(0.5)
    y = drop(torch.ones(4, 8, 100))
    assert torch.equal(y[0], y[3]) and (y == 0).any() and (y == 2).any()
    drop.eval()
    x = torch.rand(4, 8, 100)
    assert drop(x) is x


# --------------------------------------------------------------------------- factory behaviour
def test_same_seed_same_model_and_reset_parameters_redraws_it():
    torch.manual_seed(3)
    a = tiny("resnet19")
    torch.manual_seed(3)
    b = tiny("resnet19")
    c = tiny("resnet19")
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(p, q), n
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))
    torch.manual_seed(3)
    c.reset_parameters()
    for (n, p), (_, q) in zip(a.state_dict().items(), c.state_dict().items()):
        assert torch.equal(p, q), n


def test_mlp_hidden_layers_fire_at_initialisation():
    torch.manual_seed(0)
    model = create_model("mlp", in_channels=1, image_size=8, num_classes=10)
    rates = []
    for _, m in spiking_modules(model):
        m.register_forward_hook(lambda mod, i, o: rates.append(float(o.detach().mean())))
    model(torch.rand(4, 32, 1, 8, 8))
    assert rates[0] > 0.01


def test_spec_options_and_callable_neuron():
    model = tiny("conv", channels=[4, 8], neuron_kwargs={"tau": 3.0})
    assert model.spec["model"] == "conv" and model.spec["channels"] == [4, 8]
    assert model.spec["neuron_kwargs"] == {"tau": 3.0} and model.spec["image_size"] == (8, 8)
    assert set(model_options("vgg16")) == {"width", "pool", "head_pool"}
    made = []

    def factory():
        made.append(NEURONS.get("lif")(tau=4.0))
        return made[-1]

    model = tiny("conv", neuron=factory)
    assert [m for _, m in spiking_modules(model)] == made and len(made) == 2


BAD = [
    ("conv", dict(image_size=0), "image_size"),
    ("conv", dict(image_size=-8), "image_size"),
    ("conv", dict(image_size=(8,)), "image_size"),
    ("conv", dict(image_size="8"), "image_size"),
    ("conv", dict(image_size=True), "image_size"),
    ("conv", dict(image_size=(8, 0)), "image_size"),
    ("conv", dict(image_size=None), "--model mlp"),
    ("resnet19", dict(image_size=None, in_features=64), "--model mlp"),
    ("conv", dict(in_channels=0), "in_channels"),
    ("conv", dict(num_classes=0), "num_classes"),
    ("conv", dict(timesteps=0), "timesteps"),
    ("conv", dict(width=0), "width"),
    ("conv", dict(width=-1.0), "width"),
    ("conv", dict(width=float("nan")), "width"),
    ("conv", dict(channels=[]), "channels"),
    ("conv", dict(channels=[16, 0]), "channels"),
    ("conv", dict(pool="min"), "pool"),
    ("conv", dict(head_pool=0), "head_pool"),
    ("conv", dict(hidden=[8]), "no option 'hidden'.*channels"),
    ("mlp", dict(hidden=[]), "hidden"),
    ("mlp", dict(hidden="wide"), "hidden"),
    ("mlp", dict(hidden=[1.5]), "hidden"),
    ("mlp", dict(image_size=None), "in_features"),
    ("mlp", dict(image_size=None, in_features=0), "in_features"),
    ("mlp", dict(in_features=10), "contradicts"),
    ("6conv2fc", dict(dropout=1.0), "dropout"),
    ("resnet19", dict(blocks=[1, 2]), "3 stage depths"),
    ("resnet19", dict(fc=-3), "fc"),
    ("nope", dict(), "unknown model 'nope'; choose one of: .*mlp"),
    ("conv", dict(neuron="nope"), "unknown neuron 'nope'"),
    ("conv", dict(neuron_kwargs={"no_such_arg": 1}), "no_such_arg"),
]


@pytest.mark.parametrize("name,kwargs,match", BAD)
def test_bad_arguments_raise_one_line_user_errors(name, kwargs, match):
    args = dict(in_channels=1, image_size=8, num_classes=10)
    args.update(kwargs)
    with pytest.raises(UserError, match=match) as info:
        create_model(name, **args)
    assert "\n" not in str(info.value)


def test_bad_inputs_at_forward_time_name_the_fix():
    model = tiny("conv")
    with pytest.raises(UserError, match=r"time-major.*encode"):
        model(torch.rand(B, C, 8, 8))           # forgot the time axis
    with pytest.raises(UserError, match="in_channels=3"):
        model(torch.rand(T, B, 3, 8, 8))
    mlp = tiny("mlp")
    with pytest.raises(UserError, match="128 features"):
        mlp(torch.rand(T, B, 1, 8, 8))
    assert math.prod(images().shape[2:]) == mlp.in_features
