"""Sparse convolutions: the native direct and event-driven kernels against torch's conv2d /
conv1d, conversion of conv SNNs (oracle: the dense masked model's predictions), and the
per-layer kernel calibration."""


import pytest
import torch
import torch.nn.functional as F
from native_off import run_native_off
from torch import nn

from spikesculpt.config import TrainConfig
from spikesculpt.experiments.train_run import build, load_model_weights, run_training
from spikesculpt.inference import (
    SparseConv1d,
    SparseConv2d,
    SparseLinear,
    conv_kernel,
    to_sparse_inference,
)
from spikesculpt.inference.calibrate import candidates
from spikesculpt.inference.sparse_inference import compare_models

HAVE_KERNEL = conv_kernel.available()


def sparse_conv_weight(o, c, kh, kw, density, g):
    return torch.randn(o, c, kh, kw, generator=g) * (torch.rand(o, c, kh, kw, generator=g)
                                                      < density)


def test_conv_kernel_loads_where_there_is_a_compiler():
    from spikesculpt.core import native_build

    if native_build.compiler() is None or native_build.disabled_by_env():
        pytest.skip("no C compiler (or SPIKESCULPT_NATIVE=0): the fallback is tested instead")
    assert HAVE_KERNEL, conv_kernel.status()


@pytest.mark.parametrize("mode", ["direct", "events", "auto", "dense"])
@pytest.mark.parametrize("n,c,o,h,w,k,pad,density,activity", [
    (3, 5, 7, 9, 13, 3, 1, 0.2, 0.15),   # odd sizes, 'same' 3x3
    (2, 3, 4, 6, 5, 5, 2, 0.5, 0.02),    # 5x5, a map narrower than the kernel's reach
    (4, 8, 6, 7, 7, 3, 0, 0.1, 0.3),     # no padding: the output shrinks
    (2, 4, 3, 33, 35, 3, 1, 0.05, 0.1),  # more rows than one tile holds
    (1, 3, 4, 5, 203, 3, 1, 0.3, 0.2),   # wider than one column chunk (96 / 384 floats)
    (2, 4, 4, 5, 5, 1, 0, 1.0, 1.0),     # 1x1, dense weight, every input active
    (1, 4, 4, 6, 6, 3, 1, 0.0, 0.5),     # an all-zero weight
])
def test_sparse_conv2d_equals_dense_conv2d(mode, n, c, o, h, w, k, pad, density, activity):
    g = torch.Generator().manual_seed(n * 100 + c * 10 + k)
    weight = sparse_conv_weight(o, c, k, k, density, g)
    b = torch.randn(o, generator=g)
    spikes = (torch.rand(2, n, c, h, w, generator=g) < activity).float()   # [T, B, C, H, W]
    analog = spikes * torch.rand(spikes.shape, generator=g) * 2 - 0.5 * spikes
    for bias in (b, None):
        layer = SparseConv2d(weight, bias, (pad, pad), mode=mode)
        for x in (spikes, analog):
            ref = F.conv2d(x.flatten(0, 1), weight, bias, padding=pad).unflatten(0, (2, n))
            out = layer(x)
            assert out.shape == ref.shape
            torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
            if HAVE_KERNEL and mode != "auto":
                assert layer.last_kernel == mode
    assert torch.equal(layer.to_dense_weight(), weight)
    assert layer.nnz == int((weight != 0).sum())


