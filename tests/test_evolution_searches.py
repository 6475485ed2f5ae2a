"""The search contract (experiments/evolution/search.py): every registered search proposes a
population of genomes inside the space, accepts its losses, is reproducible from its seed and
resumes from the run's checkpoint; the base class's bookkeeping; choosing a search."""

import numpy as np
import pytest
import torch

from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.data import load_dataset
from spikesculpt.experiments.evolution import SEARCHES, GenomeSpace, Search, register_search
from spikesculpt.experiments.evolution.evolution import evolution_hash, run_evolution
from spikesculpt.experiments.evolution.options import EvolutionConfig
from spikesculpt.experiments.evolution.population import PopulationScorer
from spikesculpt.experiments.evolution.search import create_search, objective_losses
from spikesculpt.experiments.rundir import RunDir
from spikesculpt.methods.genetic import Genome

pytestmark = pytest.mark.usefixtures("one_thread")

SPACE = GenomeSpace(names=("hidden.0.fc", "readout"), gene_dim=4, min_gene_dim=2, init_std=0.02)


def evo_for(name: str, population: int = 5) -> EvolutionConfig:
    """Options a search can run: as many objectives as it optimises (at most 3)."""
    k = min(SEARCHES.get(name).max_objectives or 3, 3)
    return EvolutionConfig(population=population, generations=4,
                           objectives=["accuracy", "params", "synops"][:k]).validate()


def losses_for(genomes: list[Genome], k: int) -> np.ndarray:
    """Deterministic made-up losses: −fitness from O, then the size (gene dimension)."""
    rows = [[-float(np.abs(g.interaction).sum()), float(g.gene_dim ** 2), float(i)]
            for i, g in enumerate(genomes)]
    return np.array(rows)[:, :k]


def same(a: list[Genome], b: list[Genome]) -> bool:
    return [g.to_dict() for g in a] == [g.to_dict() for g in b]


# --------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("name", SEARCHES.names())
def test_search_contract(name, tmp_path):
    evo = evo_for(name)
    k = len(evo.objectives)
    search = create_search(name, SPACE, evo, seed=3)
    assert isinstance(search, Search) and search.name == name
    assert search.info()["algorithm"]
    lo, hi = search.gene_dims()
    assert SPACE.min_gene_dim <= lo <= hi == SPACE.gene_dim
    twin = create_search(name, SPACE, evo, seed=3)
    for generation in range(3):
        genomes = search.ask()
        # the population size, inside the space
        assert len(genomes) == evo.population
        assert all(isinstance(g, Genome) and SPACE.contains(g, (lo, hi)) for g in genomes)
        assert all(Genome.from_dict(g.to_dict()).to_dict() == g.to_dict() for g in genomes)
        # same seed, same sequence
        assert same(genomes, twin.ask())
        losses = losses_for(genomes, k)
        search.tell(losses if k > 1 else losses[:, 0])     # [P] is accepted for one objective
        twin.tell(losses)
        assert search.generation == generation + 1
    # the state round-trips through the run's checkpoint: the resumed search asks the same
    run = RunDir(tmp_path / "run", "evolution")
    run.path.mkdir()
    run.save_state({"search": search})
    resumed = run.load_state(weights_only=False)["search"]
    for _ in range(2):
        a, b = search.ask(), resumed.ask()
        assert same(a, b)
        search.tell(losses_for(a, k))
        resumed.tell(losses_for(b, k))
    other = create_search(name, SPACE, evo, seed=4)
    assert not same(other.ask(), create_search(name, SPACE, evo, seed=3).ask())


@pytest.mark.parametrize("name", SEARCHES.names())
def test_search_bookkeeping(name):
    evo = evo_for(name, population=3)
    k = len(evo.objectives)
    search = create_search(name, SPACE, evo)
    with pytest.raises(RuntimeError, match="without ask"):
        search.tell(np.zeros((3, k)))
    genomes = search.ask()
    with pytest.raises(RuntimeError, match="before tell"):
        search.ask()
    with pytest.raises(ValueError, match="shape"):
        search.tell(np.zeros((2, k)))
    with pytest.raises(ValueError, match="finite"):
        search.tell(np.full((3, k), np.nan))
    search.tell(losses_for(genomes, k))
    assert len(search.ask()) == 3


# --------------------------------------------------------------------------- choosing a search
def test_default_search_follows_the_objectives_and_naming_it_changes_nothing():
    one, several = EvolutionConfig(), EvolutionConfig(objectives=["accuracy", "params"])
    assert one.search_name() == "cma-es" and several.search_name() == "nsga-ii"
    train = TrainConfig(method="genetic")
    assert evolution_hash(train, EvolutionConfig(search="cma-es")) == \
        evolution_hash(train, one) == "94d50188fc"
    assert evolution_hash(train, EvolutionConfig(search="nsga-ii")) != evolution_hash(train, one)


@pytest.mark.parametrize("values, word", [
    ({"search": "nope"}, "unknown evolution search 'nope'; choose one of: cma-es, nsga-ii"),
    ({"search": "cma-es", "objectives": ["accuracy", "params"]}, "search cma-es optimises 1"),
])
def test_bad_search_options(values, word):
    with pytest.raises(UserError, match=word):
        EvolutionConfig(**values).validate()


def test_objective_losses_columns():
    results = [{"fitness": 0.5, "params_total": 10, "synops": 7.5},
               {"fitness": 0.25, "params_total": 20, "synops": 1.0}]
    assert objective_losses(results, ["accuracy"]).tolist() == [[-0.5], [-0.25]]
    assert objective_losses(results, ["accuracy", "synops", "params"]).tolist() == \
        [[-0.5, 7.5, 10.0], [-0.25, 1.0, 20.0]]


# --------------------------------------------------------------------------- adding a search
class RandomSearch(Search):
    """Random search: every generation samples random rules (no learning), a worked example."""

    algorithm = "random search"

    def __init__(self, space, evo, seed=0):
        super().__init__(space, evo, seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def _ask(self):
        return [Genome.random_rule(self.space.gene_dim, list(self.space.names),
                                   self.space.init_std, generator=self.generator)
                for _ in range(self.population)]

    def _tell(self, losses):
        pass


def test_a_registered_search_runs_by_name(tmp_path, monkeypatch):
    monkeypatch.setattr(SEARCHES, "_items", dict(SEARCHES._items))   # unregistered afterwards
    register_search("random")(RandomSearch)
    test_search_contract("random", tmp_path)
    cfg = TrainConfig(method="genetic", timesteps=2, batch_size=128, epochs=1,
                      model_kwargs={"hidden": [24]})
    cfg.genetic.gene_dim = 4
    splits = load_dataset("digits", seed=0, val_fraction=0.1, timesteps=2)
    scorer = PopulationScorer(cfg, eval_epochs=1, splits=splits)
    evo = EvolutionConfig(population=2, generations=1, search="random")
    result = run_evolution(cfg, evo, out=str(tmp_path / "evo"), progress=False, scorer=scorer)
    assert result.summary["search"] == {"algorithm": "random search"}
    assert result.summary["best"]["gene_dim"] == 4
