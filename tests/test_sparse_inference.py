"""Sparse inference: the native kernels against torch's dense linear, and the converted model
against the dense masked model it came from (oracle: identical predictions)."""

import json

import pytest
import torch
from native_off import run_native_off
from torch import nn

from spikesculpt.cli.main import main
from spikesculpt.config import TrainConfig
from spikesculpt.experiments.train_run import evaluate_run, run_training
from spikesculpt.inference import SparseLinear, cpu_kernel, to_sparse_inference
from spikesculpt.inference.sparse_inference import compare_models

HAVE_KERNEL = cpu_kernel.available()


def sparse_weight(out_f, in_f, density, g):
    return torch.randn(out_f, in_f, generator=g) * (torch.rand(out_f, in_f, generator=g) < density)


def test_kernel_loads_where_there_is_a_compiler():
    """Where a C compiler exists (CI, developer machines) the kernel must really load, so that
    the comparisons below test it and not only the PyTorch fallback."""
    from spikesculpt.core import native_build

    if native_build.compiler() is None or native_build.disabled_by_env():
        pytest.skip("no C compiler (or SPIKESCULPT_NATIVE=0): the fallback is tested instead")
    assert HAVE_KERNEL, cpu_kernel.status()


@pytest.mark.parametrize("mode", ["rows", "events", "auto", "torch"])
@pytest.mark.parametrize("n,in_f,out_f,density,activity", [
    (130, 77, 37, 0.2, 0.15),   # rows not a multiple of the 64-row block, odd sizes
    (5, 300, 70, 0.05, 0.02),   # fewer rows than a block, low activity
    (64, 16, 16, 0.0, 0.5),     # an all-zero weight
    (200, 64, 33, 1.0, 1.0),    # dense weight, every input active
])
def test_sparse_linear_equals_dense_linear(mode, n, in_f, out_f, density, activity):
    g = torch.Generator().manual_seed(n + in_f)
    w = sparse_weight(out_f, in_f, density, g)
    b = torch.randn(out_f, generator=g)
    spikes = (torch.rand(3, n, in_f, generator=g) < activity).float()         # [T, B, in]
    analog = spikes * torch.rand(spikes.shape, generator=g) * 2 - 0.5 * spikes
    for bias in (b, None):
        layer = SparseLinear(w, bias, mode=mode)
        for x in (spikes, analog):
            ref = nn.functional.linear(x, w, bias)
            out = layer(x)
            assert out.shape == ref.shape
            torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        if mode != "torch" and HAVE_KERNEL:
            quiet = cpu_kernel.activity(analog.reshape(-1, in_f)) < cpu_kernel.EVENT_ACTIVITY
            expected = mode if mode != "auto" else ("events" if quiet else "rows")
            assert layer.last_kernel == expected
    assert torch.equal(layer.to_dense_weight(), w)
    assert layer.nnz == int((w != 0).sum())


def test_triples_hold_each_outputs_nonzeros_in_threes_with_their_subset_sums():
    w = torch.tensor([[0.0, 1.0, 2.0, 0.0, 4.0],    # 3 nonzeros: one triple
                      [0.0, 0.0, 0.0, 0.0, 0.0],    # none: no triple
                      [8.0, 0.0, 0.5, 0.25, 16.0]])  # 4: a triple and a padded one
    gptr, gcols, gtab = cpu_kernel.triples_by_output(*cpu_kernel.csr_by_output(w))
    assert gptr.tolist() == [0, 1, 1, 3]
    assert gcols.tolist() == [1, 2, 4, 0, 2, 3, 4, 0, 0]
    assert gtab.view(-1, 8).tolist() == [[0, 1, 2, 3, 4, 5, 6, 7],
                                         [0, 8, 0.5, 8.5, 0.25, 8.25, 0.75, 8.75],
                                         [0, 16, 0, 16, 0, 16, 0, 16]]


