"""Spiking neurons: golden traces, fused kernels vs. the step function, gradients, API.

Conventions under test (see ``spikesculpt.neurons``): time-major ``[T, B, ...]``; dynamics
``H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset))/tau`` (IF: ``V[t-1] + X[t]``), ``S = Θ(H - V_th)``
with Θ(0) = 1, hard reset to V_reset or soft reset ``V = H - V_th·S``, rest ``V[-1] = V_reset``
(0 for soft reset).

``torch.autograd.gradcheck`` does not apply to the spike output (Θ is piecewise constant, its
finite differences are 0 or infinite); instead every fused backward is compared with plain
autograd through the step function (the reference), element by element and as full Jacobians,
and the surrogates themselves are checked against finite differences in test_surrogates.py.
"""

import itertools
import math

import pytest
import torch

from spikesculpt.config import NeuronConfig
from spikesculpt.core.errors import UserError
from spikesculpt.neurons import (
    IF,
    LIF,
    NEURONS,
    ParametricLIF,
    SpikingNeuron,
    cpu_kernel,
    create_neuron,
    if_multistep,
    if_step,
    lif_multistep,
    lif_step,
)
from spikesculpt.neurons import torch_kernel

HAVE_NATIVE = cpu_kernel.available()
FUSED = ["torch"] + (["native"] if HAVE_NATIVE else [])
SURROGATES = ["atan", "sigmoid", "triangle", "fast_sigmoid"]
RESETS = [0.0, None, -0.3]  # hard to 0, soft, hard to a negative potential


def run_steps(step, x, **kw):
    """Iterate a step function over x[T, ...] from rest; returns stacked S and V."""
    v, ss, vs = None, [], []
    for t in range(x.shape[0]):
        s, v = step(x[t], v, **kw)
        ss.append(s)
        vs.append(v)
    return torch.stack(ss), torch.stack(vs)


def kernel_h(x, r, thr, v_reset, impl):
    """Pre-spike membrane H[t] as computed by a fused kernel (internal API)."""
    if impl == "torch":
        _, nh = torch_kernel.fused_forward(x, r, thr, v_reset)
        return -nh
    _, h = cpu_kernel.forward(x, r, thr, v_reset, want_h=True)
    return h


# --------------------------------------------------------------------------------------------
# golden traces (tau = 2, V_th = 1: every number below is exact in binary floating point)

X_LIF = [1.5, 0.0, 1.0, 1.0, 2.5, 2.0, 0.5]


def test_lif_hard_reset_golden_trace():
    # H = V + (X - V)/2 from V[-1] = 0; spike when H >= 1, then V = 0
    # t0: 0     + (1.5 - 0    )/2 = 0.75                    V = 0.75
    # t1: 0.75  + (0.0 - 0.75 )/2 = 0.375                   V = 0.375
    # t2: 0.375 + (1.0 - 0.375)/2 = 0.6875                  V = 0.6875
    # t3: 0.6875+ (1.0 - 0.6875)/2 = 0.84375                V = 0.84375
    # t4: 0.84375 + (2.5 - 0.84375)/2 = 1.671875  >= 1: S=1 V = 0
    # t5: 0     + (2.0 - 0    )/2 = 1.0       == 1: S=1 (Θ(0) = 1), V = 0
    # t6: 0     + (0.5 - 0    )/2 = 0.25                    V = 0.25
    H = [0.75, 0.375, 0.6875, 0.84375, 1.671875, 1.0, 0.25]
    S = [0, 0, 0, 0, 1, 1, 0]
    V = [0.75, 0.375, 0.6875, 0.84375, 0.0, 0.0, 0.25]
    _check_trace(X_LIF, H, S, V, tau=2.0, v_reset=0.0)


def test_lif_soft_reset_golden_trace():
    # as above until t4; a spike subtracts V_th = 1 instead of resetting to 0
    # t4: H = 1.671875, S=1, V = 0.671875
    # t5: 0.671875 + (2.0 - 0.671875)/2 = 1.3359375, S=1, V = 0.3359375
    # t6: 0.3359375 + (0.5 - 0.3359375)/2 = 0.41796875, S=0
    H = [0.75, 0.375, 0.6875, 0.84375, 1.671875, 1.3359375, 0.41796875]
    S = [0, 0, 0, 0, 1, 1, 0]
    V = [0.75, 0.375, 0.6875, 0.84375, 0.671875, 0.3359375, 0.41796875]
    _check_trace(X_LIF, H, S, V, tau=2.0, v_reset=None)


