"""Contract tests over every registry: whatever is registered, by spikesculpt or by a user, keeps
these promises. Nothing here lists names: a new entry is tested by being registered.

Registries: methods, neurons, surrogates, encoders, datasets, models, sparse allocation and
growth rules, optimizers, schedules, losses; and the option declarations the CLI is derived
from. (Deeper per-registry tests live beside each part: test_models.py, test_surrogates.py,
test_sparse_methods.py, ...; lottery strategies and evolution searches get theirs with their
registries.)
"""

import dataclasses
import json
import math

import pytest
import torch

from spikesculpt.cli.evolve import evolve_flags
from spikesculpt.cli.evolve import train_flags as evolve_train_flags
from spikesculpt.cli.flags import Flag, declared_flags
from spikesculpt.cli.lottery import lottery_flags
from spikesculpt.cli.lottery import train_flags as lottery_train_flags
from spikesculpt.cli.main import build_parser
from spikesculpt.cli.train import config_flags
from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.core.options import declared, field_default
from spikesculpt.data import DATASETS, load_dataset
from spikesculpt.encoding import ENCODERS, encode, static_encoders
from spikesculpt.experiments.evolution.options import EvolutionConfig
from spikesculpt.experiments.lottery import STRATEGIES
from spikesculpt.experiments.lottery.options import LotteryConfig
from spikesculpt.experiments.rundir import config_hash
from spikesculpt.methods import METHODS, create_method, resolved_config
from spikesculpt.models import MODELS, create_model
from spikesculpt.neurons import NEURONS, SURROGATES, create_neuron, create_surrogate, spike
from spikesculpt.neurons.options import NeuronConfig
from spikesculpt.sparse import ALLOCATION_RULES, GROWTH_RULES, Mask, layer_counts
from spikesculpt.train.losses import LOSSES
from spikesculpt.train.optim import OPTIMIZERS, SCHEDULES, build_optimizer, build_scheduler

pytestmark = pytest.mark.usefixtures("one_thread")
T, B, F, K = 3, 4, 12, 3


def spiking_mlp(seed: int = 0) -> torch.nn.Module:
    """A tiny spikesculpt MLP ``[T, B, F] -> [T, B, K]`` with LIF neurons that fire."""
    torch.manual_seed(seed)
    return create_model("mlp", in_channels=1, image_size=None, in_features=F, num_classes=K,
                        timesteps=T, hidden=[16], neuron_kwargs={"v_threshold": 0.2})


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, B, F, generator=g) * 2, torch.randint(0, K, (B,), generator=g)


# ------------------------------------------------------------------------------------ methods
def method_inputs(name: str, tmp_path) -> dict:
    """The options a method cannot run without (the ``ticket`` method's mask file)."""
    if name != "ticket":
        return {}
    path = tmp_path / "masks.safetensors"
    Mask({"hidden.0.weight": torch.rand(4, 6) < 0.5}).save(path)
    return {"mask": str(path)}


@pytest.mark.parametrize("name", METHODS.names())
def test_method_declares_its_options_and_resolves_them_purely(name, tmp_path):
    cls = METHODS.get(name)
    assert cls.name == name
    inputs = method_inputs(name, tmp_path)
    if cls.config_section is None:
        assert cls.options_class is None
    else:
        assert cls.config_section in TrainConfig.option_sections()
        assert isinstance(getattr(TrainConfig(), cls.config_section), cls.options_class)
        options = cls.options_class(**inputs)
        resolved = cls.resolve_options(options)
        assert options == cls.options_class(**inputs)   # the input is not changed
        assert cls.resolve_options(resolved) == resolved  # resolving twice changes nothing
    config = TrainConfig(method=name)
    if inputs:
        setattr(config, cls.config_section, cls.options_class(**inputs))
    before = config.to_dict()
    resolved_run = resolved_config(config)
    assert config.to_dict() == before and resolved_run is not config
    assert config_hash(config) == config_hash(resolved_run)  # what a run hashes: resolved


