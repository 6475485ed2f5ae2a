import pytest
import torch


@pytest.fixture(autouse=True)
def _two_threads():
    """Tests run on the 2-core CI machine; keep torch from oversubscribing it."""
    torch.set_num_threads(2)
    yield


@pytest.fixture
def one_thread():
    """For files of tiny models (``pytestmark = pytest.mark.usefixtures("one_thread")``): one
    thread avoids the cost of synchronising two (on a busy 2-core machine two threads were up to
    8x slower than one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
