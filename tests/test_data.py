"""Datasets: the embedded digits, user npz files and their validation, the registry."""

import numpy as np
import pytest
import torch

from spikesculpt.core.errors import UserError
from spikesculpt.data import DATASETS, load_dataset, split_name, stratified_split


def test_digits_splits_sizes_ranges_and_fixed_test_set():
    a = load_dataset("digits", seed=0)
    b = load_dataset("digits", seed=1)
    assert a.sizes() == {"train": 1295, "val": 143, "test": 359}
    assert a.info.input_shape == (1, 8, 8) and a.info.num_classes == 10
    assert a.info.kind == "static" and a.info.image_size == (8, 8) and a.info.in_channels == 1
    x, y = a.train.tensors
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    # the test split is the same for every seed; validation is drawn by the seed
    assert torch.equal(a.test.tensors[0], b.test.tensors[0])
    assert not torch.equal(a.val.tensors[0], b.val.tensors[0])
    # same seed, same split
    assert torch.equal(a.val.tensors[0], load_dataset("digits", seed=0).val.tensors[0])
    # stratified: every class in validation and test
    assert set(a.val.tensors[1].tolist()) == set(range(10))
    assert set(a.test.tensors[1].tolist()) == set(range(10))


def test_splits_are_disjoint_and_cover_the_data():
    s = load_dataset("digits", seed=3)
    rows = torch.cat([s.train.tensors[0], s.val.tensors[0], s.test.tensors[0]]).flatten(1)
    assert len(rows) == 1797
    # digits has a few duplicate images; compare the multiset against the source instead
    from sklearn.datasets import load_digits
    ref = torch.as_tensor(load_digits().images.reshape(-1, 64) / 16.0, dtype=torch.float32)
    key = lambda t: sorted(map(tuple, t.tolist()))  # noqa: E731
    assert key(rows) == key(ref)


def test_stratified_split_counts():
    y = np.array([0] * 10 + [1] * 20 + [2] * 1)
    keep, held = stratified_split(y, 0.1, seed=0)
    assert sorted(np.bincount(y[held], minlength=3)) == [0, 1, 2]
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == len(y)


def test_npz_roundtrip_images_features_and_frames(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((50, 3, 5, 5)).astype(np.float32)
    y = np.arange(50) % 5
    np.savez(tmp_path / "img.npz", x=x, y=y, x_test=x[:7], y_test=y[:7])
    s = load_dataset(f"npz:{tmp_path / 'img.npz'}", seed=0)
    assert s.info.input_shape == (3, 5, 5) and s.info.num_classes == 5
    assert len(s.test) == 7 and len(s.train) + len(s.val) == 50
    assert torch.equal(s.test.tensors[0], torch.as_tensor(x[:7]))

    np.savez(tmp_path / "feat.npz", x=rng.random((40, 12)), y=np.arange(40) % 2)
    f = load_dataset(f"npz:{tmp_path / 'feat.npz'}", seed=0)
    assert f.info.image_size is None and f.info.in_features == 12
    assert len(f.test) == 8  # 20% held out as the fixed test split

    np.savez(tmp_path / "grey.npz", x=rng.random((20, 4, 4)), y=np.arange(20) % 2)
    assert load_dataset(f"npz:{tmp_path / 'grey.npz'}").info.input_shape == (1, 4, 4)

    np.savez(tmp_path / "frames.npz", x=rng.random((30, 3, 2, 4, 4)), y=np.arange(30) % 3)
    fr = load_dataset(f"npz:{tmp_path / 'frames.npz'}", timesteps=3)
    assert fr.info.kind == "frames" and fr.info.timesteps == 3
    assert fr.info.input_shape == (2, 4, 4)
    with pytest.raises(UserError, match="--timesteps 3"):
        load_dataset(f"npz:{tmp_path / 'frames.npz'}", timesteps=4)


@pytest.mark.parametrize("arrays, word", [
    (dict(y=np.zeros(4)), "no array 'x'"),
    (dict(x=np.zeros((4, 3))), "no array 'y'"),
    (dict(x=np.zeros((4, 3)), y=np.zeros(5)), "5 labels but 'x' has 4"),
    (dict(x=np.full((4, 3), np.nan), y=np.arange(4) % 2), "NaN"),
    (dict(x=np.full((4, 3), np.inf), y=np.arange(4) % 2), "NaN or inf"),
    (dict(x=np.zeros((4, 3)), y=np.array([0, 1, -1, 0])), "negative labels"),
    (dict(x=np.zeros((4, 3)), y=np.array([0, 1, 0.5, 0])), "non-integer"),
    (dict(x=np.zeros((4, 3)), y=np.zeros((4, 1))), "1-d array"),
    (dict(x=np.zeros(4), y=np.zeros(4)), "must be [N, F]"),
    (dict(x=np.zeros((8, 3)), y=np.arange(8) % 2, x_test=np.zeros((2, 4)), y_test=np.zeros(2)),
     "same shape"),
    (dict(x=np.zeros((8, 3)), y=np.arange(8) % 2, x_test=np.zeros((2, 3))), "x_test' and 'y_test"),
    (dict(x=np.zeros((8, 3)), y=np.zeros(8)), "only one class"),
    (dict(x=np.zeros((8, 3)), y=np.array([0, 1, 0, 1, 0, 1, 0, 10**9])), "not class indices"),
])
def test_npz_bad_content_is_a_one_line_user_error(tmp_path, arrays, word):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(UserError) as info:
        load_dataset(f"npz:{path}")
    assert word in str(info.value) and "\n" not in str(info.value)


def test_npz_missing_and_corrupt_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_dataset(f"npz:{tmp_path / 'nope.npz'}")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(UserError, match="cannot read"):
        load_dataset(f"npz:{tmp_path / 'junk.npz'}")
    with pytest.raises(UserError, match="needs a path"):
        load_dataset("npz")


def test_registry_names_and_errors():
    assert {"digits", "npz"} <= set(DATASETS.names())
    assert split_name("npz:/a:b.npz") == ("npz", "/a:b.npz")
    with pytest.raises(UserError, match="unknown dataset 'mnist2'.*digits"):
        load_dataset("mnist2")
    with pytest.raises(UserError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.5)
