"""Training-step speed and peak memory of a VGGSNN (the conv benchmark of issue 16).

``bench_lif_mlp.py --model vggsnn`` with its defaults (T = 10, batch 32, CIFAR10-DVS-shaped input
2x48x48): ReLU, spikesculpt (Triton kernel on CUDA), spikesculpt's PyTorch-ops path and
SpikingJelly 2.0 (its default GPU backend) side by side, interleaved, time and peak memory per
row. Every option of bench_lif_mlp.py applies (``--amp``, ``--repeats``, ``--out-dir``, ...).

    python benchmarks/bench_lif_conv.py --device cuda
"""

import sys

from bench_lif_mlp import main

if __name__ == "__main__":
    sys.exit(main(["--model", "vggsnn", *sys.argv[1:]]))
