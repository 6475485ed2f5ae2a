"""End-to-end: training runs, run directories, resume, evaluate, and the CLI's bad-input contract."""

import json
import os
import subprocess
import sys

import pytest
import torch
from cli_run import run_cli
from safetensors.torch import load_file

from spikesculpt.cli.main import main
from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.rundir import config_hash
from spikesculpt.experiments.train_run import evaluate_run, run_training
from spikesculpt.train.trainer import Trainer

CONTRACT_KEYS = {"test_accuracy", "val_accuracy", "epochs", "timesteps", "seed", "dataset", "model",
                 "method", "train_seconds", "params_total", "params_prunable", "nonzero_prunable",
                 "density", "layers", "firing_rate", "config_hash"}


def small_config(**overrides) -> TrainConfig:
    cfg = TrainConfig(epochs=2, timesteps=2, batch_size=128, model_kwargs={"hidden": [32]})
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def test_train_writes_the_documented_outputs(tmp_path):
    cfg = small_config()
    result = run_training(cfg, out=str(tmp_path / "run"), progress=False)
    run = result.run_dir
    for name in ("config.yaml", "metrics.json", "history.csv", "model.safetensors",
                 "training_curves.png"):
        assert (run.path / name).is_file(), name
    assert not run.checkpoint_path.exists()
    metrics = json.loads(run.metrics_path.read_text())
    assert CONTRACT_KEYS <= set(metrics)
    assert 0 <= metrics["test_accuracy"] <= 1 and 0 <= metrics["val_accuracy"] <= 1
    assert metrics["method"] == "dense" and metrics["config_hash"] == config_hash(cfg)
    assert 0 < metrics["firing_rate"] < 1
    # the contract's density and layers agree with the saved weights
    state = load_file(str(run.model_path))
    names = [layer["name"] for layer in metrics["layers"]]
    assert names and all(name in state for name in names)
    total = sum(state[n].numel() for n in names)
    nonzero = sum(int((state[n] != 0).sum()) for n in names)
    assert metrics["params_prunable"] == total and metrics["nonzero_prunable"] == nonzero
    assert metrics["density"] == pytest.approx(nonzero / total)
    rows = run.history_path.read_text().strip().splitlines()
    assert rows[0].split(",")[:3] == ["epoch", "train_loss", "train_accuracy"]
    assert len(rows) == 1 + cfg.epochs


def test_rerunning_a_finished_config_does_nothing(tmp_path):
    cfg = small_config(epochs=1)
    first = run_training(cfg, out=str(tmp_path / "run"), progress=False)
    mtime = first.run_dir.model_path.stat().st_mtime_ns
    again = run_training(small_config(epochs=1), out=str(tmp_path / "run"), progress=False)
    assert again.status == "already-finished"
    assert again.metrics == first.metrics
    assert first.run_dir.model_path.stat().st_mtime_ns == mtime


def test_default_run_dir_is_named_by_hash(tmp_path):
    cfg = small_config(epochs=1)
    result = run_training(cfg, runs_root=str(tmp_path), progress=False)
    assert result.run_dir.path.parent == tmp_path
    assert result.run_dir.path.name.endswith(config_hash(cfg))


