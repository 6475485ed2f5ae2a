import pytest

from spikesculpt.config import TrainConfig, config_hash, from_dict, overlay
from spikesculpt.errors import UserError


def test_hash_ignores_bookkeeping_fields_but_not_semantics():
    base = TrainConfig()
    assert config_hash(base) == config_hash(TrainConfig(device="cpu", data_root="/x", amp=True))
    assert config_hash(base) != config_hash(TrainConfig(epochs=31))
    other = TrainConfig()
    other.neuron.tau = 3.0
    assert config_hash(base) != config_hash(other)


def test_overlay_nested_and_typed():
    cfg = from_dict({"epochs": 3, "lr": "1e-2", "neuron": {"tau": 4, "v_reset": None}})
    assert cfg.epochs == 3 and cfg.lr == 0.01 and isinstance(cfg.neuron.tau, float)
    assert cfg.neuron.v_reset is None


@pytest.mark.parametrize("values, word", [
    ({"epoch": 3}, "unknown config key"),
    ({"epochs": "many"}, "must be a int"),
    ({"neuron": 3}, "mapping"),
])
def test_overlay_rejects_bad_values(values, word):
    with pytest.raises(UserError, match=word):
        overlay(TrainConfig(), values)


@pytest.mark.parametrize("field, value", [("epochs", 0), ("timesteps", -1), ("batch_size", 0),
                                          ("lr", 0.0), ("val_fraction", 1.0),
                                          ("optimizer", "lbfgs"), ("loss", "mse")])
def test_validate_rejects(field, value):
    cfg = TrainConfig()
    setattr(cfg, field, value)
    with pytest.raises(UserError):
        cfg.validate()