def _conv_triples_reference(x, cw, bias):
    """What the spike path computes, in its order: per output channel and position, the
    triples' table entries for each image's 3-bit subset index added one by one in float32,
    then the bias (positions over the padded width, the extra columns dropped)."""
    n, c, h, w = x.shape
    ho, wo = cw.output_size(h, w)
    wp = w + 2 * cw.pw
    xp = F.pad(x, (cw.pw, cw.pw, cw.ph, cw.ph)).reshape(n, -1)
    xp = torch.cat([xp, torch.zeros(n, wp + 16)], 1)  # the kernel's zero slack
    pos = (torch.arange(ho)[:, None] * wp + torch.arange(wo)[None, :]).reshape(-1)
    gptr, gcols, gtab = cw.triples_for_size(h, w)
    out = torch.zeros(n, cw.out_channels, ho * wo)
    for co in range(cw.out_channels):
        for g in range(int(gptr[co]), int(gptr[co + 1])):
            o1, o2, o3 = (int(v) for v in gcols[3 * g: 3 * g + 3])
            idx = (xp[:, o1 + pos] + 2 * xp[:, o2 + pos] + 4 * xp[:, o3 + pos]).long()
            out[:, co] += gtab[8 * g + idx]
    out = out + bias[None, :, None]
    return out.reshape(n, cw.out_channels, ho, wo)


@pytest.mark.skipif(not HAVE_KERNEL or not conv_kernel.spike_path(),
                    reason="the spike path needs the native kernel on an AVX2 CPU")
@pytest.mark.parametrize("n,c,o,h,w,k,pad", [
    (3, 5, 7, 9, 13, 3, 1),    # one partial block of images, odd sizes
    (20, 6, 5, 11, 9, 3, 1),   # blocks of 8 and a partial one, threads over blocks
    (9, 3, 4, 6, 5, 5, 2),     # 5x5 kernel, padding 2
    (17, 4, 3, 7, 7, 3, 0),    # no padding
])
def test_conv_spike_path_adds_the_tables_exactly(n, c, o, h, w, k, pad):
    """Oracle: on 0/1 input ``direct`` equals, bit for bit, the triples' table sums in the
    documented order (so the spike path ran), and conv2d to rounding; analog input (one value
    is enough) takes the float path and matches conv2d too."""
    g = torch.Generator().manual_seed(n * 100 + c)
    wt = sparse_conv_weight(o, c, k, k, 0.4, g)
    b = torch.randn(o, generator=g)
    cw = conv_kernel.ConvWeights(wt, (pad, pad))
    x = (torch.rand(n, c, h, w, generator=g) < 0.3).float()
    out = conv_kernel.direct_conv(x, cw, b)
    assert torch.equal(out, _conv_triples_reference(x, cw, b))
    torch.testing.assert_close(out, F.conv2d(x, wt, b, padding=pad), rtol=1e-5, atol=1e-5)
    x[n - 1, 0, 0, 0] = 0.5
    torch.testing.assert_close(conv_kernel.direct_conv(x, cw, b), F.conv2d(x, wt, b, padding=pad),
                               rtol=1e-5, atol=1e-5)


def test_auto_picks_events_for_quiet_inputs_and_direct_for_busy_ones():
    g = torch.Generator().manual_seed(0)
    layer = SparseConv2d(sparse_conv_weight(8, 4, 3, 3, 0.2, g), None, (1, 1))
    layer((torch.rand(4, 4, 10, 10, generator=g) < 0.005).float())
    assert layer.last_kernel == ("events" if HAVE_KERNEL else "dense")
    layer((torch.rand(4, 4, 10, 10, generator=g) < 0.3).float())
    assert layer.last_kernel == ("direct" if HAVE_KERNEL else "dense")


def test_events_kernel_is_not_used_when_padding_exceeds_the_kernel_reach():
    g = torch.Generator().manual_seed(1)
    weight = sparse_conv_weight(3, 2, 3, 3, 0.5, g)
    layer = SparseConv2d(weight, None, (3, 3), mode="events")  # padding 3 > k - 1
    x = (torch.rand(2, 2, 5, 5, generator=g) < 0.3).float()
    torch.testing.assert_close(layer(x), F.conv2d(x, weight, padding=3), rtol=1e-5, atol=1e-5)
    assert layer.last_kernel == ("direct" if HAVE_KERNEL else "dense")


