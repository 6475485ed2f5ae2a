"""Export: safetensors (plain PyTorch + safetensors loading, packed masks, metadata) and NIR
(write -> read -> same weights and outputs) round trips; the CLI's bad-input contract."""

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from spikesculpt.cli.main import main
from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.train_run import (
    build,
    load_model_weights,
    load_run_config,
    run_training,
)
from spikesculpt.export.safetensors_export import read_export
from spikesculpt.models import create_model
from spikesculpt.sparse import Mask


def _train(root, name, **overrides):
    cfg = TrainConfig(epochs=1, timesteps=2, batch_size=128, model_kwargs={"hidden": [64, 48]})
    for key, value in overrides.items():
        if key == "density":
            cfg.sparse.density = value
        elif key == "v_reset":
            cfg.neuron.v_reset = value
        else:
            setattr(cfg, key, value)
    return run_training(cfg, out=str(root / name), progress=False).run_dir.path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"mlp": _train(root, "mlp", method="esl", density=0.2),
            "conv": _train(root, "conv", method="static", density=0.3, model="conv",
                           model_kwargs={"channels": [8, 16]})}


def _model(run_dir):
    _, config = load_run_config(run_dir)
    splits, model, _ = build(config)
    load_model_weights(run_dir / "model.safetensors", model)
    return splits, config, model.eval()


def _sample(splits, config, n=64):
    x, _ = splits.test.tensors
    return x[:n].unsqueeze(0).expand(config.timesteps, n, *x.shape[1:])


def test_safetensors_export_loads_with_plain_pytorch(runs, tmp_path):
    run = runs["mlp"]
    out = tmp_path / "m.safetensors"
    assert main(["export", str(run), "--format", "safetensors", "--out", str(out)]) == 0
    splits, config, model = _model(run)
    # plain safetensors + PyTorch: weights (zeros in place) into a fresh model, masks unpacked
    tensors = load_file(str(out))
    fresh = create_model("mlp", in_channels=1, image_size=(8, 8), num_classes=10, timesteps=2,
                         neuron="lif", neuron_kwargs={}, hidden=[64, 48])
    fresh.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("masks/")})
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
    with safe_open(str(out), "pt") as fh:
        meta = fh.metadata()
    shapes = json.loads(meta["mask_shapes"])
    stored = Mask.load(run / "masks.safetensors")
    assert set(shapes) == set(stored.names())
    for name, shape in shapes.items():
        bits = np.unpackbits(tensors["masks/" + name].numpy())[:int(np.prod(shape))]
        mask = torch.from_numpy(bits.reshape(shape).astype(bool))
        assert torch.equal(mask, stored[name])
        assert not bool(model.state_dict()[name][~mask].any())  # pruned weights are zeros
    assert meta["method"] == "esl" and meta["model"] == "mlp"
    assert json.loads(meta["config"])["sparse"]["density"] == 0.2
    assert float(meta["density"]) == pytest.approx(
        json.loads((run / "metrics.json").read_text())["density"])
    # the helper reads the same
    state, masks, meta2 = read_export(out)
    assert set(state) == set(model.state_dict()) and set(masks) == set(shapes)
    assert meta2["mask_density"] == pytest.approx(stored.density())
    x = _sample(splits, config)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


def test_nir_round_trip_gives_the_same_weights_and_outputs(runs, tmp_path):
    pytest.importorskip("nir", reason="NIR is the optional extra 'nir' (installed by the tests)")
    from spikesculpt.export.nir_export import _fold_bn, from_nir, read_nir

    for kind in ("mlp", "conv"):
        run = runs[kind]
        out = tmp_path / f"{kind}.nir"
        assert main(["export", str(run), "--format", "nir", "--out", str(out)]) == 0
        splits, config, model = _model(run)
        graph = read_nir(out)
        stored = Mask.load(run / "masks.safetensors")
        conn = {n: node for n, node in graph.nodes.items() if "density" in node.metadata}
        assert len(conn) == 3  # every connection layer, masked or (ER: kept dense) not
        assert set(stored.names()) <= {f"{n.metadata['source']}.weight" for n in conn.values()}
        for node in conn.values():
            source = node.metadata["source"]
            module = model.get_submodule(source)
            weight = module.weight.detach()
            if node.metadata.get("batchnorm_folded"):
                bn = model.get_submodule(source.rsplit(".", 1)[0] + ".bn")
                weight, bias = _fold_bn(weight, module.bias, bn)
                np.testing.assert_array_equal(node.bias, bias.numpy())
            np.testing.assert_array_equal(node.weight, weight.numpy())  # the same weights
            if f"{source}.weight" in stored:
                mask = stored[f"{source}.weight"]
                assert node.metadata["mask_density"] == pytest.approx(float(mask.float().mean()))
            else:
                assert "mask_density" not in node.metadata
            assert node.metadata["density"] == pytest.approx(float((weight != 0).float().mean()))
        neurons = [node for node in graph.nodes.values()
                   if type(node).__name__ in ("LIF", "IF")]
        assert neurons and all(isinstance(node.tau, np.ndarray) and node.tau.ndim >= 1
                               for node in neurons)
        for node in neurons:  # seconds at dt = 1e-4: tau = τ_steps·dt, r = 1 (module docstring)
            source = model.get_submodule(node.metadata["source"])
            np.testing.assert_allclose(node.tau, source.tau * 1e-4, rtol=1e-6)
            assert np.all(node.r == 1.0) and np.all(node.v_leak == source.v_reset)
        x = _sample(splits, config, 128)
        with torch.no_grad():
            ref, got = model(x), from_nir(out)(x)
        assert torch.equal(ref.mean(0).argmax(-1), got.mean(0).argmax(-1))
        if kind == "mlp":
            assert torch.equal(ref, got)  # same operations in the same order
        else:  # BatchNorm folded into the conv: float rounding differs
            torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
        assert graph.metadata["method"] == config.method and graph.metadata["dt"] == 1e-4
    # --dt: time constants in seconds at that dt, recorded in the metadata and read back
    out = tmp_path / "dt.nir"
    assert main(["export", str(runs["mlp"]), "--format", "nir", "--out", str(out),
                 "--dt", "1e-3"]) == 0
    splits, config, model = _model(runs["mlp"])
    graph = read_nir(out)
    assert graph.metadata["dt"] == 1e-3
    lif = next(node for node in graph.nodes.values() if type(node).__name__ == "LIF")
    np.testing.assert_allclose(lif.tau, model.get_submodule(lif.metadata["source"]).tau * 1e-3,
                               rtol=1e-6)
    x = _sample(splits, config, 128)
    with torch.no_grad():
        assert torch.equal(from_nir(out)(x), model(x))


