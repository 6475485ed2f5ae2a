"""Would a bit-plane spike path pay for average-pooled (1/4-valued) inputs? Issue 17 idea, measured.
x = avgpool2x2(spikes at 15%) -> values k/4, k in 0..4; y = W*x = (W*b0 + 2 W*b1 + 4 W*b2)/4."""
import time, torch, torch.nn.functional as F
from spikesculpt.inference import conv_kernel
from spikesculpt.core import allocator
torch.set_num_threads(2); torch.manual_seed(0)
allocator.keep_freed_memory()
print("spike path:", conv_kernel.spike_path())
def planes(x):
    q = (x * 4).round_().to(torch.uint8)
    return [((q >> k) & 1).float() for k in range(3)]
def bitplane_conv(x, cw):
    ps = planes(x)
    y = None
    for k, p in enumerate(ps):
        if k == 2 and not bool(p.any()):
            continue
        yk = conv_kernel.direct_conv(p, cw, None)
        y = yk if y is None else y.add_(yk, alpha=float(2 ** k)) if k else yk
    return y.mul_(0.25)
def best(fn, calls=5):
    t = []
    for _ in range(calls):
        s = time.perf_counter(); fn(); t.append(time.perf_counter() - s)
    return min(t)
for cin, cout, hw, dens, n in ((64, 128, 16, 0.033, 64), (64, 128, 16, 0.1, 64), (32, 64, 16, 0.1, 64), (64, 128, 8, 0.1, 64)):
    spikes = (torch.rand(n, cin, 2 * hw, 2 * hw) < 0.15).float()
    x = F.avg_pool2d(spikes, 2)
    w = torch.randn(cout, cin, 3, 3) * (torch.rand(cout, cin, 3, 3) < dens)
    cw = conv_kernel.ConvWeights(w, (1, 1))
    ref = F.conv2d(x, w, padding=1)
    yb, yf = bitplane_conv(x, cw), conv_kernel.direct_conv(x, cw, None)
    assert torch.allclose(yb, ref, atol=1e-4) and torch.allclose(yf, ref, atol=1e-4)
    nz = float((x != 0).float().mean())
    r = {"dense": [], "float": [], "planes": [], "planes_only_kernels": []}
    ps = planes(x)
    for _ in range(5):
        r["dense"].append(best(lambda: F.conv2d(x, w, padding=1)))
        r["float"].append(best(lambda: conv_kernel.direct_conv(x, cw, None)))
        r["planes"].append(best(lambda: bitplane_conv(x, cw)))
        r["planes_only_kernels"].append(best(lambda: [conv_kernel.direct_conv(p, cw, None) for p in ps[:2]]))
    med = {k: sorted(v)[2] * 1e3 for k, v in r.items()}
    print(f"{cin}->{cout} {hw}x{hw} density {dens} N={n} nonzero input {nz:.2f}: "
          + " | ".join(f"{k} {v:.2f} ms" for k, v in med.items())
          + f" | float/planes {med['float'] / med['planes']:.2f}x, dense/float {med['dense'] / med['float']:.2f}x, dense/planes {med['dense'] / med['planes']:.2f}x")
