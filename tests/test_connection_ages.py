"""Connection ages of the rewiring methods and the grace period (issue 14's churn diagnosis).

Oracles: the exploration figures of every update are recomputed here from the dropped and grown
indices the method reports (``last_update``); the grace period is checked against the birth
records it reads.
"""

import pytest
import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.methods import create_method
from spikesculpt.models import create_model
from spikesculpt.sparse import drop_and_grow


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return create_model("conv", in_channels=1, image_size=8, num_classes=10, channels=[4, 8])


def run_with_oracle(steps=16, **options):
    """Train ESL on random batches; after every update recompute its figures from indices."""
    method = create_method("esl", density=0.2, update_every=2, drop_fraction=0.4,
                           update_until=1.0, **options)
    model = method.prepare_model(tiny_model())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    method.attach(model, opt, total_steps=steps, steps_per_epoch=2)
    born = {n: torch.zeros(m.numel(), dtype=torch.long) for n, m in method.mask.items()}
    dropped_at = {n: torch.full((m.numel(),), -1) for n, m in method.mask.items()}
    ever = {n: m.reshape(-1).clone() for n, m in method.mask.items()}
    g = torch.Generator().manual_seed(0)
    seen = 0
    for _ in range(steps):
        x, y = torch.rand(3, 16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x).mean(0), y).backward()
        opt.step()
        if len(method.updates) == seen:
            continue
        seen += 1
        u = seen
        newborn = returning = n_drop = n_grow = 0
        for n, upd in method.last_update.items():
            d, gr = upd["dropped"], upd["grown"]
            if options.get("grace"):
                # nothing grown within the last `grace` updates was dropped
                assert not torch.any((born[n][d] > 0) & (born[n][d] >= u - options["grace"]))
            newborn += int((born[n][d] == u - 1).sum()) if u > 1 else 0
            returning += int((dropped_at[n][gr] >= 0).sum())
            n_drop, n_grow = n_drop + len(d), n_grow + len(gr)
            dropped_at[n][d] = u
            born[n][gr] = u
            ever[n][gr] = True
        rec = method.updates[-1]
        assert rec["dropped_newborn"] == pytest.approx(newborn / max(1, n_drop))
        assert rec["grown_returning"] == pytest.approx(returning / max(1, n_grow))
        active = torch.cat([method.mask[n].reshape(-1) for n in born])
        ages = torch.cat([u - born[n] for n in born])
        assert rec["mean_age"] == pytest.approx(float(ages[active].float().mean()))
        assert rec["explored"] == pytest.approx(
            float(torch.cat(list(ever.values())).float().mean()))
    return method


def test_exploration_figures_equal_a_recount_from_the_indices():
    method = run_with_oracle(grace=0)
    assert len(method.updates) == 7  # steps 2, 4, ..., 14: none at the end of training
    explored = [r["explored"] for r in method.updates]
    assert explored == sorted(explored) and explored[-1] > 0.2  # grows from the density
    # the churn: without a grace period most connections ESL drops were just grown
    assert max(r["dropped_newborn"] for r in method.updates) > 0.5


def test_grace_period_spares_the_newborn():
    plain = run_with_oracle(grace=0)
    spared = run_with_oracle(grace=1)   # the oracle checks every dropped index is old enough
    assert all(r["dropped_newborn"] == 0 for r in spared.updates)
    assert max(r["dropped_newborn"] for r in plain.updates) > 0.5
    assert not spared.mask == plain.mask
    assert spared.params()["grace"] == 1 and plain.params()["grace"] == 0


def test_drop_and_grow_never_drops_a_protected_connection():
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(20, 10, generator=g) < 0.3
    w = torch.randn(20, 10, generator=g) * mask
    protected = mask & (torch.rand(20, 10, generator=g) < 0.5)
    new, dropped, grown = drop_and_grow(mask, w, 10, torch.rand(20, 10, generator=g),
                                        torch.Generator().manual_seed(1), protected=protected)
    assert not protected.reshape(-1)[dropped].any() and new[protected].all()
    droppable = (mask & ~protected).reshape(-1)
    kept = droppable.clone()
    kept[dropped] = False
    assert w.reshape(-1).abs()[dropped].max() <= w.reshape(-1).abs()[kept].min()
    # n is clipped to the droppable connections
    _, d2, g2 = drop_and_grow(mask, w, 10_000, None, torch.Generator().manual_seed(1),
                              protected=protected)
    assert len(d2) == len(g2) == int(droppable.sum())


@pytest.mark.parametrize("grace", [-1, 1.5, True])
def test_bad_grace_is_a_user_error(grace):
    with pytest.raises(UserError, match="grace"):
        create_method("esl", grace=grace)


def test_update_indices_widen_before_int16_overflows():
    from spikesculpt.methods.dynamic.ages import ConnectionAges
    from spikesculpt.sparse import Mask

    ages = ConnectionAges(Mask({"w": torch.tensor([True, False, False])}))
    ages.update = 32_766
    ages.begin_update()
    ages.record("w", torch.tensor([0]), torch.tensor([1]))
    assert ages.born["w"].dtype == torch.int32 and int(ages.born["w"][1]) == 32_767
    assert int(ages.dropped["w"][0]) == 32_767
