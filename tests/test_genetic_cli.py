"""``spikesculpt train --method genetic`` and ``spikesculpt evolve`` end to end, bad input."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from spikesculpt.cli.main import main
from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.rundir import config_hash
from spikesculpt.experiments.train_run import evaluate_run, run_training
from spikesculpt.methods import create_method
from spikesculpt.methods.genetic import gene_layers
from spikesculpt.models import create_model
from spikesculpt.train.trainer import Trainer

SMALL = ["--epochs", "1", "--timesteps", "2", "--batch-size", "128",
         "--model-arg", "hidden=[24]", "--no-progress"]


def test_train_genetic_metrics_and_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--method", "genetic", "--gene-dim", "4", "--keep-last", *SMALL,
                 "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    # issue 11 item 10: no "density 1.000 (0/0 prunable weights)" for an encoded network
    text = capsys.readouterr().out
    size = f"{m['params_total']:,} parameters, {m['params_plain']:,} with plain weights"
    assert size in text and "compression" in text and "density" not in text
    g, n_in, h, k = 4, 64, 24, 10
    plain = n_in * h + h + h * k + k
    total = g * (n_in + h) + g * g + h + h * k + k       # readout kept plain
    assert m["params_total"] == total and m["params_plain"] == plain
    assert m["compression"] == pytest.approx(1 - total / plain)
    assert m["gene_dim"] == 4 and [e["name"] for e in m["encoded_layers"]] == ["hidden.0.fc"]
    assert m["method_params"] == {"gene_dim": 4, "keep_first": False, "keep_last": True,
                                  "init_std": 0.02, "interaction_init": "random",
                                  "initial_rule": "random"}
    # prunable = the plain layers' weight parameters (the readout); all present
    assert m["params_prunable"] == h * k and m["density"] == 1.0
    assert (out / "genetic.json").is_file()
    state = load_file(str(out / "model.safetensors"))
    assert "gene_interaction.weight" in state and "hidden.0.fc.alpha" in state
    again = evaluate_run(out)
    assert again["test_accuracy"] == m["test_accuracy"]
    assert again["compression"] == m["compression"]
    assert main(["evaluate", str(out)]) == 0
    text = capsys.readouterr().out
    assert size in text and "density" not in text


def _history(run_dir) -> list[dict]:
    import csv

    with open(run_dir / "history.csv") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def test_train_genetic_outcome_on_digits(tmp_path, capsys, one_thread):
    # issue 11 item 1: with a stale generated weight, validation loss and accuracy froze after
    # the first epoch (val loss 1.525 -> 1.521 over 6 epochs, test 64%) while training went on.
    # The fixed code, this seed, one thread: val loss 1.525 -> 0.335, val accuracy 46% -> 85%,
    # test 85% (seeds 0-4: 66-86%); floors with margin, chance is 10%.
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--model", "mlp", "--method", "genetic",
                 "--gene-dim", "8", "--epochs", "6", "--seed", "0", "--no-progress",
                 "--out", str(out)]) == 0
    rows = _history(out)
    assert len(rows) == 6
    assert rows[-1]["val_loss"] < 0.5 * rows[0]["val_loss"]
    assert max(r["val_accuracy"] for r in rows[2:]) > rows[1]["val_accuracy"] + 0.1
    assert len({r["val_accuracy"] for r in rows[1:]}) >= 3          # not frozen after epoch 1
    m = json.loads((out / "metrics.json").read_text())
    assert m["test_accuracy"] > 0.7 and m["val_accuracy"] > 0.7
    assert "density" not in capsys.readouterr().out


def test_train_genetic_resume_equals_the_uninterrupted_run(tmp_path, monkeypatch, one_thread):
    # issue 11 item 8: an interrupted genetic run resumed from a fresh model (no stale weight)
    # and ended elsewhere than the uninterrupted one
    def config():
        cfg = TrainConfig(method="genetic", epochs=3, timesteps=2, batch_size=128,
                          model_kwargs={"hidden": [32]})
        cfg.genetic.gene_dim = 4
        return cfg

    full = run_training(config(), out=str(tmp_path / "full"), progress=False)
    original = Trainer.train_epoch

    def interrupted(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_training(config(), out=str(tmp_path / "cut"), progress=False)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    with pytest.raises(UserError, match="--resume"):
        run_training(config(), out=str(tmp_path / "cut"), progress=False)
    resumed = run_training(config(), out=str(tmp_path / "cut"), resume=True, progress=False)
    assert resumed.status == "resumed"
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa
    assert strip(_history(tmp_path / "cut")) == strip(_history(tmp_path / "full"))
    a, b = load_file(str(tmp_path / "full" / "model.safetensors")), \
        load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for key in ("test_accuracy", "val_accuracy", "best_epoch", "firing_rate"):
        assert resumed.metrics[key] == full.metrics[key]


def test_gene_options_are_hashed_for_genetic_only():
    a, b = TrainConfig(method="genetic"), TrainConfig(method="genetic")
    b.genetic.gene_dim = 8
    assert config_hash(a) != config_hash(b)
    c, d = TrainConfig(), TrainConfig()
    d.genetic.gene_dim = 8
    assert config_hash(c) == config_hash(d)


def test_method_in_your_own_loop():
    torch.manual_seed(0)
    method = create_method("genetic", gene_dim=4, seed=1)
    model = method.prepare_model(create_model("mlp", hidden=(16,)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    method.attach(model, opt, total_steps=3)
    x, y = torch.rand(2, 8, 1, 8, 8) * 2, torch.randint(0, 10, (8,))
    before = model.gene_interaction.weight.detach().clone()
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(x).mean(0), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not torch.equal(before, model.gene_interaction.weight)
    assert len(gene_layers(model)) == 2


def test_evolve_cli_then_train_from_the_genome(tmp_path, capsys):
    out = tmp_path / "evo"
    args = ["evolve", "--population", "2", "--generations", "1", "--gene-dim", "3", *SMALL,
            "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "final: test accuracy" in text and "compression" in text
    summary = json.loads((out / "evolution.json").read_text())
    final = json.loads((out / "final" / "metrics.json").read_text())
    assert final["method_params"]["initial_rule"] == "evolved genome"
    assert main(args) == 0 and "already finished" in capsys.readouterr().out
    # the same genome through train --genome gives the same network and result
    again = tmp_path / "again"
    assert main(["train", "--method", "genetic", "--gene-dim", "3", "--genome",
                 str(out / "evolution.json"), *SMALL, "--out", str(again)]) == 0
    m = json.loads((again / "metrics.json").read_text())
    assert m["test_accuracy"] == final["test_accuracy"] == summary["final"]["test_accuracy"]
    a, b = load_file(str(again / "model.safetensors")), load_file(str(out / "final" /
                                                                     "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("args, word", [
    (["train", "--method", "genetic", "--gene-dim", "0"], "gene dimension must be a positive"),
    (["train", "--method", "genetic", "--gene-dim", "-4"], "gene dimension must be a positive"),
    (["train", "--method", "genetic", "--keep-first", "--keep-last", "--model-arg",
      "hidden=[8]"], "no layer to encode"),
    (["train", "--method", "genetic", "--genome", "missing.json"], "missing.json"),
    (["evolve", "--population", "1"], "population must be"),
    (["evolve", "--generations", "0"], "generations must be"),
    (["evolve", "--objectives", "accuracy,latency"], "unknown objective 'latency'"),
    (["evolve", "--search", "simplex"], "unknown evolution search 'simplex'"),
    (["evolve", "--search", "cma-es", "--objectives", "accuracy,params"], "optimises 1"),
    (["evolve", "--gene-dim", "0"], "gene dimension must be a positive"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, word):
    out = tmp_path / "out"
    assert main([*args, "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0] and err[0].startswith("spikesculpt: error:")
    assert not out.exists()


def test_cli_process_one_line_warning_and_import_without_extras(tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="default")
    proc = subprocess.run([sys.executable, "-m", "spikesculpt", "train", "--method", "genetic",
                           "--gene-dim", "40", "--model-arg", "hidden=[8]", "--epochs", "1",
                           "--timesteps", "1", "--no-progress", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0
    warn = [line for line in proc.stderr.splitlines() if "saves nothing" in line]
    assert len(warn) == 1 and warn[0].startswith("spikesculpt: warning: gene dimension 40")
    # the package (and the evolve command's module) imports without the evolution extras
    code = ("import sys; sys.modules['cma'] = None; sys.modules['pymoo'] = None; "
            "import spikesculpt.cli.main, spikesculpt.experiments.evolution.evolution; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
