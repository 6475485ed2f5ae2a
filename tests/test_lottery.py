"""Lottery-ticket primitives: magnitude pruning, rewinding, early-bird, early-time, scores."""

import copy
import math

import pytest
import torch
from torch import nn

from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.data.base import DatasetInfo, DataSplits
from spikesculpt.experiments.lottery.options import LotteryConfig
from spikesculpt.experiments.lottery.search import lottery_hash
from spikesculpt.methods.tickets.early_bird import EarlyBirdDetector, mask_distance
from spikesculpt.methods.tickets.early_time import (
    kl_divergence,
    normalised_kl,
    pick_timesteps,
    prefix_distributions,
)
from spikesculpt.methods.tickets.pruning import full_mask, magnitude_prune, ticket_layers
from spikesculpt.methods.tickets.rescale import rescale_to_dense_norm, squared_norms
from spikesculpt.methods.tickets.score import ScoreNet, TopK, effective_weight
from spikesculpt.methods.tickets.snapshot import (
    Snapshot,
    SnapshotCallback,
    parse_rewind,
    rewind_step,
)
from spikesculpt.methods.tickets.ticket import TicketCallback
from spikesculpt.models import create_model, prunable_parameters
from spikesculpt.sparse import Mask
from spikesculpt.train.callbacks import Callback
from spikesculpt.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def conv_model(seed=0):
    torch.manual_seed(seed)
    return create_model("conv", in_channels=1, image_size=8, num_classes=10, channels=[4, 8],
                        neuron_kwargs={"v_threshold": 0.5})


def random_weights(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(p.shape, generator=g) for n, p in prunable_parameters(model)}


# --------------------------------------------------------------------------- magnitude pruning
@pytest.mark.parametrize("rate", [0.2, 0.25, 0.5, 0.9])
def test_global_pruning_removes_exactly_rate_of_the_remaining_smallest_weights(rate):
    model = conv_model()
    weights = random_weights(model)
    mask = full_mask(model, ticket_layers(model))
    for _ in range(3):
        active = sum(mask.active(n) for n in mask)
        new = magnitude_prune(weights, mask, rate, "global")
        assert active - sum(new.active(n) for n in new) == round(rate * active)
        for n in mask:
            assert not (new[n] & ~mask[n]).any()            # pruned stays pruned
        removed = torch.cat([weights[n][mask[n] & ~new[n]].abs() for n in mask])
        kept = torch.cat([weights[n][new[n]].abs() for n in new])
        assert removed.max() <= kept.min()                  # one global ranking
        mask = new


def test_layerwise_pruning_removes_rate_of_every_layer():
    model = conv_model()
    weights = random_weights(model, 1)
    mask = full_mask(model, ticket_layers(model))
    for _ in range(2):
        new = magnitude_prune(weights, mask, 0.3, "layer")
        for n in mask:
            assert mask.active(n) - new.active(n) == round(0.3 * mask.active(n))
            removed = weights[n][mask[n] & ~new[n]].abs()
            assert removed.max() <= weights[n][new[n]].abs().min()
        mask = new
    densities = [new.density(n) for n in new]
    assert max(densities) - min(densities) < 0.02


def test_pruning_is_keyed_by_name_and_deterministic(tmp_path):
    model = conv_model()
    weights = random_weights(model, 2)
    names = ticket_layers(model, dense_last=True)
    assert "readout.weight" not in names and names[0] == "features.0.conv.weight"
    mask = full_mask(model, names)
    a = magnitude_prune(weights, mask, 0.5, "global")
    reordered = Mask({n: mask[n] for n in reversed(mask.names())})
    b = magnitude_prune(weights, reordered, 0.5, "global")
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert Mask.load(a.save(tmp_path / "m.safetensors")) == a
    with pytest.raises(UserError):
        ticket_layers(nn.Sequential(nn.ReLU()))


