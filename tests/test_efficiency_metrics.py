"""Efficiency metrics: SynOps against hand computations and NeuroBench, energy, footprint, and the
metrics.json / evaluate contract."""

import math

import pytest
import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.methods import create_method
from spikesculpt.metrics.efficiency import measure_efficiency
from spikesculpt.metrics.energy import ENERGY_PRESETS, energy_pj
from spikesculpt.metrics.footprint import csr_bytes, footprint
from spikesculpt.metrics.synops import SynOpsCounter, conv_ops
from spikesculpt.models import create_model
from spikesculpt.models.layers import TimeDistributed
from spikesculpt.neurons import IF, SpikingNeuron


class Tiny(nn.Module):
    """Linear(3 -> 2) -> IF(threshold 1, hard reset to 0) -> readout Linear(2 -> 2), no biases."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2, bias=False)
        self.spike = IF(v_threshold=1.0, v_reset=0.0)
        self.readout = nn.Linear(2, 2, bias=True)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, -3.0]]))
            self.readout.weight.copy_(torch.tensor([[0.0, 1.0], [2.0, 0.0]]))
            self.readout.bias.fill_(5.0)  # biases are not synaptic operations

    def forward(self, x):  # [T, B, 3]
        return self.readout(self.spike(self.fc(x)))


def test_synops_equal_a_hand_computation_on_a_tiny_network():
    # sample 0: t0 x = [0.5, 0, 2], t1 x = [0, 0, 1]; sample 1: all zeros.
    x = torch.tensor([[[0.5, 0.0, 2.0], [0.0, 0.0, 0.0]],
                      [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])            # [T=2, B=2, 3]
    # fc: nnz per input column = [1, 0, 2]. Sample 0: t0 inputs 0 and 2 -> 1 + 2 = 3 pairs,
    #     t1 input 2 -> 2 pairs: 5 MACs (the input is analog). Sample 1: 0.
    # IF: sample 0 currents t0 [4.5, -6] -> spikes [1, 0] (v -> [0, -6]); t1 [2, -9] -> [1, 0].
    #     sample 1: no current, no spikes.
    # readout: nnz per input column = [1, 1]; sample 0 has one active input per step: 2 ACs.
    # dense: fc 2 steps x 3 x 2 = 12, readout 2 x 2 x 2 = 8 -> 20 per sample.
    eff = measure_efficiency(Tiny(), [x])
    assert eff["synops"] == {"effective_acs": 1.0, "effective_macs": 2.5, "dense": 20.0}
    assert eff["layers"]["fc.weight"]["effective_macs"] == 2.5
    assert eff["layers"]["fc.weight"]["input_kind"] == "analog"
    assert eff["layers"]["readout.weight"]["effective_acs"] == 1.0
    assert eff["layers"]["readout.weight"]["input_kind"] == "spikes"
    assert eff["layers"]["readout.weight"]["dense_synops"] == 8.0
    # spikes: 2 of 2 neurons x 2 steps x 2 samples = 8 outputs
    assert eff["activation_sparsity"] == pytest.approx(1 - 2 / 8)
    assert eff["layer_activation_sparsity"] == {"spike": pytest.approx(0.75)}
    assert eff["energy_pj"] == pytest.approx(4.6 * 2.5 + 0.9 * 1.0)
    assert eff["samples"] == 2


def test_conv_synops_equal_a_hand_computation():
    conv = nn.Conv2d(1, 1, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, 0.0], [2.0, 3.0]]]]))  # 3 nonzero taps
    x = torch.eye(3).reshape(1, 1, 3, 3)                               # spikes on the diagonal
    # 2x2 output positions (no padding): pairs 2, 1, 0, 2 -> 5; dense 4 positions x 4 taps.
    assert conv_ops(x, conv) == (5, 16)
    conv.padding = (1, 1)
    # output 4x4; each of the 3 input spikes meets all 3 nonzero taps: 9. Dense: per axis the
    # in-bounds taps of outputs 0..3 are 1, 2, 2, 1 -> 6, so 6 x 6 = 36.
    assert conv_ops(x, conv) == (9, 36)
    # two output channels, two input channels, stride 2: brute force over every tap
    conv = nn.Conv2d(2, 2, 3, stride=2, padding=1, bias=False)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        conv.weight.mul_(torch.rand(conv.weight.shape, generator=g) < 0.5)
    x = (torch.rand(3, 2, 5, 5, generator=g) < 0.3).float()
    eff = dense = 0
    for n in range(3):
        for co in range(2):
            for oy in range(3):
                for ox in range(3):
                    for ci in range(2):
                        for ky in range(3):
                            for kx in range(3):
                                iy, ix = 2 * oy - 1 + ky, 2 * ox - 1 + kx
                                if 0 <= iy < 5 and 0 <= ix < 5:
                                    dense += 1
                                    eff += int(x[n, ci, iy, ix] != 0
                                               and conv.weight[co, ci, ky, kx] != 0)
    assert conv_ops(x, conv) == (eff, dense)
    # the same input with an extra leading time axis [T, B, ...] counts the same
    assert conv_ops(x.reshape(3, 1, 2, 5, 5), conv) == (eff, dense)


def test_ternary_inputs_are_accumulates_and_analog_inputs_macs():
    lin = nn.Linear(4, 3, bias=False)
    with SynOpsCounter(lin) as ops:
        lin(torch.tensor([[-1.0, 0.0, 1.0, 1.0]]))
        lin(torch.tensor([[0.5, 0.0, 0.0, 0.0]]))
        ops.add_samples(1)
    r = ops.per_sample()
    assert r["effective_acs"] == 9 and r["effective_macs"] == 3 and r["dense"] == 24
    assert r["layers"]["weight"]["input_kind"] == "mixed"


def test_energy_presets_and_units():
    assert ENERGY_PRESETS["fp32"] == (4.6, 0.9)
    assert energy_pj(10, 100, "fp16") == pytest.approx(1.5 * 10 + 0.4 * 100)
    assert energy_pj(10, 100, "int8") == pytest.approx(0.23 * 10 + 0.03 * 100)
    with pytest.raises(UserError, match="energy preset"):
        energy_pj(1, 1, "fp64")


def test_footprint_dense_and_csr():
    model = nn.Sequential(nn.Linear(10, 4), nn.BatchNorm1d(4), nn.Linear(4, 10, bias=False))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[0, :3] = 1.0                      # 3 nonzeros in a [4, 10] weight
    fp = footprint(model)
    params = sum(p.numel() * 4 for p in model.parameters())
    buffers = 4 * 2 * 4 + 8                               # running mean/var + num_batches_tracked
    assert fp["dense"] == params + buffers
    assert fp["layers"]["0.weight"] == {"dense": 160, "sparse": csr_bytes(4, 3, 4), "format": "csr"}
    assert csr_bytes(4, 3, 4) == 3 * 8 + 5 * 4
    assert fp["layers"]["2.weight"]["format"] == "dense"  # fully dense: CSR would be larger
    assert fp["sparse"] == fp["dense"] - 160 + csr_bytes(4, 3, 4)


def _sparse_model(name, density, **kwargs):
    torch.manual_seed(1)
    model = create_model(name, in_channels=1, image_size=(8, 8), num_classes=10, timesteps=4,
                         neuron="lif", neuron_kwargs={}, **kwargs)
    model = create_method("static", density=density).prepare_model(model)
    with torch.no_grad():  # louder weights so that the random, untrained network spikes
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(3.0 if isinstance(m, nn.Linear) else 6.0)
    return model.eval()


@pytest.mark.parametrize("name,kwargs,encoding", [
    ("mlp", {"hidden": [48, 24]}, "direct"),
    ("conv", {"channels": [6, 8]}, "direct"),
    ("conv", {"channels": [6, 8]}, "poisson"),
])
def test_synops_activation_sparsity_and_footprint_equal_neurobench(name, kwargs, encoding):
    """Oracle: NeuroBench 2.3's SynapticOperations, ActivationSparsity and Footprint on the same
    sparse model and inputs (NeuroBench takes batch-first input: a wrapper transposes)."""
    pytest.importorskip("neurobench", reason="NeuroBench is installed by the README test command")
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import Footprint
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import TorchModel

    from spikesculpt.encoding import encode

    model = _sparse_model(name, 0.3, **kwargs)
    g = torch.Generator().manual_seed(2)
    x = encode(torch.rand(24, 1, 8, 8, generator=g), 4, encoding, generator=g)  # [T, B, ...]
    ours = measure_efficiency(model, [x[:, :10], x[:, 10:]])
    assert 0.02 < ours["activation_sparsity"] < 0.98  # the network really spikes, not silent

    class BatchFirst(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, xb):
            return self.net(xb.transpose(0, 1))

    nb_model = TorchModel(BatchFirst(model))
    nb_model.add_activation_module(SpikingNeuron)
    data = torch.utils.data.TensorDataset(x.transpose(0, 1).contiguous(), torch.zeros(24))
    loader = torch.utils.data.DataLoader(data, batch_size=10)
    bench = Benchmark(nb_model, loader, [], [],
                      [[Footprint], [SynapticOperations, ActivationSparsity]])
    ref = bench.run(quiet=True)
    ops = ref["SynapticOperations"]
    assert ours["synops"]["effective_macs"] == pytest.approx(ops["Effective_MACs"], abs=1e-9)
    assert ours["synops"]["effective_acs"] == pytest.approx(ops["Effective_ACs"], abs=1e-9)
    assert ours["synops"]["dense"] == pytest.approx(ops["Dense"], abs=1e-9)
    assert ours["activation_sparsity"] == pytest.approx(ref["ActivationSparsity"], abs=1e-12)
    assert ours["footprint_bytes"]["dense"] == ref["Footprint"]
    first = next(iter(ours["layers"].values()))
    if name == "mlp":  # analog input, then spikes everywhere
        assert first["input_kind"] == "analog"
        assert ours["synops"]["effective_macs"] > 0 and ours["synops"]["effective_acs"] > 0
    elif encoding == "direct":  # conv: average pooling between layers makes every input analog
        assert {v["input_kind"] for v in ours["layers"].values()} == {"analog"}
    else:  # Poisson spikes in: the first layer accumulates; the readout sees average-pooled
        # spikes (fractions), which NeuroBench and we count as MACs
        first = ours["layers"]["features.0.conv.weight"]
        assert first["input_kind"] == "spikes" and first["effective_macs"] == 0
        assert ours["layers"]["readout.weight"]["input_kind"] == "analog"


def test_sparser_model_counts_fewer_synops_and_bytes():
    x = torch.rand(4, 16, 1, 8, 8)
    dense = measure_efficiency(_sparse_model("mlp", 1.0, hidden=[48]), [x])
    sparse = measure_efficiency(_sparse_model("mlp", 0.1, hidden=[48]), [x])
    assert sparse["synops"]["dense"] == dense["synops"]["dense"]
    assert sparse["synops"]["effective_macs"] < 0.2 * dense["synops"]["effective_macs"]
    assert sparse["footprint_bytes"]["sparse"] < 0.4 * sparse["footprint_bytes"]["dense"]
    assert dense["footprint_bytes"]["sparse"] == dense["footprint_bytes"]["dense"]


def test_spikingjelly_style_multistep_conv_is_counted():
    """A conv applied to the whole [T, B, C, H, W] tensor (as TimeDistributed does) is counted
    per time step and sample, the same as when it sees the merged rows."""
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    x = (torch.rand(4, 5, 2, 6, 6) < 0.2).float()
    with SynOpsCounter(TimeDistributed(conv)) as a:
        TimeDistributed(conv)(x)
        a.add_samples(5)
    assert a.per_sample()["effective_acs"] == pytest.approx(
        conv_ops(x.flatten(0, 1), conv)[0] / 5)
    assert math.isclose(a.per_sample()["dense"], 4 * 3 * 2 * (6 * 6 * 9 - 4 * 6 * 3 + 4))


def test_spikingjelly_model_is_measured():
    """A SpikingJelly multi-step model: its layer.Linear are connection layers, its LIFNode a
    spiking layer (state reset before every batch)."""
    pytest.importorskip("spikingjelly", reason="installed by the README test command")
    from spikingjelly.activation_based import layer, neuron

    torch.manual_seed(0)
    net = nn.Sequential(layer.Linear(20, 30, step_mode="m"),
                        neuron.LIFNode(tau=2.0, step_mode="m"),
                        layer.Linear(30, 5, step_mode="m"))
    with torch.no_grad():
        net[0].weight.mul_((torch.rand(30, 20) < 0.5) * 4.0)
        net[2].weight.mul_(torch.rand(5, 30) < 0.3)
    x = (torch.rand(4, 8, 20) < 0.3).float()
    spikes = {}
    net[1].register_forward_hook(lambda m, i, o: spikes.__setitem__("s", o.detach()))
    eff = measure_efficiency(net, [x, x])
    s = spikes["s"]
    per_col = (net[2].weight != 0).sum(0).double()
    expected = float(((s != 0).double().reshape(-1, 30) @ per_col).sum()) / 8  # per sample
    first = float(((x != 0).double().reshape(-1, 20) @ (net[0].weight != 0).sum(0).double()).sum()) / 8
    assert eff["layers"]["2.weight"]["effective_acs"] == pytest.approx(expected)
    assert eff["layers"]["0.weight"]["effective_acs"] == pytest.approx(first)
    assert eff["synops"]["effective_macs"] == 0
    assert eff["activation_sparsity"] == pytest.approx(1 - float(s.mean()))
    assert 0 < float(s.mean()) < 1