def test_other_config_in_the_same_dir_is_refused_and_kept(tmp_path):
    out = tmp_path / "run"
    run_training(small_config(epochs=1), out=str(out), progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(UserError, match="another config"):
        run_training(small_config(epochs=1, seed=5), out=str(out), progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_replays_exactly_the_uninterrupted_run(tmp_path, monkeypatch):
    full = run_training(small_config(epochs=3), out=str(tmp_path / "full"), progress=False)

    original = Trainer.train_epoch

    def interrupted(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_training(small_config(epochs=3), out=str(tmp_path / "cut"), progress=False)
    cut = tmp_path / "cut"
    assert (cut / "checkpoint.pt").is_file() and not (cut / "metrics.json").exists()
    with pytest.raises(UserError, match="--resume"):
        run_training(small_config(epochs=3), out=str(cut), progress=False)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    resumed = run_training(small_config(epochs=3), out=str(cut), resume=True, progress=False)
    assert resumed.status == "resumed"
    a, b = load_file(str(full.run_dir.model_path)), load_file(str(cut / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for key in ("test_accuracy", "val_accuracy", "best_epoch", "firing_rate"):
        assert resumed.metrics[key] == full.metrics[key]


def test_corrupt_checkpoint_is_a_user_error(tmp_path, monkeypatch):
    original = Trainer.train_epoch

    def interrupted(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_training(small_config(), out=str(tmp_path / "run"), progress=False)
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    monkeypatch.setattr(Trainer, "train_epoch", original)
    with pytest.raises(UserError, match="corrupt"):
        run_training(small_config(), out=str(tmp_path / "run"), resume=True, progress=False)


def test_evaluate_recomputes_the_stored_metrics(tmp_path):
    result = run_training(small_config(), out=str(tmp_path / "run"), progress=False)
    again = evaluate_run(tmp_path / "run")
    for key in ("test_accuracy", "val_accuracy", "firing_rate", "density", "params_prunable"):
        assert again[key] == pytest.approx(result.metrics[key])


def test_cli_train_list_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--epochs", "1", "--timesteps", "2", "--model-arg", "hidden=[16]",
                 "--out", str(out), "--no-progress", "--surrogate", "sigmoid", "--soft-reset"])
    assert code == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text and "firing rate" in text
    cfg = (out / "config.yaml").read_text()
    assert "surrogate: sigmoid" in cfg and "v_reset: null" in cfg
    assert main(["evaluate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["density"] == 1.0
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    for word in ("models:", "mlp", "digits", "lif", "atan", "dense"):
        assert word in listing


def test_yaml_config_is_overlaid_by_flags(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("epochs: 1\ntimesteps: 3\nmodel_kwargs: {hidden: [8]}\n"
                                     "neuron: {tau: 3.0}\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--timesteps", "2",
                 "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["timesteps"] == 2 and metrics["epochs"] == 1
    assert "tau: 3.0" in (out / "config.yaml").read_text()


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "spikesculpt", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("args, word", [
    (["train", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["train", "--model", "nope"], "unknown model 'nope'"),
    (["train", "--neuron", "nope"], "unknown neuron 'nope'"),
    (["train", "--surrogate", "nope"], "unknown surrogate 'nope'"),
    (["train", "--method", "nope"], "unknown method 'nope'"),
    (["train", "--epochs", "0"], "positive integer"),
    (["train", "--timesteps", "-2"], "positive integer"),
    (["train", "--batch-size", "0"], "positive integer"),
    (["train", "--dataset", "npz:missing.npz"], "missing.npz"),
    (["train", "--config", "missing.yaml"], "missing.yaml"),
    (["train", "--config", "bad.yaml"], "bad.yaml"),
    (["evaluate", "no_such_run"], "no_such_run"),
    (["evaluate", "broken_run"], "model.safetensors"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, word, capsys, monkeypatch):
    """In-process (the entry point exits with ``main``'s code); the test below runs one bad input
    through a real process."""
    (tmp_path / "bad.yaml").write_text("epochs: [unclosed\n")
    (tmp_path / "broken_run").mkdir()
    (tmp_path / "broken_run" / "config.yaml").write_text(
        "config_hash: abc\nconfig: {epochs: 1}\n")
    (tmp_path / "broken_run" / "model.safetensors").write_bytes(b"\x00garbage")
    monkeypatch.chdir(tmp_path)
    code, err, _ = run_cli([*args, "--no-progress" if args[0] == "train" else "--json"], capsys)
    assert code == 2 and len(err) == 1 and word in err[0], err


def test_bad_input_in_a_real_process_is_one_line_exit_2(tmp_path):
    """The installed entry point: exit status 2, one line on stderr, no traceback, no run."""
    proc = _cli("train", "--dataset", "nope", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown dataset 'nope'" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not any(p.is_file() for p in (tmp_path / "runs").rglob("*"))   # no file written


def test_failed_run_leaves_existing_outputs_intact(tmp_path):
    out = tmp_path / "run"
    run_training(small_config(epochs=1), out=str(out), progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = _cli("train", "--epochs", "1", "--timesteps", "2", "--model-arg", "hidden=[32]",
                "--batch-size", "128", "--model", "nope", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
