"""The DVS emulator, events -> frames binning, the frame cache, digits-dvs / dvs:, augmentation
and the show-data picture."""

import json
import warnings

import numpy as np
import pytest
import torch

from spikesculpt.cli.main import main
from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.data import load_dataset
from spikesculpt.data.augment import BatchAugment, build_augment, parse_augment
from spikesculpt.data.base import DatasetInfo
from spikesculpt.data.events.dvs_emulator import DVSEmulator, simulate_pixels
from spikesculpt.data.events.frames import events_to_frames
from spikesculpt.data.events.stream import make_events
from spikesculpt.data.sets.digits import digits_arrays
from spikesculpt.data.sets.digits_dvs import emulated_frames
from spikesculpt.experiments.rundir import config_hash

# a short, coarse recording: 60 ms at 2 ms steps (fast in tests, same code path)
FAST = dict(saccades=3, saccade_ms=20.0, dt_ms=2.0)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKESCULPT_CACHE_DIR", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------- the pixel model
def _pixel(values):
    return [torch.tensor([[[v]]], dtype=torch.float32) for v in values]


def test_pixel_model_exact_events_and_timestamps():
    # L = 0 -> 0.5 -> 1.25 -> 0.25 with C = 0.25: +2 ON, +3 ON, -4 OFF, spread over each step
    s, t, x, y, p = simulate_pixels(_pixel([0, 0.5, 1.25, 0.25]), [0, 1000, 2000, 3000],
                                    0.25, 0.25)
    assert t.tolist() == [500, 1000, 1333, 1666, 2000, 2250, 2500, 2750, 3000]
    assert p.tolist() == [1] * 5 + [0] * 4
    assert set(s.tolist()) == {0} and set(x.tolist()) == {0} and set(y.tolist()) == {0}
    # ON and OFF thresholds are separate: C_off = 0.5 gives floor(1.0 / 0.5) = 2 OFF events
    _, _, _, _, p2 = simulate_pixels(_pixel([0, 0.5, 1.25, 0.25]), [0, 1000, 2000, 3000],
                                     0.25, 0.5)
    assert p2.tolist() == [1] * 5 + [0] * 2


def test_refractory_period_holds_the_change_back():
    # r = 1.5 ms, L jumps to 1.25 (5 thresholds) and stays: one event at 1 ms (the reference
    # moves one threshold), blocked at 2 ms, one at 3 ms, blocked at 4 ms, one at 5 ms
    _, t, _, _, p = simulate_pixels(_pixel([0, 0.5, 1.25, 1.25, 1.25, 1.25]),
                                    [0, 1000, 2000, 3000, 4000, 5000], 0.25, 0.25,
                                    refractory_us=1500)
    assert t.tolist() == [1000, 3000, 5000] and p.tolist() == [1, 1, 1]


def test_threshold_mismatch_is_a_seeded_fixed_pattern():
    a_on, a_off = DVSEmulator(seed=3).thresholds()
    b_on, _ = DVSEmulator(seed=3).thresholds()
    c_on, _ = DVSEmulator(seed=4).thresholds()
    assert torch.equal(a_on, b_on) and not torch.equal(a_on, c_on)
    assert not torch.equal(a_on, a_off)
    assert abs(float(a_on.mean()) - 0.2) < 0.002
    assert 0.8 * 0.006 < float(a_on.std()) < 1.2 * 0.006      # 3% of 0.2
    flat_on, _ = DVSEmulator(mismatch=0.0).thresholds()
    assert torch.all(flat_on == 0.2)


