"""``genetic.interaction_init`` (ours, issue 14): O starts as ``init_std · I`` ("identity") instead
of N(0, init_std²) ("random", the default). The network then starts as a rank-g low-rank network
W_l = α_l X_out,l X_in,lᵀ with the same encodings the random init draws, and the shared O
trains from there."""

import warnings

import pytest
import torch

from spikesculpt.config import TrainConfig, digest, from_dict
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.rundir import config_hash
from spikesculpt.experiments.sweep.sweep_dir import sweep_identity
from spikesculpt.methods import create_method
from spikesculpt.methods.genetic import gene_layers
from spikesculpt.models import create_model
from tests.cli_run import run_cli

pytestmark = pytest.mark.usefixtures("one_thread")


def encoded(init: str, kind: str = "conv", gene_dim: int = 3, init_std: float = 0.02):
    torch.manual_seed(0)
    model = create_model(kind, in_channels=1, image_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        method = create_method("genetic", seed=5, gene_dim=gene_dim, init_std=init_std,
                               interaction_init=init)
        return method.prepare_model(model)


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_identity_starts_as_low_rank_with_the_random_inits_encodings(kind):
    ident, rand = encoded("identity", kind), encoded("random", kind)
    o = ident.gene_interaction.weight.detach()
    assert torch.equal(o, 0.02 * torch.eye(3))
    assert not torch.allclose(rand.gene_interaction.weight.detach(), o)
    for (_, a), (_, b) in zip(gene_layers(ident), gene_layers(rand)):
        # same stream: the encodings are those of the random init, only O differs
        assert torch.equal(a.x_in, b.x_in) and torch.equal(a.x_out, b.x_out)
        w = a.weight.detach().reshape(a.weight_shape[0], -1)
        by_hand = float(a.alpha) * 0.02 * a.x_out.detach() @ a.x_in.detach().t()
        torch.testing.assert_close(w, by_hand)
        # Kaiming's second moment whatever O is (α is reset after O is set)
        assert float(w.square().mean()) == pytest.approx(2.0 / a.fan_in, rel=1e-4)


def test_the_shared_interaction_trains_off_the_identity():
    model = encoded("identity", "mlp")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(2, 4, 1, 8, 8)
    loss = model(x).square().mean()
    loss.backward()
    opt.step()
    o = model.gene_interaction.weight.detach()
    off_diagonal = o - torch.diag(torch.diagonal(o))
    assert float(off_diagonal.abs().max()) > 0


def test_default_keeps_run_and_sweep_names_and_identity_gets_its_own():
    """The option is hashed only when set: genetic runs and sweeps made before it keep their
    directories (the pinned hash of test_config), an identity run gets another one."""
    assert config_hash(from_dict({"method": "genetic"})) == "d1c8cb2352"
    ident = from_dict({"method": "genetic", "genetic": {"interaction_init": "identity"}})
    assert config_hash(ident) != "d1c8cb2352"
    base = TrainConfig()
    assert "interaction_init" not in sweep_identity({}, base)["base"]["genetic"]
    assert digest(sweep_identity({}, base)) != digest(sweep_identity({}, ident))


def test_unknown_init_is_a_one_line_user_error(tmp_path, capsys):
    with pytest.raises(UserError, match="unknown interaction init 'eye'; choose one of: "
                                        "random, identity"):
        create_method("genetic", interaction_init="eye")
    code, err, _ = run_cli(["train", "--method", "genetic", "--interaction-init", "eye",
                            "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and len(err) == 1 and "unknown interaction init 'eye'" in err[0], err
    assert not (tmp_path / "run").exists()
