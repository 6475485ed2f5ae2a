"""``--early-time``: search tickets with fewer time steps T' < T, train the ticket with T.

Kim, Li, Park, Venkatesha, Yin, Panda, *Exploring lottery ticket hypothesis in spiking neural
networks*, ECCV 2022 ("early-time tickets"). The search trainings of IMP (or early-bird) cost
about T times a non-spiking network; the important connections already show with fewer steps.
After a short warm-up of the dense network with the full T:

1. run the network once on up to ``SAMPLES`` training samples with the full T (eval mode);
   the prediction with the first T' steps is ``P_T' = softmax(mean_{t < T'} logits_t)``
   (``[B, K]``). Our neurons start from rest and every other layer works per time step, so the
   first T' outputs of a T-step run *are* a T'-step run (for the direct encoding exactly; for
   Poisson input, one sample of it);
2. for every candidate T' in 2 .. T-1: ``KL(T') = mean_b Σ_k P_T'[b,k] log(P_T'[b,k] / P_T[b,k])``
   = KL(P_T' ‖ P_T);
3. normalise by the largest: ``KL~(T') = KL(T') / max_T'' KL(T'')``;
4. T' = the smallest candidate with ``KL~(T') < λ`` (λ = 0.6), else T (no reduction);
5. the rest of the search (every search training) uses T'; every ticket is trained with T.

From the paper / its code: warm-up of 2 epochs, one batch of 1000 training samples, candidates
2..T-1 (their code: 2, 3, 4 for T = 5), normalisation by the maximum over the candidates,
threshold 0.6, the same training run continuing with T'. Our choices: eval mode (BatchNorm on
running statistics) for the measurement; the first ``min(1024, N)`` training samples in their
stored order; KL in the direction the paper writes, KL(P_T' ‖ P_T) (their code calls
``nn.KLDivLoss()(log P_T', P_T)``, which is KL(P_T ‖ P_T') averaged over classes as well; the
normalisation makes the scale irrelevant, the direction changes values slightly). Needs T ≥ 3
and static data (event frames are binned to a fixed T).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

from spikesculpt.core.errors import UserError
from spikesculpt.train.callbacks import Callback

SAMPLES = 1024


def candidates(timesteps: int) -> list[int]:
    return list(range(2, int(timesteps)))


def prefix_distributions(logits: torch.Tensor, steps: list[int]) -> dict[int, torch.Tensor]:
    """``logits [T, B, K]`` -> ``{T': softmax(mean of the first T' steps) [B, K]}``."""
    cum = logits.float().cumsum(0)
    return {t: F.softmax(cum[t - 1] / t, dim=-1) for t in steps}


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """``mean_b Σ_k p log(p / q)`` for rows of probabilities ``[B, K]`` (0 log 0 = 0)."""
    p = p.double()
    q = q.double()
    terms = torch.where(p > 0, p * (torch.log(p) - torch.log(q.clamp_min(1e-300))),
                        torch.zeros_like(p))
    return float(terms.sum(-1).mean())


def normalised_kl(logits: torch.Tensor) -> tuple[dict[int, float], dict[int, float]]:
    """(``{T': KL(P_T' ‖ P_T)}``, ``{T': KL / max KL}``) for T' in 2..T-1."""
    t = logits.shape[0]
    steps = candidates(t)
    dists = prefix_distributions(logits, steps + [t])
    kls = {s: kl_divergence(dists[s], dists[t]) for s in steps}
    top = max(kls.values()) if kls else 0.0
    norm = {s: (v / top if top > 0 else 0.0) for s, v in kls.items()}
    return kls, norm


def pick_timesteps(norm: dict[int, float], lam: float, timesteps: int) -> int:
    """The smallest T' with normalised KL below ``lam``; ``timesteps`` if there is none."""
    for s in sorted(norm):
        if norm[s] < lam:
            return s
    return int(timesteps)


def check_early_time(timesteps: int, kind: str) -> None:
    if timesteps < 3:
        raise UserError(f"--early-time needs T >= 3 (candidates T' = 2..T-1), got T = "
                        f"{timesteps}; pass e.g. --timesteps 8")
    if kind == "frames":
        raise UserError("--early-time needs static data encoded to T steps; event frames are "
                        "binned to a fixed T")


@torch.no_grad()
def measure(trainer, samples: int = SAMPLES) -> dict:
    """Logits of the current model on the first training samples (full T) -> KL table."""
    data = trainer.splits.train
    tensors = getattr(data, "tensors", None)
    if tensors is not None:
        x = tensors[0][:samples]
    else:
        x = torch.stack([data[i][0] for i in range(min(samples, len(data)))])
    was_training = trainer.model.training
    trainer.model.eval()
    logits = trainer.model(trainer.to_time_major(x))
    trainer.model.train(was_training)
    kls, norm = normalised_kl(logits)
    return {"kl": kls, "normalised_kl": norm, "samples": int(x.shape[0])}


class EarlyTimeCallback(Callback):
    """After ``warmup`` epochs, pick T' and switch the running search training to it."""

    def __init__(self, warmup: int, lam: float, on_pick: Optional[Callable[[dict], None]] = None):
        self.warmup = int(warmup)
        self.lam = float(lam)
        self.on_pick = on_pick
        self.chosen: Optional[int] = None
        self.trainer = None

    def setup(self, trainer) -> None:
        self.trainer = trainer

    def on_epoch_end(self, trainer, epoch: int, row: dict) -> None:
        if self.chosen is None and epoch + 1 == self.warmup:
            full = trainer.config.timesteps
            info = measure(trainer)
            self.chosen = pick_timesteps(info["normalised_kl"], self.lam, full)
            info.update({"timesteps": self.chosen, "full_timesteps": full,
                         "warmup_epochs": self.warmup, "lambda": self.lam})
            trainer.config.timesteps = self.chosen
            if self.on_pick is not None:
                self.on_pick(info)
        row["timesteps"] = trainer.config.timesteps

    def state_dict(self) -> dict:
        return {"chosen": self.chosen}

    def load_state_dict(self, state: dict) -> None:
        self.chosen = state["chosen"]
        if self.chosen is not None and self.trainer is not None:
            self.trainer.config.timesteps = self.chosen
