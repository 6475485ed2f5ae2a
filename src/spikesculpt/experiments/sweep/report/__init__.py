"""``spikesculpt report SWEEP_DIR``: report.md and a self-contained report.html of a sweep.

``load`` (sweep.yaml, cells.json / cells.csv, each cell's run files), ``groups`` (cells that
differ only in their seed; mean ± std), ``compare`` (paired differences vs the controls),
``plots`` (the figures, PNG), ``sections`` (the report's content, formatted once),
``document`` (Markdown and HTML rendering), ``write`` (``write_report``). See docs/report.md.
"""

from spikesculpt.experiments.sweep.report.write import ReportFiles, write_report

__all__ = ["ReportFiles", "write_report"]
