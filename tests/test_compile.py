"""``--compile`` (``train/compiled.py``): the training forward/backward through torch.compile.

In CI the graph capture runs with the ``aot_eager`` backend: Dynamo and AOTAutograd exactly as
under Inductor, without generating and building kernels (seconds, no C++ build). Oracle: the
eager step on the same (PyTorch-ops) neuron path. Inductor's kernels themselves are
run and timed by ``benchmarks/bench_lif_mlp.py --compile``.
"""

import pytest
import torch

from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.train_run import build
from spikesculpt.neurons import functional
from spikesculpt.train import Trainer, compiled

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def aot_eager(monkeypatch):
    """torch.compile with the aot_eager backend; counts the compiled calls and graph breaks."""
    from torch._dynamo.utils import counters

    real = torch.compile
    modes = []

    def compile_with_aot_eager(model, mode=None):
        modes.append(mode)
        return real(model, backend="aot_eager")

    torch._dynamo.reset()
    counters.clear()
    monkeypatch.setattr(torch, "compile", compile_with_aot_eager)
    yield modes, counters
    torch._dynamo.reset()


def esl_run(compile_mode: str, grow: str):
    cfg = TrainConfig(dataset="digits", model="mlp", epochs=2, timesteps=2, seed=0,
                      compile=compile_mode, method="esl")
    cfg.sparse.density, cfg.sparse.grow, cfg.sparse.update_every = 0.2, grow, 5
    splits, model, callbacks = build(cfg)
    trainer = Trainer(model, splits, cfg, callbacks, progress=False)
    trainer.train_epochs()
    return trainer, model, len(callbacks[0].updates)


def test_compiled_step_equals_eager(aot_eager, monkeypatch):
    """The captured forward gives eager's output bit for bit (spikes included); the gradients
    equal eager's on the PyTorch-ops neuron path (the path a traced neuron takes) to rounding:
    AOTAutograd decomposes composite ops (the surrogate's), which may round differently."""
    monkeypatch.setattr(functional, "_use_native", lambda *a: False)
    cfg = TrainConfig(dataset="digits", model="mlp", timesteps=4, seed=0)
    _, model, _ = build(cfg)
    x = (torch.rand(4, 32, 64, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    runs = []
    for mode in ("none", "default"):
        model.zero_grad()
        out = compiled.compile_model(model, mode, torch.device("cpu"))(x)
        out.float().pow(2).mean().backward()
        runs.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    (eager_out, eager_grads), (comp_out, comp_grads) = runs
    assert torch.equal(eager_out, comp_out)
    for a, b in zip(eager_grads, comp_grads):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6 * float(a.abs().max()))
    assert aot_eager[0] == [None]                        # "default": torch.compile's own mode


@pytest.mark.parametrize("grow", ["gradient", "hebbian"])
def test_compiled_training_learns_and_rewires(aot_eager, grow):
    """A whole ESL run through the compiled step: one graph per variant (Hebbian growth adds
    its recording hooks on update steps), no graph break, the masks rewire, and it learns."""
    modes, counters = aot_eager
    trainer, _, updates = esl_run("reduce-overhead", grow)
    assert modes == ["reduce-overhead"] and trainer.forward_model is not trainer.model
    assert counters["stats"]["unique_graphs"] >= 1 and not counters["graph_break"]
    assert updates > 0
    assert trainer.evaluate(trainer.splits.val)["accuracy"] > 0.3   # chance: 0.1


def test_compile_on_a_cpu_needs_a_cpp_compiler(monkeypatch):
    monkeypatch.setattr(compiled, "cpu_compiler", lambda: None)
    with pytest.raises(UserError, match="needs a C\\+\\+ compiler"):
        compiled.compile_model(torch.nn.Linear(2, 2), "default", torch.device("cpu"))
    model = torch.nn.Linear(2, 2)
    assert compiled.compile_model(model, "none", torch.device("cpu")) is model
