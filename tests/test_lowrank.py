"""The ``lowrank`` method (plain low-rank layers W = α·U Vᵀ), the parameter-matched baseline of
``genetic``: its parameter count against the real genetic encoding, the generated weights, and
what it saves and reloads."""

import warnings

import pytest
import torch

from spikesculpt.core.errors import UserError
from spikesculpt.methods import create_method
from spikesculpt.methods.genetic import (
    LowRankConv2d,
    LowRankLinear,
    genetic_parameter_count,
    lowrank_ranks,
)
from spikesculpt.models import count_parameters, create_model

pytestmark = pytest.mark.usefixtures("one_thread")

MODELS = {  # the digits MLP 64-256-256-10 of docs/genetic.md, and the small conv
    "mlp": dict(name="mlp", in_channels=1, image_size=8),
    "conv": dict(name="conv", in_channels=1, image_size=8),
}


def model(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    return create_model(**MODELS[kind])


def encoded(method: str, kind: str, gene_dim: int, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_method(method, seed=0, gene_dim=gene_dim, **options).prepare_model(
            model(kind))


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("gene_dim", [8, 16])
def test_parameters_match_genetic_at_the_same_gene_dim(kind, gene_dim):
    genetic = count_parameters(encoded("genetic", kind, gene_dim))
    lowrank = count_parameters(encoded("lowrank", kind, gene_dim))
    assert genetic_parameter_count(model(kind), gene_dim) == genetic  # counted, not built
    assert abs(lowrank - genetic) <= 0.01 * genetic, (lowrank, genetic)
    assert abs(lowrank - genetic) <= gene_dim ** 2  # never worse than rank g everywhere


def test_ranks_start_at_gene_dim_and_close_the_gap():
    # digits MLP at g = 16: genetic 18,346; ranks 16/16/17 -> 18,356 (docs)
    ranks = lowrank_ranks(model("mlp"), 16)
    assert list(ranks.values()) == [16, 16, 17]
    assert count_parameters(encoded("lowrank", "mlp", 16)) == 18_356
    assert lowrank_ranks(model("mlp"), 8, keep_first=True).keys() == {"hidden.1.fc", "readout"}


def test_weights_are_alpha_u_vt_with_kaiming_scale():
    net = encoded("lowrank", "conv", 8)
    layers = [m for m in net.modules() if isinstance(m, (LowRankLinear, LowRankConv2d))]
    assert len(layers) == 3 and any(isinstance(m, LowRankConv2d) for m in layers)
    for layer in layers:
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        expected = layer.alpha * layer.x_out.detach() @ layer.x_in.detach().t()
        torch.testing.assert_close(w, expected)
        assert torch.linalg.matrix_rank(w) <= layer.gene_dim
        assert w.square().mean().item() == pytest.approx(2.0 / layer.fan_in, rel=1e-4)
        assert not any(p is layer.identity.weight for p in net.parameters())  # I is not trained


def test_state_dict_round_trips_without_the_identity():
    trained = encoded("lowrank", "mlp", 8)
    state = trained.state_dict()
    assert not any("identity" in k for k in state)
    fresh = create_method("lowrank", seed=1, gene_dim=8).prepare_model(model("mlp", seed=1))
    fresh.load_state_dict(state)
    x = torch.rand(2, 3, 1, 8, 8)
    trained.eval()
    fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), trained(x))


def test_a_genome_is_refused_in_one_line():
    with pytest.raises(UserError, match="drop --genome"):
        create_method("lowrank", gene_dim=8, genome={"gene_dim": 8})
