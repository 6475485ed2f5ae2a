"""The README's first command: the `spikesculpt` part of it runs as written (same flags), only
shrunk (fewer samples and epochs, one worker) so that CI can afford it, and ends with the
path of the report it wrote (issue 13, item 5)."""

import re
import shlex
from pathlib import Path

from cli_run import run_cli

README = Path(__file__).resolve().parents[1] / "README.md"
SHRINK = ["--dataset", "mnist1d:samples=600", "--epochs", "2", "--workers", "1"]


def first_command() -> list[str]:
    """The arguments after ``.venv/bin/spikesculpt`` in the README's first bash block."""
    block = re.search(r"```bash\n(.*?)\n```", README.read_text(encoding="utf-8"), re.S).group(1)
    line = next(part for part in block.split("&&") if ".venv/bin/spikesculpt" in part)
    words = shlex.split(line)
    return words[words.index(".venv/bin/spikesculpt") + 1:]


def test_readme_main_job_runs_and_ends_with_its_report(one_thread, tmp_path, capsys, monkeypatch):
    argv = first_command()
    assert argv[0] == "sweep" and "--out" in argv, argv
    out = Path(argv[argv.index("--out") + 1])
    monkeypatch.chdir(tmp_path)              # --out is relative: the sweep lands in tmp_path
    code, err, stdout = run_cli([*argv, *SHRINK, "--no-progress"], capsys)
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert lines[-1] == f"report: {out / 'report.html'}"
    report = (tmp_path / out / "report.md").read_text(encoding="utf-8")
    for method in argv[argv.index("--methods") + 1].split(","):
        assert f"| {method} |" in report
    assert "dense (same connections)" in report      # the control the main job shows
    assert (tmp_path / out / "report.html").stat().st_size > 10_000  # figures embedded
