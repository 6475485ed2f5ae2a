"""``spikesculpt export RUN_DIR --format safetensors|nir [--out FILE] [--force] [--dt S]``: write
a finished run's model for deployment — safetensors (dense weights with zeros, masks as packed
bits, JSON metadata; loadable with plain PyTorch + safetensors) or NIR (a graph of the layers
and neurons, mask density in each node's metadata, time constants in seconds at --dt seconds
per time step, default 1e-4 as SpikingJelly and snnTorch read; needs the ``nir`` extra)."""

from __future__ import annotations

import argparse

from spikesculpt.experiments.export_run import export_run


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a finished run (safetensors or NIR)",
                       description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", required=True, choices=["safetensors", "nir"])
    p.add_argument("--out", default=None, metavar="FILE",
                   help="output file (default RUN_DIR/export.safetensors or RUN_DIR/model.nir)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--dt", type=float, default=None, metavar="SECONDS",
                   help="NIR only: seconds per time step; time constants are written as "
                        "tau_steps*dt (default: 1e-4, what SpikingJelly's and snnTorch's NIR "
                        "importers assume)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    r = export_run(args.run_dir, args.format, out=args.out, force=args.force, dt=args.dt)
    mask = "" if r["mask_density"] is None else f", mask density {r['mask_density']:.4f}"
    dt = f", dt {r['dt']:g} s" if "dt" in r else ""
    print(f"wrote {r['path']} ({r['format']}, density {r['density']:.4f}{mask}{dt})")
    return 0