@pytest.mark.filterwarnings("ignore:gene dimension")  # a tiny MLP: genes save nothing
@pytest.mark.parametrize("name", METHODS.names())
def test_method_trains_in_a_plain_loop(name):
    model = spiking_mlp()
    # the ticket method's input: a mask of this model (half of each weight kept)
    inputs = {"mask": Mask({n: torch.rand(p.shape) < 0.5 for n, p in model.named_parameters()
                            if n.endswith("weight") and p.dim() > 1})} if name == "ticket" else {}
    method = create_method(name, seed=0, **inputs)
    model = method.prepare_model(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    method.attach(model, optimizer, total_steps=4, steps_per_epoch=2)
    x, y = batch()
    for _ in range(4):
        optimizer.zero_grad()
        loss = LOSSES["ce"](model(x), y)
        loss.backward()
        optimizer.step()
    assert torch.isfinite(loss)
    json.dumps(method.params())  # recorded in metrics.json as method_params


# ------------------------------------------------------------------------------------ neurons
@pytest.mark.parametrize("name", NEURONS.names())
def test_neuron_builds_from_the_config_and_spikes(name):
    config = NeuronConfig(name=name, v_threshold=0.5)
    kwargs = config.module_kwargs()
    names = {f.name for f in dataclasses.fields(NeuronConfig)}
    arguments = NEURONS.get(name).config_arguments
    assert set(arguments) <= names and set(kwargs) == set(arguments.values())
    neuron = create_neuron(name, **kwargs)
    x = (torch.rand(T, B, F) * 2).requires_grad_()
    s = neuron(x)
    assert s.shape == x.shape and s.dtype == x.dtype and set(s.unique().tolist()) <= {0.0, 1.0}
    s.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    v, steps = None, []
    with torch.no_grad():
        for t in range(T):
            s_t, v = neuron.step(x[t].detach(), v)
            steps.append(s_t)
        assert torch.equal(torch.stack(steps), neuron(x.detach()))


# --------------------------------------------------------------------------------- surrogates
@pytest.mark.parametrize("name", SURROGATES.names())
def test_surrogate_is_a_step_forward_and_a_bump_backward(name):
    surrogate = create_surrogate(name)
    x = torch.linspace(-3, 3, 61, dtype=torch.float64).requires_grad_()
    s = spike(x, surrogate)
    assert torch.equal(s, (x >= 0).double())
    s.sum().backward()
    assert torch.all(x.grad >= 0) and x.grad[30] == x.grad.max() > 0  # largest at threshold


# ---------------------------------------------------------------------------------- encoders
@pytest.mark.parametrize("name", ENCODERS.names())
def test_encoder_gives_time_major_input(name):
    x = torch.rand(B, F)
    if name in static_encoders():
        out = encode(x, T, name, generator=torch.Generator().manual_seed(0))
        assert out.shape == (T, B, F) and out.dtype == x.dtype
    else:  # takes input that is already time-major (event frames)
        frames = torch.rand(T, B, F)
        assert encode(frames, T, name).shape == (T, B, F)
        with pytest.raises(UserError):
            encode(x, T, name)


def test_static_encoders_are_the_encoding_choices():
    assert static_encoders() and TrainConfig().encoding in static_encoders()
    with pytest.raises(UserError, match="unknown encoding"):
        TrainConfig(encoding="none").validate()


# ---------------------------------------------------------------------------------- datasets
@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_loads_or_says_in_one_line_what_it_needs(name, tmp_path):
    """Embedded data sets load without files; the others refuse a missing --data-root (or a
    missing argument, npz:PATH) with a one-line UserError naming the flag to pass."""
    try:
        splits = load_dataset(name, seed=0, data_root=str(tmp_path / "missing"))  # its own T
    except UserError as exc:
        text = str(exc)
        assert "\n" not in text and ("--data-root" in text or "--dataset" in text), text
        return
    info = splits.info
    for part in (splits.train, splits.val, splits.test):
        assert len(part) > 0
        x, y = part[0]
        assert 0 <= int(y) < info.num_classes


# ------------------------------------------------------------------------------------ models
@pytest.mark.parametrize("name", MODELS.names())
def test_model_forward_backward_on_a_tiny_input(name):
    torch.manual_seed(0)
    model = create_model(name, in_channels=2, image_size=8, num_classes=K, timesteps=2,
                         width=1 / 16, neuron_kwargs={"v_threshold": 0.2})
    out = model(torch.rand(2, 2, 2, 8, 8))
    assert out.shape == (2, 2, K) and torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


# ------------------------------------------------------------------ sparse: allocation, growth
SHAPES = {"conv.weight": (8, 2, 3, 3), "fc.weight": (16, 72), "out.weight": (3, 16)}


@pytest.mark.parametrize("rule", ALLOCATION_RULES.names())
@pytest.mark.parametrize("density", [0.05, 0.3, 1.0])
def test_allocation_rule_meets_the_budget_exactly(rule, density):
    for shape in SHAPES.values():
        p = ALLOCATION_RULES.get(rule)(shape)
        assert p > 0 and math.isfinite(p)
    counts = layer_counts(SHAPES, density, rule)
    sizes = {n: math.prod(s) for n, s in SHAPES.items()}
    assert sum(counts.values()) == round(density * sum(sizes.values()))
    assert all(1 <= counts[n] <= sizes[n] for n in SHAPES)


@pytest.mark.parametrize("rule", GROWTH_RULES.names())
def test_growth_rule_rewires_at_constant_count(rule):
    method = create_method("rigl", seed=0, density=0.3, grow=rule, update_every=1,
                           drop_fraction=0.3, update_until=1.0)
    model = method.prepare_model(spiking_mlp())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    method.attach(model, optimizer, total_steps=10)
    active = {n: method.mask.active(n) for n in method.mask}
    x, y = batch()
    for _ in range(3):
        optimizer.zero_grad()
        LOSSES["ce"](model(x), y).backward()
        optimizer.step()
    assert len(method.updates) == 3 and sum(r["changed"] for r in method.updates) > 0
    assert {n: method.mask.active(n) for n in method.mask} == active
    params = dict(model.named_parameters())
    assert all(bool((params[n][~m] == 0).all()) for n, m in method.mask.items())


# ------------------------------------------------------------ optimizers, schedules, losses
@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_optimizer_steps(name):
    layer = torch.nn.Linear(4, 2)
    before = layer.weight.detach().clone()
    optimizer = build_optimizer(layer.parameters(), TrainConfig(optimizer=name, lr=0.1))
    layer(torch.ones(3, 4)).sum().backward()
    optimizer.step()
    assert not torch.equal(layer.weight, before)


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_schedule_keeps_lr_positive_until_the_last_epoch(name):
    config = TrainConfig(schedule=name, epochs=3, lr=0.1)
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=config.lr)
    schedule = build_scheduler(optimizer, config)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(config.lr)
    for _ in range(config.epochs - 1):
        optimizer.step()
        schedule.step()
        assert 0 < optimizer.param_groups[0]["lr"] <= config.lr


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_takes_time_major_logits(name):
    logits = torch.randn(T, B, K, requires_grad=True)
    loss = LOSSES[name](logits, torch.randint(0, K, (B,)))
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(logits.grad).all()


