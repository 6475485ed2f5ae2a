"""Run the ``spikesculpt`` command line in-process, as the CLI tests need it."""

import contextlib
import io

import torch

from spikesculpt.cli.main import main


def run_cli(argv, capsys):
    """``(exit code, stderr lines, stdout)`` of ``spikesculpt *argv`` (argparse errors included)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines(), captured.out


def assert_sweep_refused(argv, word, tmp_path, capsys):
    """``spikesculpt sweep *argv`` exits 2 with one line naming ``word`` and writes nothing."""
    out = tmp_path / "sweep"
    code, err, _ = run_cli(["sweep", *argv, "--epochs", "1", "--out", str(out)], capsys)
    assert code == 2 and len(err) == 1 and word in err[0], err
    assert not out.exists()


def assert_grid_refused(text, word, tmp_path, capsys):
    """A sweep from the grid file ``text`` exits 2 with one line naming ``word``, writes nothing."""
    grid = tmp_path / "grid.yaml"
    grid.write_text(text)
    out = tmp_path / "sweep"
    code, err, _ = run_cli(["sweep", "--grid", str(grid), "--out", str(out)], capsys)
    assert code == 2 and len(err) == 1 and word in err[0], err
    assert not out.exists()


def sweep_at_one_thread(argv, out):
    """``spikesculpt sweep *argv --out out`` in-process with one torch thread (module-scoped
    fixtures cannot use ``one_thread``); returns what it printed. Fails if it did not exit 0."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            code = main(["sweep", *argv, "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return printed.getvalue()