# --------------------------------------------------------------------------- rewinding
def _splits(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    ds = torch.utils.data.TensorDataset(x, y)
    return DataSplits(ds, ds, ds, DatasetInfo("toy", "static", (1, 8, 8), 10))


def _config(**kw):
    base = dict(epochs=3, timesteps=2, batch_size=16, optimizer="sgd", lr=0.05, momentum=0.9,
                device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("step, optimizer", [(4, "sgd"), (3, "adam"), (0, "adam")])
def test_rewind_restores_weights_bn_statistics_and_optimizer_state_bit_exactly(step, optimizer):
    splits, config = _splits(), _config(optimizer=optimizer, lr=0.01)
    shots = []
    trainer = Trainer(conv_model(), splits, config,
                      [SnapshotCallback(step, on_capture=shots.append)], progress=False)
    trainer.fit()
    (shot,) = shots
    assert shot.step == step
    assert shot.model["features.0.bn.num_batches_tracked"] == step    # BN statistics of step k
    # a fresh model, pruned, trained a little elsewhere, then rewound
    model = conv_model(seed=5)
    mask = magnitude_prune(dict(model.named_parameters()), full_mask(model, ticket_layers(model)),
                           0.5, "global")
    ticket = TicketCallback(mask)
    other = Trainer(model, splits, config, [ticket], progress=False)
    other.train_epoch(0)
    shot.restore(other, ticket.enforcer)
    state = other.model.state_dict()
    for name, value in shot.model.items():
        expected = value * mask[name] if name in mask else value
        assert torch.equal(state[name], expected), name
    assert torch.equal(state["features.0.bn.running_var"], shot.model["features.0.bn.running_var"])
    names = dict(other.model.named_parameters())
    saved = shot.optimizer["state"]
    flat_names = [n for group in shot.names for n in group]
    assert len(saved) == (len(flat_names) if step else 0)
    for index, pstate in saved.items():
        name = flat_names[index]
        live = other.optimizer.state[names[name]]
        for key, value in pstate.items():
            if torch.is_tensor(value) and value.shape == names[name].shape and name in mask:
                assert torch.equal(live[key], value * mask[name]), (name, key)
            else:
                assert torch.equal(torch.as_tensor(live[key]), torch.as_tensor(value))
    assert other.optimizer.param_groups[0]["lr"] == shot.optimizer["param_groups"][0]["lr"]
    assert other.scheduler.last_epoch == step // other.steps_per_epoch
    assert (other.step, other.epoch, other.skip_batches) == \
        (step, step // other.steps_per_epoch, step % other.steps_per_epoch)


class LastState(Callback):
    def on_epoch_end(self, trainer, epoch, row):
        self.state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize("step", [0, 4, 6])
def test_rewound_dense_run_replays_the_original_schedule_exactly(step, tmp_path):
    """Rewind to k with every weight kept, train to the end: the last-epoch weights of the
    uninterrupted run, bit for bit (same batches, the epoch's first k mod steps batches skipped,
    scheduler stepped once per epoch)."""
    splits, config = _splits(), _config()
    shots, a, b = [], LastState(), LastState()
    first = Trainer(conv_model(), splits, config, [SnapshotCallback(step, shots.append), a],
                    progress=False)
    first.fit()
    model = conv_model(seed=9)
    ticket = TicketCallback(full_mask(model, ticket_layers(model)))
    second = Trainer(model, splits, config, [ticket, b], progress=False)
    Snapshot.load(shots[0].save(tmp_path / "r.pt")).restore(second, ticket.enforcer)
    second.fit()
    assert len(second.history) == config.epochs - step // first.steps_per_epoch
    assert second.history[-1]["train_loss"] == first.history[-1]["train_loss"]
    assert a.state.keys() == b.state.keys()
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)


def test_snapshot_refuses_another_model_and_rewind_points_are_checked():
    splits, config = _splits(), _config()
    shots = []
    Trainer(conv_model(), splits, config, [SnapshotCallback(0, shots.append)],
            progress=False).fit()
    other = Trainer(create_model("mlp", in_channels=1, image_size=8, num_classes=10,
                                 hidden=[8]), splits, config, progress=False)
    with pytest.raises(UserError, match="another model"):
        shots[0].restore(other)
    assert parse_rewind("500it") == (500, "it") and parse_rewind("2ep") == (2, "ep")
    assert parse_rewind("0") == (0, "it")
    assert rewind_step("1ep", 21, 30) == 21 and rewind_step("20it", 21, 30) == 20
    for bad in ("5", "ep", "-1it", "1.5ep", "3epochs", ""):
        with pytest.raises(UserError, match="rewind"):
            parse_rewind(bad)
    with pytest.raises(UserError, match="not before the end"):
        rewind_step("2ep", 10, 2)
    with pytest.raises(UserError, match="not before the end"):
        rewind_step("25it", 10, 2)


# --------------------------------------------------------------------------- early-bird
def _mask(bits):
    return Mask({"a.weight": torch.tensor(bits, dtype=torch.bool)})


def test_hamming_distance_and_early_bird_stop_on_a_constructed_sequence():
    assert mask_distance(_mask([1, 1, 0, 0]), _mask([1, 0, 1, 0])) == 0.5
    det = EarlyBirdDetector(q=3, tau=0.15)
    base = [1] * 10 + [0] * 10
    sequence = [
        [0] * 10 + [1] * 10,                         # far from everything
        base,
        base[:9] + [0, 1] + base[11:],              # 2/20 = 0.1 from base
        base,                                        # q masks, max distance 0.1 < 0.15: stop
    ]
    distances, stops = [], []
    for bits in sequence:
        distances.append(det.update(_mask(bits)))
        stops.append(det.converged())
    assert distances[0] is None and distances[1] == 1.0
    assert distances[2] == pytest.approx(0.9)        # the first mask is still in the window
    assert distances[3] == pytest.approx(0.1)
    assert stops == [False, False, False, True]
    state = det.state_dict()
    again = EarlyBirdDetector(q=3, tau=0.15)
    again.load_state_dict(state)
    assert again.converged() and len(again.masks) == 3
    strict = EarlyBirdDetector(q=3, tau=0.1)        # 0.1 is not < 0.1
    for bits in sequence:
        strict.update(_mask(bits))
    assert not strict.converged()


# --------------------------------------------------------------------------- early-time
def test_kl_divergence_on_hand_made_distributions():
    p = torch.tensor([[0.5, 0.5, 0.0], [0.9, 0.1, 0.0]], dtype=torch.float64)
    q = torch.tensor([[0.25, 0.75, 0.0], [0.5, 0.25, 0.25]], dtype=torch.float64)
    expected = (0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75)
                + 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.25)) / 2
    assert kl_divergence(p, q) == pytest.approx(expected, rel=1e-12)
    assert kl_divergence(p, p) == 0.0