def test_lif_hard_reset_to_negative_potential_golden_trace():
    # V_reset = -0.5 enters the leak: H = V + (X - (V + 0.5))/2, V[-1] = -0.5
    # t0: -0.5   + (1.5 - 0     )/2 = 0.25
    # t1: 0.25   + (0.0 - 0.75  )/2 = -0.125
    # t2: -0.125 + (1.0 - 0.375 )/2 = 0.1875
    # t3: 0.1875 + (1.0 - 0.6875)/2 = 0.34375
    # t4: 0.34375 + (2.5 - 0.84375)/2 = 1.171875, S=1, V = -0.5
    # t5: -0.5   + (2.0 - 0     )/2 = 0.5
    # t6: 0.5    + (0.5 - 1.0   )/2 = 0.25
    H = [0.25, -0.125, 0.1875, 0.34375, 1.171875, 0.5, 0.25]
    S = [0, 0, 0, 0, 1, 0, 0]
    V = [0.25, -0.125, 0.1875, 0.34375, -0.5, 0.5, 0.25]
    _check_trace(X_LIF, H, S, V, tau=2.0, v_reset=-0.5)


X_IF = [0.5, 0.25, 0.25, 0.75, 1.0, -0.5, 0.5]


def test_if_golden_traces():
    # hard: H = V + X: 0.5, 0.75, 1.0 (S, V=0), 0.75, 1.75 (S, V=0), -0.5, 0.0
    _check_trace(X_IF, [0.5, 0.75, 1.0, 0.75, 1.75, -0.5, 0.0], [0, 0, 1, 0, 1, 0, 0],
                 [0.5, 0.75, 0.0, 0.75, 0.0, -0.5, 0.0], tau=None, v_reset=0.0)
    # soft: ... 1.0 (S, V=0), 0.75, 1.75 (S, V=0.75), 0.25, 0.75
    _check_trace(X_IF, [0.5, 0.75, 1.0, 0.75, 1.75, 0.25, 0.75], [0, 0, 1, 0, 1, 0, 0],
                 [0.5, 0.75, 0.0, 0.75, 0.75, 0.25, 0.75], tau=None, v_reset=None)


def _check_trace(xs, H, S, V, tau, v_reset):
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor(xs, dtype=dtype).reshape(-1, 1)  # [T, B=1]
        S_ = torch.tensor(S, dtype=dtype).reshape(-1, 1)
        if tau is None:
            s, v = run_steps(if_step, x, v_reset=v_reset)
            module = IF(v_reset=v_reset)
            r = None
        else:
            s, v = run_steps(lif_step, x, tau=tau, v_reset=v_reset)
            module = LIF(tau=tau, v_reset=v_reset)
            r = 1.0 / tau
        assert torch.equal(s, S_)
        assert torch.equal(v, torch.tensor(V, dtype=dtype).reshape(-1, 1))
        assert torch.equal(module(x), S_)
        for impl in FUSED:
            assert torch.equal(kernel_h(x, r, 1.0, v_reset, impl),
                               torch.tensor(H, dtype=dtype).reshape(-1, 1)), impl
        if tau == 2.0:  # PLIF starts at the same tau: sigmoid(w) = 1/2 exactly
            plif = ParametricLIF(init_tau=2.0, v_reset=v_reset).to(dtype)
            assert torch.equal(plif(x), S_)


def test_lif_golden_gradient():
    # T=2, tau=2, hard reset, atan α=2: g'(u) = 1/(1 + (π u)²), L = S0 + S1, x = [1.5, 0.0]
    # forward: H0 = 0.75 (u0 = -0.25), S0 = 0, V0 = 0.75; H1 = 0.375 (u1 = -0.625)
    # dL/dH1 = g'(u1);  dL/dV0 = (1 - 1/2)·dL/dH1;  dV0/dH0 = (1 - S0) + (0 - H0)·g'(u0)
    # dL/dH0 = g'(u0) + dL/dV0·dV0/dH0;  dL/dX = dL/dH / 2
    g0 = 1 / (1 + (math.pi * 0.25) ** 2)
    g1 = 1 / (1 + (math.pi * 0.625) ** 2)
    dh1 = g1
    dh0 = g0 + 0.5 * dh1 * (1 - 0.75 * g0)
    expected = torch.tensor([[dh0 / 2], [dh1 / 2]], dtype=torch.float64)
    for impl in ["autograd"] + FUSED:
        x = torch.tensor([[1.5], [0.0]], dtype=torch.float64, requires_grad=True)
        lif_multistep(x, tau=2.0, impl=impl).sum().backward()
        torch.testing.assert_close(x.grad, expected, rtol=1e-14, atol=1e-15)


# --------------------------------------------------------------------------------------------
# fused kernels agree exactly with iterating the step function


def _module(kind, **kw):
    if kind == "lif":
        return LIF(tau=1.7, **kw)
    if kind == "plif":
        m = ParametricLIF(init_tau=3.0, **kw)
        with torch.no_grad():
            m.w.add_(0.123)  # a decay that is not a round number
        return m
    return IF(**kw)


