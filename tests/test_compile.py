"""``--compile`` (``train/compiled.py``) and the neuron as a custom op (``neurons/ops.py``).

In CI the graph capture runs with the ``aot_eager`` backend: Dynamo and AOTAutograd exactly as
under Inductor, without generating and building kernels (seconds, no C++ build). Oracles: the
eager run, bit for bit (the custom op runs the same C kernel as eager mode), and
``torch.library.opcheck`` for the op's fake and autograd registrations. Inductor's own kernels
are run and timed by ``benchmarks/bench_lif_mlp.py --compile``.
"""

import pytest
import torch

from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.train_run import build
from spikesculpt.neurons import cpu_kernel, functional, ops
from spikesculpt.train import Trainer, compiled

pytestmark = pytest.mark.usefixtures("one_thread")
needs_native = pytest.mark.skipif(not cpu_kernel.available(),
                                  reason="needs the native neuron kernel (a C compiler)")


@pytest.fixture
def aot_eager(monkeypatch):
    """torch.compile with the aot_eager backend; yields (modes asked for, Dynamo's counters)."""
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


def train(compile_mode: str, model: str = "mlp", **sparse):
    cfg = TrainConfig(dataset="digits", model=model, epochs=2, timesteps=2, seed=0,
                      compile=compile_mode, method="esl" if sparse else "dense")
    for k, v in sparse.items():
        setattr(cfg.sparse, k, v)
    splits, net, callbacks = build(cfg)
    trainer = Trainer(net, splits, cfg, callbacks, progress=False)
    trainer.train_epochs()
    return trainer


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values()))


@needs_native
@pytest.mark.parametrize("grow", ["gradient", "hebbian"])
def test_compiled_esl_training_equals_eager_bit_for_bit(aot_eager, grow):
    """One graph per batch shape, no break; the same weights and masks as eager: the neuron is
    the custom op around the same C kernel, and Hebbian growth's recording forwards (hooks)
    run eagerly (``Trainer.forward_for_step``)."""
    modes, counters = aot_eager
    eager = train("none", density=0.2, grow=grow, update_every=5)
    comp = train("reduce-overhead", density=0.2, grow=grow, update_every=5)
    assert modes == ["reduce-overhead"] and comp.forward_model is not comp.model
    assert 1 <= counters["stats"]["unique_graphs"] <= 2 and not counters["graph_break"]
    assert len(comp.callbacks[0].updates) == len(eager.callbacks[0].updates) > 0
    assert same_weights(comp.model, eager.model)
    assert comp.evaluate(comp.splits.val)["accuracy"] > 0.3   # it learns (chance: 0.1)


@needs_native
def test_compiled_batch_norm_model_traces_once_and_equals_eager(aot_eager):
    """BatchNorm's warm-up hooks (train/norm_stats.py) remove themselves once warm, so the
    graph is traced hook-free and never recompiled per batch; the result equals eager's."""
    _, counters = aot_eager
    eager = train("none", model="conv")
    comp = train("default", model="conv")
    assert counters["stats"]["unique_graphs"] <= 2 and not counters["graph_break"]
    assert same_weights(comp.model, eager.model)


def captured_graph(fn, x) -> str:
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm.code)
        return gm.forward

    torch._dynamo.reset()
    torch.compile(fn, backend=backend)(x)
    torch._dynamo.reset()
    return "\n".join(graphs)


def test_traced_neuron_is_the_custom_op_unless_the_torch_path_is_asked_for():
    x = torch.randn(4, 3, 5)
    assert "spikesculpt.neuron_forward" in captured_graph(functional.lif_multistep, x)
    torch_path = captured_graph(lambda v: functional.lif_multistep(v, impl="torch"), x)
    assert "spikesculpt.neuron_forward" not in torch_path


@needs_native
@pytest.mark.parametrize("neuron", ["lif", "if", "plif"])
@pytest.mark.parametrize("v_reset", [0.0, None])
def test_custom_op_equals_the_eager_kernel_and_passes_opcheck(neuron, v_reset):
    """Forward and gradients (PLIF's decay included) of the op equal the eager fused neuron's
    bit for bit; ``opcheck`` tests the schema, fake tensor and autograd registrations."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, 7, generator=g) * 1.5
    gs = torch.randn(6, 4, 7, generator=g)
    r = 0.4 if neuron == "lif" else None
    r_t = torch.tensor(0.35, requires_grad=True) if neuron == "plif" else None
    args = (r_t, r, 1.0, v_reset, False, "atan", 2.0)
    xo = x.clone().requires_grad_()
    out = ops.neuron_forward(xo, *args)
    out.backward(gs)
    xe = x.clone().requires_grad_()
    rt_e = None if r_t is None else r_t.detach().clone().requires_grad_()
    decay = rt_e if neuron == "plif" else r
    ref = functional._multistep(xe, decay, 1.0, v_reset, False,
                                functional.create_surrogate("atan"), "native")
    ref.backward(gs)
    assert torch.equal(out, ref) and torch.equal(xo.grad, xe.grad)
    if neuron == "plif":
        assert torch.allclose(r_t.grad, rt_e.grad, rtol=1e-6)
    torch.library.opcheck(ops.neuron_forward, (x.clone().requires_grad_(), *args))


@pytest.mark.parametrize("neuron", ["lif", "plif"])
def test_custom_op_without_the_c_kernel_recomputes_on_the_torch_path(monkeypatch, neuron):
    """Where no fused kernel applies (here: the C kernel off), the op runs the PyTorch-ops
    kernels, recomputing -H and S in the backward; gradients equal the torch path's."""
    monkeypatch.setattr(ops.cpu_kernel, "available", lambda: False)
    x = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(1))
    r_t = torch.tensor(0.3, requires_grad=True) if neuron == "plif" else None
    r = None if r_t is not None else 0.5
    xo = x.clone().requires_grad_()
    ops.neuron_forward(xo, r_t, r, 1.0, 0.0, True, "sigmoid", 4.0).sum().backward()
    xe = x.clone().requires_grad_()
    rt_e = None if r_t is None else r_t.detach().clone().requires_grad_()
    functional._multistep(xe, rt_e if r_t is not None else r, 1.0, 0.0, True,
                          functional.create_surrogate("sigmoid", 4.0), "torch").sum().backward()
    assert torch.allclose(xo.grad, xe.grad, rtol=1e-6, atol=1e-7)
    if r_t is not None:
        assert torch.allclose(r_t.grad, rt_e.grad, rtol=1e-5)


def test_compile_on_a_cpu_needs_a_cpp_compiler(monkeypatch):
    monkeypatch.setattr(compiled, "cpu_compiler", lambda: None)
    with pytest.raises(UserError, match="needs a C\\+\\+ compiler"):
        compiled.compile_model(torch.nn.Linear(2, 2), "default", torch.device("cpu"))
    model = torch.nn.Linear(2, 2)
    assert compiled.compile_model(model, "none", torch.device("cpu")) is model
