"""Entry point of the ``spikesculpt`` command.

Bad input (``UserError``) ends with one line on stderr and exit status 2, no traceback.
"""

from __future__ import annotations

import sys

from spikesculpt.cli import (compare, evaluate, evolve, export, listing, lottery,
                             show_data, train)
from spikesculpt.cli.parser import OneLineParser
from spikesculpt.errors import UserError


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="spikesculpt",
                           description="Efficient spiking neural networks: train, compare, measure.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for module in (train, compare, evolve, evaluate, export, listing, lottery, show_data):
        module.add_parser(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"spikesculpt: warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.showwarning = _one_line_warning  # warnings of a CLI run: one line each, no source
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"spikesculpt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spikesculpt: interrupted; the last finished epoch is saved — continue with the "
              "same command plus --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