def test_noise_only_on_a_black_image_and_empty_streams():
    black = np.zeros((1, 8, 8), dtype=np.float32)
    quiet = DVSEmulator(noise_hz=0.0, **FAST).emulate(black)[0]
    assert len(quiet) == 0
    assert np.all(events_to_frames(quiet, (34, 34, 2), 4, t_start=0, t_end=60000) == 0)
    noisy = DVSEmulator(noise_hz=200.0, **FAST)
    ev = noisy.emulate(black)[0]
    mean = 200.0 * 0.06 * 34 * 34                     # Poisson mean: 13,872
    assert abs(len(ev) - mean) < 5 * np.sqrt(mean)
    assert np.all(np.diff(ev["t"]) >= 0) and ev["t"].max() < 60000
    assert set(np.unique(ev["p"])) == {0, 1}
    assert np.array_equal(ev, noisy.emulate(black)[0])                    # seeded
    assert not np.array_equal(ev, DVSEmulator(noise_hz=200.0, seed=1, **FAST).emulate(black)[0])


def test_emulated_digit_is_reproducible_and_independent_of_its_batch():
    x, _ = digits_arrays()
    emu = DVSEmulator(**FAST)
    alone = emu.emulate(x[5:6])[0]
    in_batch = emu.emulate(x[3:7], chunk=3)[2]
    assert np.array_equal(alone, in_batch)
    assert len(alone) > 200 and set(np.unique(alone["p"])) == {0, 1}
    assert alone["x"].min() >= 0 and alone["x"].max() < 34 and alone["y"].max() < 34
    # the image moves along the triangle: the path visits its corners at saccade ends
    path = emu.path()
    steps = emu.steps // emu.saccades
    assert np.allclose(path[[0, steps, 2 * steps, 3 * steps]],
                       [[0, -1.5], [1.5, 1.5], [-1.5, 1.5], [0, -1.5]])


def test_emulator_rejects_bad_settings():
    with pytest.raises(UserError, match="threshold"):
        DVSEmulator(threshold=0)
    with pytest.raises(UserError, match="margin"):
        DVSEmulator(size=6, margin=3)
    with pytest.raises(UserError, match="unknown option 'thresold'"):
        load_dataset("digits-dvs:thresold=0.3", seed=0, timesteps=2)


# ----------------------------------------------------------------------------------- binning
def test_time_and_count_binning_golden():
    ev = make_events(t=[0, 10, 20, 30, 99], x=[0, 1, 2, 3, 3], y=[0, 0, 1, 1, 2],
                     p=[1, 0, 1, 1, 0])
    f = events_to_frames(ev, (4, 3, 2), 2)                   # window [0, 100): t < 50 -> frame 0
    want = np.zeros((2, 2, 3, 4), dtype=np.float32)
    want[0, 1, 0, 0] = want[0, 0, 0, 1] = want[0, 1, 1, 2] = want[0, 1, 1, 3] = 1
    want[1, 0, 2, 3] = 1
    assert np.array_equal(f, want)
    c = events_to_frames(ev, (4, 3, 2), 2, mode="count")     # 5 events: 3 + 2 (i * 2 // 5)
    assert c[0].sum() == 3 and c[1].sum() == 2 and c[1, 1, 1, 3] == 1
    w = events_to_frames(ev, (4, 3, 2), 1, t_start=5, t_end=30)   # keeps t = 10, 20
    assert w.sum() == 2 and w[0, 0, 0, 1] == 1 and w[0, 1, 1, 2] == 1
    pooled = events_to_frames(ev, (4, 3, 2), 1, size=(1, 2))
    assert pooled[0, :, 0].tolist() == [[1, 1], [1, 2]]


# ------------------------------------------------------------------------------------- cache
def _digits(n=12):
    x, y = digits_arrays()
    return x[:n], y[:n]


def test_cache_is_keyed_by_everything_that_changes_the_frames(tmp_path):
    x, y = _digits()
    emu = DVSEmulator(**FAST)
    first = emulated_frames("t", x, y, emu, 4)
    again = emulated_frames("t", x, y, emu, 4)
    assert first.built and not again.built and again.path == first.path
    assert np.array_equal(np.asarray(first.frames), np.asarray(again.frames))
    assert first.frames.shape == (12, 4, 2, 34, 34) and first.labels.tolist() == y.tolist()
    other_t = emulated_frames("t", x, y, emu, 3)
    assert other_t.built and other_t.path != first.path
    # the same events binned into 3 instead of 4 frames: the same total count
    assert np.asarray(other_t.frames).sum() == np.asarray(first.frames).sum()
    for changed in (emulated_frames("t", x, y, DVSEmulator(threshold=0.3, **FAST), 4),
                    emulated_frames("t", x, y, emu, 4, bins="count"),
                    emulated_frames("t", x[::-1].copy(), y[::-1].copy(), emu, 4)):
        assert changed.built and changed.path != first.path


