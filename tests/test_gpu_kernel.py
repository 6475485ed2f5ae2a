"""The Triton neuron kernels (``neurons/gpu_kernel.py``, ``neurons/triton_kernels.py``).

Two ways in:

- **On a GPU** (``CUDA`` tests, skipped without one; ``benchmarks/run_gpu_checks.sh`` runs them):
  every neuron × reset × detach × surrogate, float32 spikes bit-identical to the PyTorch-ops path
  on the same device and gradients equal to tolerance; bf16 / fp16 against the PyTorch path run
  on the input upcast to float32; T above the register chunk (checkpointed backward); automatic
  dispatch; an AMP training run that learns.
- **Without a GPU**, through Triton's CPU interpreter (``TRITON_INTERPRET=1``, set by
  ``conftest.py`` when no CUDA device is visible): the same kernels' logic on CPU tensors, against
  the PyTorch path on the CPU. The interpreter evaluates ``fma`` as a product and a sum, so these
  cases use tau = 2 (PLIF: w = 0), where every product by r or 1 - r is exact and the spikes must
  be bit-identical too.
"""

import itertools

import pytest
import torch

from spikesculpt.neurons import LIF, create_surrogate, functional, gpu_kernel, torch_kernel
from spikesculpt.neurons.modules import ParametricLIF

CUDA = torch.cuda.is_available()
INTERPRETER = (not CUDA) and gpu_kernel.interpreting() and gpu_kernel.available()
NEURONS = ["lif", "if", "plif"]
RESETS = [0.0, None, -0.25]
SURROGATES = ["atan", "sigmoid", "triangle", "fast_sigmoid"]
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs CUDA")
needs_interpreter = pytest.mark.skipif(
    not INTERPRETER, reason="needs Triton (interpreter mode, no CUDA device)")


def run(kind, x, gs, v_reset, detach, surrogate, impl, tau=2.0):
    """Spikes, dL/dx and (PLIF) dL/dw of one fused call with upstream gradient gs."""
    x = x.detach().clone().requires_grad_(True)
    w = None
    if kind == "plif":
        w = torch.tensor(-torch.log(torch.tensor(tau - 1.0)).item(), device=x.device,
                         requires_grad=True)
        r = torch.sigmoid(w)
    else:
        r = 1.0 / tau if kind == "lif" else None
    s = functional._multistep(x, r, 1.0, v_reset, detach, create_surrogate(surrogate), impl)
    s.backward(gs)
    return s.detach(), x.grad, (None if w is None else w.grad)


def assert_same(ref, got, rtol=1e-5):
    """Spikes bit-identical; gradients equal to float32 rounding accumulated over T steps:
    each element within rtol of itself or of the largest gradient (without a leak, IF's
    recurrence carries rounding errors of the large elements into the small ones)."""
    s_ref, g_ref, w_ref = ref
    s, g, w = got
    assert s.dtype == s_ref.dtype and torch.equal(s, s_ref), int((s != s_ref).sum())
    scale = float(g_ref.abs().max())
    torch.testing.assert_close(g.float(), g_ref.float(), rtol=rtol, atol=rtol * scale)
    if w_ref is not None:
        torch.testing.assert_close(w, w_ref, rtol=1e-4, atol=1e-5)


def inputs(T, shape, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, *shape, generator=g) * 1.2 + 0.5
    gs = torch.randn(T, *shape, generator=g)
    return x.to(device), gs.to(device)


# ---------------------------------------------------------------------------------------------
# CPU: Triton's interpreter


@needs_interpreter
@pytest.mark.parametrize("kind", NEURONS)
def test_interpreter_every_reset_detach_surrogate(kind):
    x, gs = inputs(5, (3, 40), "cpu")
    for v_reset, detach, sur in itertools.product(RESETS, [False, True], SURROGATES):
        ref = run(kind, x, gs, v_reset, detach, sur, "torch")
        got = run(kind, x, gs, v_reset, detach, sur, "triton")
        assert_same(ref, got)


@needs_interpreter
@pytest.mark.parametrize("kind,v_reset", [("lif", 0.0), ("plif", -0.25), ("if", None)])
def test_interpreter_long_sequences_use_checkpoints(kind, v_reset):
    """T = 37 > MAX_CHUNK: the backward restarts each chunk from a stored membrane."""
    assert 37 > gpu_kernel.MAX_CHUNK
    x, gs = inputs(37, (2, 30), "cpu", seed=1)
    ref = run(kind, x, gs, v_reset, False, "atan", "torch")
    got = run(kind, x, gs, v_reset, False, "atan", "triton")
    assert_same(ref, got)
    assert ref[0].sum() > 0 and ref[1].abs().sum() > 0  # spikes and gradients are not trivial


