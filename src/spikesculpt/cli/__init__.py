"""The ``spikesculpt`` command line (``spikesculpt --help``)."""
