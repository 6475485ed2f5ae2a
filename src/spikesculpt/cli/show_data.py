"""``spikesculpt show-data DATASET``: a PNG grid of a few samples (event frames per time bin)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from spikesculpt.cli.parser import positive_int
from spikesculpt.core.errors import UserError
from spikesculpt.data import load_dataset
from spikesculpt.data.show import pick_samples, plot_samples, written_by_show_data


def add_parser(sub) -> None:
    p = sub.add_parser("show-data", help="write a picture of a dataset's samples (PNG)",
                       description=__doc__)
    p.add_argument("dataset", metavar="DATASET", help="e.g. digits-dvs, nmnist, dvs:mnist")
    p.add_argument("--data-root", default=None, help="folder with downloaded datasets")
    p.add_argument("--download", action="store_true", help="fetch torchvision datasets")
    p.add_argument("--timesteps", type=positive_int, default=8,
                   help="time bins of event data (default 8)")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--samples", type=positive_int, default=10,
                   help="rows: one per class first (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation split")
    p.add_argument("--out", metavar="FILE.png", default=None,
                   help="output file (default: <dataset>.png in the current folder)")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing file that show-data did not write")
    p.set_defaults(func=run)


def check_out(out: Path, force: bool) -> None:
    """The picture goes to a ``.png`` file; a folder, or a file show-data did not write (unless
    ``force``), is refused before anything is computed."""

    if out.is_dir():
        raise UserError(f"--out {out} is a folder; pass a file name such as {out / 'data.png'}")
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: show-data writes a PNG picture; name the file "
                        f"{out.with_suffix('.png').name}")
    if out.exists() and not force and not written_by_show_data(out):
        raise UserError(f"{out} exists and was not written by show-data; pass --force to "
                        f"overwrite it, or choose another --out")


def run(args: argparse.Namespace) -> int:

    out = Path(args.out or re.sub(r"[^\w.-]+", "_", args.dataset) + ".png")
    check_out(out, args.force)
    splits = load_dataset(args.dataset, seed=args.seed, data_root=args.data_root,
                          timesteps=args.timesteps, download=args.download)
    samples = pick_samples(getattr(splits, args.split), args.samples)
    info = splits.info
    shape = "x".join(str(v) for v in info.input_shape)
    if info.kind == "frames":
        what = f"T={info.timesteps} frames of {shape}"
    else:
        what = f"images {shape}" if info.image_size else f"{shape} features"
    path = plot_samples(samples, info, out, f"{args.dataset} ({args.split} split): {what}")
    print(f"wrote {path} ({len(samples)} samples of {args.dataset}, {what})")
    return 0