@needs_interpreter
@pytest.mark.parametrize("kind,v_reset", [("lif", -0.25), ("if", None), ("plif", 0.0)])
def test_interpreter_membrane_is_bit_identical(kind, v_reset):
    x, _ = inputs(6, (4, 30), "cpu", seed=6)
    r = {"lif": 0.5, "if": None, "plif": torch.sigmoid(torch.zeros(()))}[kind]
    s_ref, nh = torch_kernel.fused_forward(x, r, 1.0, v_reset)
    s, h = gpu_kernel.forward(x, r, 1.0, v_reset, want_h=True)
    assert h.dtype == torch.float32 and torch.equal(h, -nh) and torch.equal(s, s_ref)


@needs_interpreter
def test_interpreter_half_precision_equals_the_upcast_path():
    """fp16 input: arithmetic in float32, spikes and gradients in fp16."""
    x, gs = inputs(6, (2, 50), "cpu", seed=2)
    x16, gs16 = x.half(), gs.half()
    ref = run("lif", x16.float(), gs16.float(), 0.0, False, "atan", "torch")
    got = run("lif", x16, gs16, 0.0, False, "atan", "triton")
    assert got[0].dtype == torch.float16 and got[1].dtype == torch.float16
    assert torch.equal(got[0].float(), ref[0])
    torch.testing.assert_close(got[1].float(), ref[1], rtol=2e-3, atol=2e-3)


@needs_interpreter
def test_interpreter_noncontiguous_input_and_inference_path():
    x, _ = inputs(4, (6, 20), "cpu", seed=3)
    xt = x.transpose(1, 2)  # [T, 20, 6], not contiguous
    with torch.no_grad():
        got = functional.lif_multistep(xt, tau=2.0, impl="triton")
        ref = functional.lif_multistep(xt, tau=2.0, impl="torch")
    assert torch.equal(got, ref)


def test_auto_never_picks_triton_on_cpu_tensors():
    """CPU tensors keep the native / PyTorch kernels even when Triton's interpreter is on."""
    x = torch.randn(3, 4, 5)
    sur = create_surrogate("atan")
    assert functional._backend(x, sur, "auto") in ("native", "torch")
    assert functional._backend(x, sur, "torch") == "torch"


def test_status_names_the_kernel():
    line = gpu_kernel.status()
    assert ("Triton" in line) and (("kernel," in line) or ("PyTorch-ops path" in line))


# ---------------------------------------------------------------------------------------------
# GPU


@needs_cuda
@pytest.mark.parametrize("kind", NEURONS)
@pytest.mark.parametrize("T", [8, 37])
def test_cuda_float32_every_reset_detach_surrogate(kind, T):
    x, gs = inputs(T, (16, 257), "cuda", seed=T)
    for tau in (2.0, 3.7):
        for v_reset, detach, sur in itertools.product(RESETS, [False, True], SURROGATES):
            ref = run(kind, x, gs, v_reset, detach, sur, "torch", tau)
            got = run(kind, x, gs, v_reset, detach, sur, "triton", tau)
            assert_same(ref, got)


@needs_cuda
@pytest.mark.parametrize("kind,v_reset", [("lif", 0.0), ("lif", -0.25), ("lif", None),
                                          ("if", 0.0), ("plif", -0.25), ("plif", None)])
def test_cuda_membrane_is_bit_identical(kind, v_reset):
    """H itself (not only the spikes) equals the PyTorch path's, bit for bit, at tau = 2.7."""
    x, _ = inputs(12, (64, 300), "cuda", seed=5)
    r = {"lif": 1 / 2.7, "if": None, "plif": torch.sigmoid(torch.tensor(-0.53, device="cuda"))}
    s_ref, nh = torch_kernel.fused_forward(x, r[kind], 1.0, v_reset)
    s, h = gpu_kernel.forward(x, r[kind], 1.0, v_reset, want_h=True)
    assert torch.equal(h, -nh) and torch.equal(s, s_ref)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("kind", NEURONS)
