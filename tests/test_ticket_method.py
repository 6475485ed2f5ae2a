"""The ``ticket`` method: training under a fixed mask from every entry point (``create_method``,
``sparsify``, ``fit``, ``spikesculpt train --method ticket --mask FILE``), the mask enforced
after every step, the run's hash naming the mask's contents, and one-shot magnitude tickets."""

import json
import shutil

import pytest
import torch
from cli_run import run_cli

import spikesculpt
from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.data import load_dataset
from spikesculpt.experiments.rundir import config_hash
from spikesculpt.experiments.train_run import evaluate_run
from spikesculpt.methods import METHODS, create_method, resolved_config
from spikesculpt.methods.tickets import TicketMethod, magnitude_ticket
from spikesculpt.methods.tickets.method import mask_digest
from spikesculpt.models import create_model, prunable_parameters
from spikesculpt.sparse import Mask, random_mask

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ["--epochs", "2", "--timesteps", "2", "--batch-size", "128", "--model-arg",
         "hidden=[16]", "--no-progress"]


def mlp(seed: int = 0, hidden=(16,)):
    torch.manual_seed(seed)
    return create_model("mlp", in_channels=1, image_size=None, in_features=64, num_classes=10,
                        timesteps=2, hidden=list(hidden))


def half_mask(model, seed: int = 0) -> Mask:
    """A random mask keeping half of every prunable weight."""
    shapes = {n: tuple(p.shape) for n, p in prunable_parameters(model)}
    counts = {n: p.numel() // 2 for n, p in prunable_parameters(model)}
    return random_mask(shapes, counts, torch.Generator().manual_seed(seed))


def assert_enforced(model, mask: Mask, optimizer=None) -> None:
    params = dict(model.named_parameters())
    for n, m in mask.items():
        assert not params[n][~m].any(), f"{n}: a pruned weight is not 0"
        if optimizer is not None:
            for value in optimizer.state[params[n]].values():
                if torch.is_tensor(value) and value.shape == m.shape:
                    assert not value[~m].any(), f"{n}: optimizer state revives a pruned weight"


def test_registered_with_its_options_section():
    cls = METHODS.get("ticket")
    assert cls is TicketMethod and cls.config_section == "ticket"
    assert "ticket" in TrainConfig.option_sections()


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_sparsify_keeps_the_mask_under_momentum_and_weight_decay(optimizer):
    model = mlp()
    mask = half_mask(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1) \
        if optimizer == "sgd" else torch.optim.AdamW(model.parameters(), lr=0.01,
                                                     weight_decay=0.5)
    method = spikesculpt.sparsify(model, opt, "ticket", mask=mask)
    assert isinstance(method, TicketMethod)
    assert_enforced(model, mask)                       # zeroed when attached
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = torch.rand(2, 8, 64, generator=g)
        y = torch.randint(0, 10, (8,), generator=g)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x).mean(0), y).backward()
        opt.step()
        assert_enforced(model, mask, opt)
    params = dict(model.named_parameters())
    for n, m in mask.items():                          # the kept weights did learn
        assert not torch.equal(params[n][m], before[n][m])
    assert method.mask == mask                         # and the mask never changed


def test_create_method_reads_a_mask_file_or_a_folder(tmp_path):
    model = mlp()
    mask = half_mask(model)
    mask.save(tmp_path / "masks.safetensors")
    for source in (tmp_path / "masks.safetensors", str(tmp_path), mask):
        method = create_method("ticket", mask=source)
        assert method.mask == mask and method.mask_sha256 == mask_digest(mask)
        method.prepare_model(mlp())


def test_fit_trains_under_the_mask_and_reports_it():
    splits = load_dataset("digits")
    model = mlp(hidden=(32,))
    mask = half_mask(model)
    metrics = spikesculpt.fit(model, splits, method="ticket", mask=mask, epochs=2, timesteps=2,
                              lr=1e-2, progress=False)
    assert_enforced(model, mask)
    assert metrics["method"] == "ticket"
    assert metrics["mask_density"] == pytest.approx(mask.density())
    assert metrics["density"] == pytest.approx(mask.density())   # zeros in the weights
    assert metrics["method_params"]["mask_sha256"] == mask_digest(mask)
    assert metrics["test_accuracy"] > 0.4     # 64% (seed 0); chance 10%