@pytest.mark.parametrize("damage", ["flip-bytes", "truncate", "meta"])
def test_corrupt_cache_entry_is_rebuilt_not_trusted(damage):
    x, y = _digits()
    emu = DVSEmulator(**FAST)
    good = emulated_frames("t", x, y, emu, 4)
    reference = np.array(good.frames)
    frames_file = good.path / "frames.npy"
    if damage == "flip-bytes":
        data = bytearray(frames_file.read_bytes())
        data[-100:] = bytes(255 - b for b in data[-100:])
        frames_file.write_bytes(bytes(data))
    elif damage == "truncate":
        frames_file.write_bytes(frames_file.read_bytes()[:1000])
    else:
        (good.path / "meta.json").write_text("{not json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rebuilt = emulated_frames("t", x, y, emu, 4)
    assert rebuilt.built and any("rebuilding" in str(w.message) for w in caught)
    assert np.array_equal(np.asarray(rebuilt.frames), reference)
    meta = json.loads((rebuilt.path / "meta.json").read_text())
    assert meta["shape"] == [12, 4, 2, 34, 34]


# ------------------------------------------------------------------------------- the datasets
def test_digits_dvs_splits_and_options():
    s = load_dataset("digits-dvs:saccade_ms=20,dt_ms=2", seed=0, timesteps=3)
    assert s.sizes() == {"train": 1295, "val": 143, "test": 359}
    assert s.info.kind == "frames" and s.info.input_shape == (2, 34, 34)
    assert s.info.timesteps == 3
    x, _ = s.train.tensors
    assert x.shape == (1295, 3, 2, 34, 34) and x.dtype == torch.float32
    assert float(x.sum()) > 0 and float(x.min()) == 0
    # validation drawn by the run seed; test split fixed; frames themselves seed-independent
    s1 = load_dataset("digits-dvs:saccade_ms=20,dt_ms=2", seed=1, timesteps=3)
    assert torch.equal(s.test.tensors[0], s1.test.tensors[0])
    assert not torch.equal(s.val.tensors[0], s1.val.tensors[0])


def test_dvs_of_a_static_dataset(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.random((30, 1, 10, 10)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=img, y=np.arange(30) % 3)
    s = load_dataset(f"dvs:npz:{tmp_path / 'd.npz'},size=16,margin=2,saccade_ms=10",
                     seed=0, timesteps=2)
    assert s.info.input_shape == (2, 16, 16) and s.info.num_classes == 3
    assert len(s.train) + len(s.val) + len(s.test) == 30
    assert float(s.test.tensors[0].sum()) > 0
    np.savez(tmp_path / "f.npz", x=rng.random((30, 5)), y=np.arange(30) % 3)
    with pytest.raises(UserError, match="needs static images"):
        load_dataset(f"dvs:npz:{tmp_path / 'f.npz'}", seed=0, timesteps=2)
    with pytest.raises(UserError, match="dvs needs a static dataset"):
        load_dataset("dvs", seed=0, timesteps=2)


# ------------------------------------------------------------------------------- augmentation
def test_augment_parsing_and_config_hash():
    assert parse_augment("standard") == ("flip", "shift")
    assert parse_augment("crop+cutout") == ("shift", "cutout")
    assert parse_augment("none") == ()
    with pytest.raises(UserError, match="unknown augmentation 'rotate'"):
        parse_augment("flip+rotate")
    with pytest.raises(UserError, match="unknown augmentation"):
        TrainConfig(augment="nope").validate()
    # the default leaves existing run hashes alone; a set value changes the hash
    assert config_hash(TrainConfig()) == config_hash(TrainConfig(augment="none"))
    assert config_hash(TrainConfig()) != config_hash(TrainConfig(augment="flip"))
    assert config_hash(TrainConfig()) == config_hash(TrainConfig(download=True))


def test_augment_ops_on_frames():
    x = torch.zeros(64, 3, 2, 8, 8)
    x[:, :, :, 2, 1] = 1                                   # one lit pixel, every time step
    g = torch.Generator().manual_seed(0)
    flipped = BatchAugment(("flip",), (8, 8))(x, g)
    where = flipped[:, 0, 0].flatten(1).argmax(1)
    assert set(where.tolist()) == {2 * 8 + 1, 2 * 8 + 6}   # kept or mirrored, nothing else
    assert 16 < int((where == 2 * 8 + 6).sum()) < 48
    assert torch.equal(flipped[:, 0], flipped[:, 2])       # the same for all time steps
    shifted = BatchAugment(("shift",), (8, 8))(x, g)       # pad = 1
    assert torch.all(shifted.sum(dim=(-1, -2)) == 1)       # pixel (2,1) never leaves the image
    ys, xs = (shifted[:, 0, 0] == 1).nonzero()[:, 1:].T
    assert set(ys.tolist()) == {1, 2, 3} and set(xs.tolist()) == {0, 1, 2}
    full = torch.ones(16, 2, 8, 8)
    cut = BatchAugment(("cutout",), (8, 8))(full, g)       # 4x4 hole, may stick out
    zeros = (cut[:, 0] == 0).sum(dim=(1, 2))
    assert torch.all(zeros > 0) and torch.all(zeros <= 16)
    assert torch.equal(cut[:, 0], cut[:, 1])
    assert torch.all(x[:, :, :, 2, 1] == 1)                # the input batch is not modified
    with pytest.raises(UserError, match="flat features"):
        build_augment("flip", DatasetInfo("shd", "frames", (700,), 20, 4))


def test_training_with_augment_differs_and_repeats(tmp_path):
    def run(aug, out):
        code = main(["train", "--dataset", "digits", "--model", "mlp", "--epochs", "1",
                     "--model-arg", "hidden=[16]", "--augment", aug, "--out", str(out),
                     "--no-progress"])
        assert code == 0
        return json.loads((out / "metrics.json").read_text())

    a = run("shift", tmp_path / "a")
    b = run("shift", tmp_path / "b")
    c = run("none", tmp_path / "c")
    assert a["test_loss"] == b["test_loss"] and a["test_loss"] != c["test_loss"]


# -------------------------------------------------------------------------------- show-data
def test_show_data_writes_a_png(tmp_path, capsys):
    out = tmp_path / "pic.png"
    code = main(["show-data", "digits-dvs:saccade_ms=20,dt_ms=2", "--timesteps", "4",
                 "--samples", "3", "--out", str(out)])
    assert code == 0 and "wrote" in capsys.readouterr().out
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image
    with Image.open(out) as im:
        w, h = im.size
        px = np.asarray(im.convert("RGB"))
    assert w > 400 and h > 300
    # ON (orange) and OFF (blue) pixels are both drawn
    assert ((px[..., 0] > 150) & (px[..., 2] < 80)).any()
    assert ((px[..., 2] > 150) & (px[..., 0] < 80)).any()
    assert main(["show-data", "digits", "--samples", "2", "--out", str(tmp_path / "d.png")]) == 0


def test_unwritable_cache_is_a_user_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SPIKESCULPT_CACHE_DIR", str(blocker / "cache"))
    x, y = _digits(2)
    with pytest.raises(UserError, match="cannot write the frame cache .*SPIKESCULPT_CACHE_DIR"):
        emulated_frames("t", x, y, DVSEmulator(**FAST), 2)