# --------------------------------------------------------------------- lottery strategies
@pytest.mark.parametrize("name", STRATEGIES.names())
def test_lottery_strategy_is_built_by_name(name):
    """The search builds its strategy as ``STRATEGIES.get(name)()``; the config accepts it."""
    assert STRATEGIES.get(name)() is not None
    LotteryConfig(strategy=name).validate()


def test_lottery_default_strategy_is_registered():
    assert LotteryConfig().strategy in STRATEGIES


# -------------------------------------------------- option declarations (config, hash, CLI)
def _option_classes():
    config = TrainConfig()
    return [TrainConfig] + [type(getattr(config, f.name)) for f in dataclasses.fields(config)
                            if dataclasses.is_dataclass(getattr(config, f.name))]


@pytest.mark.parametrize("cls", _option_classes(), ids=lambda c: c.__name__)
def test_declared_choices_list_registered_names_and_hold_the_default(cls):
    for f in declared(cls):
        assert f.metadata["help"].strip(), f.name
        names = f.metadata.get("choices")
        if names is None:
            continue
        assert list(names()), f"{cls.__name__}.{f.name}: no registered names"
        default = field_default(f)
        assert default is None or default in names(), f"{cls.__name__}.{f.name}"


@pytest.mark.parametrize("flags", [config_flags(), lottery_flags() + lottery_train_flags(),
                                   evolve_flags() + evolve_train_flags()],
                         ids=["train", "lottery", "evolve"])
def test_flags_are_unique_and_their_defaults_read_back(flags):
    names = [f.name for f in flags]
    assert len(names) == len(set(names)) and len({f.dest for f in flags}) == len(flags)
    build_parser()  # every command's flags fit together (argparse refuses a duplicate)
    for flag in flags:
        if flag.switch or flag.read is not None:
            continue
        cls = _section_class(flag)
        default = field_default(next(f for f in dataclasses.fields(cls) if f.name == flag.field))
        if isinstance(default, (int, float, str)) and not isinstance(default, bool):
            assert flag.parse(str(default)) == default, flag.name


def _section_class(flag: Flag):
    if flag in lottery_flags():
        return LotteryConfig
    if flag in evolve_flags():
        return EvolutionConfig
    obj = TrainConfig()
    for key in flag.section:
        obj = getattr(obj, key)
    return type(obj)


def test_a_newly_declared_option_gets_its_flag_and_help():
    """What a part gains by declaring an option: a flag, help with the default, a value."""
    from spikesculpt.cli.flags import add_flags, given_values
    from spikesculpt.cli.parser import OneLineParser
    from spikesculpt.core.options import option

    @dataclasses.dataclass
    class Options:
        beta: float = option(0.5, help="a new knob")
        mode: str = option("a", choices=lambda: ["a", "b"], help="a mode")
        quiet: bool = option(False, help="say less")

    parser = OneLineParser(prog="x")
    add_flags(parser, declared_flags(Options))
    text = " ".join(parser.format_help().split())
    assert "a new knob (default: 0.5)" in text and "a mode: a | b (default: a)" in text
    args = parser.parse_args(["--beta", "0.25", "--quiet"])
    assert given_values(args, declared_flags(Options)) == {"beta": 0.25, "quiet": True}
