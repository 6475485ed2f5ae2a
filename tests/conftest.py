import pytest
import torch


@pytest.fixture(autouse=True)
def _two_threads():
    """Tests run on the 2-core CI machine; keep torch from oversubscribing it."""
    torch.set_num_threads(2)
    yield
