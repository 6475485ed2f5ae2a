"""``imp``: iterative magnitude pruning with rewinding (the lottery-ticket procedure).

Frankle & Carbin, *The lottery ticket hypothesis*, ICLR 2019; Frankle, Dziugaite, Roy, Carbin,
*Linear mode connectivity and the lottery ticket hypothesis*, ICML 2020 (late rewinding); on
SNNs Kim et al., ECCV 2022 (25% per round, 15 rounds, global magnitude, rewind to epoch 20).

Level 0 trains the dense network from θ_0 and stores the rewind snapshot at iteration k
(``snapshot.py``). Level K ≥ 1:

1. m_K = prune ``rate`` of the active weights of m_{K-1} with the smallest |w| in the weights
   at the end of level K-1's training (``pruning.magnitude_prune``: ``global`` or ``layer``);
2. rewind: weights, BatchNorm statistics, optimizer state and learning-rate schedule ← the
   snapshot (θ_k), pruned weights and their optimizer state ← 0;
3. train iterations k+1 .. end of the same schedule with m_K enforced (``MaskEnforcer``).

Density after K rounds: d_K = (1 - rate)^K of the prunable weights (up to rounding; layers
kept dense count as dense). Each level's ticket is evaluated as usual: the best-validation
weights, test accuracy measured once.

With ``--early-time`` the trainings that *find* masks (levels 0..R-1) run with T' time steps
(``early_time.py``) and every level's ticket is trained again with the full T
(``--evaluate all``; ``ends``: only level 0 and the last level); without it the same training
both evaluates level K and yields m_{K+1}. ``early-bird`` (``early_bird.py``) stops those
search trainings once the mask has settled.

Our choices: masks are pruned from the weights at the end of training (not the best-validation
weights that are reported); the data order of every level is the run's (seeded per epoch, the
same at every level); no rescaling of kept weights (see ``ticket.py``).
"""

from __future__ import annotations

import copy

from spikesculpt.core.errors import UserError
from spikesculpt.experiments.lottery.base import Strategy
from spikesculpt.experiments.lottery.registry import register_strategy
from spikesculpt.methods.tickets.early_time import EarlyTimeCallback, check_early_time
from spikesculpt.methods.tickets.snapshot import SnapshotCallback
from spikesculpt.methods.tickets.ticket import PhaseClock, SearchRecorder


@register_strategy("imp")
class IMP(Strategy):
    """Iterative magnitude pruning with rewinding of weights, BN statistics and optimizer state."""

    name = "imp"
    uses_rewind = True
    allows_early_time = True

    def detector(self, search):
        return None  # early-bird returns an EarlyBirdDetector

    def check(self, search, model) -> None:
        if search.lottery.early_time:
            check_early_time(search.train.timesteps, search.splits.info.kind)
            if search.lottery.et_warmup >= search.train.epochs:
                raise UserError(f"--et-warmup ({search.lottery.et_warmup} epochs) must be shorter "
                                f"than training ({search.train.epochs} epochs)")

    def run_level(self, search, level: int) -> None:
        lot = search.lottery
        rounds = lot.rounds
        model = search.build_model(search.train)
        mask = search.level_mask(level, model)
        evaluate = search.evaluates(level)
        start = self.ticket_start(level)
        folder = search.level_dir(level)

        # no early-bird stop before the rewind snapshot exists and (level 0 with
        # --early-time) before T' has been picked
        min_epoch = search.rewind_step // search.steps_per_epoch + 1
        if lot.early_time and level == 0:
            min_epoch = max(min_epoch, lot.et_warmup)

        def recorder(clock, stop):
            if level >= rounds:
                return []
            rec = SearchRecorder(mask, lot.rate, lot.prune,
                                 on_found=lambda m, info: search.save_search(level, m, info),
                                 clock=clock, detector=self.detector(search),
                                 min_epoch=min_epoch,
                                 stop=stop)
            rec.found = search.search_done(level)
            return [rec]

        def level0_extras():
            if level != 0:
                return []
            extras = [SnapshotCallback(search.rewind_step, on_capture=search.save_snapshot,
                                       snapshot=search.stored_snapshot())]
            if lot.early_time:
                extras.append(EarlyTimeCallback(lot.et_warmup, lot.et_lambda,
                                                on_pick=search.save_early_time))
            return extras

        phase = None
        if not lot.early_time:
            if evaluate or not search.search_done(level):
                clock = PhaseClock()
                cbs = level0_extras() + recorder(clock, stop=not evaluate)
                phase = search.train_phase(folder, "train", copy.deepcopy(search.train), model,
                                           mask, start, cbs, clock)
            search.write_level(level, mask, phase.trainer.model if phase else model,
                               phase if evaluate else None)
            return

        if level < rounds and not search.search_done(level):
            config = search.search_config(level)
            clock = PhaseClock()
            cbs = level0_extras() + recorder(clock, stop=True)
            search.train_phase(folder, "search", config, model, mask, start, cbs, clock)
        if evaluate:
            model = search.build_model(search.train)
            clock = PhaseClock()
            phase = search.train_phase(folder, "train", copy.deepcopy(search.train), model, mask,
                                       start, [], clock)
        search.write_level(level, mask, phase.trainer.model if phase else model, phase)
