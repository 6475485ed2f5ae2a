import os

import pytest
import torch

# Without a GPU, Triton's kernels run in its CPU interpreter (tests/test_gpu_kernel.py); this
# must be set before Triton is first imported. CPU tensors never reach Triton outside those tests.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


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
