"""The training loop's own contract (``train/trainer.py``)."""

import pytest
import torch

from spikesculpt.config import TrainConfig
from spikesculpt.data import load_dataset
from spikesculpt.methods import create_method
from spikesculpt.models import create_model
from spikesculpt.train import Trainer


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, val_fraction=0.1, timesteps=2)


def test_training_one_epoch_at_a_time_equals_one_call(digits):
    """``train_epochs(until=e)`` resumes where the last call stopped: epoch by epoch (as the
    interleaved overhead benchmark trains) gives the same weights as one call, ESL rewiring
    included; ``until`` past the schedule stops at ``config.epochs``."""
    def trainer():
        cfg = TrainConfig(timesteps=2, batch_size=128, epochs=2, model_kwargs={"hidden": [24]})
        torch.manual_seed(0)
        model = create_model("mlp", in_channels=1, image_size=8, num_classes=10,
                             hidden=[24])
        method = create_method("esl", density=0.3, update_every=3)
        method.prepare_model(model)
        return Trainer(model, digits, cfg, [method], progress=False)

    whole, stepwise = trainer(), trainer()
    whole.train_epochs()
    for until in (1, 2, 5):
        stepwise.train_epochs(until=until)
        assert stepwise.epoch == min(until, 2)
    assert stepwise.step == whole.step == 2 * whole.steps_per_epoch
    assert len(stepwise.callbacks[0].updates) == len(whole.callbacks[0].updates) > 0
    for (name, a), b in zip(whole.model.named_parameters(), stepwise.model.parameters()):
        assert torch.equal(a, b), name