@pytest.mark.parametrize("mode", ["direct", "events", "dense"])
def test_sparse_conv1d_equals_dense_conv1d(mode):
    g = torch.Generator().manual_seed(2)
    conv = nn.Conv1d(6, 9, 5, padding=2)
    with torch.no_grad():
        conv.weight *= torch.rand(conv.weight.shape, generator=g) < 0.2
    layer = SparseConv1d.from_conv(conv, mode)
    x = (torch.rand(3, 4, 6, 40, generator=g) < 0.2).float()   # [T, B, C, L]
    with torch.no_grad():
        ref = conv(x.flatten(0, 1)).unflatten(0, (3, 4))
    torch.testing.assert_close(layer(x), ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(layer.to_dense_weight_1d(), conv.weight.detach())


def test_unsupported_convolutions_stay_dense_with_the_reason():
    model = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1),
                          nn.Conv2d(8, 8, 3, padding=1, groups=2),
                          nn.Conv2d(8, 8, 3, padding=2, dilation=2),
                          nn.Conv2d(8, 8, 3, padding="same"),
                          nn.Conv2d(8, 8, 2, padding="same"))
    with torch.no_grad():
        for m in model:
            m.weight *= (torch.rand(m.weight.shape) < 0.1)
    fast, report = to_sparse_inference(model)
    assert [r["converted"] for r in report] == [False, False, False, True, False]
    assert "stride" in report[0]["reason"] and "groups" in report[1]["reason"]
    assert "dilation" in report[2]["reason"] and "even kernel" in report[4]["reason"]
    assert isinstance(fast[3], SparseConv2d) and fast[3].padding == (1, 1)
    x = (torch.rand(2, 4, 9, 9) < 0.2).float()
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model.eval()(x), rtol=1e-4, atol=1e-4)


def test_mode_travels_with_the_state_dict():
    g = torch.Generator().manual_seed(3)
    weight = sparse_conv_weight(4, 3, 3, 3, 0.3, g)
    conv = SparseConv2d(weight, None, (1, 1), mode="events")
    copy = SparseConv2d(weight, None, (1, 1))   # "auto"
    copy.load_state_dict(conv.state_dict())
    assert copy.mode == "events"
    x = (torch.rand(2, 3, 6, 6, generator=g) < 0.3).float()
    torch.testing.assert_close(copy(x), F.conv2d(x, weight, padding=1), rtol=1e-5, atol=1e-5)
    w = torch.randn(5, 7, generator=g) * (torch.rand(5, 7, generator=g) < 0.3)
    lin, lin2 = SparseLinear(w, mode="dense"), SparseLinear(w)
    lin2.load_state_dict(lin.state_dict())
    assert lin2.mode == "dense"


def test_fallback_without_the_native_conv_kernel_gives_the_same_results():
    code = ("import torch, torch.nn.functional as F\n"
            "from spikesculpt.inference import SparseConv2d, conv_kernel\n"
            "g = torch.Generator().manual_seed(1)\n"
            "w = torch.randn(5, 3, 3, 3, generator=g)\n"
            "w = w * (torch.rand(5, 3, 3, 3, generator=g) < .2)\n"
            "x = (torch.rand(4, 3, 8, 8, generator=g) < 0.3).float()\n"
            "layer = SparseConv2d(w, None, (1, 1), mode='direct')\n"
            "torch.testing.assert_close(layer(x), F.conv2d(x, w, padding=1))\n"
            "assert layer.last_kernel == 'dense', layer.last_kernel\n"
            "print(conv_kernel.status())\n")
    assert "disabled" in run_native_off(code)


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory):
    cfg = TrainConfig(method="esl", model="conv", epochs=2, timesteps=4, batch_size=128)
    cfg.sparse.density = 0.1
    return run_training(cfg, out=str(tmp_path_factory.mktemp("runs") / "conv"), progress=False)


def _trained(conv_run):
    from spikesculpt.experiments.train_run import load_run_config

    _, config = load_run_config(conv_run.run_dir.path)
    splits, model, _ = build(config)
    load_model_weights(conv_run.run_dir.model_path, model)
    model.eval()
    x, _ = splits.test.tensors
    return model, x.unsqueeze(0).expand(config.timesteps, *x.shape)   # direct encoding


