"""Training-step speed and peak memory of a VGGSNN (the conv benchmark of issue 16).

``bench_lif_mlp.py --model vggsnn`` with its defaults (T = 10, batch 32, CIFAR10-DVS-shaped input
2x48x48): ReLU, spikesculpt (Triton kernel on CUDA), spikesculpt's PyTorch-ops path and
SpikingJelly 2.0 (its default GPU backend) side by side, interleaved, time and peak memory per
row. Every option of bench_lif_mlp.py applies (``--amp``, ``--repeats``, ``--out-dir``, ...).

    python benchmarks/bench_lif_conv.py --device cuda
"""

import sys

import bench_lif_mlp


def build_parser():
    """bench_lif_mlp's parser with ``--model vggsnn`` as the default."""
    parser = bench_lif_mlp.build_parser()
    parser.set_defaults(model="vggsnn")
    parser.description = __doc__.split("\n")[0]
    return parser


def main(argv=None) -> int:
    return bench_lif_mlp.main(argv, parser=build_parser())


if __name__ == "__main__":
    sys.exit(main())