def test_normalised_kl_and_the_choice_of_t_prime():
    # logits [T=5, B=1, K=2]; prefix means: T'=2 -> [1, 0], T'=3 -> [2, 0], T'=4 -> [3, 0],
    # T=5 -> [4, 0]
    logits = torch.tensor([[[0.0, 0.0]], [[2.0, 0.0]], [[4.0, 0.0]], [[6.0, 0.0]],
                           [[8.0, 0.0]]])
    dists = prefix_distributions(logits, [2, 3, 4, 5])
    assert torch.allclose(dists[2], torch.softmax(torch.tensor([[1.0, 0.0]]), -1))

    def p(z):
        return torch.softmax(torch.tensor([[z, 0.0]]), -1)

    kls, norm = normalised_kl(logits)
    assert sorted(kls) == [2, 3, 4]
    for t, z in ((2, 1.0), (3, 2.0), (4, 3.0)):
        assert kls[t] == pytest.approx(kl_divergence(p(z), p(4.0)))
    assert norm[2] == 1.0 and norm[3] == pytest.approx(kls[3] / kls[2])
    assert pick_timesteps(norm, 0.6, 5) == min(t for t in (2, 3, 4) if norm[t] < 0.6)
    assert pick_timesteps(norm, 1e-9, 5) == 5         # nothing below lambda: keep T
    assert pick_timesteps({2: 0.7, 3: 0.5, 4: 0.1}, 0.6, 5) == 3


def test_first_t_prime_outputs_of_a_t_step_run_are_a_t_prime_step_run():
    model = conv_model()
    model.eval()
    x = torch.rand(1, 4, 1, 8, 8).expand(6, 4, 1, 8, 8)
    with torch.no_grad():
        full = model(x)
        assert torch.equal(model(x[:3]), full[:3])