def test_nir_refuses_what_it_cannot_represent_and_names_the_module():
    pytest.importorskip("nir")
    from spikesculpt.export.nir_export import to_nir

    soft = create_model("mlp", in_channels=1, image_size=(8, 8), num_classes=10, timesteps=2,
                        neuron="lif", neuron_kwargs={"v_reset": None}, hidden=[16])
    with pytest.raises(UserError, match=r"'hidden\.0\.spike' \(LIF\).*soft reset"):
        to_nir(soft)
    maxpool = create_model("conv", in_channels=1, image_size=(8, 8), num_classes=10,
                           timesteps=2, neuron="lif", neuron_kwargs={}, channels=[4],
                           pool="max")
    with pytest.raises(UserError, match=r"'features\.1\.0' \(MaxPool2d\)"):
        to_nir(maxpool)
    odd = create_model("conv", in_channels=1, image_size=(7, 7), num_classes=10, timesteps=2,
                       neuron="lif", neuron_kwargs={}, channels=[4])
    with pytest.raises(UserError, match=r"'features\.1\.0' \(AvgPool2d\).*ceil-mode"):
        to_nir(odd)
    resnet = create_model("resnet19", in_channels=1, image_size=(8, 8), num_classes=10,
                          timesteps=2, neuron="lif", neuron_kwargs={}, width=0.05)
    with pytest.raises(UserError, match="SpikingResNet"):
        to_nir(resnet)


def test_nir_without_the_extra_says_how_to_install(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "nir", None)  # import nir -> ImportError
    out = tmp_path / "x.nir"
    assert main(["export", str(runs["mlp"]), "--format", "nir", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "spikesculpt[nir]" in err
    assert not out.exists()


def test_export_bad_input_one_line_exit_2_nothing_overwritten(runs, tmp_path, capsys):
    run = runs["mlp"]

    def fails(argv, *words):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse errors (unknown format)
            code = exc.code
        assert code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        for w in words:
            assert w in err, err

    fails(["export", str(tmp_path / "missing"), "--format", "safetensors"], "does not exist")
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "model.safetensors").unlink()
    fails(["export", str(broken), "--format", "safetensors"], "model.safetensors")
    fails(["export", str(run), "--format", "onnx"], "invalid choice")
    existing = tmp_path / "existing.safetensors"
    existing.write_bytes(b"keep me")
    fails(["export", str(run), "--format", "safetensors", "--out", str(existing)],
          "already exists", "--force")
    assert existing.read_bytes() == b"keep me"
    assert main(["export", str(run), "--format", "safetensors", "--out", str(existing),
                 "--force"]) == 0
    assert existing.read_bytes() != b"keep me"
    soft = _train(tmp_path, "soft", v_reset=None)
    if _has_nir():
        target = tmp_path / "soft.nir"
        fails(["export", str(soft), "--format", "nir", "--out", str(target)],
              "hidden.0.spike", "soft reset")
        assert not target.exists()
        for bad in ("0", "-1e-4", "nan", "inf"):
            fails(["export", str(run), "--format", "nir", "--out", str(target), f"--dt={bad}"],
                  "dt must be a positive number")
        assert not target.exists()
    fails(["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "x.st"),
           "--dt", "1e-4"], "--dt applies to --format nir only")
    assert not (tmp_path / "x.st").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def _has_nir():
    try:
        import nir  # noqa: F401
        return True
    except ImportError:
        return False
