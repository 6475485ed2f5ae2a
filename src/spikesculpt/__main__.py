"""``python -m spikesculpt`` = the ``spikesculpt`` command."""

from spikesculpt.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
