"""Outcome tests: every registered method, lottery strategy, ``evolve`` search and model builder
*learns* the embedded digits (issue 11, "Guard the outcomes").

The other tests check invariants (masks, hashes, shapes, resume); none of them notices a method
that trains to chance, or an evaluation that stopped seeing the weights move. Each case here runs
the command a user runs (``spikesculpt train / lottery / evolve``, in-process, one thread, a small
model, a few epochs) and asserts two outcomes:

- the test accuracy reaches a floor well above chance (10 classes: chance = 10%);
- validation follows the training: validation accuracy and loss change over the epochs (see
  ``assert_learned``). An evaluation that uses stale weights (a cache the optimizer does not
  invalidate, issue 11 item 1) leaves them (nearly) where the first epoch put them.

Cases are parametrized over the registries (``METHODS``, the lottery ``STRATEGIES``, ``MODELS``),
so a newly registered name is covered with the default settings below; a name needs an entry in
the tables only if it needs other flags, an input (``METHOD_INPUTS``: the ``ticket`` method's
mask) or another floor (``test_tables_name_registered_things``); the evolve cases name every
registered search (``SEARCHES``) with its flags.

Floors: each case was run with seeds 0, 1, 2 on the 2-core CI machine (AMD EPYC, one thread);
the comment on a floor gives the lowest test accuracy of those seeds, and the floor sits well
below it, so seed noise passes and a regression to "stuck near chance" fails. Runs are
deterministic on CPU: a case gives the same numbers every time for the same code.
"""

import csv
import json

import pytest

import spikesculpt.experiments.lottery  # noqa: F401  (registers the strategies)
from spikesculpt.cli.main import main
from spikesculpt.experiments.evolution import SEARCHES
from spikesculpt.experiments.lottery.registry import STRATEGIES
from spikesculpt.methods import METHODS
from spikesculpt.models import MODELS

pytestmark = pytest.mark.usefixtures("one_thread")

CHANCE = 0.1  # digits: 10 balanced classes
MOVED = 0.02  # the validation loss must move by at least 2% of its first value

# An MLP with one hidden layer of 128 LIF neurons, T = 2, 5 epochs of the 1,295 training digits.
MLP = ["--dataset", "digits", "--timesteps", "2", "--epochs", "5", "--lr", "1e-2",
       "--model-arg", "hidden=[128]"]
# Spikformer (size cpu: 1 block, 16 tokens) with D = 32 instead of 64.
SPIKFORMER_ARGS = ["--epochs", "4", "--lr", "1e-2", "--model-arg", "dim=32"]

# ----------------------------------------------------------------------------- methods
# Each method trains MLP with its own defaults (sparse methods: density 0.1), except:
METHOD_ARGS = {
    # the genes start at std 0.02 and Adam moves every parameter by ~lr per step, so init_std
    # acts as an inverse learning-rate multiplier (docs/genetic.md): genes take the default lr
    "genetic": ["--lr", "1e-3"],
    "lowrank": ["--lr", "1e-3"],  # U and V start at the genes' std: the same lr as genetic
}
# methods that train under a given input: ``ticket`` takes the mask of the imp lottery case's
# ticket (level 1, density 0.5; the search runs once per module, shared with its own case) and
# trains it from the initialisation of the same seed (not rewound, unlike the search's ticket)
METHOD_INPUTS = {
    "ticket": lambda cli: ["--mask", str(cli("lottery", *LOTTERY_CASES["imp"]) / "level_1"
                                         / "mask.safetensors")],
}
# rewiring methods update their masks every 10 optimizer steps (~2 per epoch), so that a short
# run rewires (their defaults, 25-100 steps or once per epoch, would rewire a few times or never)
REWIRE_EVERY = ["--update-every", "10"]

