"""Spiking lottery tickets: winning sub-networks found inside dense SNNs.

    from spikesculpt.experiments.lottery.options import LotteryConfig
    from spikesculpt.config import TrainConfig
    from spikesculpt.experiments.lottery import run_lottery

    result = run_lottery(TrainConfig(model="mlp", epochs=30),
                         LotteryConfig(strategy="imp", rounds=10, rate=0.25, rewind="1ep",
                                       controls=["reinit", "random"]), out="runs/imp")
    for row in result.summary["levels"]:
        print(row["level"], row["density"], row["test_accuracy"])

Strategies (``STRATEGIES``, one file each): ``imp`` (iterative magnitude pruning with rewinding
of weights, BatchNorm statistics and optimizer state), ``early-bird`` (IMP whose searches stop
once the mask settles), ``score`` (edge-popup / biprop tickets over frozen weights),
``multilevel`` (embedding connection tickets + patch tickets + training the rest, for models
with a patch embedding). ``--early-time`` (``early_time.py``) searches with fewer time steps.
Patch tickets themselves are a model option (``patch_keep``; ``models/spikformer.py``,
``patch.py``). Storage, resume and summary: ``search.py``; controls: ``controls.py``; rewind
snapshots: ``snapshot.py``; magnitude pruning: ``pruning.py``. Documentation: docs/lottery.md.
"""

from spikesculpt.experiments.lottery import early_bird, imp, multilevel, score  # noqa: F401,E402
from spikesculpt.experiments.lottery.registry import STRATEGIES, register_strategy  # noqa: F401
from spikesculpt.experiments.lottery.search import LotteryResult, LotterySearch, run_lottery  # noqa: F401,E402

__all__ = ["STRATEGIES", "register_strategy", "LotterySearch", "LotteryResult", "run_lottery"]
