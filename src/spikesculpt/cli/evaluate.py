"""``spikesculpt evaluate RUN_DIR``: reload a run's best model and recompute its metrics.

With ``--sparse`` the model is also converted to the sparse inference model
(``spikesculpt.export.to_sparse_inference``) and both are run on the test split: accuracy of
each, agreement of their predictions, and the time per batch of each (best of 5 calls per
batch, interleaved) and their ratio.
"""

from __future__ import annotations

import argparse
import json

from spikesculpt.cli.train import size_text
from spikesculpt.experiments.train_run import evaluate_run


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="recompute the metrics of a finished run",
                       description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--device", default=None, help="auto | cpu | cuda")
    p.add_argument("--json", action="store_true", help="print every metric as JSON")
    p.add_argument("--sparse", action="store_true",
                   help="also run the sparse inference model: accuracy and time per batch, "
                        "dense vs sparse (CPU)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    m = evaluate_run(args.run_dir, device=args.device, sparse=args.sparse)
    if args.json:
        print(json.dumps(m, indent=2))
    else:
        print(f"{m['run_dir']}: test accuracy {100 * m['test_accuracy']:.2f}% | "
              f"val {100 * m['val_accuracy']:.2f}% | firing rate {m['firing_rate']:.3f} | "
              f"{size_text(m, counts=True)}")
        if "synops" in m:
            ops = m["synops"]
            print(f"per sample: {ops['effective_acs']:,.0f} ACs + {ops['effective_macs']:,.0f} "
                  f"MACs effective of {ops['dense']:,.0f} dense SynOps | energy "
                  f"{m['energy_pj'] / 1e3:,.1f} nJ ({m['energy_preset']}, 45 nm) | activation "
                  f"sparsity {m['activation_sparsity']:.3f} | footprint "
                  f"{m['footprint_bytes']['dense']:,} B dense, "
                  f"{m['footprint_bytes']['sparse']:,} B sparse")
        if "sparse_inference" in m:
            s = m["sparse_inference"]
            n = sum(layer["converted"] for layer in s["layers"])
            print(f"sparse inference ({n}/{len(s['layers'])} linear layers converted, "
                  f"{s['threads']} thread{'s' if s['threads'] != 1 else ''}, batch {s['batch_size']}): "
                  f"test accuracy "
                  f"{100 * s['test_accuracy_sparse']:.2f}% (dense {100 * s['test_accuracy_dense']:.2f}%), "
                  f"predictions agree {100 * s['agreement']:.2f}% | "
                  f"{1e3 * s['dense_seconds_per_batch']:.2f} ms dense vs "
                  f"{1e3 * s['sparse_seconds_per_batch']:.2f} ms sparse per batch: "
                  f"{s['speedup']:.2f}x")
    return 0
