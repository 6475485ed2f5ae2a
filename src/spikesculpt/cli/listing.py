"""``spikesculpt list [WHAT]``: the registered models, datasets, neurons, surrogates, methods,
encoders, lottery strategies, sparse layer-density (``--init``) and growth (``--grow``) rules,
optimizers and schedules."""

from __future__ import annotations

import argparse

from spikesculpt.data import DATASETS
from spikesculpt.encoding import ENCODERS
from spikesculpt.experiments.lottery import STRATEGIES
from spikesculpt.methods import METHODS
from spikesculpt.models import MODELS
from spikesculpt.neurons import NEURONS, SURROGATES
from spikesculpt.sparse import ALLOCATION_RULES, GROWTH_RULES
from spikesculpt.train.optim import OPTIMIZERS, SCHEDULES


def registries() -> dict:

    return {"models": MODELS, "datasets": DATASETS, "neurons": NEURONS,
            "surrogates": SURROGATES, "methods": METHODS, "encoders": ENCODERS,
            "strategies": STRATEGIES, "init-rules": ALLOCATION_RULES,
            "growth-rules": GROWTH_RULES, "optimizers": OPTIMIZERS, "schedules": SCHEDULES}


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list what can be chosen by name", description=__doc__)
    p.add_argument("what", nargs="?", choices=sorted(registries()), help="one list only")
    p.set_defaults(func=run)


def summary(obj) -> str:
    """The first paragraph of ``obj``'s docstring on one line: a summary that wraps onto a
    second docstring line is read whole, not cut mid-quote."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return " ".join(doc.split("\n\n", 1)[0].split())


def run(args: argparse.Namespace) -> int:
    regs = registries()
    for what in [args.what] if args.what else list(regs):
        reg = regs[what]
        print(f"{what}:")
        width = max([12, *(len(name) for name in reg.names())])
        for name in reg.names():
            print(f"  {name:<{width}} {summary(reg.get(name))}")
    return 0
