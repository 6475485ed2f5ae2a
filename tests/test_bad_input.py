"""Bad input that used to end in a traceback or be accepted silently (issue 11, item 9): now one
line on stderr naming the problem and the fix, exit status 2, nothing left behind.

In-process (``main(argv)``) for speed; the subprocess contract (no traceback, exit 2) of the same
code path is tested in test_train_cli.py.
"""

import os
import stat

import numpy as np
import pytest
from cli_run import run_cli

from spikesculpt.cli.main import main
from spikesculpt.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ["--epochs", "1", "--timesteps", "2", "--batch-size", "128", "--model-arg",
         "hidden=[16]", "--no-progress"]



@pytest.mark.parametrize("argv, word", [
    (["train", "--seed", "-1"], "seed must be an integer in 0..4294967295"),
    (["train", "--seed", str(2**70)], "seed must be an integer"),
    (["train", "--lr", "inf"], "lr must be a finite number"),
    (["train", "--lr", "nan"], "lr must be a finite number"),
    (["train", "--momentum", "5"], "momentum must be in [0, 1)"),
    (["train", "--weight-decay", "inf"], "weight_decay must be a finite number"),
    (["train", "--tau", "inf"], "tau must be a finite number"),
    (["train", "--density", "0.1"], "add --method esl"),
    (["train", "--method", "esl", "--gene-dim", "4"], "add --method genetic"),
    (["train", "--dense-last"], "--dense-last is an option"),
    (["train", "--compile", "fast"], "unknown compile mode 'fast'"),
    (["compare", "--methods", ""], "--methods names no method"),
    (["compare", "--methods", " , "], "--methods names no method"),
    (["compare", "--methods", "dense,genetic", "--density", "0.1"], "add --method esl"),
    (["lottery", "--gene-dim", "4"], "add --method genetic"),
    (["evolve", "--seed", "-3"], "seed must be an integer"),
])
def test_rejected_before_anything_runs(tmp_path, capsys, argv, word):
    code, err, _ = run_cli([*argv, "--runs-root", str(tmp_path / "runs")], capsys)
    assert code == 2 and len(err) == 1 and word in err[0], err
    assert not (tmp_path / "runs").exists()


def test_npz_labels_that_are_not_class_indices(tmp_path, capsys):
    """A label of 1e9 used to build a 1e9-way readout (a terabyte allocation)."""
    path = tmp_path / "ids.npz"
    y = np.arange(40) % 2
    y[-1] = 10**9
    np.savez(path, x=np.random.default_rng(0).random((40, 3)), y=y)
    code, err, _ = run_cli(["train", "--dataset", f"npz:{path}", *SMALL,
                            "--runs-root", str(tmp_path / "runs")], capsys)
    assert code == 2 and len(err) == 1 and "np.unique(y, return_inverse=True)" in err[0]


def test_an_unknown_dataset_leaves_no_runs_folder(tmp_path, capsys):
    """The run lock creates the run directory (and ``runs/``) before the data are read; a run
    that fails before its first checkpoint removes every folder it created."""
    code, err, _ = run_cli(["train", "--dataset", "nope", *SMALL,
                            "--runs-root", str(tmp_path / "runs")], capsys)
    assert code == 2 and len(err) == 1 and "nope" in err[0], err
    assert not (tmp_path / "runs").exists()
    (tmp_path / "kept").mkdir()  # a folder that existed before stays
    code, _, _ = run_cli(["train", "--dataset", "nope", *SMALL,
                          "--runs-root", str(tmp_path / "kept" / "runs")], capsys)
    assert code == 2 and (tmp_path / "kept").is_dir() and not any((tmp_path / "kept").iterdir())


@pytest.mark.parametrize("where", ["--out", "--runs-root"])
def test_unwritable_output_place_is_one_line(tmp_path, capsys, where):
    """A path that cannot be a folder (as a read-only file system or a file in the way): the
    OSError becomes one line naming the path."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, err, _ = run_cli(["train", *SMALL, where, str(blocker / "sub")], capsys)
    assert code == 2 and len(err) == 1 and str(blocker) in err[0], err
    assert "Traceback" not in "".join(err)


def test_read_only_file_system_message(tmp_path, capsys, monkeypatch):
    """EROFS (a read-only mount) as the runner meets it, from the first directory it creates."""
    import errno
    from pathlib import Path

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    code, err, _ = run_cli(["train", *SMALL, "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and len(err) == 1
    assert "Read-only file system" in err[0] and "choose a writable place" in err[0]


def test_out_of_memory_is_one_line_and_leaves_no_orphan(tmp_path, capsys, monkeypatch):
    """``--timesteps 100000`` asked the allocator for 26 GB: now one line, and no config.yaml
    of a run that never trained an epoch."""
    def allocate(self, epoch):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: "
                           "can't allocate memory: you tried to allocate 26214400000 bytes.")

    monkeypatch.setattr(Trainer, "train_epoch", allocate)
    out = tmp_path / "run"
    code, err, _ = run_cli(["train", *SMALL, "--out", str(out)], capsys)
    assert code == 2 and len(err) == 1 and "out of memory" in err[0] and "--timesteps" in err[0]
    assert not out.exists()


def test_other_runtime_errors_are_not_disguised(tmp_path, monkeypatch):
    def bug(self, epoch):
        raise RuntimeError("a real bug")

    monkeypatch.setattr(Trainer, "train_epoch", bug)
    with pytest.raises(RuntimeError, match="a real bug"):
        main(["train", *SMALL, "--out", str(tmp_path / "run")])


def test_show_data_never_overwrites_what_it_did_not_write(tmp_path, capsys):
    data = tmp_path / "data.npz"
    data.write_bytes(b"precious")
    code, err, _ = run_cli(["show-data", "digits", "--out", str(data)], capsys)
    assert code == 2 and len(err) == 1 and "PNG" in err[0]
    assert data.read_bytes() == b"precious"
    picture = tmp_path / "mine.png"
    picture.write_bytes(b"\x89PNG not ours")
    code, err, _ = run_cli(["show-data", "digits", "--out", str(picture)], capsys)
    assert code == 2 and "--force" in err[0] and picture.read_bytes() == b"\x89PNG not ours"
    code, err, _ = run_cli(["show-data", "digits", "--out", str(tmp_path)], capsys)
    assert code == 2 and len(err) == 1 and "is a folder" in err[0]
    # its own picture is rewritten without --force; another file with --force
    own = tmp_path / "digits.png"
    assert run_cli(["show-data", "digits", "--out", str(own)], capsys)[0] == 0
    assert run_cli(["show-data", "digits", "--out", str(own)], capsys)[0] == 0
    assert run_cli(["show-data", "digits", "--out", str(picture), "--force"], capsys)[0] == 0
    assert picture.read_bytes().startswith(b"\x89PNG\r\n")


def test_outputs_are_readable_like_any_new_file(tmp_path, capsys):
    """Files used to be created 0600 whatever the umask (tempfile.mkstemp)."""
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert run_cli(["train", *SMALL, "--out", str(out)], capsys)[0] == 0
    finally:
        os.umask(old)
    for name in ("config.yaml", "metrics.json", "history.csv", "model.safetensors",
                 "training_curves.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