def _triples_reference(x, triples, bias, out_f):
    """What the spike path computes, in its order: per output, the tables' entries for each
    row's 3-bit subset index added group by group in float32, then the bias."""
    gptr, gcols, gtab = triples
    n = x.shape[0]
    acc = torch.zeros(n, out_f)
    counts = (gptr[1:] - gptr[:-1]).tolist()
    for k in range(max(counts, default=0)):
        for j in range(out_f):
            if k < counts[j]:
                g = int(gptr[j]) + k
                c = gcols[3 * g: 3 * g + 3].long()
                idx = (x[:, c[0]] + 2 * x[:, c[1]] + 4 * x[:, c[2]]).long()
                acc[:, j] += gtab[8 * g + idx]
    return acc + bias if bias is not None else acc


@pytest.mark.skipif(not HAVE_KERNEL or not cpu_kernel.spike_path(),
                    reason="the spike path needs the native kernel on an AVX2 CPU")
@pytest.mark.parametrize("n,in_f", [(64, 64), (200, 77), (30, 9), (128, 300), (64, 1024), (5, 300)])
def test_spike_path_runs_on_spikes_and_adds_the_tables_exactly(n, in_f):
    """Oracle: on 0/1 input the ``rows`` kernel with triples equals, bit for bit, the sums of
    the tables in the documented order (so the spike path did run), and F.linear to rounding;
    full and partial 64-row blocks (of at most 8 rows too), inputs not a multiple of 8, packed 8
    and 128 at a time."""
    g = torch.Generator().manual_seed(n)
    w = sparse_weight(23, in_f, 0.3, g)
    b = torch.randn(23, generator=g)
    x = (torch.rand(n, in_f, generator=g) < 0.2).float()
    csr = cpu_kernel.csr_by_output(w)
    triples = cpu_kernel.triples_by_output(*csr)
    out = cpu_kernel.rows_linear(x, *csr, b, 23, triples)
    assert torch.equal(out, _triples_reference(x, triples, b, 23))
    torch.testing.assert_close(out, nn.functional.linear(x, w, b), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not HAVE_KERNEL, reason="needs the native kernel")
@pytest.mark.parametrize("value,column", [(0.5, 7), (2.0, 7), (-0.0, 7), (0.5, 49), (-1.0, 20)])
def test_rows_kernel_mixes_analog_and_spike_blocks_correctly(value, column):
    """A block with one value other than 0 or 1 takes the float path, whichever block comes
    first; the value sits in the inputs packed 16 at a time (AVX-512) or in the tail."""
    g = torch.Generator().manual_seed(3)
    w = sparse_weight(40, 50, 0.2, g)
    csr = cpu_kernel.csr_by_output(w)
    triples = cpu_kernel.triples_by_output(*csr)
    for analog_row in (0, 70, 199):
        x = (torch.rand(200, 50, generator=g) < 0.3).float()
        x[analog_row, column] = value
        out = cpu_kernel.rows_linear(x, *csr, None, 40, triples)
        torch.testing.assert_close(out, nn.functional.linear(x, w), rtol=1e-5, atol=1e-5)


def test_loading_a_state_dict_rebuilds_the_spike_tables():
    g = torch.Generator().manual_seed(4)
    w = sparse_weight(16, 32, 0.25, g)
    source, target = SparseLinear(w * 3), SparseLinear(w)  # same nonzeros, other values
    target.load_state_dict(source.state_dict())
    x = (torch.rand(70, 32, generator=g) < 0.3).float()
    torch.testing.assert_close(target(x), nn.functional.linear(x, w * 3), rtol=1e-5, atol=1e-5)


def test_auto_picks_events_for_quiet_inputs_and_rows_for_busy_ones():
    g = torch.Generator().manual_seed(0)
    layer = SparseLinear(sparse_weight(64, 512, 0.1, g))
    layer((torch.rand(256, 512, generator=g) < 0.01).float())
    assert layer.last_kernel == ("events" if HAVE_KERNEL else "torch")
    layer((torch.rand(256, 512, generator=g) < 0.2).float())
    assert layer.last_kernel == ("rows" if HAVE_KERNEL else "torch")


