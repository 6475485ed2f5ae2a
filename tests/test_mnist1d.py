"""``mnist1d`` (Greydanus 2020, arXiv 2011.14439) and the ``conv1d`` model.

- oracle: our generator gives the published set sample for sample (the ``mnist1d`` package,
  in the ``test`` extra, generates it with ``make_dataset(get_dataset_args())``, offline);
- shapes, classes and split sizes of both forms, ``samples=``, bad options in one line;
- outcome: ``spikesculpt train`` with ``mlp`` and ``conv1d`` on mnist1d reaches a floor well
  above chance (10 classes, 10%).

Floors: each run was made with seeds 0, 1, 2 on the 2-core machine with one thread; the comment
on a floor gives the lowest test accuracy of those seeds, the floor sits well below it.
"""

import json

import numpy as np
import pytest
import torch

from spikesculpt.cli.main import main
from spikesculpt.core.errors import UserError
from spikesculpt.data import load_dataset
from spikesculpt.data.sets.mnist1d import mnist1d_arrays
from spikesculpt.data.sets.mnist1d_generator import Mnist1dArgs, make_mnist1d
from spikesculpt.models import create_model, prunable_parameters

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------ the oracle
@pytest.mark.parametrize("samples", [5000, 1200])
def test_generator_reproduces_the_published_package_sample_for_sample(samples):
    package = pytest.importorskip("mnist1d.data", reason="the oracle needs pip install "
                                                         "mnist1d==0.0.2.post1 (test extra)")
    args = package.get_dataset_args()
    args.num_samples = samples
    theirs = package.make_dataset(args)
    x, y, x_test, y_test = make_mnist1d(Mnist1dArgs(num_samples=samples))
    np.testing.assert_allclose(x, theirs["x"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(x_test, theirs["x_test"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(y, theirs["y"])
    np.testing.assert_array_equal(y_test, theirs["y_test"])
    if samples == 5000:  # the dataset's float32 arrays are the same numbers
        ours = mnist1d_arrays(5000)
        np.testing.assert_allclose(ours[0], theirs["x"], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(ours[3], theirs["y_test"])


def test_generator_is_deterministic_and_does_not_touch_the_global_rng():
    np.random.seed(7)
    before = np.random.rand()
    np.random.seed(7)
    a = make_mnist1d(Mnist1dArgs(num_samples=200))
    assert np.random.rand() == before
    b = make_mnist1d(Mnist1dArgs(num_samples=200))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


# ------------------------------------------------------------------------------ the dataset
def test_default_is_the_published_set_and_split():
    splits = load_dataset("mnist1d", seed=0)
    info = splits.info
    assert (info.name, info.kind, info.input_shape, info.num_classes) == \
        ("mnist1d", "static", (40,), 10)
    sizes = splits.sizes()
    assert sizes["train"] + sizes["val"] == 4000 and sizes["test"] == 1000
    assert 380 <= sizes["val"] <= 420                       # 10% of every class
    x_test, y_test = splits.test.tensors
    np.testing.assert_array_equal(x_test.numpy(), mnist1d_arrays(5000)[2])
    assert sorted(np.unique(y_test.numpy())) == list(range(10))
    x_all = np.concatenate(mnist1d_arrays(5000)[::2])
    assert abs(x_all.mean()) < 1e-4 and abs(x_all.std() - 1) < 1e-4  # standardised, as published


def test_validation_depends_on_the_seed_and_the_test_split_does_not():
    a, b = load_dataset("mnist1d", seed=0), load_dataset("mnist1d", seed=1)
    assert not torch.equal(a.val.tensors[0], b.val.tensors[0])
    assert torch.equal(a.test.tensors[0], b.test.tensors[0])


def test_sequence_form_feeds_one_value_per_time_step():
    flat = load_dataset("mnist1d", seed=0)
    seq = load_dataset("mnist1d:form=sequence", seed=0, timesteps=40)
    assert (seq.info.kind, seq.info.input_shape, seq.info.timesteps) == ("frames", (1,), 40)
    x, _ = seq.train[0]
    assert x.shape == (40, 1)
    assert torch.equal(x[:, 0], flat.train[0][0])
    with pytest.raises(UserError, match="pass --timesteps 40"):
        load_dataset("mnist1d:form=sequence", seed=0, timesteps=4)


def test_samples_option_generates_a_larger_set_with_the_published_split():
    splits = load_dataset("mnist1d:samples=10000", seed=0)
    sizes = splits.sizes()
    assert sizes["train"] + sizes["val"] == 8000 and sizes["test"] == 2000
    assert splits.info.name == "mnist1d:samples=10000"


@pytest.mark.parametrize("arg, words", [
    ("samples=55", "positive multiple of 10"),
    ("samples=0", "positive multiple of 10"),
    ("samples=-10", "positive multiple of 10"),
    ("samples=50", "at least 100"),
    ("samples=abc", "must be a int"),
    ("form=wave", "form=flat"),
    ("shape=flat", "unknown option 'shape'"),
])
def test_bad_options_stop_in_one_line_with_exit_2(arg, words, capsys, tmp_path):
    code = main(["train", "--dataset", f"mnist1d:{arg}", "--epochs", "1", "--no-progress",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------ conv1d
def test_conv1d_reads_mnist1d_signals_and_its_conv_weights_are_prunable():
    model = create_model("conv1d", in_channels=1, image_size=None, in_features=40,
                         num_classes=10)
    assert model.feature_shapes == [(32, 20), (64, 10), (64, 5)]
    assert model(torch.randn(3, 2, 40)).shape == (3, 2, 10)
    names = [n for n, _ in prunable_parameters(model)]
    assert names == ["features.0.conv.weight", "features.2.conv.weight",
                     "features.4.conv.weight", "readout.weight"]


@pytest.mark.parametrize("kwargs, words", [
    (dict(kernel_size=4), "kernel_size must be odd"),
    (dict(in_features=41, in_channels=2), "not a multiple of in_channels"),
    (dict(pool="median"), "pool must be 'avg' or 'max'"),
])
def test_conv1d_bad_options_are_user_errors(kwargs, words):
    args = dict(in_channels=1, image_size=None, in_features=40, num_classes=10) | kwargs
    with pytest.raises(UserError, match=words):
        create_model("conv1d", **args)


# ------------------------------------------------------------------------------ outcomes
# mnist1d, flat form, T = 4 (direct encoding), Adam, cosine schedule; ~10-14 s each, one thread.
OUTCOMES = {                                                  # lowest test accuracy, seeds 0-2:
    "mlp": (["--model", "mlp", "--epochs", "5", "--lr", "3e-3"], 0.35),            # 49.6%
    "conv1d": (["--model", "conv1d", "--epochs", "2", "--lr", "1e-2",
                "--model-arg", "channels=[16,32,32]"], 0.60),                        # 80.0%
}


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_model_learns_mnist1d_well_above_chance(name, tmp_path):
    args, floor = OUTCOMES[name]
    out = tmp_path / "run"
    assert main(["train", "--dataset", "mnist1d", *args, "--no-progress", "--out",
                 str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == name
    assert metrics["test_accuracy"] >= floor, (name, metrics["test_accuracy"])
