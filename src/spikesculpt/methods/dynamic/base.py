"""``SparseMethod``: sparse training at a fixed connection count, static or rewired.

One class, four registered configurations (``static``, ``set``, ``rigl``, ``esl``) that differ
only in their defaults (``DEFAULTS``) and schedule. Built from the sparse core:

1. ``prepare_model``: per-layer counts for the global ``density`` (``allocation.layer_counts``
   with the ``init`` rule; ``dense_first``/``dense_last`` keep those layers whole), an exact-count
   Erdős–Rényi mask per layer from a seeded generator (``init.random_mask``), pruned weights
   zeroed. The kept weights keep the model's own initialisation, times 1/√d where no
   normalisation follows (``rescale_kept_weights``); when a run starts, layers whose neurons
   are still silent on a training batch are scaled up further (``Method.on_fit_start``:
   ``models.calibrate.calibrate_firing``, ``config.init_firing``).
2. ``attach``: a ``MaskEnforcer`` keeps pruned weights, gradients and optimizer state at zero;
   for rewiring methods two more optimizer hooks run the update:
   - pre-step, at an update step: read the grow scores of the growth rule
     (``sparse/growth.py``: dense ``|grad|`` for ``gradient``; the Hebbian coincidence recorded
     during this batch's forward for ``hebbian``) before the enforcer masks the gradient;
   - post-step: count the step; at an update step (``schedule.is_update_step``), for every
     masked layer drop the ``n_l = round(α_t · active_l)`` smallest-``|w|`` active connections
     and grow as many where the grow score is largest among those inactive before the update
     (``rewire.drop_and_grow``); connections regrown within the last ``grace`` updates are not
     drop candidates (``ages.ConnectionAges``, which also reports how the rewiring explores);
     dropped and grown weights and their optimizer state are set to zero. ``α_t``: cosine
     decay from ``drop_fraction`` to 0 at ``update_until · total_steps`` (RigL's schedule), or
     constant (SET).
   The active count of every layer never changes.
   Under AMP, a step that ``GradScaler`` skips on overflow is no step for these hooks: not
   counted, no rewiring, nothing read; gradient scores are unscaled (``sparse/steps.py``).
3. Bookkeeping: one record per update (step, α, connections changed per layer, cumulative
   topology change); the mask at the best-validation epoch is kept with the best weights.

Seeds: the mask generator is seeded from the run seed (``torch.Generator``), so the same config
and seed give the same masks.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from spikesculpt.core.distributed import check_identical, checks_enabled
from spikesculpt.core.errors import UserError
from spikesculpt.methods.base import Method
from spikesculpt.methods.dynamic.ages import ConnectionAges
from spikesculpt.methods.dynamic.options import SparseConfig
from spikesculpt.methods.dynamic.report import write_sparse_report
from spikesculpt.models.utils import normalised_layers, prunable_parameters
from spikesculpt.sparse import (
    HebbianRecorder,
    Mask,
    MaskEnforcer,
    cosine_fraction,
    create_growth_rule,
    drop_and_grow,
    is_update_step,
    layer_counts,
    random_mask,
)
from spikesculpt.sparse.steps import step_skipped

MASK_STREAM = 7_919  # offset of the mask generator's seed from the run seed
OPTIONAL_DEFAULTS = dict(grace=0)  # a subclass's DEFAULTS may leave these out


class SparseMethod(Method):
    """Fixed-density sparse training; subclasses set ``name``, ``DEFAULTS`` and ``schedule``."""

    name = "sparse"
    options_class = SparseConfig
    config_section = "sparse"
    rewires = True
    calibrates_init = True
    schedule = "cosine"          # cosine | constant
    DEFAULTS: dict = dict(init="er", grow="random", update_every=100, drop_fraction=0.3,
                          update_until=0.75)

    def __init__(self, options: Optional[SparseConfig] = None, seed: int = 0):
        options = (options or SparseConfig()).validate()
        self.density = float(options.density)
        self.dense_first = bool(options.dense_first)
        self.dense_last = bool(options.dense_last)
        defaults = self.defaults()
        resolved = {k: getattr(options, k) for k in defaults}
        for k, v in defaults.items():
            if resolved[k] is None:
                resolved[k] = v
        self.init = resolved["init"]
        self.grow = resolved["grow"]
        # a method that never rewires (static) has no growth rule: it behaves as random
        self.growth = create_growth_rule(self.grow or "random")
        self.update_every = resolved["update_every"]      # None = once per epoch
        self.drop_fraction = float(resolved["drop_fraction"])
        self.update_until = float(resolved["update_until"])
        self.grace = int(resolved["grace"])
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed * 1_000_003 + MASK_STREAM)
        self.mask: Optional[Mask] = None
        self.initial_mask: Optional[Mask] = None
        self.best_mask: Optional[Mask] = None
        self.counts: dict[str, int] = {}
        self.step = 0
        self.updates: list[dict] = []
        self.enforcer: Optional[MaskEnforcer] = None
        self.model: Optional[nn.Module] = None
        self.optimizer = None
        self.total_steps = 0
        self.every = 1
        self._recorder: Optional[HebbianRecorder] = None
        self._scores: dict[str, torch.Tensor] = {}
        self._hebbian_warned: set[str] = set()
        self._epoch_first_update = 0
        self.last_update: dict[str, dict] = {}
        self.ages: Optional[ConnectionAges] = None

    @classmethod
    def defaults(cls) -> dict:
        """The method's defaults: ``DEFAULTS`` over ``OPTIONAL_DEFAULTS`` (options added after
        a subclass was written, e.g. ``grace``, default to what they did before)."""
        return {**OPTIONAL_DEFAULTS, **cls.DEFAULTS}

    @classmethod
    def resolve_options(cls, options: SparseConfig) -> SparseConfig:
        """A copy of ``options`` with every None that ``DEFAULTS`` gives a value filled in."""
        unset = {k: v for k, v in cls.defaults().items()
                 if getattr(options, k) is None and v is not None}
        return dataclasses.replace(options, **unset)

    @classmethod
    def from_options(cls, options, seed: int = 0) -> "SparseMethod":
        return cls(options, seed=seed)

    # ------------------------------------------------------------------ masks
    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Draw the initial masks for ``model`` and zero its pruned weights."""
        params = prunable_parameters(model)
        if not params:
            raise UserError(f"method {self.name!r} needs a model with conv / linear layers to "
                            f"sparsify; this one has none")
        shapes = {n: tuple(p.shape) for n, p in params}
        names = list(shapes)
        dense = set()
        if self.dense_first:
            dense.add(names[0])
        if self.dense_last:
            dense.add(names[-1])
        self.counts = layer_counts(shapes, self.density, self.init, dense)
        sparse_names = [n for n in names if self.counts[n] < _numel(shapes[n])]
        self.mask = random_mask({n: shapes[n] for n in sparse_names}, self.counts,
                                self.generator)
        self.mask.apply_(model)
        self.rescaled = rescale_kept_weights(model, self.mask)
        self.initial_mask = self.mask.clone()
        self.ages = ConnectionAges(self.initial_mask) if self.rewires else None
        self.model = model
        return model

    def attach(self, model, optimizer, total_steps, steps_per_epoch=None) -> "SparseMethod":
        if self.mask is None or self.model is not model:
            self.prepare_model(model)
        device = next(model.parameters()).device
        self.mask = self.mask.to(device)
        self.model, self.optimizer = model, optimizer
        self.total_steps = int(total_steps)
        self.every = int(self.update_every or steps_per_epoch or 1)
        self._layers = {n: m for n, m in _layer_modules(model).items() if n in self.mask}
        self._params = {n: p for n, p in model.named_parameters() if n in self.mask}
        # one pre- and one post-step hook: rewiring bookkeeping around the enforcer's masking
        self.enforcer = MaskEnforcer(model, optimizer, self.mask, hooks=False).attach()
        optimizer.register_step_pre_hook(self._pre_step)
        optimizer.register_step_post_hook(self._post_step)
        self._arm()
        return self

    # ------------------------------------------------------------------ rewiring
    @property
    def end_step(self) -> float:
        return self.update_until * self.total_steps

    def fraction(self, step: int) -> float:
        """α at optimizer step ``step`` (the fraction of each layer's connections rewired)."""
        if self.schedule == "constant":
            return self.drop_fraction if step < self.end_step else 0.0
        return cosine_fraction(step, self.drop_fraction, self.end_step)

    def _next_is_update(self) -> bool:
        return self.rewires and is_update_step(self.step + 1, self.every, self.end_step)

    def _arm(self) -> None:
        """Record Hebbian coincidences during the next forward if the next step updates."""
        if self._recorder is not None:
            self._recorder.detach()
            self._recorder = None
        if self.growth.records and self._next_is_update():
            self._recorder = HebbianRecorder(self.model, self._layers).attach()

    def _pre_step(self, optimizer, args, kwargs) -> None:
        if step_skipped(optimizer):  # AMP overflow: the fused optimizer will not step
            return
        if self._next_is_update():
            self._read_grow_scores(optimizer)
        self.enforcer.apply_grads()

    def _read_grow_scores(self, optimizer) -> None:
        """The growth rule's scores, identical on every rank of a distributed run: gradients
        were all-reduced by DDP during backward (before this pre-step hook), Hebbian
        coincidences are summed over the ranks by the recorder (``HebbianRecorder.detach``)."""
        recorder, self._recorder = self._recorder, None
        if self.growth.records and recorder is None:
            return  # nothing was recorded for this step (e.g. a skipped AMP step before)
        self._scores = self.growth.scores(optimizer, self._params, recorder)
        if recorder is not None:
            self._warn_hebbian_fallback(recorder.fallback)

    def _warn_hebbian_fallback(self, names: set[str]) -> None:
        """Warn once per layer whose Hebbian score had to use output currents, not spikes."""
        new = sorted(names - self._hebbian_warned)
        if new:
            self._hebbian_warned |= set(new)
            warnings.warn(f"hebbian growth: {', '.join(new)} drive(s) a spiking neuron only "
                          f"through a layer that changes the shape (e.g. a max-pool between a "
                          f"conv and its neuron), so their growth scores use the layer's output "
                          f"current instead of post-synaptic spikes (docs/methods.md)",
                          stacklevel=2)

    def _post_step(self, optimizer, args, kwargs) -> None:
        if step_skipped(optimizer):  # nothing moved; not a step: no count, no rewiring
            if self._recorder is not None:
                self._arm()          # record the retried step's batch afresh
            return
        if not self.enforcer.keeps_zeros:   # else the optimizer kept them at 0 (enforce.py)
            self.enforcer.apply_weights()
        if not self.rewires:
            return
        self.step += 1
        if is_update_step(self.step, self.every, self.end_step):
            self.update(self.fraction(self.step))
        if self.growth.records or self._recorder is not None:
            self._arm()

    @torch.no_grad()
    def update(self, alpha: float) -> dict:
        """Drop and regrow ``round(alpha · active_l)`` connections in every masked layer."""
        record = {"step": self.step, "alpha": alpha, "changed": 0}
        self.last_update = {}
        reset = {}
        self.ages.begin_update()
        for name in self.mask:
            weight = self._params[name]
            m = self.mask[name]
            n = int(round(alpha * int(m.sum())))
            score = self._scores.get(name)  # None: random growth (random rule, no gradient)
            protected = self.ages.protected(name, self.grace) if self.grace else None
            new, dropped, grown = drop_and_grow(m, weight, n, score, self.generator,
                                                protected=protected)
            self.ages.record(name, dropped, grown)
            m.copy_(new)
            flat = weight.view(-1)
            flat[dropped] = 0
            flat[grown] = 0
            sel = torch.zeros(m.numel(), dtype=torch.bool, device=m.device)
            sel[dropped] = True
            sel[grown] = True
            reset[name] = sel.view_as(m)
            self.last_update[name] = {"dropped": dropped, "grown": grown}
            record[f"changed/{name}"] = len(grown)
            record["changed"] += len(grown)
        self._scores = {}
        self.enforcer.refresh()
        self.enforcer.reset_state(reset)
        self.enforcer.apply_weights()
        if checks_enabled():  # SPIKESCULPT_CHECK_MASKS=1: every rank holds the same masks
            check_identical(dict(self.mask.items()), f"mask update at step {self.step}")
        record["topology_change"] = self.topology_change()
        record.update(self.ages.summary(self.mask))
        self.updates.append(record)
        return record

    def topology_change(self, mask: Optional[Mask] = None) -> float:
        """Fraction of the initial connections no longer present in ``mask`` (default: now)."""
        mask = mask or self.mask
        initial = sum(int(m.sum()) for _, m in self.initial_mask.items())
        if not initial:
            return 0.0
        kept = sum(int((mask[n] & self.initial_mask[n].to(mask[n].device)).sum())
                   for n in self.initial_mask)
        return 1.0 - kept / initial

    # ------------------------------------------------------------------ callbacks
    def on_fit_start(self, trainer) -> None:
        super().on_fit_start(trainer)  # wake silent layers (the masked weights stay zero)
        self._arm()                    # a fresh Hebbian recorder: those passes were no batch

    def on_epoch_start(self, trainer, epoch: int) -> None:
        self._epoch_first_update = len(self.updates)

    def on_epoch_end(self, trainer, epoch: int, row: dict) -> None:
        new = self.updates[self._epoch_first_update:]
        row["mask_updates"] = len(new)
        row["connections_changed"] = sum(r["changed"] for r in new)
        if trainer.best_epoch == epoch + 1:
            self.best_mask = self.mask.clone()

    def on_fit_end(self, trainer, metrics: dict) -> None:
        super().on_fit_end(trainer, metrics)
        if self.best_mask is not None:  # the trainer restored the best-validation weights
            self.mask.load_state_dict(self.best_mask.state_dict())
            self.enforcer.refresh()
        total = sum(p.numel() for _, p in prunable_parameters(self.model))
        dense_active = sum(self.counts[n] for n in self.counts if n not in self.mask)
        metrics["mask_density"] = (sum(self.mask.active(n) for n in self.mask) + dense_active) \
            / total
        metrics["layer_mask_density"] = {n: (self.mask.density(n) if n in self.mask else 1.0)
                                         for n in self.counts}
        metrics["mask_updates"] = len(self.updates)
        metrics["connections_changed"] = sum(r["changed"] for r in self.updates)
        metrics["topology_change"] = self.topology_change()
        if self.updates:
            metrics.update(self.ages.run_summary(self.updates))

    def params(self) -> dict:
        return {"density": self.density, "init": self.init,
                "grow": self.grow if self.rewires else None,
                "update_every": self.every if self.rewires else None,
                "drop_fraction": self.drop_fraction if self.rewires else None,
                "update_until": self.update_until if self.rewires else None,
                "schedule": self.schedule if self.rewires else None,
                "grace": self.grace if self.rewires else None,
                "dense_first": self.dense_first, "dense_last": self.dense_last,
                "layer_counts": dict(self.counts),
                "rescaled_layers": list(getattr(self, "rescaled", []))}

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        return {**super().state_dict(),
                "mask": self.mask.state_dict(), "initial_mask": self.initial_mask.state_dict(),
                "best_mask": None if self.best_mask is None else self.best_mask.state_dict(),
                "step": self.step, "updates": list(self.updates),
                "generator": self.generator.get_state(),
                "ages": None if self.ages is None else self.ages.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.mask.load_state_dict(state["mask"])
        self.initial_mask.load_state_dict(state["initial_mask"])
        self.best_mask = None if state["best_mask"] is None else Mask(state["best_mask"])
        self.step = int(state["step"])
        self.updates = list(state["updates"])
        self.generator.set_state(state["generator"])
        if self.ages is not None and state.get("ages"):  # older checkpoints: ages restart
            self.ages.load_state_dict(state["ages"])
        if self.enforcer is not None:
            self.enforcer.refresh()
            self.enforcer.apply_weights()
            self._arm()

    # ------------------------------------------------------------------ outputs
    def save_artifacts(self, folder: Path) -> None:

        write_sparse_report(self, Path(folder))


@torch.no_grad()
def rescale_kept_weights(model: nn.Module, mask: Mask) -> list[str]:
    """Multiply the kept weights of every masked layer whose output is *not* normalised by
    ``1/sqrt(d_l)`` (d_l its density); return the names of the layers rescaled.

    A neuron of a layer at density d sees on average ``d·fan_in`` inputs, so its input current
    has ``d`` times the variance it would have in the dense layer. Without a normalisation to
    undo that (MLPs, readouts), LIF layers then sit below threshold and never fire: measured on
    digits (mlp 256-256, ESL at density 0.1, 30 epochs): firing rate 6e-5 at the start and
    70.8% test accuracy without the rescaling. Rescaling restores the dense initial variance
    (the variance-preserving sparse initialisation of Evci et al. 2022, "Gradient flow in sparse
    neural networks and how lottery tickets win", AAAI, here per layer rather than per neuron).

    A layer followed by a normalisation (the next module in registration order is a BatchNorm,
    GroupNorm or LayerNorm: ``conv -> BN`` blocks, SpikingJelly's ``SeqToANNContainer(conv,
    BN)``) is left alone: its output scale is normalised away, and larger weights would only
    shrink its effective learning rate (with Adam, relative updates ∝ lr/|w|).
    Our choice, for every sparse method alike.
    """
    normalised = normalised_layers(model)
    params = dict(model.named_parameters())
    done = []
    for name, m in mask.items():
        d = float(m.sum()) / m.numel()
        if 0 < d < 1 and name not in normalised:
            params[name].mul_(d ** -0.5)
            done.append(name)
    return done


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _layer_modules(model: nn.Module) -> dict[str, nn.Module]:
    """``{weight name: module}`` for modules with a ``weight`` parameter."""
    out = {}
    for mname, module in model.named_modules():
        w = getattr(module, "weight", None)
        if isinstance(w, nn.Parameter):
            out[f"{mname}.weight" if mname else "weight"] = module
    return out