# --------------------------------------------------------------------------- score tickets
def test_top_k_is_exactly_k_and_straight_through_on_abs_scores():
    scores = torch.tensor([0.3, -0.9, 0.1, 0.5, -0.5, 0.2], requires_grad=True)
    m = TopK.apply(scores.abs(), 3)
    assert m.tolist() == [0, 1, 0, 1, 1, 0]           # |s| top-3, tie 0.5/-0.5 both in
    assert TopK.apply(scores.abs(), 2).tolist() == [0, 1, 0, 1, 0, 0]   # tie -> earlier index
    (m * torch.arange(6.0)).sum().backward()
    assert scores.grad.tolist() == [0.0, -1.0, 2.0, 3.0, -4.0, 5.0]    # ∂L/∂M · sign(s)


def test_score_descent_keeps_the_helpful_connection_whatever_its_score_sign():
    """L = -W_eff[0]: keeping connection 0 lowers the loss. A gradient step on the scores must
    raise |s_0| so it enters the top-1, for a positive and for a negative score alike."""
    for s0 in (0.1, -0.1):
        scores = torch.tensor([s0, 0.12], requires_grad=True)
        w = torch.tensor([1.0, 1.0])
        loss = -(effective_weight(w, TopK.apply(scores.abs(), 1), False)[0])
        loss.backward()
        with torch.no_grad():
            scores -= 0.05 * scores.grad                   # one step: |s_0| 0.1 -> 0.15 > 0.12
        assert abs(float(scores[0].detach())) == pytest.approx(0.15), s0
        assert TopK.apply(scores.abs(), 1).tolist() == [1.0, 0.0], s0


def test_biprop_alpha_and_effective_weights():
    w = torch.tensor([[0.5, -2.0], [1.0, -0.25]])
    m = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    alpha = (0.5 + 2.0 + 0.25) / 3
    assert torch.allclose(effective_weight(w, m, True),
                          torch.tensor([[alpha, -alpha], [0.0, -alpha]]))
    assert torch.equal(effective_weight(w, m, False), w * m)


@pytest.mark.parametrize("binary", [False, True])
def test_score_search_freezes_weights_and_keeps_exactly_k(binary):
    model = conv_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = ticket_layers(model)
    net = ScoreNet(model, names, 0.3, binary, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=0.05)
    assert all(not p.requires_grad for p in model.parameters())
    scores0 = {n: net.score(n).detach().clone() for n in names}
    x, y = torch.rand(2, 8, 1, 8, 8), torch.randint(0, 10, (8,))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x).mean(0), y).backward()
        opt.step()
    after = model.state_dict()
    for k, v in before.items():
        if "running" in k or "num_batches" in k:
            continue
        assert torch.equal(after[k], v), k                 # weights, biases, BN affine frozen
    assert any(not torch.equal(net.score(n), scores0[n]) for n in names)
    mask = net.mask()
    for n in names:
        numel = dict(model.named_parameters())[n].numel()
        assert mask.active(n) == round(0.3 * numel)
    net.eval()
    with torch.no_grad():
        expected = net(x)
        ticket, _ = net.export()
        assert torch.equal(ticket(x), expected)
    w = dict(ticket.named_parameters())[names[0]]
    if binary:
        assert len(torch.unique(w.abs())) == 2             # {0, alpha}
    assert int((w != 0).sum()) == mask.active(names[0])


# --------------------------------------------------------------------------- config
def test_lottery_config_checks_and_hash():
    for kw, word in ((dict(rate=0.0), "rate"), (dict(rate=1.0), "rate"),
                     (dict(rounds=0), "rounds"), (dict(rounds=-1), "rounds"),
                     (dict(strategy="nope"), "strategy"), (dict(rewind="1x"), "rewind"),
                     (dict(prune="row"), "prune"), (dict(controls=["nope"]), "control"),
                     (dict(eb_tau=0), "eb_tau"), (dict(evaluate="some"), "evaluate")):
        with pytest.raises(UserError, match=word):
            LotteryConfig(**kw).validate()
    train = TrainConfig()
    a = lottery_hash(train, LotteryConfig())
    assert a == lottery_hash(train, LotteryConfig(controls=["reinit"]))   # controls: branches
    assert a != lottery_hash(train, LotteryConfig(rate=0.2))
    assert a != lottery_hash(copy.deepcopy(train), LotteryConfig(rewind="0it"))


