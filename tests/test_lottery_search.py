"""Ticket searches end to end: storage, resume, controls, strategies, CLI and bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from spikesculpt.cli.main import main
from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.data.sets.digits import digits_arrays
from spikesculpt.experiments.lottery import run_lottery
from spikesculpt.experiments.lottery.imp import IMP
from spikesculpt.experiments.lottery.options import LotteryConfig
from spikesculpt.experiments.train_run import run_training
from spikesculpt.sparse import Mask
from spikesculpt.train.trainer import Trainer

TIMING = ("search_seconds", "search_cpu_seconds", "train_seconds")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """300 training and 100 test digits: a few optimizer steps per epoch."""
    x, y = digits_arrays()
    path = tmp_path_factory.mktemp("data") / "digits300.npz"
    np.savez(path, x=x[:300], y=y[:300], x_test=x[300:400], y_test=y[300:400])
    return f"npz:{path}"


def train_config(data, **kw):
    base = dict(dataset=data, epochs=2, timesteps=2, batch_size=64, lr=5e-3, device="cpu",
                model_kwargs={"hidden": [24]})
    base.update(kw)
    return TrainConfig(**base)


IMP_OPTIONS = dict(rounds=2, rate=0.5, rewind="2it")


@pytest.fixture(scope="module")
def imp_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("imp") / "search"
    result = run_lottery(train_config(data), LotteryConfig(**IMP_OPTIONS), out=str(out),
                         progress=False)
    return result


def levels_without_timing(summary):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in summary["levels"]]


def test_imp_search_writes_levels_masks_and_summary(imp_run):
    path, summary = imp_run.path, imp_run.summary
    assert imp_run.status == "searched"
    for name in ("config.yaml", "rewind.pt", "summary.json", "accuracy_vs_density.png"):
        assert (path / name).is_file(), name
    assert json.loads((path / "summary.json").read_text()) == summary
    rows = summary["levels"]
    assert [r["level"] for r in rows] == [0, 1, 2]
    for r in rows:
        assert {"level", "density", "test_accuracy", "val_accuracy"} <= set(r)
        assert r["empty_layers"] == []                      # no layer collapsed
        assert 0 <= r["test_accuracy"] <= 1
    masks = [Mask.load(path / f"level_{k}" / "mask.safetensors") for k in range(3)]
    active = [sum(m.active(n) for n in m) for m in masks]
    total = sum(m[n].numel() for n in masks[0] for m in masks[:1])
    assert active[0] == total
    for k in (1, 2):
        assert active[k - 1] - active[k] == round(0.5 * active[k - 1])       # exactly the rate
        assert all(not (masks[k][n] & ~masks[k - 1][n]).any() for n in masks[k])  # nested
        assert rows[k]["density"] == pytest.approx(active[k] / total)
        weights = load_file(str(path / f"level_{k}" / "model.safetensors"))
        for n in masks[k]:
            assert (weights[n][~masks[k][n]] == 0).all()
        metrics = json.loads((path / f"level_{k}" / "metrics.json").read_text())
        assert metrics["start"] == "rewind" and metrics["layer_density"]
    assert json.loads((path / "level_0" / "metrics.json").read_text())["start"] == "init"
    assert summary["rewind_step"] == 2 and summary["controls"] == {}
    assert summary["dense_test_accuracy"] == rows[0]["test_accuracy"]


def test_same_seed_same_tickets_other_seed_other_tickets(imp_run, data, tmp_path):
    again = run_lottery(train_config(data), LotteryConfig(**IMP_OPTIONS), out=str(tmp_path / "a"),
                        progress=False)
    assert levels_without_timing(again.summary) == levels_without_timing(imp_run.summary)
    for k in range(3):
        assert Mask.load(tmp_path / "a" / f"level_{k}" / "mask.safetensors") == \
            Mask.load(imp_run.path / f"level_{k}" / "mask.safetensors")
    other = run_lottery(train_config(data, seed=1), LotteryConfig(rounds=1, rate=0.5,
                                                                  rewind="2it"),
                        out=str(tmp_path / "b"), progress=False)
    assert Mask.load(tmp_path / "b" / "level_1" / "mask.safetensors") != \
        Mask.load(imp_run.path / "level_1" / "mask.safetensors")
    assert other.summary["seed"] == 1


@pytest.mark.parametrize("interrupt_at", [3, 4])   # level 1 before its first / after one epoch
def test_interrupted_search_resumes_to_the_uninterrupted_summary(imp_run, data, tmp_path,
                                                                 monkeypatch, interrupt_at):
    original = Trainer.train_epoch
    calls = []

    def interrupted(self, epoch):
        calls.append(epoch)
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        run_lottery(train_config(data), LotteryConfig(**IMP_OPTIONS), out=str(out),
                    progress=False)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    assert (out / "level_0" / "metrics.json").is_file()
    assert not (out / "level_1" / "metrics.json").exists()
    assert (out / "level_1" / "checkpoint_train.pt").is_file() == (interrupt_at == 4)
    with pytest.raises(UserError, match="--resume"):
        run_lottery(train_config(data), LotteryConfig(**IMP_OPTIONS), out=str(out),
                    progress=False)
    level0 = (out / "level_0" / "metrics.json").stat().st_mtime_ns
    ran = []
    original_level = IMP.run_level
    monkeypatch.setattr(IMP, "run_level",
                        lambda self, ctx: (ran.append(ctx.level), original_level(self, ctx)))
    resumed = run_lottery(train_config(data), LotteryConfig(**IMP_OPTIONS), out=str(out),
                          resume=True, progress=False)
    assert resumed.status == "resumed" and ran == [1, 2]           # level 0 not recomputed
    assert (out / "level_0" / "metrics.json").stat().st_mtime_ns == level0
    assert levels_without_timing(resumed.summary) == levels_without_timing(imp_run.summary)
    for k in range(3):
        a = load_file(str(out / f"level_{k}" / "model.safetensors"))
        b = load_file(str(imp_run.path / f"level_{k}" / "model.safetensors"))
        assert all(torch.equal(a[n], b[n]) for n in a)
    finished = run_lottery(train_config(data), LotteryConfig(**IMP_OPTIONS), out=str(out),
                           progress=False)
    assert finished.status == "already-finished" and ran == [1, 2]


def test_controls_are_branches_of_a_finished_search(imp_run, data, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(imp_run.path, out)
    stamps = {k: (out / f"level_{k}" / "metrics.json").stat().st_mtime_ns for k in range(3)}
    result = run_lottery(train_config(data),
                         LotteryConfig(**IMP_OPTIONS, controls=["reinit", "random"]),
                         out=str(out), progress=False)
    assert {k: (out / f"level_{k}" / "metrics.json").stat().st_mtime_ns
            for k in range(3)} == stamps                             # levels not recomputed
    assert levels_without_timing(result.summary) == levels_without_timing(imp_run.summary)
    controls = result.summary["controls"]
    assert [r["level"] for r in controls["reinit"]] == [1, 2] == \
        [r["level"] for r in controls["random"]]
    for k in (1, 2):
        ticket = Mask.load(out / f"level_{k}" / "mask.safetensors")
        reinit = Mask.load(out / f"level_{k}" / "control_reinit" / "mask.safetensors")
        rand = Mask.load(out / f"level_{k}" / "control_random" / "mask.safetensors")
        assert reinit == ticket and rand != ticket
        for n in ticket:
            assert rand.active(n) == ticket.active(n)                 # same per-layer densities
        row = controls["random"][k - 1]
        assert row["density"] == pytest.approx(result.summary["levels"][k]["density"])
        w_ticket = load_file(str(out / f"level_{k}" / "model.safetensors"))
        w_reinit = load_file(str(out / f"level_{k}" / "control_reinit" / "model.safetensors"))
        assert not torch.equal(w_ticket["readout.weight"], w_reinit["readout.weight"])


# A BN-free MLP on 300 digits pruned to 1% density: global magnitude starves the second
# hidden layer, which falls silent; --prune layer --rescale keeps every layer firing.
# Tuned once: FLOOR_OPTIONS, seed 0.
FLOOR_OPTIONS = dict(rounds=2, rate=0.9, rewind="2it")


def last_level(result) -> dict:
    return json.loads((result.path / "level_2" / "metrics.json").read_text())


def test_rescaled_bn_free_ticket_keeps_every_layer_firing(data, tmp_path):
    train = train_config(data, epochs=4, model_kwargs={"hidden": [48, 48]})
    plain = run_lottery(train, LotteryConfig(**FLOOR_OPTIONS), out=str(tmp_path / "plain"),
                        progress=False)
    fixed = run_lottery(train, LotteryConfig(**FLOOR_OPTIONS, prune="layer", rescale=True,
                                             controls=["random"]),
                        out=str(tmp_path / "fixed"), progress=False)
    assert last_level(plain)["silent_layers"]                  # without: a layer falls silent
    ticket = last_level(fixed)
    assert ticket["silent_layers"] == [] and ticket["empty_layers"] == []
    assert all(rate > 1e-3 for rate in ticket["layer_firing_rates"].values())
    assert set(ticket["rescale_factors"]) == set(ticket["layer_density"])   # BN-free: all
    assert all(f > 1 for f in ticket["rescale_factors"].values())
    control = json.loads((fixed.path / "level_2" / "control_random" / "metrics.json").read_text())
    assert set(control["rescale_factors"]) == set(ticket["rescale_factors"])   # same rule
    dense = json.loads((fixed.path / "level_0" / "metrics.json").read_text())
    assert "rescale_factors" not in dense                      # a full mask is not rescaled


def test_early_bird_stops_the_search_once_masks_settle(data, tmp_path):
    result = run_lottery(train_config(data, epochs=4),
                         LotteryConfig(strategy="early-bird", rounds=2, rate=0.5, rewind="0it",
                                       eb_q=2, eb_tau=0.99, evaluate="ends"),
                         out=str(tmp_path / "eb"), progress=False)
    for k in (0, 1):
        search = json.loads((tmp_path / "eb" / f"level_{k}" / "search.json").read_text())
        assert search["early_bird"] and search["epoch"] == 2 and search["mask_distance"] < 0.99
    rows = result.summary["levels"]
    assert rows[1]["test_accuracy"] is None                   # not evaluated (--evaluate ends)
    assert rows[0]["test_accuracy"] is not None and rows[2]["test_accuracy"] is not None
    assert not (tmp_path / "eb" / "level_1" / "model.safetensors").exists()
    assert rows[2]["density"] == pytest.approx(0.25, abs=0.01)


def test_early_time_searches_with_t_prime_and_trains_tickets_with_t(data, tmp_path):
    result = run_lottery(train_config(data, timesteps=4, epochs=2),
                         LotteryConfig(rounds=2, rate=0.5, rewind="0it", early_time=True,
                                       et_warmup=1, et_lambda=1.5),
                         out=str(tmp_path / "et"), progress=False)
    info = result.summary["early_time"]
    assert info["timesteps"] == 2 and info["full_timesteps"] == 4      # norm. KL(2) = 1 < 1.5
    assert set(info["normalised_kl"]) == {"2", "3"} and info["normalised_kl"]["2"] == 1.0
    for k in (0, 1):
        assert json.loads((tmp_path / "et" / f"level_{k}" / "search.json").read_text())[
            "timesteps"] == 2
    assert [r["timesteps"] for r in result.summary["levels"]] == [4, 4, 4]
    assert result.summary["search_seconds"] > 0


def test_score_tickets_keep_k_per_layer_with_binary_weights(data, tmp_path):
    result = run_lottery(train_config(data), LotteryConfig(strategy="score", rounds=1, rate=0.75,
                                                           binary_weights=True),
                         out=str(tmp_path / "sc"), progress=False)
    mask = Mask.load(tmp_path / "sc" / "level_1" / "mask.safetensors")
    weights = load_file(str(tmp_path / "sc" / "level_1" / "model.safetensors"))
    for n in mask:
        assert mask.active(n) == round(0.25 * mask[n].numel())
        values = weights[n][mask[n]].abs()
        assert torch.allclose(values, values[0].expand_as(values))    # one alpha per layer
        assert (weights[n][~mask[n]] == 0).all()
    assert result.summary["levels"][1]["density"] == pytest.approx(0.25, abs=0.01)
    assert result.summary["rewind"] is None


def test_multilevel_on_spikformer(data, tmp_path):
    spik = dict(model="spikformer", model_kwargs={"dim": 8, "heads": 2, "pools": 1,
                                                 "patch_keep": 0.5}, epochs=1)
    result = run_lottery(train_config(data, **spik),
                         LotteryConfig(strategy="multilevel", rounds=1, rate=0.5,
                                       binary_weights=True),
                         out=str(tmp_path / "ml"), progress=False)
    rows = result.summary["levels"]
    assert rows[0]["tokens_kept"] == 1.0 and rows[1]["tokens_kept"] == 0.5
    assert rows[1]["embedding_density"] == pytest.approx(0.5, abs=0.01)
    mask = Mask.load(tmp_path / "ml" / "level_1" / "mask.safetensors")
    assert mask.names() and all(n.startswith("patch_embed.") for n in mask)
    weights = load_file(str(tmp_path / "ml" / "level_1" / "model.safetensors"))
    for n in mask:
        assert (weights[n][~mask[n]] == 0).all()
    with pytest.raises(UserError, match="patch embedding"):
        run_lottery(train_config(data), LotteryConfig(strategy="multilevel", rounds=1),
                    out=str(tmp_path / "no"), progress=False)
    assert not (tmp_path / "no").exists()


def test_multilevel_joint_search_scores_inside_the_whole_model(data, tmp_path):
    """``--embedding-search joint``: the embedding's ticket is found inside the whole model
    (patch tickets on, the rest training with the scores), not with a linear probe: same
    initial scores and weights, so a different mask can only come from the other training
    signal; the ticket still keeps exactly k weights per SPS layer."""
    spik = dict(model="spikformer", model_kwargs={"dim": 8, "heads": 2, "pools": 1,
                                                 "patch_keep": 0.5}, epochs=1)
    masks = {}
    for how in ("probe", "joint"):
        lottery = LotteryConfig(strategy="multilevel", rounds=1, rate=0.5,
                                embedding_search=how)
        result = run_lottery(train_config(data, **spik), lottery, out=str(tmp_path / how),
                             progress=False)
        info = json.loads((tmp_path / how / "level_1" / "embedding.json").read_text())
        assert info["embedding_search"] == how
        masks[how] = Mask.load(tmp_path / how / "level_1" / "embedding_mask.safetensors")
        assert result.summary["levels"][1]["tokens_kept"] == 0.5
    assert masks["joint"].names() == masks["probe"].names()
    for n in masks["joint"]:
        assert masks["joint"].active(n) == masks["probe"].active(n) \
            == round(0.5 * masks["joint"][n].numel())
    assert any(not torch.equal(masks["joint"][n], masks["probe"][n]) for n in masks["joint"])
    # the default (probe) keeps the directory name of searches made before the option existed
    assert "embedding_search" not in LotteryConfig(strategy="multilevel").hashed_dict()
    assert LotteryConfig(strategy="multilevel",
                         embedding_search="joint").hashed_dict()["embedding_search"] == "joint"


def test_multilevel_trains_the_embedding_by_default_and_hashes_by_effect():
    """Issue 14 made training the embedding's ticket multilevel's default: such a search is
    hashed with it (so it never reuses a frozen search made under the old default), a frozen
    one keeps the old name, and other strategies never carry the option."""
    default = LotteryConfig(strategy="multilevel")
    assert default.embedding_trained() and default.hashed_dict()["train_embedding"] is True
    assert default.hashed_dict() == LotteryConfig(strategy="multilevel",
                                                  train_embedding=True).hashed_dict()
    frozen = LotteryConfig(strategy="multilevel", train_embedding=False)
    assert not frozen.embedding_trained() and "train_embedding" not in frozen.hashed_dict()
    assert "train_embedding" not in LotteryConfig(strategy="imp").hashed_dict()


def test_multilevel_train_embedding_trains_the_ticket_under_its_mask(data, tmp_path):
    """``--train-embedding``: the same search (same mask), then the embedding's ticket trains
    from W ⊙ M under its mask instead of staying frozen at W ⊙ M."""
    spik = dict(model="spikformer", model_kwargs={"dim": 8, "heads": 2, "pools": 1,
                                                 "patch_keep": 0.5}, epochs=1)
    weights, masks = {}, {}
    for trained in (False, True):
        lottery = LotteryConfig(strategy="multilevel", rounds=1, rate=0.5,
                                train_embedding=trained)
        out = tmp_path / str(trained)
        run_lottery(train_config(data, **spik), lottery, out=str(out), progress=False)
        masks[trained] = Mask.load(out / "level_1" / "mask.safetensors")
        weights[trained] = load_file(str(out / "level_1" / "model.safetensors"))
    assert all(torch.equal(masks[True][n], masks[False][n]) for n in masks[True])
    for n, m in masks[True].items():
        assert (weights[True][n][~m] == 0).all() and (weights[False][n][~m] == 0).all()
        assert not torch.equal(weights[True][n][m], weights[False][n][m])   # trained


def test_train_with_patch_tickets_reports_tokens_kept(data, tmp_path):
    cfg = train_config(data, model="spikformer", epochs=1,
                       model_kwargs={"dim": 8, "heads": 2, "pools": 1, "patch_keep": 0.25})
    metrics = run_training(cfg, out=str(tmp_path / "run"), progress=False).metrics
    assert metrics["tokens_kept"] == 0.25


def test_cli_lottery_end_to_end(data, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["lottery", "--dataset", data, "--epochs", "2", "--timesteps", "2",
                 "--batch-size", "64", "--model-arg", "hidden=[16]", "--rounds", "1",
                 "--rate", "0.5", "--rewind", "1it", "--prune", "layer", "--dense-last",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "imp tickets" in text and "density" in text and "search time" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prune"] == "layer"
    mask = Mask.load(out / "level_1" / "mask.safetensors")
    assert "readout.weight" not in mask                      # --dense-last
    assert all(mask.density(n) == pytest.approx(0.5, abs=0.01) for n in mask)


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "spikesculpt", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("args, word", [
    (["lottery", "--rate", "1.0"], "rate must be in (0, 1)"),
    (["lottery", "--rate", "0"], "rate must be in (0, 1)"),
    (["lottery", "--rounds", "0"], "rounds must be a positive integer"),
    (["lottery", "--epochs", "2", "--rewind", "2ep"], "not before the end"),
    (["lottery", "--rewind", "soon"], "rewind point"),
    (["lottery", "--patch-keep", "0.5"], "needs a model with tokens"),
    (["lottery", "--model", "spikformer", "--patch-keep", "1.5"], "patch_keep must be in (0, 1]"),
    (["lottery", "--model", "spikformer", "--patch-keep", "0"], "patch_keep must be in (0, 1]"),
    (["train", "--patch-keep", "0.5"], "needs a model with tokens"),
    (["lottery", "--strategy", "multilevel"], "patch embedding"),
    (["lottery", "--strategy", "nope"], "unknown lottery strategy"),
    (["lottery", "--early-time", "--timesteps", "2"], "T >= 3"),
    (["lottery", "--strategy", "score", "--early-time"], "--early-time applies"),
    (["lottery", "--binary-weights"], "--binary-weights applies"),
    (["lottery", "--controls", "reinit,nope"], "unknown control"),
    (["lottery", "--min-inputs", "-2"], "min_inputs must be an integer >= 0"),
    (["lottery", "--strategy", "score", "--min-inputs", "4"], "--min-inputs applies to the"),
    (["lottery", "--strategy", "multilevel", "--rescale"], "--rescale applies to the"),
    (["lottery", "--embedding-search", "joint"], "--embedding-search applies to the"),
    (["lottery", "--strategy", "score", "--train-embedding"], "--train-embedding applies to"),
    (["lottery", "--strategy", "imp", "--frozen-embedding"], "--frozen-embedding applies to"),
    (["lottery", "--strategy", "multilevel", "--model", "spikformer", "--embedding-search",
      "nope"], "unknown embedding_search"),
    (["lottery", "--min-inputs", "64", "--rounds", "4", "--rate", "0.5"],
     "--min-inputs 64 keeps"),
])
def test_bad_input_is_one_line_exit_2(args, word, tmp_path, capsys):
    code = main([*args, "--no-progress", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and word in err[0], err
    assert not (tmp_path / "x").exists()


def test_bad_input_from_the_shell_has_no_traceback(tmp_path):
    proc = _cli("lottery", "--rate", "1.5", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "spikesculpt: error: rate must be in (0, 1) (the fraction of the remaining weights "
        "pruned per round), got 1.5; pass e.g. --rate 0.25"]


def test_another_config_in_the_same_directory_is_refused(imp_run, data):
    before = (imp_run.path / "summary.json").read_bytes()
    with pytest.raises(UserError, match="another config"):
        run_lottery(train_config(data), LotteryConfig(rounds=2, rate=0.3, rewind="2it"),
                    out=str(imp_run.path), progress=False)
    assert (imp_run.path / "summary.json").read_bytes() == before
