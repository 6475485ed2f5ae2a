"""Native event datasets: tiny files written in the real formats, read through the user's path
(``load_dataset`` / ``spikesculpt train --data-root``), and the bad-input contract."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from cli_run import run_cli
from event_files import (
    AEDAT3_HEADER,
    DVS128_SYNC,
    JAER_SPECIAL,
    aedat2_bytes,
    aedat2_words_bytes,
    aedat3_packet,
    davis_aps_address,
    davis_dvs_address,
    davis_imu_addresses,
    write_gesture,
    write_nmnist,
    write_shd,
)

from spikesculpt.cli.main import main
from spikesculpt.core.errors import UserError
from spikesculpt.data import load_dataset
from spikesculpt.data.sets.cifar10dvs import read_aedat2_dvs128


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKESCULPT_CACHE_DIR", str(tmp_path / "cache"))


def _frames_of(splits, split):
    ds = getattr(splits, split)
    return ds.tensors if hasattr(ds, "tensors") else None


# --------------------------------------------------------------------------------------- N-MNIST
def nmnist_files():
    files = {}
    for d in (0, 1):
        for k in range(3):
            # digit d: events at x = d, y = k, times 0 .. 300 us; one OFF event
            files[f"Train/{d}/{k:05d}.bin"] = [(d, k, 1, 0), (d, k, 1, 100), (d, k, 0, 300)]
        files[f"Test/{d}/{d:05d}.bin"] = [(5, 6, 1, 0), (7, 8, 0, 50), ("overflow",),
                                          (9, 10, 1, 10)]
    return files


@pytest.mark.parametrize("as_zip", [False, True])
def test_nmnist_folder_and_zip_read_exactly(tmp_path, as_zip):
    write_nmnist(tmp_path, nmnist_files(), as_zip=as_zip)
    s = load_dataset("nmnist", seed=0, data_root=str(tmp_path), timesteps=2)
    assert s.info.kind == "frames" and s.info.input_shape == (2, 34, 34)
    assert s.info.timesteps == 2 and s.info.num_classes == 10
    assert len(s.train) + len(s.val) == 6 and len(s.test) == 2
    x, y = s.test.tensors
    assert x.shape == (2, 2, 2, 34, 34) and y.tolist() == [0, 1]
    # test recording: ON (5,6)@0, OFF (7,8)@50, overflow marker (+8192 us), ON (9,10)@10+8192;
    # window [0, 8203): bin = t*2 // 8203 -> 0, 0, 1
    want = torch.zeros(2, 2, 34, 34)
    want[0, 1, 6, 5] = 1
    want[0, 0, 8, 7] = 1
    want[1, 1, 10, 9] = 1
    assert torch.equal(x[0], want) and torch.equal(x[1], want)
    tx, ty = torch.cat([s.train.tensors[0], s.val.tensors[0]]), \
        torch.cat([s.train.tensors[1], s.val.tensors[1]])
    for frames, label in zip(tx, ty):
        d = int(label)
        assert frames.sum() == 3 and frames[:, :, :, d].sum() == 3  # all events at x = d
        assert frames[1, 0].sum() == 1  # the OFF event at 300 us is in the second half


def test_nmnist_count_binning_and_pooling(tmp_path):
    write_nmnist(tmp_path, nmnist_files())
    s = load_dataset("nmnist:size=17,bins=count", seed=0, data_root=str(tmp_path), timesteps=3)
    x, _ = s.test.tensors
    assert x.shape == (2, 3, 2, 17, 17)
    want = torch.zeros(3, 2, 17, 17)   # one event per frame; pixel (x, y) -> (x // 2, y // 2)
    want[0, 1, 3, 2] = 1
    want[1, 0, 4, 3] = 1
    want[2, 1, 5, 4] = 1
    assert torch.equal(x[0], want)


def test_nmnist_bad_files_name_the_file(tmp_path):
    files = nmnist_files()
    base = write_nmnist(tmp_path, files)
    bad = base / "Train/1/00002.bin"
    bad.write_bytes(bad.read_bytes()[:-2])
    with pytest.raises(UserError, match=r"00002\.bin is truncated"):
        load_dataset("nmnist", seed=0, data_root=str(tmp_path), timesteps=2)
    files["Train/1/00002.bin"] = [(40, 3, 1, 0)]  # x = 40 on a 34-pixel sensor
    write_nmnist(tmp_path, files)
    with pytest.raises(UserError, match=r"00002\.bin: event 0 has x=40 outside the sensor"):
        load_dataset("nmnist", seed=0, data_root=str(tmp_path), timesteps=2)


def test_missing_root_and_wrong_layout_say_what_is_expected(tmp_path):
    for name in ("nmnist", "cifar10-dvs", "dvs128-gesture", "shd"):
        with pytest.raises(UserError, match="--data-root"):
            load_dataset(name, seed=0, timesteps=2)
        with pytest.raises(UserError, match="expected"):
            load_dataset(name, seed=0, data_root=str(tmp_path), timesteps=2)
    with pytest.raises(UserError, match="not a folder"):
        load_dataset("nmnist", seed=0, data_root=str(tmp_path / "nope"), timesteps=2)


# ----------------------------------------------------------------------------------- CIFAR10-DVS
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")


def write_cifar10dvs(root, zipped=("bird", "ship")):
    import zipfile
    base = root / "CIFAR10-DVS"
    for label, cls in enumerate(CLASSES):
        members = {}
        for i in (1, 9, 10):  # numeric order 1 < 9 < 10: the last 10% (ceil 0.3 = 1) is _10
            # raw DVS128 event: x_raw = label, y_raw = i, ON, then OFF 100 us later
            members[f"{cls}/cifar10_{cls}_{i}.aedat"] = aedat2_bytes(
                [(label, i, 1, 1000), (label, i, 0, 1100)])
        if cls in zipped:
            base.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(base / f"{cls}.zip", "w") as z:
                for name, data in members.items():
                    z.writestr(name, data)
        else:
            for name, data in members.items():
                (base / name).parent.mkdir(parents=True, exist_ok=True)
                (base / name).write_bytes(data)
    return base


def test_cifar10dvs_split_orientation_and_archives(tmp_path):
    write_cifar10dvs(tmp_path)
    s = load_dataset("cifar10-dvs", seed=0, data_root=str(tmp_path), timesteps=1)
    assert s.info.input_shape == (2, 128, 128) and s.info.num_classes == 10
    assert len(s.test) == 10 and len(s.train) + len(s.val) == 20
    x, y = s.test.tensors
    assert y.tolist() == list(range(10))
    for label in range(10):
        # test recording = cifar10_<cls>_10: x = 127 - y_raw = 117, y = 127 - x_raw,
        # p = 1 - p_raw: the raw ON event is OFF (channel 0) and vice versa
        frame = x[label, 0]
        assert frame.sum() == 2
        assert frame[0, 127 - label, 117] == 1 and frame[1, 127 - label, 117] == 1
    # test=first: the first 10% (recording _1) is the test split
    f = load_dataset("cifar10-dvs:test=first,size=32", seed=0, data_root=str(tmp_path),
                     timesteps=1)
    xf, _ = f.test.tensors
    assert xf.shape == (10, 1, 2, 32, 32)
    assert xf[0, 0, :, (127 - 0) * 32 // 128, (127 - 1) * 32 // 128].tolist() == [1.0, 1.0]


def test_cifar10dvs_truncated_and_aedat4_files(tmp_path):
    base = write_cifar10dvs(tmp_path, zipped=())
    bad = base / "cat/cifar10_cat_9.aedat"
    bad.write_bytes(bad.read_bytes()[:-3])
    with pytest.raises(UserError, match=r"cifar10_cat_9\.aedat is truncated"):
        load_dataset("cifar10-dvs", seed=0, data_root=str(tmp_path), timesteps=1)
    bad.write_bytes(b"#!AER-DAT4.0\r\n" + b"\x00" * 40)
    with pytest.raises(UserError, match="AEDAT 4"):
        load_dataset("cifar10-dvs", seed=0, data_root=str(tmp_path), timesteps=1)


def test_corrupt_zip_names_the_archive(tmp_path):
    base = write_cifar10dvs(tmp_path, zipped=("dog",))
    (base / "dog.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UserError, match=r"dog\.zip is not a readable zip"):
        load_dataset("cifar10-dvs", seed=0, data_root=str(tmp_path), timesteps=1)


# ------------------------------------------------- AEDAT 2.0: the camera, special events, time
DAVIS240C = "eu.seebetter.ini.chips.davis.DAVIS240C"


def davis240c_words():
    """A DAVIS240C recording in jAER's DAVIS address layout: DVS events over the 240x180 array,
    two APS (frame) ADC samples and one IMU sample (7 words)."""
    dvs = [(0, 0, 1), (239, 179, 0), (120, 90, 1), (5, 0, 0)]
    words = [(davis_dvs_address(x, y, p), 10 * k) for k, (x, y, p) in enumerate(dvs)]
    words += [(davis_aps_address(x, y, 1, 512), 100) for x, y in ((0, 0), (239, 179))]
    return words + [(a, 200) for a in davis_imu_addresses([100, -200, 8192, 300, 1, -2, 3])]


def test_aedat2_refuses_a_davis_recording():
    by_header = r"rec\.aedat was recorded by {} \(header line '# AEChip: {}'\)"
    by_bits = r"rec\.aedat holds addresses a DVS128 never writes .* x 0\.\.239, y 0\.\.179"
    for chip, message in ((DAVIS240C, by_header.format("DAVIS240C", re.escape(DAVIS240C))),
                          ("Davis240C", by_header.format("Davis240C", "Davis240C")),
                          (None, by_bits), ("ch.unizh.ini.jaer.chip.retina.DVS128", by_bits)):
        data = aedat2_words_bytes(davis240c_words(), chip)
        with pytest.raises(UserError, match=message) as info:
            read_aedat2_dvs128(data, "rec.aedat")
        text = str(info.value)
        assert "CIFAR10-DVS recordings come from a DVS128 (128x128" in text, text
        assert "original CIFAR10-DVS file" in text and "\n" not in text, text


def test_cli_refuses_a_davis_recording_in_cifar10dvs_one_line_exit_2(tmp_path, capsys,
                                                                     monkeypatch):
    base = write_cifar10dvs(tmp_path / "data", zipped=())
    (base / "cat/cifar10_cat_9.aedat").write_bytes(aedat2_words_bytes(davis240c_words(),
                                                                      DAVIS240C))
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--dataset", "cifar10-dvs", "--data-root", str(tmp_path / "data"),
                 "--timesteps", "1", "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "cifar10_cat_9.aedat was recorded by DAVIS240C" in lines[0], lines[0]
    assert "come from a DVS128" in lines[0], lines[0]


@pytest.mark.parametrize("chip", ["ch.unizh.ini.jaer.chip.retina.DVS128",
                                  "ch.unizh.ini.jaer.chip.retina.Tmpdiff128", None])
def test_aedat2_dvs128_skips_special_events(chip):
    def event(x, y, p, t):
        return (y << 8) | (x << 1) | p, t
    words = [event(3, 4, 0, 10), (DVS128_SYNC, 15), event(127, 0, 1, 20),
             (JAER_SPECIAL | DVS128_SYNC, 25), (JAER_SPECIAL | event(5, 5, 1, 0)[0], 26),
             event(0, 127, 1, 30), (DVS128_SYNC | event(9, 9, 1, 0)[0], 35)]
    ev = read_aedat2_dvs128(aedat2_words_bytes(words, chip), "rec.aedat")
    # the three DVS events only, turned upright: x = 127 - y_raw, y = 127 - x_raw, p = 1 - p_raw
    assert ev["t"].tolist() == [10, 20, 30]
    assert ev["x"].tolist() == [123, 127, 0] and ev["y"].tolist() == [124, 0, 127]
    assert ev["p"].tolist() == [1, 0, 0]


def test_aedat2_timestamps_wrap_and_stay_monotonic():
    # jAER's int32 us counter, written modulo 2^32: it passes 2^31 (int32 -> negative) and 2^32
    # (-> 0 again); a recording may also start at a negative int32 time
    for true in ([2**31 - 1000, 2**31 + 1000, 2**32 - 1000, 2**32 + 2000, 2**32 + 2**31 + 7],
                 [-1000, 2000, 2**31 + 5]):
        data = aedat2_bytes([(k, 1, 1, t) for k, t in enumerate(true)])
        ev = read_aedat2_dvs128(data, "rec.aedat")
        assert ev["t"].tolist() == true
        assert (np.diff(ev["t"]) > 0).all() and ev["y"].tolist() == [127 - k for k in
                                                                     range(len(true))]


# --------------------------------------------------------------------------------- DVS128 Gesture
def gesture_trials():
    def recording(user):
        # segment 1 (class 1, t in [0, 1000)): 3 events at pixel (user, 1); segment 2 (class 2,
        # [1000, 3000)): 2 events at (user, 2), the second after a timestamp overflow
        first = aedat3_packet([(user, 1, 1, 10), (user, 1, 0, 20), (user, 1, 1, 900)])
        other = aedat3_packet([(0, 0, 0, 5)], event_type=0)  # a special-event packet: skipped
        second = aedat3_packet([(user, 2, 1, 1500)])
        return AEDAT3_HEADER + first + other + second

    rows = [(1, 0, 1000), (2, 1000, 3000)]
    return {f"user{u:02d}_led": (recording(u), rows) for u in (1, 2, 3, 4, 5)}


@pytest.mark.parametrize("archive", [False, True])
def test_dvs128_gesture_segments_and_split(tmp_path, archive):
    trials = gesture_trials()
    write_gesture(tmp_path, trials, ["user01_led", "user02_led", "user03_led", "user04_led"],
                  ["user05_led"], archive=archive)
    s = load_dataset("dvs128-gesture", seed=0, data_root=str(tmp_path), timesteps=1)
    assert s.info.input_shape == (2, 128, 128) and s.info.num_classes == 11
    assert len(s.train) + len(s.val) == 8 and len(s.test) == 2
    x, y = s.test.tensors
    assert y.tolist() == [0, 1]
    assert x[0, 0, 1, 1, 5] == 2 and x[0, 0, 0, 1, 5] == 1 and x[0].sum() == 3
    assert x[1, 0, 1, 2, 5] == 1 and x[1].sum() == 1


def test_dvs128_overflow_outside_sensor_and_truncation(tmp_path):
    trials = gesture_trials()
    data, rows = trials["user05_led"]
    # a packet with overflow 1: t = 2^31 + 7, beyond every labelled segment -> dropped
    trials["user05_led"] = (data + aedat3_packet([(5, 3, 1, 7)], overflow=1), rows)
    write_gesture(tmp_path, trials, ["user01_led", "user02_led", "user03_led", "user04_led"],
                  ["user05_led"])
    s = load_dataset("dvs128-gesture", seed=0, data_root=str(tmp_path), timesteps=1)
    assert s.test.tensors[0].sum() == 4
    trials["user05_led"] = (data + aedat3_packet([(130, 3, 1, 7)]), rows)
    write_gesture(tmp_path, trials, ["user01_led"], ["user05_led"])
    with pytest.raises(UserError, match=r"user05_led\.aedat: event 4 has x=130 outside"):
        load_dataset("dvs128-gesture", seed=0, data_root=str(tmp_path), timesteps=1)
    trials["user05_led"] = (data[:-5], rows)
    write_gesture(tmp_path, trials, ["user01_led"], ["user05_led"])
    with pytest.raises(UserError, match=r"user05_led\.aedat is truncated"):
        load_dataset("dvs128-gesture", seed=0, data_root=str(tmp_path), timesteps=1)


# -------------------------------------------------------------------------------------------- SHD
def shd_recordings(labels, offset=0):
    recs = []
    for i, label in enumerate(labels):
        # spikes of channel 10 * label at 10 ms and 500 ms, channel 699 at 990 ms
        recs.append(([0.010, 0.500, 0.990], [10 * label, 10 * label, 699], label))
    return recs


@pytest.mark.parametrize("gz", [False, True])
def test_shd_hdf5_frames_are_flat_features(tmp_path, gz):
    base = tmp_path / "SHD"
    base.mkdir()
    write_shd(base / ("shd_train.h5.gz" if gz else "shd_train.h5"),
              shd_recordings([0, 0, 1, 1, 2, 2]), gz=gz)
    write_shd(base / ("shd_test.h5.gz" if gz else "shd_test.h5"), shd_recordings([1, 2]), gz=gz)
    s = load_dataset("shd", seed=0, data_root=str(tmp_path), timesteps=2)
    assert s.info.input_shape == (700,) and s.info.image_size is None
    assert s.info.num_classes == 20
    x, y = s.test.tensors
    assert x.shape == (2, 2, 700) and y.tolist() == [1, 2]
    # window [0, 991 ms) (the last spike + 1 us, rounded up): 10 ms -> frame 0, 500 and 990 -> 1
    assert x[0, 0, 10] == 1 and x[0, 1, 10] == 1 and x[0, 1, 699] == 1 and x[0].sum() == 3
    p = load_dataset("shd:channels=70,duration_ms=600", seed=0, data_root=str(tmp_path),
                     timesteps=2)
    xp, _ = p.test.tensors
    # window [0, 600 ms): the 990 ms spike is dropped; channel 10 -> 10 * 70 // 700 = 1
    assert xp.shape == (2, 2, 70) and xp[0, 0, 1] == 1 and xp[0, 1, 1] == 1 and xp[0].sum() == 2


def test_shd_bad_files(tmp_path):
    base = tmp_path / "SHD"
    base.mkdir()
    write_shd(base / "shd_train.h5", shd_recordings([0, 0, 1, 1]))
    write_shd(base / "shd_test.h5", [([0.1], [700], 1)])
    with pytest.raises(UserError, match=r"shd_test\.h5 \(recording 0\): event 0 has x=700"):
        load_dataset("shd", seed=0, data_root=str(tmp_path), timesteps=2)
    (base / "shd_test.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(UserError, match=r"shd_test\.h5 cannot be read as SHD HDF5"):
        load_dataset("shd", seed=0, data_root=str(tmp_path), timesteps=2)


# -------------------------------------------------------------------------------- CLI, end to end
def test_cli_trains_on_each_native_format(tmp_path, capsys):
    write_nmnist(tmp_path / "n", nmnist_files())
    write_cifar10dvs(tmp_path / "c")
    write_gesture(tmp_path / "g", gesture_trials(), ["user01_led", "user02_led", "user03_led",
                                                      "user04_led"], ["user05_led"])
    (tmp_path / "s" / "SHD").mkdir(parents=True)
    write_shd(tmp_path / "s/SHD/shd_train.h5", shd_recordings([0, 0, 1, 1, 2, 2]))
    write_shd(tmp_path / "s/SHD/shd_test.h5", shd_recordings([1, 2]))
    runs = [("nmnist", "n", "conv"), ("cifar10-dvs:16", "c", "conv"),
            ("dvs128-gesture:16", "g", "conv"), ("shd", "s", "mlp")]
    for dataset, folder, model in runs:
        out = tmp_path / f"run-{folder}"
        code = main(["train", "--dataset", dataset, "--data-root", str(tmp_path / folder),
                     "--model", model, "--epochs", "1", "--timesteps", "2", "--batch-size", "4",
                     "--out", str(out), "--no-progress"])
        assert code == 0, dataset
        assert (out / "metrics.json").is_file()
    assert "test accuracy" in capsys.readouterr().out


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "spikesculpt", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def test_cli_bad_event_input_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    files = nmnist_files()
    base = write_nmnist(tmp_path / "data", files)
    (base / "Train/0/00001.bin").write_bytes(b"\x01\x02\x03")
    cases = [(["--dataset", "nmnist"], "--data-root"),
             (["--dataset", "nmnist", "--data-root", str(tmp_path)], "expected N-MNIST"),
             (["--dataset", "nmnist", "--data-root", str(tmp_path / "data")],
              "00001.bin is truncated"),
             (["--dataset", "digits-dvs:thresold=0.3"], "unknown option 'thresold'"),
             (["--dataset", "digits-dvs", "--timesteps", "0"], "positive integer")]
    for i, (args, word) in enumerate(cases):
        argv = ["train", *args, "--no-progress", "--epochs", "1"]
        if i == 2:   # one case through the real entry point: exit 2, one line, no traceback
            proc = _cli(*argv, cwd=tmp_path)
            code, lines = proc.returncode, proc.stderr.strip().splitlines()
            assert "Traceback" not in proc.stderr, proc.stderr
        else:        # the others in-process (the entry point exits with main's code)
            monkeypatch.chdir(tmp_path)
            code, lines, _ = run_cli(argv, capsys)
        assert code == 2, (args, lines)
        assert len(lines) == 1 and word in lines[0], (word, lines)


def test_frames_t_must_be_positive():
    from spikesculpt.data.events.frames import events_to_frames
    from spikesculpt.data.events.stream import empty_events
    for bad in (0, -3):
        with pytest.raises(UserError, match="positive number of time steps"):
            events_to_frames(empty_events(), (34, 34, 2), bad)
        with pytest.raises(UserError, match="positive number of time steps"):
            load_dataset("digits-dvs", seed=0, timesteps=bad)
    assert np.all(events_to_frames(empty_events(), (4, 3, 2), 5) == 0)


def test_memory_mapped_path_matches_and_trains(tmp_path, monkeypatch, capsys):
    write_nmnist(tmp_path, nmnist_files())
    dense = load_dataset("nmnist", seed=0, data_root=str(tmp_path), timesteps=2)
    monkeypatch.setenv("SPIKESCULPT_FRAMES_IN_MEMORY_GB", "0")   # as for data beyond memory
    mapped = load_dataset("nmnist", seed=0, data_root=str(tmp_path), timesteps=2)
    assert not hasattr(mapped.test, "tensors") and len(mapped.test) == 2
    for split in ("train", "val", "test"):
        a, b = getattr(dense, split), getattr(mapped, split)
        xb = torch.stack([b[i][0] for i in range(len(b))])
        yb = torch.stack([b[i][1] for i in range(len(b))])
        assert torch.equal(a.tensors[0], xb) and torch.equal(a.tensors[1], yb)
    assert mapped.test.targets.tolist() == [0, 1]
    out = tmp_path / "run"
    assert main(["train", "--dataset", "nmnist", "--data-root", str(tmp_path), "--model", "conv",
                 "--epochs", "1", "--timesteps", "2", "--batch-size", "4", "--augment", "shift",
                 "--out", str(out), "--no-progress"]) == 0
    assert main(["show-data", "nmnist", "--data-root", str(tmp_path), "--timesteps", "2",
                 "--out", str(tmp_path / "n.png")]) == 0
    assert (tmp_path / "n.png").read_bytes()[:4] == b"\x89PNG"