@pytest.mark.parametrize("mode", ["auto", "rows", "events"])
def test_converted_conv_snn_predicts_exactly_as_the_dense_masked_model(conv_run, mode):
    """Oracle: the ESL conv SNN (two 3x3 convs at density 0.1, BN, LIF, pooling, readout) with
    its convolutions and readout converted, against the dense masked model, on the whole digits
    test split."""
    model, xt = _trained(conv_run)
    fold = mode != "rows"  # with BatchNorm folded into the convolutions (the default) or not
    fast, report = to_sparse_inference(model, mode=mode, max_density=1.0,  # ERK: conv 1 at 0.89
                                       rewrite=fold)
    kinds = {r["name"]: r["kind"] for r in report if r["converted"]}
    assert sum(k == "conv2d" for k in kinds.values()) == 2, report
    assert sum("bn_folded" in r for r in report) == (2 if fold else 0)
    for name in kinds:
        module, original = (m.get_submodule(name.rsplit(".", 1)[0]) for m in (fast, model))
        dense_w = module.to_dense_weight()
        assert torch.equal(dense_w == 0, original.weight.detach() == 0)  # the same mask
        if not fold:
            assert torch.equal(dense_w, original.weight.detach())
    result = compare_models(model, fast, [xt[:, :200], xt[:, 200:]], rounds=1)
    assert torch.equal(result["predictions_dense"], result["predictions_sparse"])
    assert result["max_logit_difference"] < 1e-3


def test_calibration_picks_a_measured_kernel_per_layer_and_keeps_the_outputs(conv_run):
    model, xt = _trained(conv_run)
    fast, report = to_sparse_inference(model, max_density=1.0, calibrate_on=xt[:, :64],
                                       calibration_calls=2)
    converted = [r for r in report if r["converted"]]
    for r in converted:
        layer = fast.get_submodule(r["name"].rsplit(".", 1)[0])
        assert set(r["calibration_ms"]) == set(candidates(layer))
        assert r["kernel"] == layer.mode == min(r["calibration_ms"], key=r["calibration_ms"].get)
        assert 0.0 <= r["input_activity"] <= 1.0
    conv_layers = [r for r in converted if r["kind"] == "conv2d"]
    assert conv_layers and conv_layers[1]["input_activity"] < 1.0  # spikes, after pooling
    with torch.no_grad():
        torch.testing.assert_close(fast(xt[:, :100]), model(xt[:, :100]), rtol=1e-3, atol=1e-3)
    # the choice is stored with the model: a fresh conversion loads it from the state dict
    again, _ = to_sparse_inference(model, max_density=1.0)
    again.load_state_dict(fast.state_dict())
    for r in converted:
        name = r["name"].rsplit(".", 1)[0]
        assert again.get_submodule(name).mode == r["kernel"]


