"""``score``: connection tickets found by a learned score over frozen weights (edge-popup /
biprop; the primitives and the papers: ``methods/tickets/score.py``).

Level 0 is the dense network trained normally, for reference. Level K ≥ 1 finds one ticket at
density (1 - rate)^K per layer, from the same initial weights and a fresh seeded score draw
(``score_generator(seed, K)``), the scores trained with the run's optimizer and schedule
(``ScoreNet``: only the scores learn). The saved model holds W_eff (zeros in place), so it is an
ordinary sparse model; ``--binary-weights`` selects biprop (α · sign(W)).
"""

from __future__ import annotations

from spikesculpt.experiments.lottery.base import LevelResult, Strategy
from spikesculpt.experiments.lottery.context import LevelContext
from spikesculpt.experiments.lottery.registry import register_strategy
from spikesculpt.methods.tickets.score import ScoreNet, score_generator
from spikesculpt.methods.tickets.ticket import PhaseClock


@register_strategy("score")
class ScoreTickets(Strategy):
    """Edge-popup / biprop tickets: frozen random weights, learned top-k scores per layer."""

    name = "score"
    allows_binary = True

    def find_ticket(self, ctx: LevelContext) -> LevelResult:
        model = ctx.build_model()
        net = ScoreNet(model, ctx.layers, ctx.target_density, ctx.lottery.binary_weights,
                       score_generator(ctx.train.seed, ctx.level))
        clock = PhaseClock()
        phase = ctx.train_phase("score", net, None, "init", clock=clock)
        ticket, mask = net.export()
        return LevelResult(mask, ticket, phase,
                           search_info={"seconds": clock.elapsed,
                                        "cpu_seconds": clock.cpu_elapsed,
                                        "epochs": ctx.train.epochs,
                                        "binary_weights": ctx.lottery.binary_weights})
