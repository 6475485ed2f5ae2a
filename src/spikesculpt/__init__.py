"""spikesculpt: efficient spiking neural networks, built the way brains build wiring.

Conventions (see docs and ``neurons/``): tensors are time-major, ``[T, B, ...]``; density is the
fraction of weights kept. The package is built in floors whose imports only point down
(docs/architecture.md); this top level gathers the everyday entry points:

    import spikesculpt
    metrics = spikesculpt.fit(model, splits, method="esl", density=0.1)   # any time-major SNN
    esl = spikesculpt.sparsify(model, optimizer, "esl", total_steps=1000)  # your own loop
    mask = spikesculpt.magnitude_ticket(trained, density=0.1)               # one-shot pruning
    metrics = spikesculpt.fit(model, splits, method="ticket", mask=mask)   # a fixed mask
    result = spikesculpt.run_training(spikesculpt.TrainConfig(method="esl"))  # a whole run
    sweep = spikesculpt.run_sweep(spikesculpt.TrainConfig(epochs=5), ["dense", "esl"],
                                  densities=[0.2, 0.1], seeds=3, out="sweeps/demo")  # a grid
"""

from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.core.version import __version__
from spikesculpt.experiments.evolution.evolution import run_evolution
from spikesculpt.experiments.evolution.options import EvolutionConfig
from spikesculpt.experiments.fit import fit, sparsify
from spikesculpt.experiments.lottery import run_lottery
from spikesculpt.experiments.lottery.options import LotteryConfig
from spikesculpt.experiments.sweep import LocalExecutor, SweepResult, run_sweep
from spikesculpt.experiments.sweep.report import ReportFiles, write_report
from spikesculpt.experiments.train_run import evaluate_run, run_training
from spikesculpt.methods import create_method
from spikesculpt.methods.tickets.pruning import magnitude_ticket
from spikesculpt.models.calibrate import calibrate_firing

__all__ = ["__version__", "TrainConfig", "LotteryConfig", "EvolutionConfig", "UserError", "fit",
           "sparsify", "calibrate_firing", "create_method", "magnitude_ticket", "run_training",
           "evaluate_run", "run_lottery", "run_evolution", "run_sweep", "SweepResult",
           "LocalExecutor", "write_report", "ReportFiles"]