METHOD_FLOORS = {
    "dense": 0.85,    # seeds 0-2: 93.9%
    # sparse at density 0.1, with silent layers woken at init (--init-firing 0.1): 76.6-82.5%
    # static, 78.3-81.3% set, 86.1-89.4% rigl and esl (before that fix: 68.8 / 62.7 / 82.5%)
    "static": 0.65,
    "set": 0.65,
    "rigl": 0.75,
    "esl": 0.75,
    # 91.4-92.8%; the stale weight cache (issue 11 item 1) gave 66.3-68.0% with validation
    # frozen after epoch 1
    "genetic": 0.80,
    # ranks 17 / 16 (5,610 parameters, genetic's 5,674): 91.6-94.2%
    "lowrank": 0.80,
    # the imp case's half mask trained from the initialisation: 91.6-94.2% (the search's own
    # rewound ticket 93.3-93.9%)
    "ticket": 0.80,
}
DEFAULT_METHOD_FLOOR = 0.50

# ----------------------------------------------------------------------------- lottery
# One pruning round at rate 0.5: level 0 is the dense network, level 1 the ticket (density 0.5).
# Each strategy searches on MLP, except:
ONE_ROUND = ["--rounds", "1", "--rate", "0.5"]
LOTTERY_CASES = {name: [*MLP, "--strategy", name, *ONE_ROUND] for name in STRATEGIES.names()}
LOTTERY_CASES.update({
    # the last 3 masks compared (default 5 > epochs): an early-bird stop is possible
    "early-bird": [*MLP, "--strategy", "early-bird", *ONE_ROUND, "--eb-q", "3"],
    # needs a model with a patch embedding
    "multilevel": ["--dataset", "digits", "--timesteps", "2", "--model", "spikformer",
                   *SPIKFORMER_ARGS, "--strategy", "multilevel", *ONE_ROUND],
    # the early-time option (Kim et al.): T' < T searched after 2 warm-up epochs at T = 4
    "imp+early-time": [*MLP, "--strategy", "imp", *ONE_ROUND, "--early-time", "--timesteps", "4"],
})
LOTTERY_FLOORS = {         # every level, the dense level 0 and the ticket; lowest of seeds 0-2:
    "imp": 0.80,           # ticket 93.3%
    "early-bird": 0.80,    # ticket 93.3%
    "score": 0.60,         # ticket 74.9% (edge-popup: only scores over untrained weights learn)
    "multilevel": 0.30,    # ticket 48.5% (untrained sparse embedding, half the tokens), dense 74.1%
    "imp+early-time": 0.80,  # ticket 91.1%
}
DEFAULT_LOTTERY_FLOOR = 0.50

# ----------------------------------------------------------------------------- evolve
# Two generations of two candidates (one epoch each), then the best rule trains the final MLP.
EVOLVE = [*MLP, "--lr", "1e-3", "--population", "2", "--generations", "2", "--eval-epochs", "1"]
EVOLVE_CASES = {  # one per registered search (SEARCHES)
    "cma-es": ["--search", "cma-es", "--objectives", "accuracy"],
    "nsga-ii": ["--search", "nsga-ii", "--objectives", "accuracy,params", "--min-gene-dim", "8"],
}
EVOLVE_FLOORS = {  # final training; with correct evaluation (weight cache off) seeds 0-2:
    "cma-es": 0.75,   # 90.0%
    "nsga-ii": 0.70,  # 81.9% (smaller gene dimensions searched)
}
SEARCH_FLOOR = 0.2  # the best candidate's validation accuracy after its one-epoch training

