"""Static image sets read from the files torchvision downloads (written here in the real
formats: idx, CIFAR python pickles, ImageFolder PNGs), without torchvision."""

import gzip
import io
import pickle
import struct
import sys
import tarfile
import types

import numpy as np
import pytest
import torch

from spikesculpt.cli.main import main
from spikesculpt.core.errors import UserError
from spikesculpt.data import load_dataset


def idx_bytes(a: np.ndarray) -> bytes:
    a = np.asarray(a, dtype=np.uint8)
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def write_mnist(folder, n_train=20, n_test=6, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    data = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = np.arange(n) % 10
        data[split] = (x, y)
        for name, a in ((f"{split}-images-idx3-ubyte", x), (f"{split}-labels-idx1-ubyte", y)):
            raw = idx_bytes(a)
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return data


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_files(tmp_path, gz):
    data = write_mnist(tmp_path / "MNIST" / "raw", gz=gz)
    s = load_dataset("mnist", seed=0, data_root=str(tmp_path))
    assert s.info.kind == "static" and s.info.input_shape == (1, 28, 28)
    assert s.info.num_classes == 10 and len(s.train) + len(s.val) == 20 and len(s.test) == 6
    xt, yt = s.test.tensors
    assert torch.equal(xt, torch.as_tensor(data["t10k"][0][:, None] / 255.0, dtype=torch.float32))
    assert yt.tolist() == data["t10k"][1].tolist()


def test_fashion_mnist_without_raw_level_and_truncated_file(tmp_path):
    write_mnist(tmp_path / "FashionMNIST")
    s = load_dataset("fashion-mnist", seed=0, data_root=str(tmp_path))
    assert len(s.test) == 6
    f = tmp_path / "FashionMNIST" / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte is truncated"):
        load_dataset("fashion-mnist", seed=0, data_root=str(tmp_path))
    with pytest.raises(UserError, match="--download"):
        load_dataset("mnist", seed=0, data_root=str(tmp_path))


def cifar_batch(n, label_key, offset):
    rng = np.random.default_rng(offset)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [(i + offset) % 10 for i in range(n)]
    return {b"batch_label": b"batch", label_key: labels, b"data": data,
            b"filenames": [b"x.png"] * n}


def test_cifar10_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        batches[name] = cifar_batch(4, b"labels", i)
        (folder / name).write_bytes(pickle.dumps(batches[name], protocol=2))
    s = load_dataset("cifar10", seed=0, data_root=str(tmp_path))
    assert s.info.input_shape == (3, 32, 32) and len(s.test) == 4
    assert len(s.train) + len(s.val) == 20
    xt, yt = s.test.tensors
    raw = batches["test_batch"][b"data"]
    # row layout: 1024 red, then 1024 green, then 1024 blue values, row-major 32x32
    assert xt[1, 0, 0, 0] == pytest.approx(raw[1, 0] / 255.0)
    assert xt[1, 1, 0, 0] == pytest.approx(raw[1, 1024] / 255.0)
    assert xt[1, 2, 31, 31] == pytest.approx(raw[1, 3071] / 255.0)
    assert yt.tolist() == batches["test_batch"][b"labels"]


def test_cifar100_archive_and_unsafe_pickle(tmp_path):
    path = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, n in (("train", 12), ("test", 5)):
            blob = pickle.dumps(cifar_batch(n, b"fine_labels", 0), protocol=2)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    s = load_dataset("cifar100", seed=0, data_root=str(tmp_path))
    assert s.info.num_classes == 100 and len(s.test) == 5

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    folder = tmp_path / "other" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(Evil()))
    with pytest.raises(UserError, match=r"data_batch_1 is not a readable CIFAR batch"):
        load_dataset("cifar10", seed=0, data_root=str(tmp_path / "other"))


def test_imagenet_folder_with_pillow(tmp_path):
    from PIL import Image
    colours = {"n01": (255, 0, 0), "n02": (0, 0, 255)}
    for split, count in (("train", 3), ("val", 1)):
        for cls, rgb in colours.items():
            d = tmp_path / "imagenet" / split / cls
            d.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (40 + 7 * i, 30), rgb).save(d / f"{cls}_{i}.png")
    s = load_dataset("imagenet:16", seed=0, data_root=str(tmp_path))
    assert s.info.input_shape == (3, 16, 16) and s.info.num_classes == 2
    assert len(s.train) + len(s.val) == 6 and len(s.test) == 2
    x, y = s.test[1]
    assert x.shape == (3, 16, 16) and int(y) == 1
    assert torch.allclose(x[2], torch.ones(16, 16)) and torch.all(x[0] == 0)
    (tmp_path / "imagenet" / "val" / "n02" / "n02_0.png").write_bytes(b"not an image")
    with pytest.raises(UserError, match=r"n02_0\.png is not a readable image"):
        s2 = load_dataset("imagenet:16", seed=0, data_root=str(tmp_path))
        s2.test[1]


def test_download_uses_torchvision_or_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(UserError, match=r"spikesculpt\[vision\]"):
        load_dataset("mnist", seed=0, data_root=str(tmp_path), download=True)

    calls = []

    class FakeMNIST:  # what torchvision.datasets.MNIST(root, train, download=True) leaves behind
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            write_mnist(tmp_path / "MNIST" / "raw", gz=True)

    fake = types.ModuleType("torchvision.datasets")
    fake.MNIST = FakeMNIST
    pkg = types.ModuleType("torchvision")
    pkg.datasets = fake
    monkeypatch.setitem(sys.modules, "torchvision", pkg)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", fake)
    s = load_dataset("mnist", seed=0, data_root=str(tmp_path), download=True)
    assert calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)]
    assert len(s.test) == 6


def test_cli_trains_cifar10_with_standard_augmentation(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        (folder / name).write_bytes(pickle.dumps(cifar_batch(4, b"labels", i), protocol=2))
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cifar10", "--data-root", str(tmp_path), "--model",
                 "conv", "--epochs", "1", "--timesteps", "2", "--augment", "standard",
                 "--out", str(out), "--no-progress"]) == 0
    assert "augment: standard" in (out / "config.yaml").read_text()
