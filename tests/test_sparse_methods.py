"""Contract tests over every registered sparse method, and ESL end to end."""

import json

import pytest
import torch
from cli_run import run_cli
from safetensors.torch import load_file
from torch import nn

from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.train_run import run_training
from spikesculpt.methods import METHODS, SparseMethod, create_method
from spikesculpt.models import create_model, prunable_parameters
from spikesculpt.sparse import Mask

SPARSE = [n for n in METHODS.names() if issubclass(METHODS.get(n), SparseMethod)]
# every method, and ESL with each of its growth rules
VARIANTS = [(n, {}) for n in SPARSE] + [("esl", {"grow": g}) for g in ("random", "gradient",
                                                                        "hebbian")]
OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=5e-3),
    "adamw": lambda p: torch.optim.AdamW(p, lr=5e-3, weight_decay=0.05),
}


def test_the_sparse_methods_are_registered():
    assert {"static", "set", "rigl", "esl"} <= set(SPARSE)


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return create_model("conv", in_channels=1, image_size=8, num_classes=10, channels=[4, 8])


def batches(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        yield torch.rand(3, 16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)


def train_steps(method, model, opt, steps, check=None):
    method.attach(model, opt, total_steps=steps, steps_per_epoch=2)
    for x, y in batches(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x).mean(0), y)
        loss.backward()
        opt.step()
        if check:
            check()


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name, options", VARIANTS, ids=lambda v: str(v))
def test_sparse_method_invariants(name, options, opt_name):
    method = create_method(name, density=0.2, update_every=2, drop_fraction=0.4,
                           update_until=1.0, **options)
    model = method.prepare_model(tiny_model())
    targets = dict(method.counts)
    params = dict(model.named_parameters())
    opt = OPTIMIZERS[opt_name](model.parameters())
    before = {}
    # runs before the method's post-step hooks: the weights the update decides on
    opt.register_step_post_hook(
        lambda *a: before.update({n: params[n].detach().clone() for n in method.mask}))
    seen_updates = []

    def check():
        for n, count in targets.items():
            if n in method.mask:
                assert method.mask.active(n) == count, n
                assert torch.all(params[n][~method.mask[n]] == 0), n
            else:
                assert count == params[n].numel()
        if len(method.updates) > len(seen_updates):
            seen_updates.append(method.updates[-1])
            for n, upd in method.last_update.items():
                d, g = upd["dropped"], upd["grown"]
                assert not set(d.tolist()) & set(g.tolist())
                assert torch.all(params[n].view(-1)[g] == 0)      # regrown start at zero
                old = before[n].view(-1).abs()
                was = method.mask[n].view(-1).clone()
                was[g] = False
                was[d] = True
                kept = was.clone()
                kept[d] = False
                # connections regrown within the grace period were not drop candidates
                born, u = method.ages.born[n].view(-1), method.ages.update
                kept &= ~((born > 0) & (born < u) & (born >= u - method.grace))
                if len(d):
                    assert old[d].max() <= old[kept].min()
                state = opt.state[params[n]]
                for v in state.values():
                    if torch.is_tensor(v) and v.shape == params[n].shape:
                        assert torch.all(v.view(-1)[g] == 0) and torch.all(v.view(-1)[d] == 0)

    train_steps(method, model, opt, 12, check)
    if method.rewires:
        assert len(method.updates) == 5 if name != "set" else len(method.updates) >= 5
        assert method.topology_change() > 0
    else:
        assert method.updates == [] and method.topology_change() == 0


@pytest.mark.parametrize("name, options", VARIANTS, ids=lambda v: str(v))
def test_same_seed_same_masks_other_seed_other_masks(name, options):
    def run(seed):
        method = create_method(name, seed=seed, density=0.2, update_every=3, **options)
        model = method.prepare_model(tiny_model())
        train_steps(method, model, torch.optim.SGD(model.parameters(), lr=0.1), 9)
        return method.mask

    assert run(0) == run(0)
    assert not run(0) == run(1)


def test_dense_first_and_last_stay_whole():
    method = create_method("esl", density=0.7, dense_first=True, dense_last=True,
                           update_every=1)
    model = method.prepare_model(tiny_model())
    names = [n for n, _ in prunable_parameters(model)]
    assert names[0] not in method.mask and names[-1] not in method.mask
    train_steps(method, model, torch.optim.SGD(model.parameters(), lr=0.1), 4)
    total = sum(p.numel() for _, p in prunable_parameters(model))
    active = sum(method.counts.values())
    assert active == round(0.7 * total)


