"""Mixed precision: optimizer-hook methods see only the steps that happen, with true gradients.

``torch.amp.GradScaler("cpu")`` with PyTorch's fused CPU Adam takes the same code path as CUDA
AMP with the fused optimizers our loop builds: the scaler calls ``optimizer.step()`` even on an
overflow (with ``optimizer.grad_scale`` / ``found_inf`` set) and the fused kernel skips inside,
so the step hooks run on skipped steps and see scaled gradients.
"""

from contextlib import nullcontext

import pytest
import torch
from torch import nn

from spikesculpt.config import TrainConfig
from spikesculpt.data import load_dataset
from spikesculpt.methods import create_method
from spikesculpt.methods.dynamic import base as sparse_base
from spikesculpt.models import create_model
from spikesculpt.train.callbacks import Callback
from spikesculpt.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model():
    torch.manual_seed(0)
    return create_model("conv", in_channels=1, image_size=8, num_classes=10, channels=[4, 8])


def batch(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, 16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)


def sparse_setup(grow):
    method = create_method("esl", density=0.3, grow=grow, update_every=1, update_until=1.0)
    model = method.prepare_model(tiny_model())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, fused=True)
    method.attach(model, opt, total_steps=10)
    return method, model, opt


def scaled_backward(model, opt, scaler, seed):
    x, y = batch(seed)
    opt.zero_grad()
    scaler.scale(nn.functional.cross_entropy(model(x).mean(0), y)).backward()


def test_cpu_fused_adam_takes_the_amp_code_path_of_cuda():
    opt = torch.optim.Adam(nn.Linear(2, 2).parameters(), fused=True)
    assert getattr(opt, "_step_supports_amp_scaling", False)


@pytest.mark.parametrize("grow", ["gradient", "hebbian", "random"])
def test_a_step_skipped_on_overflow_is_not_counted_and_does_not_rewire(grow):
    method, model, opt = sparse_setup(grow)
    scaler = torch.amp.GradScaler("cpu")
    mask = method.mask.clone()
    params = {n: p.detach().clone() for n, p in model.named_parameters()}

    scaled_backward(model, opt, scaler, seed=0)
    model.readout.weight.grad[0, 0] = float("inf")       # overflow: the scaler skips the step
    scaler.step(opt)
    scaler.update()
    assert method.step == 0 and method.updates == []
    assert all(torch.equal(method.mask[n], mask[n]) for n in mask)
    assert all(torch.equal(p, params[n]) for n, p in model.named_parameters())

    scaled_backward(model, opt, scaler, seed=1)          # a finite step: counted, rewires
    scaler.step(opt)
    scaler.update()
    assert method.step == 1 and len(method.updates) == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(method.mask.active(n) == method.counts[n] for n in method.mask)


def test_gradient_growth_scores_are_the_unscaled_gradients(monkeypatch):
    method, model, opt = sparse_setup("gradient")
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    scores = []

    def spy(mask, weight, n, score, generator, protected=None):
        scores.append(score.clone())
        return drop_and_grow(mask, weight, n, score, generator, protected=protected)

    drop_and_grow = sparse_base.drop_and_grow
    monkeypatch.setattr(sparse_base, "drop_and_grow", spy)
    scaled_backward(model, opt, scaler, seed=0)
    params = dict(model.named_parameters())
    true = [params[n].grad.detach().abs() / scaler.get_scale() for n in method.mask]
    scaler.step(opt)
    scaler.update()
    assert len(method.updates) == 1 and len(scores) == len(true)
    for score, expected in zip(scores, true):
        assert torch.equal(score, expected)  # division by a power of two is exact


class InjectInf(Callback):
    """Puts an inf into one gradient at the given 1-based iteration (an AMP overflow)."""

    def __init__(self, at: int):
        self.at, self.seen = at, 0

    def on_after_backward(self, trainer):
        self.seen += 1
        if self.seen == self.at:
            next(trainer.model.parameters()).grad.view(-1)[0] = float("inf")


def test_trainer_counts_iterations_and_skipped_steps_the_method_only_real_steps():
    config = TrainConfig(model="mlp", model_kwargs={"hidden": [16]}, epochs=1, timesteps=2,
                         batch_size=256, method="esl", device="cpu")
    config.sparse.update_every = 1
    method = create_method("esl", density=0.3, update_every=1, update_until=1.0)
    splits = load_dataset("digits")
    torch.manual_seed(0)
    model = method.prepare_model(create_model("mlp", in_channels=1, image_size=8,
                                              num_classes=10, hidden=[16]))
    trainer = Trainer(model, splits, config, [method, InjectInf(at=2)], progress=False)
    trainer.use_amp = True                               # CPU stand-in for CUDA AMP
    trainer.scaler = torch.amp.GradScaler("cpu")
    trainer._autocast = nullcontext
    trainer.train_epoch(0)
    assert trainer.step == trainer.steps_per_epoch       # iterations: the data position
    assert trainer.skipped_steps == 1
    assert method.step == trainer.steps_per_epoch - 1    # only the steps that happened
    assert len(method.updates) == trainer.steps_per_epoch - 1
