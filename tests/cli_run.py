"""Run the ``spikesculpt`` command line in-process, as the CLI tests need it."""

from spikesculpt.cli.main import main


def run_cli(argv, capsys):
    """``(exit code, stderr lines, stdout)`` of ``spikesculpt *argv`` (argparse errors included)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines(), captured.out