def test_fallback_without_the_native_kernel_gives_the_same_results():
    code = ("import torch\n"
            "from spikesculpt.inference import SparseLinear, cpu_kernel\n"
            "g = torch.Generator().manual_seed(1)\n"
            "w = torch.randn(20, 30, generator=g) * (torch.rand(20, 30, generator=g) < 0.2)\n"
            "x = (torch.rand(4, 7, 30, generator=g) < 0.3).float()\n"
            "layer = SparseLinear(w, None)\n"
            "torch.testing.assert_close(layer(x), x @ w.t(), rtol=1e-5, atol=1e-5)\n"
            "assert layer.last_kernel == 'torch', layer.last_kernel\n"
            "print(cpu_kernel.status())\n")
    assert "disabled" in run_native_off(code)


@pytest.fixture(scope="module")
def sparse_run(tmp_path_factory):
    cfg = TrainConfig(method="esl", epochs=2, timesteps=4, batch_size=128,
                      model_kwargs={"hidden": [96, 96]})
    cfg.sparse.density = 0.1
    return run_training(cfg, out=str(tmp_path_factory.mktemp("runs") / "esl"), progress=False)


def test_converted_model_predicts_exactly_as_the_dense_masked_model(sparse_run):
    """Oracle: the sparse inference model against the dense masked model it was made from, on
    the whole digits test split, both with the same input spikes."""
    from spikesculpt.experiments.train_run import build, load_model_weights, load_run_config

    _, config = load_run_config(sparse_run.run_dir.path)
    splits, model, _ = build(config)
    load_model_weights(sparse_run.run_dir.model_path, model)
    model.eval()
    fast, report = to_sparse_inference(model)
    assert [r["name"] for r in report] == ["hidden.0.fc.weight", "hidden.1.fc.weight",
                                           "readout.weight"]
    converted = [r for r in report if r["converted"]]
    assert converted and all(r["density"] <= 0.5 for r in converted)
    assert isinstance(model.hidden[0].fc, nn.Linear)  # the original is untouched
    for r in converted:
        module = fast.get_submodule(r["name"].rsplit(".", 1)[0])
        original = model.get_submodule(r["name"].rsplit(".", 1)[0])
        assert isinstance(module, SparseLinear)
        assert torch.equal(module.to_dense_weight(), original.weight.detach())
    x, _ = splits.test.tensors
    xt = x.unsqueeze(0).expand(config.timesteps, *x.shape)     # direct encoding
    result = compare_models(model, fast, [xt[:, :200], xt[:, 200:]], rounds=1)
    assert torch.equal(result["predictions_dense"], result["predictions_sparse"])
    assert result["agreement"] == 1.0
    assert result["max_logit_difference"] < 1e-4


def test_evaluate_sparse_reports_same_accuracy_and_the_speed_ratio(sparse_run, capsys):
    m = evaluate_run(sparse_run.run_dir.path, sparse=True)
    s = m["sparse_inference"]
    assert s["test_accuracy_sparse"] == s["test_accuracy_dense"] == pytest.approx(
        m["test_accuracy"])
    assert s["agreement"] == 1.0
    assert s["dense_seconds_per_batch"] > 0 and s["sparse_seconds_per_batch"] > 0
    assert s["speedup"] == pytest.approx(s["speedup"]) and s["speedup"] > 0
    assert main(["evaluate", str(sparse_run.run_dir.path), "--sparse"]) == 0
    out = capsys.readouterr().out
    assert "sparse inference" in out and "x" in out and "per sample" in out
    assert main(["evaluate", str(sparse_run.run_dir.path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"synops", "energy_pj", "activation_sparsity", "footprint_bytes"} <= set(data)
