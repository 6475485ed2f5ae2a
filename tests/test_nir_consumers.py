"""NIR interoperability: our exports read by SpikingJelly 2.0's and snnTorch 1.0's NIR importers
give the same spikes as our models (the consumers discretise NIR's continuous-time neurons at
dt = 1e-4 s, so time constants must be written in seconds), and ``from_nir`` reads graphs in
both time conventions and graphs exported by SpikingJelly.

The snnTorch test runs the workaround printed in docs/export.md (read from the page, so the
documented code is the tested code). Equal outputs imply equal spikes: the readout is a linear
map of the last layer's spikes, and one spike more or less anywhere moves it by a weight."""

import re
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.models import create_model
from spikesculpt.neurons import IF, LIF, SpikingNeuron

pytestmark = pytest.mark.usefixtures("one_thread")
nir = pytest.importorskip("nir", reason="NIR is the optional extra 'nir' (installed by the tests)")

from spikesculpt.export.nir_export import from_nir, read_nir, to_nir, write_nir  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "export.md"
T, BATCH = 6, 16

# (model, neuron, neuron options): LIF, IF and PLIF with hard reset to 0 and to a negative
# potential, MLP (Flatten, Affine) and conv (Conv2d with BatchNorm folded in, AvgPool2d).
CASES = [("mlp", "lif", {}), ("mlp", "if", {}), ("mlp", "plif", {"init_tau": 3.0}),
         ("conv", "lif", {}), ("conv", "if", {}), ("mlp", "lif", {"tau": 1.5, "v_reset": -0.5}),
         ("mlp", "if", {"v_reset": -0.3})]
IDS = [f"{m}-{n}-" + ",".join(f"{k}={v}" for k, v in kw.items()) for m, n, kw in CASES]


def _tiny(kind: str, neuron: str, neuron_kwargs: dict) -> nn.Module:
    """A tiny eval-mode model with weights large enough that every spiking layer fires."""
    torch.manual_seed(0)
    options = {"hidden": [24, 16]} if kind == "mlp" else {"channels": [4, 6]}
    model = create_model(kind, in_channels=1, image_size=(8, 8), num_classes=10, timesteps=T,
                         neuron=neuron, neuron_kwargs=neuron_kwargs, **options)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.normal_(module.weight, std=3.0 / module.weight[0].numel() ** 0.5)
            if isinstance(module, (nn.Linear, nn.BatchNorm2d)):
                nn.init.uniform_(module.bias, 0.0, 0.8)  # drive: every layer fires
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _sample() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(T, BATCH, 1, 8, 8) * 1.5


