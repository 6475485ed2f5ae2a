"""Spiking lottery tickets: winning sub-networks found inside dense SNNs.

    from spikesculpt.experiments.lottery.options import LotteryConfig
    from spikesculpt.config import TrainConfig
    from spikesculpt.experiments.lottery import run_lottery

    result = run_lottery(TrainConfig(model="mlp", epochs=30),
                         LotteryConfig(strategy="imp", rounds=10, rate=0.25, rewind="1ep",
                                       controls=["reinit", "random"]), out="runs/imp")
    for row in result.summary["levels"]:
        print(row["level"], row["density"], row["test_accuracy"])

Strategies (``STRATEGIES``, one file each, a ``base.Strategy`` each): ``imp`` (iterative
magnitude pruning with rewinding of weights, BatchNorm statistics and optimizer state),
``early-bird`` (IMP whose searches stop once the mask settles), ``score`` (edge-popup / biprop
tickets over frozen weights), ``multilevel`` (embedding connection tickets + patch tickets +
training the rest, for models with a patch embedding). A strategy sees the search only through
a ``LevelContext`` (``context.py``). The run (directory, hash, resume, controls, summary):
``search.py``; its files: ``store.py``; one training phase: ``phase.py``; controls:
``controls.py``; summary and figure: ``report.py``. The primitives (pruning, rewind snapshots,
score networks, the early-bird detector, early-time, patch tickets, control draws) are in
``methods/tickets/``. Documentation: docs/lottery.md.
"""

from spikesculpt.experiments.lottery import early_bird, imp, multilevel, score  # noqa: F401,E402
from spikesculpt.experiments.lottery.base import LevelResult, Strategy  # noqa: F401
from spikesculpt.experiments.lottery.context import LevelContext  # noqa: F401
from spikesculpt.experiments.lottery.registry import STRATEGIES, register_strategy  # noqa: F401
from spikesculpt.experiments.lottery.search import (  # noqa: F401
    LotteryResult,
    LotterySearch,
    run_lottery,
)

__all__ = ["STRATEGIES", "register_strategy", "Strategy", "LevelContext", "LevelResult",
           "LotterySearch", "LotteryResult", "run_lottery"]