def test_cuda_half_precision_equals_the_upcast_path(dtype, kind):
    x, gs = inputs(10, (8, 300), "cuda", seed=4)
    xh, gsh = x.to(dtype), gs.to(dtype)
    for v_reset, detach, sur in itertools.product(RESETS, [False, True], SURROGATES):
        ref = run(kind, xh.float(), gsh.float(), v_reset, detach, sur, "torch", 3.0)
        got = run(kind, xh, gsh, v_reset, detach, sur, "triton", 3.0)
        assert got[0].dtype == dtype and got[1].dtype == dtype
        assert torch.equal(got[0].float(), ref[0])
        torch.testing.assert_close(got[1].float(), ref[1], rtol=1e-2,
                                   atol=1e-2 * float(ref[1].abs().max()))
        if ref[2] is not None:
            torch.testing.assert_close(got[2], ref[2], rtol=1e-3, atol=1e-3)


@needs_cuda
def test_cuda_auto_dispatches_to_triton(monkeypatch):
    calls = []
    real = gpu_kernel.forward

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(gpu_kernel, "forward", counting)
    x = torch.randn(4, 8, 32, device="cuda", requires_grad=True)
    LIF(tau=2.0)(x).sum().backward()
    ParametricLIF().cuda()(x.detach())
    ParametricLIF()(x.detach())  # a CPU parameter with a CUDA input, as PyTorch allows
    assert len(calls) == 3 and x.grad is not None
    assert "compiled" in gpu_kernel.status()


def toy_spikes():
    """A learnable toy task on CUDA: spikes ``[8, 256, 64]`` drawn from 4 class prototypes, and
    the labels; seeds torch's generator too (the model's initialisation)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    proto = torch.rand(4, 64, generator=g)
    y = torch.randint(0, 4, (256,), generator=g)
    xs = (torch.rand(8, 256, 64, generator=g) < proto[y] * 0.6).float().cuda()
    return xs, y.cuda()


@needs_cuda
def test_cuda_amp_training_learns():
    """A small LIF MLP under bf16 autocast on the Triton kernel: the loss falls."""
    xs, y = toy_spikes()
    net = torch.nn.ModuleDict({"fc1": torch.nn.Linear(64, 128), "n1": ParametricLIF(),
                               "fc2": torch.nn.Linear(128, 4)}).cuda()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = net["fc2"](net["n1"](net["fc1"](xs))).mean(0)
            loss = torch.nn.functional.cross_entropy(out.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert net["n1"].w.grad is not None and net["n1"].w.grad.abs() > 0


@needs_cuda
@pytest.mark.parametrize("kind", NEURONS)
def test_cuda_custom_op_equals_the_triton_path_and_passes_opcheck(kind):
    """``neurons/ops.py`` on CUDA runs the same Triton kernels: spikes and gradients equal the
    eager fused neuron's; ``opcheck`` tests its fake and autograd registrations."""
    from spikesculpt.neurons import ops

    x, gs = inputs(8, (16, 33), "cuda")
    r_t = torch.tensor(0.4, device="cuda", requires_grad=True) if kind == "plif" else None
    r = 0.5 if kind == "lif" else None
    args = (r_t, r, 1.0, 0.0, False, "atan", 2.0)
    xo = x.clone().requires_grad_()
    out = ops.neuron_forward(xo, *args)
    out.backward(gs)
    xe = x.clone().requires_grad_()
    rt_e = None if r_t is None else r_t.detach().clone().requires_grad_()
    ref = functional._multistep(xe, rt_e if kind == "plif" else r, 1.0, 0.0, False,
                                create_surrogate("atan"), "triton")
    ref.backward(gs)
    assert torch.equal(out, ref) and torch.equal(xo.grad, xe.grad)
    if kind == "plif":
        torch.testing.assert_close(r_t.grad, rt_e.grad)
    torch.library.opcheck(ops.neuron_forward, (x.clone().requires_grad_(), *args))


@needs_cuda
@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_cuda_compiled_training_step_keeps_the_triton_kernel(mode):
    """torch.compile (Inductor; reduce-overhead: CUDA graphs) of a LIF MLP's training step: the
    neuron stays our custom op, and the loss falls as in eager mode."""
    from spikesculpt.train.compiled import compile_model

    calls = []
    real = gpu_kernel.forward
    gpu_kernel.forward = lambda *a, **k: (calls.append(1), real(*a, **k))[1]
    try:
        xs, y = toy_spikes()
        net = torch.nn.Sequential(torch.nn.Linear(64, 128), LIF(tau=2.0),
                                  torch.nn.Linear(128, 4)).cuda()
        step = compile_model(net, mode, torch.device("cuda"))
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        losses = []
        for _ in range(40):
            loss = torch.nn.functional.cross_entropy(step(xs).mean(0), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        gpu_kernel.forward = real
        torch._dynamo.reset()
    assert calls, "the compiled step did not run the Triton kernel"
    assert losses[-1] < 0.5 * losses[0]