def test_model_without_prunable_layers_is_a_user_error():
    class NoLayers(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

    with pytest.raises(UserError, match="no"):
        create_method("esl").prepare_model(NoLayers())


@pytest.mark.parametrize("options, word", [
    (dict(density=0.0), "density"), (dict(density=1.5), "density"),
    (dict(drop_fraction=1.0), "drop_fraction"), (dict(update_every=0), "update_every"),
    (dict(update_until=0.0), "update_until"), (dict(init="xavier"), "unknown init"),
    (dict(grow="magic"), "unknown grow"),
])
def test_bad_options(options, word):
    with pytest.raises(UserError, match=word):
        create_method("esl", **options)


def test_plain_pytorch_model_and_own_loop():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 50), nn.ReLU(), nn.Linear(50, 3))
    esl = create_method("esl", density=0.2, update_every=5, grow="gradient")
    model = esl.prepare_model(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    esl.attach(model, opt, total_steps=40)
    x, y = torch.randn(64, 10), torch.randint(0, 3, (64,))
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert len(esl.updates) == 5  # steps 5..25 (< 75% of 40)
    assert esl.mask.density() == pytest.approx(0.2, abs=0.01)
    w = model[0].weight
    assert int((w != 0).sum()) <= esl.mask.active("0.weight")


# ---------------------------------------------------------------- through the training loop
def esl_config(**kw):
    cfg = TrainConfig(method="esl", epochs=3, timesteps=2, batch_size=128,
                      model_kwargs={"hidden": [32]})
    cfg.sparse.density = 0.2
    cfg.sparse.update_every = 4
    for k, v in kw.items():
        setattr(cfg.sparse, k, v)
    return cfg


def test_esl_run_outputs_and_density_contract(tmp_path):
    result = run_training(esl_config(grow="hebbian"), out=str(tmp_path / "run"), progress=False)
    run = result.run_dir.path
    for name in ("masks.safetensors", "rewiring.csv", "layer_density.png", "turnover.png"):
        assert (run / name).is_file(), name
    m = json.loads((run / "metrics.json").read_text())
    assert m["method"] == "esl" and m["method_params"]["grow"] == "hebbian"
    assert m["mask_updates"] > 0 and 0 < m["topology_change"] < 1
    assert m["mask_density"] == pytest.approx(0.2, abs=1e-3)
    state = load_file(str(run / "model.safetensors"))
    names = [layer["name"] for layer in m["layers"]]
    nonzero = sum(int((state[n] != 0).sum()) for n in names)
    total = sum(state[n].numel() for n in names)
    assert m["density"] == pytest.approx(nonzero / total)
    mask = Mask.load(run / "masks.safetensors")
    for n in mask:  # the saved weights are zero wherever the saved mask is
        assert torch.all(state[n][~mask[n]] == 0)
    rows = (run / "history.csv").read_text().splitlines()
    assert "mask_updates" in rows[0] and "connections_changed" in rows[0]
    rewiring = (run / "rewiring.csv").read_text().splitlines()
    assert len(rewiring) == 1 + m["mask_updates"]
    for key in ("dropped_newborn", "grown_returning", "mean_age", "explored"):
        assert key in rewiring[0].split(","), key
    # ESL's default grace period: nothing regrown at the previous update is dropped
    assert m["method_params"]["grace"] == 2 and m["dropped_newborn"] == 0
    assert m["mask_density"] < m["explored"] <= 1   # rewiring tried connections beyond the start


def test_esl_resume_gives_the_uninterrupted_masks_and_weights(tmp_path, monkeypatch):
    from spikesculpt.train.trainer import Trainer

    full = run_training(esl_config(), out=str(tmp_path / "full"), progress=False)
    original = Trainer.train_epoch

    def cut(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", cut)
    with pytest.raises(KeyboardInterrupt):
        run_training(esl_config(), out=str(tmp_path / "cut"), progress=False)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    resumed = run_training(esl_config(), out=str(tmp_path / "cut"), resume=True, progress=False)
    a = load_file(str(full.run_dir.model_path))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert Mask.load(full.run_dir.path / "masks.safetensors") == \
        Mask.load(tmp_path / "cut" / "masks.safetensors")
    assert resumed.metrics["mask_updates"] == full.metrics["mask_updates"]


def test_dense_run_hash_ignores_sparse_options():
    from spikesculpt.experiments.rundir import config_hash

    a, b = TrainConfig(), TrainConfig()
    b.sparse.density = 0.5
    assert config_hash(a) == config_hash(b)
    a.method = b.method = "esl"
    assert config_hash(a) != config_hash(b)


def test_spikingjelly_model_trains_sparse():
    """ESL on a model built from SpikingJelly 2.0 modules (installed with --no-deps)."""
    sj = pytest.importorskip("spikingjelly.activation_based",
                             reason="SpikingJelly is installed by the README's test command")
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(0)
    model = nn.Sequential(layer.Flatten(step_mode="m"), layer.Linear(64, 48, step_mode="m"),
                          neuron.LIFNode(tau=2.0, step_mode="m"),
                          layer.Linear(48, 10, step_mode="m"))
    esl = create_method("esl", density=0.25, update_every=2, grow="hebbian")
    model = esl.prepare_model(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    esl.attach(model, opt, total_steps=10)
    counts = dict(esl.counts)
    for x, y in batches(10):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x).mean(0), y).backward()
        opt.step()
        functional.reset_net(model)
        for n in esl.mask:
            assert esl.mask.active(n) == counts[n]
            assert torch.all(dict(model.named_parameters())[n][~esl.mask[n]] == 0)
    assert len(esl.updates) == 3 and sj is not None


@pytest.mark.parametrize("args, word", [
    (["--density", "0"], "density must be in (0, 1]"),
    (["--density", "1.5"], "density must be in (0, 1]"),
    (["--drop-fraction", "1"], "drop_fraction"),
    (["--update-every", "0"], "positive integer"),
    (["--update-until", "1.5"], "update_until"),
    (["--init", "xavier"], "unknown init 'xavier'"),
    (["--grow", "magic"], "unknown grow 'magic'"),
])
def test_cli_bad_sparse_options_exit_2(tmp_path, args, word, capsys, monkeypatch):
    """In-process (the entry point exits with ``main``'s code; tests/test_train_cli.py runs one
    bad input through a real process)."""
    monkeypatch.chdir(tmp_path)
    code, err, _ = run_cli(["train", "--method", "esl", *args, "--no-progress"], capsys)
    assert code == 2 and len(err) == 1 and word in err[0], err
    assert not (tmp_path / "runs").exists()


def test_fit_trains_a_spikingjelly_model_with_esl():
    """The README's SpikingJelly example: stateful SJ neurons are reset before every batch,
    their spikes count in the firing rate, ESL keeps the density."""
    pytest.importorskip("spikingjelly.activation_based",
                        reason="SpikingJelly is installed by the README's test command")
    from spikingjelly.activation_based import layer, neuron

    import spikesculpt
    from spikesculpt.data import load_dataset

    torch.manual_seed(0)
    net = nn.Sequential(layer.Flatten(step_mode="m"), layer.Linear(64, 64, step_mode="m"),
                        neuron.LIFNode(tau=2.0, step_mode="m"),
                        layer.Linear(64, 10, step_mode="m"))
    nn.init.kaiming_uniform_(net[1].weight, nonlinearity="relu")  # PyTorch's default is silent
    m = spikesculpt.fit(net, load_dataset("digits"), method="esl", density=0.3, epochs=3,
                        timesteps=4, lr=5e-3, update_every=5, progress=False)
    assert m["method"] == "esl" and m["mask_updates"] > 0
    assert m["mask_density"] == pytest.approx(0.3, abs=1e-3)
    assert 0 < m["firing_rate"] < 1 and "2" in m["layer_firing_rates"]
    assert m["test_accuracy"] > 0.3


def test_run_config_records_the_resolved_method_defaults(tmp_path):
    from spikesculpt.methods.dynamic.esl import ESL

    result = run_training(esl_config(), out=str(tmp_path / "run"), progress=False)
    text = (result.run_dir.path / "config.yaml").read_text()
    assert f"grow: {ESL.DEFAULTS['grow']}" in text and "init: er" in text


def test_compare_prints_methods_side_by_side(tmp_path, capsys):
    from spikesculpt.cli.main import main

    code = main(["compare", "--methods", "dense,static", "--density", "0.3", "--epochs", "1",
                 "--timesteps", "2", "--model-arg", "hidden=[16]", "--runs-root",
                 str(tmp_path), "--no-progress"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    table = [line for line in lines if line.startswith(("dense ", "static "))]
    assert [t.split()[0] for t in table] == ["dense", "static"]
    assert float(table[1].split()[3]) == pytest.approx(0.3, abs=0.001)
    assert len(list(tmp_path.iterdir())) == 2


def test_hebbian_esl_under_mixed_precision():
    """AMP (CPU bfloat16 autocast here; float16 on CUDA): half activations, float32 weights."""
    method = create_method("esl", density=0.2, grow="hebbian", update_every=2)
    model = method.prepare_model(tiny_model())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    method.attach(model, opt, total_steps=8)
    for x, y in batches(5):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x).float().mean(0), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert len(method.updates) == 2
    assert all(method.mask.active(n) == method.counts[n] for n in method.mask)


def test_only_unnormalised_layers_are_rescaled_at_initialisation():
    torch.manual_seed(0)
    model = tiny_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    method = create_method("static", density=0.3)
    method.prepare_model(model)
    # conv -> BN blocks keep their values; the readout (no BN after it) is scaled by 1/sqrt(d)
    assert method.rescaled == ["readout.weight"]
    for n in method.mask:
        kept = method.mask[n]
        d = method.mask.density(n)
        scale = d ** -0.5 if n in method.rescaled else 1.0
        assert torch.allclose(dict(model.named_parameters())[n][kept], before[n][kept] * scale)
