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
same at every level); no rescaling of kept weights (see ``ticket.py``) unless ``--rescale``
(``rescale.py``); ``--min-inputs k`` keeps the k largest inputs of every output unit
(``pruning.py``) — both ours, off by default.
"""

from __future__ import annotations

from spikesculpt.core.errors import UserError
from spikesculpt.experiments.lottery.base import LevelResult, Strategy
from spikesculpt.experiments.lottery.context import LevelContext
from spikesculpt.experiments.lottery.registry import register_strategy
from spikesculpt.methods.tickets.early_time import EarlyTimeCallback, check_early_time
from spikesculpt.methods.tickets.pruning import floor_connections
from spikesculpt.methods.tickets.snapshot import SnapshotCallback
from spikesculpt.methods.tickets.ticket import PhaseClock, SearchRecorder


def check_floor(model, layers: list, lottery) -> None:
    """``UserError`` when ``--min-inputs`` keeps more connections than the last level's target
    (nothing is written yet): the floor keeps Σ outputs × min(k, fan-in) per ranking group."""
    if not lottery.min_inputs:
        return
    params = dict(model.named_parameters())
    shapes = {n: tuple(params[n].shape) for n in layers}
    groups = [[n] for n in layers] if lottery.prune == "layer" else [layers]
    final = (1.0 - lottery.rate) ** lottery.rounds
    for group in groups:
        floor = floor_connections({n: shapes[n] for n in group}, lottery.min_inputs)
        total = sum(params[n].numel() for n in group)
        if floor > final * total:
            raise UserError(f"--min-inputs {lottery.min_inputs} keeps {floor} of the {total} "
                            f"connections of {', '.join(group)}, more than the last level's "
                            f"density {final:.4g} leaves; lower --min-inputs or --rounds")


@register_strategy("imp")
class IMP(Strategy):
    """Iterative magnitude pruning with rewinding of weights, BN statistics and optimizer state."""

    name = "imp"
    uses_rewind = True
    allows_early_time = True
    magnitude_pruning = True

    def detector(self, ctx: LevelContext):
        return None  # early-bird returns an EarlyBirdDetector

    def check(self, ctx: LevelContext, model) -> None:
        if ctx.lottery.early_time:
            check_early_time(ctx.train.timesteps, ctx.info.kind)
            if ctx.lottery.et_warmup >= ctx.train.epochs:
                raise UserError(f"--et-warmup ({ctx.lottery.et_warmup} epochs) must be shorter "
                                f"than training ({ctx.train.epochs} epochs)")
        check_floor(model, ctx.layers, ctx.lottery)

    def train_dense(self, ctx: LevelContext) -> LevelResult:
        return self.imp_level(ctx)  # level 0 also stores the rewind snapshot and finds m_1

    def find_ticket(self, ctx: LevelContext) -> LevelResult:
        return self.imp_level(ctx)

    def imp_level(self, ctx: LevelContext) -> LevelResult:
        """Train level K from its start with m_K; the same (or a T') training finds m_{K+1}."""
        lot = ctx.lottery
        level = ctx.level
        model = ctx.build_model()
        mask = ctx.mask(model)
        start = ctx.start

        # no early-bird stop before the rewind snapshot exists and (level 0 with
        # --early-time) before T' has been picked
        min_epoch = ctx.rewind_step // ctx.steps_per_epoch + 1
        if lot.early_time and level == 0:
            min_epoch = max(min_epoch, lot.et_warmup)

        def recorder(clock, stop):
            if level >= lot.rounds:
                return []
            rec = SearchRecorder(mask, lot.rate, lot.prune, on_found=ctx.save_search,
                                 clock=clock, detector=self.detector(ctx), min_epoch=min_epoch,
                                 stop=stop, min_inputs=lot.min_inputs)
            rec.found = ctx.search_done()
            return [rec]

        def level0_extras():
            if level != 0:
                return []
            extras = [SnapshotCallback(ctx.rewind_step, on_capture=ctx.save_snapshot,
                                       snapshot=ctx.stored_snapshot())]
            if lot.early_time:
                extras.append(EarlyTimeCallback(lot.et_warmup, lot.et_lambda,
                                                on_pick=ctx.save_early_time))
            return extras

        phase = None
        if not lot.early_time:
            if ctx.evaluates or not ctx.search_done():
                clock = PhaseClock()
                cbs = level0_extras() + recorder(clock, stop=not ctx.evaluates)
                phase = ctx.train_phase("train", model, mask, start, cbs, clock)
            return LevelResult(mask, phase.trainer.model if phase else model,
                               phase if ctx.evaluates else None)

        if level < lot.rounds and not ctx.search_done():
            clock = PhaseClock()
            cbs = level0_extras() + recorder(clock, stop=True)
            ctx.train_phase("search", model, mask, start, cbs, clock, config=ctx.search_config())
        if ctx.evaluates:
            model = ctx.build_model()
            phase = ctx.train_phase("train", model, mask, start)
        return LevelResult(mask, phase.trainer.model if phase else model, phase)