def test_folding_batchnorm_keeps_outputs_and_zeros():
    """BatchNorm folded into the layer before it (inference/fold.py): same outputs to rounding,
    the same zero weights, and the norms gone — on a model with non-trivial running stats."""
    from spikesculpt.inference.fold import fold_batchnorm
    from spikesculpt.models.layers import ConvBNSpike, LinearSpike
    from spikesculpt.neurons import LIF

    torch.manual_seed(0)
    model = nn.Sequential(ConvBNSpike(3, 8, LIF), nn.Flatten(2),
                          LinearSpike(8 * 36, 5, LIF, batch_norm=True),
                          nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4)))
    with torch.no_grad():
        model[0].conv.weight *= torch.rand(model[0].conv.weight.shape) < 0.3
        for bn in (model[0].bn, model[2].bn, model[3][1]):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    model.eval()
    x = (torch.rand(4, 2, 3, 6, 6) < 0.4).float()   # [T, B, C, H, W]
    with torch.no_grad():
        ref = model[3](model[2](model[1](model[0](x))).flatten(0, 1))
    zeros = model[0].conv.weight == 0
    folded = fold_batchnorm(model)
    assert folded == {"0.conv": "0.bn", "2.fc": "2.bn", "3.0": "3.1"}
    assert isinstance(model[0].bn, nn.Identity) and isinstance(model[3][1], nn.Identity)
    assert torch.equal(model[0].conv.weight == 0, zeros)
    with torch.no_grad():
        out = model[3](model[2](model[1](model[0](x))).flatten(0, 1))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_evaluate_sparse_on_a_conv_run_reports_layers_kernels_and_both_ratios(conv_run, capsys):
    from spikesculpt.cli.main import main
    from spikesculpt.experiments.train_run import evaluate_run

    m = evaluate_run(conv_run.run_dir.path, sparse=True, batch_size=100)
    s = m["sparse_inference"]
    assert s["agreement"] == 1.0 and s["test_accuracy_sparse"] == s["test_accuracy_dense"]
    assert s["test_accuracy_dense"] == pytest.approx(m["test_accuracy"])
    assert s["batch_size"] == 100 and s["calibrated"]
    assert {r["kind"] for r in s["layers"] if r["converted"]} >= {"conv2d"}
    assert all("kernel" in r for r in s["layers"] if r["converted"])
    assert any(r.get("bn_folded") for r in s["layers"])
    for k in ("dense", "sparse", "dense_folded"):
        assert s[f"{k}_ms_per_sample"] > 0
    assert s["speedup"] > 0 and s["speedup_vs_folded_dense"] > 0
    assert main(["evaluate", str(conv_run.run_dir.path), "--sparse", "--no-calibrate",
                 "--batch-size", "128"]) == 0
    out = capsys.readouterr().out
    assert "conv2d" in out and "per sample" in out and "same inference rewrites" in out
    assert "calibrated" not in out
    assert s["allocator"] == "glibc malloc keeps freed memory" or "not glibc" in s["allocator"]
    assert s["allocator"] in out  # which malloc ran (process-wide: the first call set it)
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(conv_run.run_dir.path), "--sparse", "--batch-size", "0"])
    assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err


@pytest.mark.parametrize("ceil_mode", [True, False])
@pytest.mark.parametrize("h,w", [(34, 34), (8, 6), (17, 17), (5, 8)])
def test_fast_pools_are_bit_identical_to_torch(ceil_mode, h, w):
    from spikesculpt.inference.pooling import AvgPool2x2, MaxPool2x2, replace_pools

    g = torch.Generator().manual_seed(h * w)
    x = torch.randn(3, 4, 5, h, w, generator=g)        # analog, not only spikes
    x[0, 0, 0, 0, :2] = torch.tensor([float("nan"), 5.0])  # NaN propagates through max
    x[0, 0, 1, 0, :2] = torch.tensor([0.0, -0.0])          # of equal values the first is kept
    for fast, pool in ((AvgPool2x2(ceil_mode), nn.AvgPool2d(2, 2, ceil_mode=ceil_mode)),
                       (MaxPool2x2(ceil_mode), nn.MaxPool2d(2, 2, ceil_mode=ceil_mode))):
        ref = pool(x.flatten(0, 1)).unflatten(0, (3, 4))
        assert torch.equal(fast(x).view(torch.int32), ref.view(torch.int32))  # bit for bit
    model = nn.Sequential(nn.Identity(), nn.Sequential(nn.AvgPool2d(2, 2), nn.AvgPool2d(3)),
                          nn.MaxPool2d(2, ceil_mode=True), nn.MaxPool2d(2, 2, dilation=2))
    assert sorted(replace_pools(model)) == ["1.0", "2"]  # 3x3, dilated pools stay as they are
    assert isinstance(model[1][0], AvgPool2x2) and isinstance(model[1][1], nn.AvgPool2d)
    assert isinstance(model[2], MaxPool2x2) and model[2].ceil_mode
    assert isinstance(model[3], nn.MaxPool2d)