# ----------------------------------------------------------------------------- models
# Each model trains densely; the width is cut so that an epoch takes about a second.
# The deep VGG-style stacks run with firing threshold 0.5: at the default 1.0 and T = 2 they are
# near silent on 8x8 digits (VGG-16: firing < 0.01 in every layer) and reach only 20-60% (VGG-16
# 20-30%) after 4 epochs, while with 0.5 they reach 83-95% in 3-4 epochs.
LOW_THRESHOLD = ["--v-threshold", "0.5"]
MODEL_ARGS = {  # (mlp: the dense method's run)
    "conv": ["--epochs", "4", "--lr", "3e-2", "--model-arg", "width=0.25"],
    "vggsnn": ["--epochs", "3", "--lr", "1e-2", "--model-arg", "width=0.125", *LOW_THRESHOLD],
    "vgg9": ["--epochs", "3", "--lr", "1e-2", "--model-arg", "width=0.125", *LOW_THRESHOLD],
    "vgg16": ["--epochs", "4", "--lr", "1e-2", "--model-arg", "width=0.125", *LOW_THRESHOLD],
    "6conv2fc": ["--epochs", "3", "--lr", "1e-2", "--model-arg", "width=0.125", *LOW_THRESHOLD],
    # one block per stage (the builder's depth option): the 3-3-2 blocks cost twice the time
    # and stay at ~20% after 4 epochs
    "resnet19": ["--epochs", "4", "--lr", "3e-2", "--model-arg", "width=0.125",
                 "--model-arg", "blocks=[1,1,1]"],
    "spikformer": SPIKFORMER_ARGS,
}
DEFAULT_MODEL_ARGS = ["--epochs", "4", "--lr", "1e-2", "--model-arg", "width=0.25"]
MODEL_FLOORS = {          # lowest test accuracy of seeds 0-2:
    "mlp": 0.85,          # 93.9%
    "conv": 0.70,         # 85.2%
    "conv1d": 0.70,       # 89.4% (the 8x8 image read as one signal of 64 values)
    "vggsnn": 0.75,       # 91.6%
    "vgg9": 0.70,         # 86.1%
    "vgg16": 0.65,        # 83.0%
    "6conv2fc": 0.75,     # 89.7%
    "resnet19": 0.75,     # 91.6%
    "spikformer": 0.55,   # 74.1%
}
DEFAULT_MODEL_FLOOR = 0.50


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def _figures_not_drawn(monkeypatch):
    """The runs build their figures but do not lay them out or render them: drawing took a
    fifth of this file's CPU time, and the plots are tested with their commands (e.g.
    test_train_cli, test_lottery_search). The PNG files are left empty."""
    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "tight_layout", lambda self, *args, **kwargs: None)
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: None)


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Run a ``spikesculpt`` command once per module (cases with equal arguments share the run);
    returns its output directory."""
    done = {}

    def run(*args: str):
        if args not in done:
            out = tmp_path_factory.mktemp(args[0]) / "out"
            assert main([*args, "--no-progress", "--out", str(out)]) == 0, args
            done[args] = out
        return done[args]

    return run


def read_history(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_learned(test_accuracy: float, history: list[dict], floor: float, where: str,
                   fresh: bool = True) -> None:
    """Validation followed the training, and the test accuracy reaches ``floor``.

    Validation must move: its accuracy is not the same at every epoch, its loss changes from
    every epoch to the next and, at some epoch, by at least ``MOVED`` of the first epoch's
    value. A training from scratch (``fresh``) must also show its learning on validation: a
    later epoch's accuracy beats the first's (a lottery ticket rewound to a trained snapshot may
    start at its best). The stale generated weights of issue 11 item 1 fail these: while train
    accuracy rose from 40% to 95%, validation loss moved by < 1.2% and its accuracy stayed
    within a sample or two of epoch 1's (the healthy runs here move it by >= 3.6%).
    """
    val_acc = [float(row["val_accuracy"]) for row in history]
    val_loss = [float(row["val_loss"]) for row in history]
    assert len(history) >= 3, f"{where}: {len(history)} epochs"
    assert len(set(val_acc)) > 1, f"{where}: validation accuracy frozen: {val_acc}"
    repeated = [k + 1 for k in range(1, len(val_loss)) if val_loss[k] == val_loss[k - 1]]
    assert not repeated, f"{where}: validation loss of epoch(s) {repeated} repeats the epoch " \
                         f"before (a stale evaluation?): {val_loss}"
    moved = max(abs(v - val_loss[0]) for v in val_loss[1:]) / val_loss[0]
    assert moved >= MOVED, f"{where}: validation loss stayed within {moved:.2%} of epoch 1's " \
                           f"(a stale evaluation?): {val_loss}"
    if fresh:
        assert max(val_acc[1:]) > val_acc[0], \
            f"{where}: no epoch after the first improved the validation accuracy: {val_acc}"
    assert floor >= 1.5 * CHANCE  # a floor must say more than "not broken"
    assert test_accuracy >= floor, f"{where}: test accuracy {test_accuracy:.3f} < floor {floor}"


def method_args(name: str) -> list[str]:
    """The ``train`` flags of method ``name``'s case: MLP, the method, its own extras; rewiring
    methods rewire every 10 steps."""
    cls = METHODS.get(name)
    args = [*MLP, "--method", name, *METHOD_ARGS.get(name, [])]
    if getattr(cls, "rewires", False):
        args += REWIRE_EVERY
    return args


def model_args(name: str) -> list[str]:
    """The ``train`` flags of model ``name``'s case (dense); mlp shares the dense method's run."""
    if name == "mlp":
        return method_args("dense")
    return ["--dataset", "digits", "--timesteps", "2", "--model", name,
            *MODEL_ARGS.get(name, DEFAULT_MODEL_ARGS)]


# ----------------------------------------------------------------------------- the contract
METHOD_CASES = METHODS.names()
MODEL_CASES = MODELS.names()


def test_tables_name_registered_things():
    """Every registered method, strategy and model has a case; the tables name nothing that is
    not registered (a renamed entry would silently fall back to the defaults)."""
    assert set(METHOD_CASES) == set(METHODS.names())
    assert {c.split("+")[0] for c in LOTTERY_CASES} == set(STRATEGIES.names())
    assert any("--early-time" in args for args in LOTTERY_CASES.values())
    assert set(MODEL_CASES) == set(MODELS.names())
    assert set(METHOD_ARGS) | set(METHOD_FLOORS) | set(METHOD_INPUTS) <= set(METHODS.names())
    assert {c.split("+")[0] for c in LOTTERY_FLOORS} <= set(STRATEGIES.names())
    assert set(MODEL_ARGS) | set(MODEL_FLOORS) <= set(MODELS.names())
    assert set(EVOLVE_CASES) == set(EVOLVE_FLOORS) == set(SEARCHES.names())


# ----------------------------------------------------------------------------- outcomes
@pytest.mark.parametrize("name", METHOD_CASES)
def test_method_learns_digits(name, cli):
    inputs = METHOD_INPUTS[name](cli) if name in METHOD_INPUTS else []
    out = cli("train", *method_args(name), *inputs)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == name
    assert_learned(metrics["test_accuracy"], read_history(out / "history.csv"),
                   METHOD_FLOORS.get(name, DEFAULT_METHOD_FLOOR), f"train --method {name}")
    if getattr(METHODS.get(name), "rewires", False):
        assert metrics["mask_updates"] > 0, "the run ended without rewiring"


@pytest.mark.parametrize("case", list(LOTTERY_CASES))
def test_lottery_strategy_finds_a_ticket_that_learns(case, cli):
    out = cli("lottery", *LOTTERY_CASES[case])
    summary = json.loads((out / "summary.json").read_text())
    levels = summary["levels"]
    assert [row["level"] for row in levels] == [0, 1]
    assert levels[1]["density"] < 1
    floor = LOTTERY_FLOORS.get(case, DEFAULT_LOTTERY_FLOOR)
    rewound = getattr(STRATEGIES.get(case.split("+")[0]), "uses_rewind", False)
    for row in levels:
        level = row["level"]
        assert_learned(row["test_accuracy"], read_history(out / f"level_{level}" / "history.csv"),
                       floor, f"lottery {case} level {level}", fresh=level == 0 or not rewound)
    if "--early-time" in LOTTERY_CASES[case]:  # T' was chosen (T' = T when none is close)
        assert 2 <= summary["early_time"]["timesteps"] <= 4


@pytest.mark.parametrize("case", list(EVOLVE_CASES))
def test_evolve_search_and_final_training_learn(case, cli):
    out = cli("evolve", *EVOLVE, *EVOLVE_CASES[case])
    summary = json.loads((out / "evolution.json").read_text())
    assert summary["search"]["algorithm"].lower().startswith(case)
    assert summary["best"]["accuracy"] >= SEARCH_FLOOR
    assert_learned(summary["final"]["test_accuracy"], read_history(out / "final" / "history.csv"),
                   EVOLVE_FLOORS[case], f"evolve {case}")


@pytest.mark.parametrize("name", MODEL_CASES)
def test_model_learns_digits(name, cli):
    out = cli("train", *model_args(name))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == name
    assert_learned(metrics["test_accuracy"], read_history(out / "history.csv"),
                   MODEL_FLOORS.get(name, DEFAULT_MODEL_FLOOR), f"train --model {name}")
