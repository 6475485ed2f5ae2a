"""What a newcomer meets first (issue 11, item 10): the test command's summary line, help with
defaults, complete listings, one line per epoch in logs, plots that say what they draw."""

from pathlib import Path

import pytest
import torch

from spikesculpt.cli.main import build_parser, main
from spikesculpt.config import TrainConfig
from spikesculpt.neurons import NEURONS, SURROGATES

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_test_command_prints_its_passed_line():
    """``pytest -q`` plus ``addopts = "-q"`` is ``-qq``, which drops the "N passed" line."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[tool.pytest.ini_options]", 1)[1].split("\n[", 1)[0]
    assert "-q" not in section


def _help(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return " ".join(sub.choices[command].format_help().split())


def test_train_help_shows_defaults_from_the_config():
    text = _help("train")
    defaults = TrainConfig()
    assert f"training epochs (default: {defaults.epochs})" in text
    assert f"(default: {defaults.lr})" in text and "(default: the method's own)" in text
    for name in SURROGATES.names() + NEURONS.names():
        assert name in text  # e.g. fast_sigmoid was missing from --surrogate
    assert "(default: 0.25)" in _help("lottery") and "(default: 8)" in _help("evolve")


def test_list_prints_whole_summaries(capsys):
    assert main(["list", "neurons"]) == 0
    plif = next(line for line in capsys.readouterr().out.splitlines()
                if line.strip().startswith("plif"))
    assert plif.rstrip().endswith('Spiking Neural Networks").')


def test_one_line_per_epoch_when_not_on_a_terminal(tmp_path, capsys):
    code = main(["train", "--epochs", "2", "--timesteps", "2", "--batch-size", "256",
                 "--model-arg", "hidden=[16]", "--out", str(tmp_path / "run")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert all("val loss" in line and "acc" in line for line in epochs)
    main(["train", "--epochs", "1", "--timesteps", "2", "--batch-size", "256", "--model-arg",
          "hidden=[16]", "--out", str(tmp_path / "quiet"), "--no-progress"])
    assert not [line for line in capsys.readouterr().out.splitlines()
                if line.startswith("epoch ")]


def test_turnover_cumulative_series_never_falls():
    from spikesculpt.methods import create_method
    from spikesculpt.methods.dynamic.report import cumulative_regrown_fraction

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 30), torch.nn.ReLU(), torch.nn.Linear(30, 5))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    method = create_method("set", density=0.3, update_every=2)
    method.prepare_model(model)
    method.attach(model, opt, total_steps=40)
    x, y = torch.randn(64, 20), torch.randint(0, 5, (64,))
    for _ in range(40):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    series = cumulative_regrown_fraction(method)
    assert len(series) == len(method.updates) > 5
    assert all(b >= a for a, b in zip(series, series[1:])) and series[-1] > 0