def test_magnitude_ticket_keeps_the_largest_weights_exactly():
    model = mlp(hidden=(32,))
    weights = {n: p.detach().clone() for n, p in prunable_parameters(model)}
    total = sum(w.numel() for w in weights.values())
    mask = magnitude_ticket(model, 0.25)
    assert sum(mask.active(n) for n in mask) == total - round(0.75 * total)
    kept = torch.cat([weights[n][mask[n]].abs() for n in mask])
    pruned = torch.cat([weights[n][~mask[n]].abs() for n in mask])
    assert pruned.max() <= kept.min()
    per_layer = magnitude_ticket(model, 0.25, scope="layer")
    for n, w in weights.items():
        assert per_layer.active(n) == w.numel() - round(0.75 * w.numel())
        assert w[~per_layer[n]].abs().max() <= w[per_layer[n]].abs().min()
    assert all(torch.equal(p, weights[n]) for n, p in prunable_parameters(model))  # unchanged
    assert magnitude_ticket(model, 1.0).density() == 1.0
    assert magnitude_ticket(model, 0.5, dense_last=True).names() == ["hidden.0.fc.weight"]
    for bad in (0, 1.5, "0.1", True):
        with pytest.raises(UserError, match="density must be in"):
            magnitude_ticket(model, bad)


def test_bad_masks_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="--mask FILE"):
        create_method("ticket")
    with pytest.raises(UserError, match="does not exist"):
        create_method("ticket", mask=str(tmp_path / "nope.safetensors"))
    with pytest.raises(UserError, match="holds no masks.safetensors"):
        create_method("ticket", mask=str(tmp_path))
    with pytest.raises(UserError, match="file path or a Mask"):
        create_method("ticket", mask=3)
    other = create_method("ticket", mask=half_mask(mlp(hidden=(8,))))
    with pytest.raises(UserError, match="rebuild the mask for this model"):
        other.prepare_model(mlp(hidden=(16,)))


def ticket_config(path) -> TrainConfig:
    config = TrainConfig(method="ticket")
    config.ticket.mask = str(path)
    return resolved_config(config)


def test_the_run_hash_names_the_mask_contents_not_its_path(tmp_path):
    mask = half_mask(mlp())
    mask.save(tmp_path / "a.safetensors")
    shutil.copy(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    half_mask(mlp(), seed=1).save(tmp_path / "c.safetensors")
    a, b, c = (ticket_config(tmp_path / f"{x}.safetensors") for x in "abc")
    assert a.ticket.mask_sha256 == mask_digest(mask)
    assert config_hash(a) == config_hash(b) != config_hash(c)
    dense = TrainConfig()
    dense.ticket.mask = str(tmp_path / "c.safetensors")
    assert config_hash(dense) == config_hash(TrainConfig())   # not read, not hashed



def test_cli_trains_a_ticket_and_evaluates_it(tmp_path, capsys):
    mask = half_mask(mlp())
    mask.save(tmp_path / "ticket.safetensors")
    out = tmp_path / "run"
    code, err, _ = run_cli(["train", "--method", "ticket", "--mask",
                         str(tmp_path / "ticket.safetensors"), *SMALL, "--out", str(out)], capsys)
    assert code == 0, err
    assert Mask.load(out / "masks.safetensors") == mask
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "ticket"
    assert metrics["mask_density"] == pytest.approx(mask.density())
    weights = evaluate_run(out)
    assert weights["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    half_mask(mlp(), seed=1).save(tmp_path / "ticket.safetensors")   # edited afterwards
    with pytest.raises(UserError, match="changed since this run was configured"):
        evaluate_run(out)


@pytest.mark.parametrize("argv, word", [
    (["train", "--method", "ticket"], "--mask FILE"),
    (["train", "--mask", "x.safetensors"], "add --method ticket"),
    (["train", "--method", "ticket", "--mask", "nope.safetensors"], "does not exist"),
    (["compare", "--methods", "dense,ticket"], "--mask FILE"),
])
def test_cli_rejects_before_anything_runs(tmp_path, capsys, argv, word):
    code, err, _ = run_cli([*argv, *SMALL, "--runs-root", str(tmp_path / "runs")], capsys)
    assert code == 2 and len(err) == 1 and word in err[0], err
    assert not (tmp_path / "runs").exists()
