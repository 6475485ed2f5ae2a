"""Surrogate gradients: g' against finite differences of g, shape of g, the spike function."""

import math

import pytest
import torch

from spikesculpt.core.errors import UserError
from spikesculpt.neurons import SURROGATES, Surrogate, create_surrogate, spike

NAMES = list(SURROGATES)


def test_registry_has_the_documented_surrogates():
    assert {"atan", "sigmoid", "triangle", "fast_sigmoid"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("alpha", [None, 0.7, 3.0])
def test_grad_matches_finite_differences_of_primitive(name, alpha):
    sur = create_surrogate(name, alpha)
    # avoid the kinks of the triangle (x = 0, ±1/alpha), where g' is not differentiable but g is
    # still C¹, so central differences stay accurate; a grid offset keeps us off them anyway
    x = torch.linspace(-3.0, 3.0, 601, dtype=torch.float64) + 1e-3 / 7
    eps = 1e-6
    fd = (sur.primitive(x + eps) - sur.primitive(x - eps)) / (2 * eps)
    torch.testing.assert_close(sur.grad(x), fd, rtol=1e-6, atol=1e-7)
    # and autograd through the primitive agrees with grad
    xa = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(sur.primitive(xa).sum(), xa)
    torch.testing.assert_close(sur.grad(x), g, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_primitive_is_a_smooth_step_and_grad_integrates_to_one(name):
    sur = create_surrogate(name)
    far = torch.tensor([-1e6, 1e6], dtype=torch.float64)
    torch.testing.assert_close(sur.primitive(far), torch.tensor([0.0, 1.0], dtype=torch.float64),
                               atol=1e-4, rtol=0)
    assert float(sur.primitive(torch.zeros((), dtype=torch.float64))) == pytest.approx(0.5)
    x = torch.linspace(-4.0, 4.0, 20001, dtype=torch.float64)
    g = sur.grad(x)
    assert torch.all(g >= 0)
    if sur.even:
        torch.testing.assert_close(g, sur.grad(-x), rtol=1e-9, atol=1e-12)
    area = torch.trapezoid(g, x).item()
    tail = 1.0 - float(sur.primitive(torch.tensor(4.0, dtype=torch.float64))) \
        + float(sur.primitive(torch.tensor(-4.0, dtype=torch.float64)))
    assert area + tail == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inplace_grad_matches_grad(name, dtype):
    sur = create_surrogate(name, 1.7)
    x = torch.linspace(-3, 3, 257, dtype=dtype)
    for scale in (1.0, 0.37):
        out = sur.grad_(x.clone(), scale=scale)
        torch.testing.assert_close(out, scale * sur.grad(x))


def test_defaults_and_peaks():
    assert create_surrogate("atan").alpha == 2.0            # SpikingJelly's ATan default
    assert create_surrogate("sigmoid").alpha == 4.0         # SpikingJelly's Sigmoid default
    zero = torch.zeros(())
    assert float(create_surrogate("atan", 3.0).grad(zero)) == pytest.approx(1.5)      # α/2
    assert float(create_surrogate("sigmoid", 4.0).grad(zero)) == pytest.approx(1.0)   # α/4
    assert float(create_surrogate("triangle", 2.0).grad(zero)) == pytest.approx(2.0)  # α
    assert float(create_surrogate("triangle", 2.0).grad(torch.tensor(0.5))) == 0.0    # width 1/α


def test_spike_forward_is_heaviside_and_backward_is_the_surrogate():
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 2.0], dtype=torch.float64, requires_grad=True)
    for name in NAMES:
        sur = create_surrogate(name)
        s = spike(x, sur)
        assert s.dtype == x.dtype
        assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]  # Θ(0) = 1
        (g,) = torch.autograd.grad((s * torch.arange(5.0, dtype=x.dtype)).sum(), x)
        torch.testing.assert_close(g, torch.arange(5.0, dtype=x.dtype) * sur.grad(x.detach()))
    assert torch.equal(spike(x, "atan"), create_surrogate("atan")(x))


def test_bad_input_raises_user_errors():
    with pytest.raises(UserError, match="unknown surrogate 'nope'; choose one of: atan"):
        create_surrogate("nope")
    with pytest.raises(UserError, match="alpha must be a positive number"):
        create_surrogate("atan", -1.0)
    with pytest.raises(UserError, match="alpha must be a positive number"):
        create_surrogate("atan", math.inf)


def test_custom_surrogate_needs_only_primitive_and_grad():
    class Cubic(Surrogate):
        name = "cubic"

        def primitive(self, x):
            return torch.clamp(x, -1, 1) * 0.5 + 0.5

        def grad(self, x):
            return (x.abs() < 1).to(x.dtype) * 0.5 * self.alpha

    sur = Cubic()
    x = torch.linspace(-2, 2, 9)
    torch.testing.assert_close(sur.grad_(x.clone(), 2.0), 2.0 * sur.grad(x))
    assert create_surrogate(sur) is sur