def test_mlp_batch_norm_option_for_sparse_tickets():
    model = create_model("mlp", in_channels=1, image_size=8, num_classes=10, hidden=[16, 8],
                         batch_norm=True)
    assert [type(b.bn).__name__ for b in model.hidden] == ["BatchNorm1d"] * 2
    assert all(b.fc.bias is None for b in model.hidden)
    assert model(torch.rand(2, 3, 1, 8, 8)).shape == (2, 3, 10)


# --------------------------------------------------------------------------- floors, rescaling
def _units(weight):
    return weight.reshape(weight.shape[0], -1)


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("k", [1, 3])
def test_min_inputs_floor_keeps_k_largest_inputs_per_unit_and_exact_counts(scope, k):
    model = conv_model()
    weights = random_weights(model, 3)
    weights["readout.weight"] *= 0.01            # a layer global magnitude would empty
    mask = full_mask(model, ticket_layers(model))
    plain = mask
    for _ in range(3):
        active = {n: mask.active(n) for n in mask}
        new = magnitude_prune(weights, mask, 0.3, scope, min_inputs=k)
        if scope == "global":
            removed = sum(active.values()) - sum(new.active(n) for n in new)
            assert removed == round(0.3 * sum(active.values()))      # exact, floor or not
        else:
            assert all(active[n] - new.active(n) == round(0.3 * active[n]) for n in new)
        for n in new:
            assert not (new[n] & ~mask[n]).any()                     # pruned stays pruned
            kept_rows = _units(new[n]).sum(1)
            assert (kept_rows >= min(k, _units(mask[n]).shape[1])).all()   # floor respected
            mags = _units(weights[n].abs())
            for row, (m_old, m_new) in enumerate(zip(_units(mask[n]), _units(new[n]))):
                top = torch.sort(mags[row][m_old], descending=True).values[:k]
                assert set(top.tolist()) <= set(mags[row][m_new].tolist())   # the k largest
        mask = new
        plain = magnitude_prune(weights, plain, 0.3, scope)
    assert all(mask.active(n) > 0 for n in mask)                     # every layer connected
    if scope == "global":
        assert plain.active("readout.weight") == 0                   # what the floor prevents


def test_min_inputs_floor_refuses_a_round_it_cannot_take():
    model = conv_model()
    mask = full_mask(model, ticket_layers(model))
    fan_in = {n: _units(mask[n]).shape[1] for n in mask}
    with pytest.raises(UserError, match="min_inputs"):
        magnitude_prune(random_weights(model), mask, 0.9, "global",
                        min_inputs=max(fan_in.values()))


def test_rescale_restores_the_dense_norm_of_bn_free_layers_only():
    for batch_norm in (False, True):
        torch.manual_seed(0)
        model = create_model("mlp", in_channels=1, image_size=8, num_classes=10,
                             hidden=[16, 8], batch_norm=batch_norm)
        names = ticket_layers(model)
        params = dict(model.named_parameters())
        dense = squared_norms(params, names)
        mask = magnitude_prune(params, full_mask(model, names), 0.8, "layer")
        with torch.no_grad():
            for n in names:
                params[n].mul_(mask[n])
        before = {n: params[n].detach().clone() for n in names}
        factors = rescale_to_dense_norm(model, mask, dense)
        rescaled = {"hidden.0.fc.weight", "hidden.1.fc.weight", "readout.weight"} \
            if not batch_norm else {"readout.weight"}                # BN after the hidden fc
        assert set(factors) == rescaled
        for n in names:
            if n in rescaled:
                assert squared_norms(params, [n])[n] == pytest.approx(dense[n], rel=1e-5)
                assert torch.allclose(params[n], before[n] * factors[n])   # one factor a layer
                assert factors[n] > 1
            else:
                assert torch.equal(params[n], before[n])
