"""Encoders: exact values for direct / latency, statistics and seeding for Poisson, bad input."""

import pytest
import torch

from spikesculpt.core.errors import UserError
from spikesculpt.encoding import ENCODERS, encode


def test_registered_encoders():
    assert ENCODERS.names() == ["direct", "latency", "none", "poisson"]


def test_direct_repeats_the_input_as_a_view():
    x = torch.tensor([[0.0, 0.25], [0.5, 1.0]])
    out = encode(x, 3)
    assert out.shape == (3, 2, 2)
    for t in range(3):
        assert torch.equal(out[t], x)
    assert out.data_ptr() == x.data_ptr() and out.stride(0) == 0  # no copy
    # analog current: any real values pass (e.g. mean/std-normalised images)
    assert torch.equal(encode(torch.tensor([-2.0, 3.0]), 2, "direct")[1], torch.tensor([-2.0, 3.0]))


def test_latency_exact_spike_times():
    x = torch.tensor([[1.0, 0.75, 0.5, 0.25, 0.0]])
    out = encode(x, 5, "latency")
    # t = round((1 - x) * (T - 1)) = 0, 1, 2, 3; x = 0 never fires
    expected = torch.zeros(5, 1, 5)
    for i, t in enumerate([0, 1, 2, 3]):
        expected[t, 0, i] = 1
    assert torch.equal(out, expected)
    # rounding: (1 - 0.6) * 3 = 1.2 -> step 1; (1 - 0.1) * 3 = 2.7 -> step 3
    out = encode(torch.tensor([0.6, 0.1]), 4, "latency")
    assert out[:, 0].tolist() == [0, 1, 0, 0] and out[:, 1].tolist() == [0, 0, 0, 1]


def test_latency_one_spike_per_nonzero_input_and_shapes():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 2, 5, 5, generator=g)
    x[0, 0, 0, 0] = 0
    out = encode(x, 6, "latency")
    assert out.shape == (6, 4, 2, 5, 5) and out.dtype == x.dtype
    assert torch.equal(out.sum(0), (x > 0).float())
    assert torch.equal(encode(x, 1, "latency")[0], (x > 0).float())  # T = 1: all at t = 0
    # brighter fires earlier
    first = out.argmax(0)
    bright, dim = x > 0.8, (x > 0) & (x < 0.2)
    assert first[bright].max() < first[dim].min()


def test_poisson_rate_matches_intensity():
    levels = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    x = levels.repeat(400, 1)                           # [B=400, 5]
    out = encode(x, 50, "poisson", generator=torch.Generator().manual_seed(0))
    assert out.shape == (50, 400, 5) and out.dtype == torch.float32
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    rate = out.mean(dim=(0, 1))                         # 20,000 draws per level: std <= 0.0036
    assert (rate - levels).abs().max() < 0.015
    assert rate[0] == 0 and rate[-1] == 1               # exact at the ends


def test_poisson_same_seed_same_spikes():
    x = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    a = encode(x, 4, "poisson", generator=torch.Generator().manual_seed(7))
    b = encode(x, 4, "poisson", generator=torch.Generator().manual_seed(7))
    c = encode(x, 4, "poisson", generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the time steps are independent draws
    assert not torch.equal(a[0], a[1])


def test_none_passes_time_major_input_through():
    frames = torch.rand(5, 2, 2, 8, 8)
    assert encode(frames, 5, "none") is frames
    with pytest.raises(UserError, match="T=4"):
        encode(frames, 4, "none")


@pytest.mark.parametrize("timesteps", [0, -1, 1.5, True, "4"])
def test_bad_timesteps(timesteps):
    with pytest.raises(UserError, match="timesteps"):
        encode(torch.rand(2, 3), timesteps)


@pytest.mark.parametrize("method", ["poisson", "latency"])
@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_spike_encoders_need_unit_range(method, bad):
    x = torch.rand(2, 3)
    x[0, 0] = bad
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        encode(x, 4, method)


@pytest.mark.parametrize("method", ["direct", "poisson", "latency"])
def test_integer_images_are_refused_with_the_fix(method):
    with pytest.raises(UserError, match="float"):
        encode(torch.zeros(2, 3, dtype=torch.uint8), 4, method)


def test_unknown_method():
    with pytest.raises(UserError, match="unknown encoder 'rate'; choose one of: direct"):
        encode(torch.rand(2, 3), 4, "rate")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_generator_gives_the_same_spikes_on_cuda():
    x = torch.rand(8, 16)
    cpu = encode(x, 4, "poisson", generator=torch.Generator().manual_seed(3))
    gpu = encode(x.cuda(), 4, "poisson", generator=torch.Generator().manual_seed(3))
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)
