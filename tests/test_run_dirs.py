"""Run directories are never mixed, overwritten or left half-made (issue 11, item 8).

- one writer at a time (``RunLock``): a second process writing the same directory stops with one
  line and the first run's files are untouched;
- a command refuses a directory another command wrote (train into a lottery search, evolve into a
  training run, ...) or a folder of unrelated files;
- a finished run's metrics that are corrupt, or that belong to another config, are a one-line
  error, not a traceback or another run's numbers;
- a fresh run that stops before its first checkpoint leaves no orphan config.yaml.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from spikesculpt.cli.main import main
from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.evolution.evolution import run_evolution
from spikesculpt.experiments.evolution.options import EvolutionConfig
from spikesculpt.experiments.lottery.options import LotteryConfig
from spikesculpt.experiments.lottery.search import run_lottery
from spikesculpt.experiments.rundir import LOCK_NAME, RunLock, dataset_slug
from spikesculpt.experiments.train_run import run_training
from spikesculpt.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def small_config(**overrides) -> TrainConfig:
    cfg = TrainConfig(epochs=1, timesteps=2, batch_size=128, model_kwargs={"hidden": [16]})
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def test_a_second_writer_is_refused_while_the_first_holds_the_directory(tmp_path):
    out = tmp_path / "run"
    with RunLock(out):  # another process (here: another lock holder) is writing it
        with pytest.raises(UserError, match="being written by another spikesculpt process"):
            run_training(small_config(seed=1), out=str(out), progress=False)
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
    # once released, the directory is usable
    result = run_training(small_config(seed=1), out=str(out), progress=False)
    assert result.status == "trained"


def test_lock_is_held_across_processes(tmp_path):
    """A real second process: its train stops with exit status 2 and one line while a first
    process holds the directory."""
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from spikesculpt.experiments.rundir import RunLock
            with RunLock({str(out)!r}):
                print("locked", flush=True)
                sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = main(["train", "--epochs", "1", "--timesteps", "2", "--model-arg", "hidden=[16]",
                     "--out", str(out), "--no-progress"])
        assert code == 2
        assert not (out / "config.yaml").exists()
    finally:
        holder.communicate("\n", timeout=30)


def test_two_seeds_into_one_out_do_not_mix(tmp_path):
    out = tmp_path / "run"
    run_training(small_config(seed=0), out=str(out), progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(UserError, match="another config"):
        run_training(small_config(seed=1), out=str(out), progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    again = run_training(small_config(seed=0), out=str(out), progress=False)
    assert again.status == "already-finished" and again.metrics["seed"] == 0


def test_finished_metrics_of_another_config_are_refused(tmp_path):
    """config.yaml of seed 0 beside metrics.json of seed 1 (what two unlocked writers left)."""
    a, b = tmp_path / "a", tmp_path / "b"
    run_training(small_config(seed=0), out=str(a), progress=False)
    run_training(small_config(seed=1), out=str(b), progress=False)
    (a / "metrics.json").write_bytes((b / "metrics.json").read_bytes())
    with pytest.raises(UserError, match="another config"):
        run_training(small_config(seed=0), out=str(a), progress=False)


def test_corrupt_finished_metrics_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "run"
    run_training(small_config(), out=str(out), progress=False)
    (out / "metrics.json").write_text("{not json")
    code = main(["train", "--epochs", "1", "--timesteps", "2", "--batch-size", "128",
                 "--model-arg", "hidden=[16]", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "corrupt" in err[0] and "metrics.json" in err[0]


def test_train_refuses_a_lottery_search_directory(tmp_path):
    search = tmp_path / "search"
    search.mkdir()
    (search / "lottery.yaml").write_text("config_hash: abc\n")
    with pytest.raises(UserError, match="holds a lottery search"):
        run_training(small_config(), out=str(search), progress=False)
    assert sorted(p.name for p in search.iterdir()) == ["lottery.yaml"]


def test_train_refuses_a_folder_of_other_files(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        run_training(small_config(), out=str(folder), progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_evolve_refuses_a_training_run_directory(tmp_path):
    out = tmp_path / "run"
    run_training(small_config(), out=str(out), progress=False)
    before = sorted(p.name for p in out.iterdir())
    evo = EvolutionConfig(population=2, generations=1)
    with pytest.raises(UserError, match="holds a training run"):
        run_evolution(small_config(method="genetic"), evo, out=str(out), progress=False)
    assert sorted(p.name for p in out.iterdir()) == before


def test_lottery_refuses_an_evolution_directory(tmp_path):
    out = tmp_path / "evo"
    out.mkdir()
    (out / "evolve_config.yaml").write_text("evolution_hash: abc\n")
    with pytest.raises(UserError, match="holds an evolution"):
        run_lottery(small_config(), LotteryConfig(rounds=1), out=str(out), progress=False)


def test_a_fresh_run_stopped_before_its_first_checkpoint_leaves_nothing(tmp_path, monkeypatch):
    def fail(self, epoch):
        raise MemoryError("can't allocate")

    monkeypatch.setattr(Trainer, "train_epoch", fail)
    out = tmp_path / "run"
    with pytest.raises(MemoryError):
        run_training(small_config(), out=str(out), progress=False)
    assert not out.exists()  # not even an orphan config.yaml
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(MemoryError):
        run_training(small_config(), out=str(existing), progress=False)
    assert existing.is_dir() and not (existing / "config.yaml").exists()


def test_dataset_slug_keeps_letters_of_any_script():
    assert dataset_slug("npz:/data/données_数据.npz") == "données_数据.npz"
    assert dataset_slug("digits") == "digits"
    assert dataset_slug("npz:/a b/my data.npz") == "my_data.npz"


def test_lock_file_is_the_only_trace_of_a_finished_lock(tmp_path):
    out = tmp_path / "run"
    result = run_training(small_config(), out=str(out), progress=False)
    assert json.loads((out / "metrics.json").read_text())["config_hash"] == \
        result.metrics["config_hash"]
    hidden = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert hidden == [LOCK_NAME]


def test_every_kind_uses_the_one_run_directory(tmp_path):
    """train, lottery and evolve all write config.yaml with their kind and hash (RunDir.start),
    so each recognises the others' folders by the same file."""
    from spikesculpt.experiments.rundir import RunDir

    for kind in ("train", "lottery", "evolution"):
        run = RunDir(tmp_path / kind, kind)
        run.path.mkdir()
        run.start("abc", {"x": 1})
        assert run.stored() == (kind, "abc", {"x": 1})
        assert run.check("abc", resume=False) == "fresh"
        for other in {"train", "lottery", "evolution"} - {kind}:
            with pytest.raises(UserError, match="holds "):
                RunDir(run.path, other).check("abc", resume=False)