@pytest.mark.parametrize("kind", ["lif", "if", "plif"])
@pytest.mark.parametrize("v_reset", RESETS)
@pytest.mark.parametrize("shape", [(9, 4, 33), (5, 2, 3, 4, 4), (1, 7)])
def test_modules_match_step_function_exactly(kind, v_reset, shape):
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(*shape, generator=g) * 0.9 + 0.55
    if shape[0] == 1:
        x = x * 4 + 1.5  # one step from rest: needs a strong input to fire
    m = _module(kind, v_reset=v_reset)
    v = None
    ref = []
    for t in range(shape[0]):
        s, v = m.step(x[t], v)
        ref.append(s)
    ref = torch.stack(ref)
    assert 0 < ref.mean() < 1  # the input exercises both spiking and silent neurons
    out = m(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, ref)
    for impl in FUSED:
        kw = dict(v_threshold=1.0, v_reset=v_reset)
        if kind == "if":
            s = if_multistep(x, impl=impl, **kw)
        else:
            decay = m.decay.detach() if kind == "plif" else 1 / 1.7
            s = lif_multistep(x, tau=None, decay=decay, impl=impl, **kw)
        assert torch.equal(s, ref), impl


def test_non_contiguous_input_and_threshold():
    x = torch.randn(6, 8, 5).transpose(1, 2) * 2  # [T, B, F] view, not contiguous
    for impl in FUSED:
        a = lif_multistep(x, v_threshold=0.5, impl=impl)
        b = lif_multistep(x.contiguous(), v_threshold=0.5, impl="autograd")
        assert torch.equal(a, b)


# --------------------------------------------------------------------------------------------
# gradients: fused backward vs plain autograd through the step function (float64)


def _grads(kind, impl, x, gout, v_reset, detach, surrogate):
    x = x.detach().clone().requires_grad_()
    kw = dict(v_reset=v_reset, detach_reset=detach, surrogate=surrogate, impl=impl)
    params = []
    if kind == "lif":
        s = lif_multistep(x, tau=1.7, **kw)
    elif kind == "if":
        s = if_multistep(x, **kw)
    else:
        w = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        params = [w]
        s = lif_multistep(x, tau=None, decay=torch.sigmoid(w), **kw)
    (s * gout).sum().backward()
    return s.detach(), x.grad, [p.grad for p in params]


@pytest.mark.parametrize("kind", ["lif", "if", "plif"])
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_fused_backward_matches_autograd_reference(kind, surrogate):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(11, 3, 7, generator=g, dtype=torch.float64) * 1.2 + 0.6
    gout = torch.randn(11, 3, 7, generator=g, dtype=torch.float64)
    for v_reset, detach in itertools.product(RESETS, [False, True]):
        s_ref, gx_ref, gp_ref = _grads(kind, "autograd", x, gout, v_reset, detach, surrogate)
        assert gx_ref.abs().max() > 0
        for impl in FUSED:
            s, gx, gp = _grads(kind, impl, x, gout, v_reset, detach, surrogate)
            case = (impl, v_reset, detach)
            assert torch.equal(s, s_ref), case
            torch.testing.assert_close(gx, gx_ref, rtol=0, atol=1e-10, msg=str(case))
            for a, b in zip(gp, gp_ref):
                assert b.abs() > 0
                torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=str(case))


@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("detach", [False, True])
def test_fused_jacobian_equals_reference_jacobian(v_reset, detach):
    x = torch.randn(5, 2, 3, dtype=torch.float64) + 0.7

    def f(impl):
        return lambda inp: lif_multistep(inp, tau=2.5, v_reset=v_reset, detach_reset=detach,
                                         impl=impl)

    ref = torch.autograd.functional.jacobian(f("autograd"), x)
    for impl in FUSED:
        torch.testing.assert_close(torch.autograd.functional.jacobian(f(impl), x), ref,
                                   rtol=0, atol=1e-12)


def test_gradient_in_float32_and_retain_graph():
    x = (torch.randn(8, 16, 32) + 0.5).requires_grad_()
    gout = torch.randn(8, 16, 32)
    (ref,) = torch.autograd.grad(lif_multistep(x, impl="autograd"), x, gout)
    for impl in FUSED:
        s = lif_multistep(x, impl=impl)
        (g1,) = torch.autograd.grad(s, x, gout, retain_graph=True)
        (g2,) = torch.autograd.grad(s, x, gout)  # the saved state is not consumed
        torch.testing.assert_close(g1, ref, rtol=1e-5, atol=1e-6)
        assert torch.equal(g1, g2)


def test_dispatch_modes_see_plain_pytorch_ops():
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(4, 3, 8) + 0.5
    with FlopCounterMode(display=False):  # a Python dispatch mode: the PyTorch path is used
        s = LIF()(x)
    assert torch.equal(s, lif_multistep(x, impl="autograd"))