def _reference(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Our outputs, after checking that every spiking layer fires (else equality means little)."""
    rates = []
    hooks = [m.register_forward_hook(lambda m, i, out: rates.append(float(out.mean())))
             for m in model.modules() if isinstance(m, SpikingNeuron)]
    with torch.no_grad():
        out = model(x)
    for h in hooks:
        h.remove()
    assert rates and all(0.02 < r < 0.9 for r in rates), rates
    return out


def _through_a_file(graph, tmp_path):
    path = tmp_path / "model.nir"
    write_nir(graph, path)
    return read_nir(path)


def _assert_same_outputs(got: torch.Tensor, ref: torch.Tensor):
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind, neuron, neuron_kwargs", CASES, ids=IDS)
def test_spikingjelly_reads_our_export_as_is(kind, neuron, neuron_kwargs, tmp_path):
    pytest.importorskip("spikingjelly", reason="installed by the README test command")
    from spikingjelly.activation_based.nir_exchange.from_nir import import_from_nir

    model, x = _tiny(kind, neuron, neuron_kwargs), _sample()
    ref = _reference(model, x)
    graph = _through_a_file(to_nir(model), tmp_path)
    net = import_from_nir(graph, step_mode="m")  # its default dt = 1e-4
    with torch.no_grad():
        got, _ = net(x)
    _assert_same_outputs(got, ref)
    assert graph.metadata["dt"] == 1e-4


def test_spikingjelly_reads_an_export_at_another_dt(tmp_path):
    pytest.importorskip("spikingjelly", reason="installed by the README test command")
    from spikingjelly.activation_based.nir_exchange.from_nir import import_from_nir

    model, x = _tiny("mlp", "lif", {"tau": 4.0, "v_threshold": 0.5}), _sample()
    ref = _reference(model, x)
    graph = _through_a_file(to_nir(model, dt=1e-3), tmp_path)
    assert graph.metadata["dt"] == 1e-3
    with torch.no_grad():
        got, _ = import_from_nir(graph, dt=graph.metadata["dt"], step_mode="m")(x)
    _assert_same_outputs(got, ref)
    with pytest.raises(UserError, match="dt must be a positive number"):
        to_nir(model, dt=0.0)


def _documented_snntorch_workaround():
    """``import_snntorch`` and ``run_snntorch`` exactly as docs/export.md prints them."""
    blocks = re.findall(r"```python\n(.*?)\n *```", DOCS.read_text(), flags=re.S)
    code = next(b for b in blocks if "def import_snntorch(" in b)
    namespace: dict = {}
    exec(compile(textwrap.dedent(code), str(DOCS), "exec"), namespace)
    return namespace["import_snntorch"], namespace["run_snntorch"]


@pytest.mark.parametrize("kind, neuron, neuron_kwargs", CASES, ids=IDS)
def test_snntorch_reads_our_export_with_the_documented_workaround(kind, neuron, neuron_kwargs,
                                                                  tmp_path):
    pytest.importorskip("snntorch", reason="installed by the README test command")
    import_snntorch, run_snntorch = _documented_snntorch_workaround()
    model, x = _tiny(kind, neuron, neuron_kwargs), _sample()
    ref = _reference(model, x)
    graph = _through_a_file(to_nir(model), tmp_path)
    net = import_snntorch(graph)
    with torch.no_grad():
        got = run_snntorch(net, x)
    _assert_same_outputs(got, ref)


def _lif_if_chain() -> nn.Sequential:
    torch.manual_seed(2)
    chain = nn.Sequential(nn.Linear(12, 16), LIF(tau=1.5), nn.Linear(16, 8), IF(v_reset=-0.25),
                          nn.Linear(8, 4))
    with torch.no_grad():
        for m in chain:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=3.0 / m.in_features ** 0.5)
    return chain.eval()


def test_from_nir_reads_both_time_conventions(tmp_path):
    chain = _lif_if_chain()
    torch.manual_seed(3)
    x = torch.rand(T, BATCH, 12) * 1.5
    ref = _reference(chain, x)
    seconds = _through_a_file(to_nir(chain, input_shape=(12,)), tmp_path)
    # what earlier versions wrote: time in steps, dt = 1 in the metadata, no tau_steps
    steps = to_nir(chain, input_shape=(12,), dt=1.0)
    for node in steps.nodes.values():
        node.metadata.pop("tau_steps", None)
    steps = _through_a_file(steps, tmp_path)
    assert (seconds.metadata["dt"], steps.metadata["dt"]) == (1e-4, 1.0)
    assert seconds.nodes["1"].tau[0] == pytest.approx(1.5e-4)  # 1.5 steps of 1e-4 s
    assert steps.nodes["1"].tau[0] == 1.5 and steps.nodes["3"].r[0] == 1.0
    with torch.no_grad():
        assert torch.equal(from_nir(seconds)(x), ref)
        assert torch.equal(from_nir(steps)(x), ref)
        # a graph without dt in its metadata (a foreign graph) is read at 1e-4 s
        seconds.metadata.pop("dt")
        assert torch.equal(from_nir(seconds)(x), ref)
    # read at the wrong dt: refused with the reason, not silently misread
    with pytest.raises(UserError, match=r"node 1: tau / dt = 0.00015 .*dt it was written"):
        from_nir(seconds, dt=1.0)
    seconds.nodes["1"].tau = seconds.nodes["1"].tau * 1e4  # 1.5 s: 1.5 steps of 1 s
    with pytest.raises(UserError, match=r"node 3: only r = 1/dt \(= 1\) .*at dt = 1 s"):
        from_nir(seconds, dt=1.0)


def test_from_nir_reads_a_spikingjelly_export():
    pytest.importorskip("spikingjelly", reason="installed by the README test command")
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange.to_nir import export_to_nir

    torch.manual_seed(4)
    net = nn.Sequential(layer.Linear(12, 16), neuron.LIFNode(tau=3.0, v_reset=0.0),
                        layer.Linear(16, 8), neuron.IFNode(v_reset=0.0), layer.Linear(8, 4))
    functional.set_step_mode(net, "m")
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=3.0 / m.in_features ** 0.5)
    x = torch.rand(T, BATCH, 12) * 1.5
    graph = export_to_nir(net, x)  # dt = 1e-4 s, not written into the graph
    with torch.no_grad():
        ref = net(x)
        functional.reset_net(net)
        got = from_nir(graph)(x)
    assert ref.abs().sum() > 0
    _assert_same_outputs(got, ref)
