"""Networks that cannot learn because their spiking layers are silent: woken at the start
(``init_firing``), warned about when still silent, BatchNorm statistics right in evaluation."""

import warnings

import pytest
import torch
from torch import nn

import spikesculpt
from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.data import load_dataset
from spikesculpt.experiments.rundir import config_hash
from spikesculpt.experiments.train_run import run_training
from spikesculpt.methods import create_method
from spikesculpt.models import create_model
from spikesculpt.models.calibrate import calibrate_firing, driving_layers
from spikesculpt.neurons import LIF
from spikesculpt.train.norm_stats import warm_running_stats

pytestmark = pytest.mark.usefixtures("one_thread")


def plain_snn(hidden=64, seed=0):
    """A user's model with PyTorch's default Linear init: its hidden layer is silent."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(start_dim=2), nn.Linear(64, hidden), LIF(),
                         nn.Linear(hidden, hidden), LIF(), nn.Linear(hidden, 10))


def rate(model, module, x):
    out = []
    handle = module.register_forward_hook(lambda m, i, o: out.append(float(o.mean())))
    with torch.no_grad():
        model(x)
    handle.remove()
    return out[0]


def digits_batch(n=256, timesteps=4):
    x, _ = load_dataset("digits").train.tensors
    return x[:n].unsqueeze(0).expand(timesteps, *x[:n].shape)


def fit_quietly(model, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = spikesculpt.fit(model, load_dataset("digits"), epochs=1, timesteps=2, lr=5e-3,
                                  progress=False, **options)
    silent = [w for w in caught if "silent after epoch" in str(w.message)]
    return metrics, silent


# ---------------------------------------------------------------- waking silent layers
def test_calibration_wakes_the_silent_layers_and_only_rescales_them():
    model, x = plain_snn(), digits_batch()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert rate(model, model[4], x) < 0.01                       # silent as built
    scales = calibrate_firing(model, x, min_rate=0.1)
    assert set(scales) <= {"1.weight", "3.weight"} and "3.weight" in scales
    for layer, neuron in ((model[1], model[2]), (model[3], model[4])):
        assert 0.1 <= rate(model, neuron, x) < 0.13
    for name, p in model.named_parameters():
        layer = name.split(".")[0]
        factor = scales.get(f"{layer}.weight", 1.0)
        assert torch.allclose(p, before[name] * factor)          # same init, larger gain
    assert "5.weight" not in scales                              # the readout drives no neuron


def test_layers_behind_a_normalisation_are_not_calibrated():
    torch.manual_seed(0)
    model = create_model("conv", in_channels=1, image_size=8, num_classes=10, channels=[4, 8])
    x = digits_batch(64).reshape(4, 64, 1, 8, 8)
    assert driving_layers(model, x) == []                        # conv -> BN -> LIF only
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    assert calibrate_firing(model, x) == {}
    assert all(torch.equal(b, buffers[n]) for n, b in model.named_buffers())


def test_a_maxpool_between_conv_and_neuron_still_pairs_them():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(0, 1), nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2),
                          nn.Unflatten(0, (4, -1)), LIF())
    x = digits_batch(32).reshape(4, 32, 1, 8, 8)
    assert [name for name, _, _ in driving_layers(model, x)] == ["1.weight"]


# ---------------------------------------------------------------- the loop
def test_fit_wakes_a_dead_network_and_says_so_when_it_cannot():
    dead, silent = fit_quietly(plain_snn(), method="dense", init_firing=0.0)
    assert dead["silent_layers"] and len(silent) == 1            # one warning, naming them
    assert "4" in str(silent[0].message) and "init_firing" in str(silent[0].message)
    woken, silent = fit_quietly(plain_snn(), method="dense")
    assert woken["silent_layers"] == [] and silent == []
    assert set(woken["init_scales"]) >= {"3.weight"}
    assert woken["test_accuracy"] > dead["test_accuracy"] + 0.2


def test_fit_reports_density_like_metrics_json():
    m, _ = fit_quietly(plain_snn(), method="esl", density=0.3, update_every=5)
    assert m["density"] == pytest.approx(0.3, abs=0.02)
    assert m["nonzero_prunable"] == round(m["density"] * m["params_prunable"])
    assert m["params_total"] > m["params_prunable"]


def test_init_firing_is_validated_and_hashed_only_when_changed():
    with pytest.raises(UserError, match="init_firing"):
        TrainConfig(init_firing=1.5).validate()
    assert config_hash(TrainConfig()) == config_hash(TrainConfig(init_firing=0.1))
    assert config_hash(TrainConfig()) != config_hash(TrainConfig(init_firing=0.0))


def test_spikingjelly_net_with_default_init_is_woken():
    """The issue's case: a SpikingJelly conv net, PyTorch's default init, no BatchNorm."""
    pytest.importorskip("spikingjelly.activation_based",
                        reason="SpikingJelly is installed by the README's test command")
    from spikingjelly.activation_based import functional, layer, neuron

    def net():
        torch.manual_seed(0)
        n = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1), neuron.LIFNode(tau=2.0),
                          layer.MaxPool2d(2), layer.Flatten(), layer.Linear(64, 32),
                          neuron.LIFNode(tau=2.0), layer.Linear(32, 10))
        functional.set_step_mode(n, "m")
        return n

    dead, silent = fit_quietly(net(), method="esl", density=0.3, init_firing=0.0)
    assert set(dead["silent_layers"]) == {"1", "5"} and len(silent) == 1
    woken, silent = fit_quietly(net(), method="esl", density=0.3)
    assert woken["silent_layers"] == [] and silent == []
    assert set(woken["init_scales"]) == {"0.weight", "4.weight"}


# ---------------------------------------------------------------- BatchNorm statistics
def test_batchnorm_running_stats_average_the_first_batches():
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(3)
    batches = [0.01 * torch.randn(50, 3) + 2.0 for _ in range(3)]
    with warm_running_stats(bn):
        for b in batches:
            bn(b)
    data = torch.cat(batches)
    assert torch.allclose(bn.running_mean, data.mean(0), atol=1e-3)  # not 0.9**3 * 0 + ...
    assert torch.allclose(bn.running_var, torch.stack([b.var(0) for b in batches]).mean(0),
                          rtol=1e-3)
    assert bn.momentum == 0.1


def test_warm_statistics_hooks_leave_once_warm():
    """The warm-up hook removes itself after 1/momentum batches, and a later epoch's context
    adds none (a compiled graph is then traced hook-free, train/compiled.py); the statistics
    are those of the plain exponential average from then on."""
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(3, momentum=0.25)
    with warm_running_stats(bn):
        for i in range(6):
            assert bool(bn._forward_pre_hooks) == (i < 4)
            bn(torch.randn(20, 3))
    with warm_running_stats(bn):
        assert not bn._forward_pre_hooks
        before = bn.running_mean.clone()
        b = torch.randn(20, 3)
        bn(b)
    assert torch.allclose(bn.running_mean, 0.75 * before + 0.25 * b.mean(0), atol=1e-6)


def test_conv_net_is_not_silent_in_evaluation_after_one_epoch(tmp_path):
    """conv -> BN -> LIF on digits: 26 batches left the running variance far above the true
    one, so the evaluated network was silent (val accuracy 10%) while it trained."""
    config = TrainConfig(model="conv", epochs=1, device="cpu", init_firing=0.0)
    m = run_training(config, out=str(tmp_path / "run"), progress=False).metrics
    assert m["silent_layers"] == [] and min(m["layer_firing_rates"].values()) > 0.01
    assert m["val_accuracy"] > 0.3


# ---------------------------------------------------------------- outcome
def test_default_esl_on_digits_learns_from_the_first_epochs(tmp_path):
    """``spikesculpt train --method esl`` (mlp 256-256, density 0.1): was at chance for three
    epochs (29% after eight) while dense reached 90%."""
    config = TrainConfig(method="esl", epochs=3, device="cpu")
    result = run_training(config, out=str(tmp_path / "run"), progress=False)
    assert result.metrics["test_accuracy"] > 0.5 and result.metrics["silent_layers"] == []


# ---------------------------------------------------------------- Hebbian growth
def test_hebbian_growth_warns_once_where_a_pool_hides_the_neuron():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(0, 1), nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2),
                          nn.Unflatten(0, (2, -1)), LIF(), nn.Flatten(2), nn.Linear(64, 10))
    method = create_method("esl", density=0.5, grow="hebbian", update_every=1, init="uniform")
    method.prepare_model(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    method.attach(model, opt, total_steps=10)
    x, y = torch.rand(2, 8, 1, 8, 8), torch.randint(0, 10, (8,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x).mean(0), y).backward()
            opt.step()
    hebbian = [str(w.message) for w in caught if "hebbian growth" in str(w.message)]
    assert len(method.updates) == 3
    assert len(hebbian) == 1 and "1.weight" in hebbian[0] and "6.weight" not in hebbian[0]