def test_vmap_uses_the_autograd_path():
    xs = torch.randn(3, 4, 2, 5) * 2
    out = torch.func.vmap(LIF())(xs)
    assert torch.equal(out, torch.stack([LIF()(x) for x in xs]))
    grads = torch.func.vmap(torch.func.grad(lambda x: LIF()(x).sum()))(xs)
    for x, gx in zip(xs, grads):
        x = x.clone().requires_grad_()
        (ref,) = torch.autograd.grad(LIF()(x).sum(), x)
        torch.testing.assert_close(gx, ref)


# --------------------------------------------------------------------------------------------
# modules and API


def test_registry_and_create_neuron_from_config():
    assert {"lif", "if", "plif"} <= set(NEURONS)
    for name, cls in [("lif", LIF), ("if", IF), ("plif", ParametricLIF)]:
        cfg = NeuronConfig(name=name, tau=3.0, v_reset=None, detach_reset=True,
                           surrogate="sigmoid", alpha=2.0)
        m = create_neuron(cfg.name, **cfg.module_kwargs())
        assert type(m) is cls and isinstance(m, SpikingNeuron)
        assert m.v_reset is None and m.detach_reset and m.surrogate.alpha == 2.0
        if name != "if":
            assert m.tau == pytest.approx(3.0)
        x = torch.randn(4, 2, 6)
        s = m(x)
        assert s.shape == x.shape and set(s.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(s, m(x))  # stateless: every call starts from rest
    with pytest.raises(UserError, match="unknown neuron 'lifx'"):
        create_neuron("lifx")
    with pytest.raises(UserError,
                       match="neuron 'lif' has no argument taux; its arguments are: tau"):
        create_neuron("lif", taux=2.0)
    with pytest.raises(UserError, match="neuron 'if' has no argument tau"):
        create_neuron("if", tau=2.0)


def test_bad_parameters_and_inputs_raise_user_errors():
    with pytest.raises(UserError, match="tau must be"):
        LIF(tau=0.5)
    with pytest.raises(UserError, match="init_tau must be > 1"):
        ParametricLIF(init_tau=1.0)
    with pytest.raises(UserError, match="v_reset .* must be below v_threshold"):
        LIF(v_threshold=1.0, v_reset=1.0)
    with pytest.raises(UserError, match=r"time-major input \[T, B, ...\]"):
        LIF()(torch.randn(5))
    with pytest.raises(UserError, match="floating-point"):
        LIF()(torch.ones(3, 2, dtype=torch.long))
    with pytest.raises(UserError, match="unknown impl"):
        lif_multistep(torch.randn(3, 2), impl="cuda")


def test_dtypes_and_empty_sequences():
    x = torch.randn(4, 3, 5) * 2
    for dtype in (torch.float64, torch.bfloat16, torch.float16):
        s = LIF()(x.to(dtype))
        assert s.dtype == dtype and s.shape == x.shape
    assert LIF()(torch.randn(0, 2, 3)).shape == (0, 2, 3)


def test_modules_deepcopy_and_pickle_after_forward():
    import copy
    import pickle

    x = torch.randn(3, 2, 4)
    for m in (LIF(surrogate="sigmoid", alpha=3.0), IF(v_reset=None), ParametricLIF()):
        m(x)
        for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
            assert torch.equal(clone(x), m(x))
            assert clone.surrogate == m.surrogate


def test_plif_learns_tau():
    m = ParametricLIF(init_tau=4.0)
    assert m.tau == pytest.approx(4.0)
    assert float(m.decay.detach()) == pytest.approx(0.25)
    assert set(dict(m.named_parameters())) == {"w"}
    x = torch.randn(6, 8, 10) + 1.0
    m(x).sum().backward()
    assert m.w.grad is not None and m.w.grad.abs() > 0
    assert "tau=4" in repr(m)


def test_native_status_and_switches(monkeypatch):
    assert isinstance(cpu_kernel.status(), str)
    if HAVE_NATIVE:
        assert cpu_kernel.status().startswith("loaded")
        with pytest.raises(UserError, match="impl='native' needs"):
            lif_multistep(torch.randn(3, 2, dtype=torch.bfloat16), impl="native")
    # SPIKESCULPT_NATIVE=0 turns it off (fresh state, restored afterwards)
    monkeypatch.setattr(cpu_kernel.KERNEL, "lib", None)
    monkeypatch.setattr(cpu_kernel.KERNEL, "state", "not tried")
    monkeypatch.setenv("SPIKESCULPT_NATIVE", "0")
    assert not cpu_kernel.available()
    assert cpu_kernel.status().startswith("disabled")
    x = torch.randn(5, 3, 4)
    assert torch.equal(LIF()(x), lif_multistep(x, impl="autograd"))
