"""``write_report``: report.md and report.html of a sweep directory.

    files = write_report("sweeps/demo")        # ReportFiles(markdown=..., html=...)

Reads the sweep (``load``; bad input: a one-line ``UserError`` before anything is written),
groups the finished cells over seeds (``groups``), builds the sections once (``sections``) and
renders them twice (``document``). Each file is written atomically; regenerating replaces
only these two files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from spikesculpt.core.errors import UserError
from spikesculpt.core.io import write_text
from spikesculpt.experiments.sweep.report.document import render_html, render_markdown
from spikesculpt.experiments.sweep.report.groups import make_groups
from spikesculpt.experiments.sweep.report.load import load_sweep
from spikesculpt.experiments.sweep.report.sections import build_sections

MARKDOWN = "report.md"
HTML = "report.html"


@dataclass
class ReportFiles:
    markdown: Path
    html: Path


def write_report(sweep_dir, out: Optional[str] = None) -> ReportFiles:
    """Write ``report.md`` and ``report.html`` for the sweep in ``sweep_dir`` into ``out``
    (default: the sweep directory); returns their paths."""
    data = load_sweep(sweep_dir)
    groups = make_groups(data.finished, data.vary_keys)
    sections = build_sections(data, groups)
    base = data.header.get("base") or data.record.get("base") or {}
    title = f"Sweep report: {base.get('model', '?')} on {base.get('dataset', '?')}"
    folder = Path(out) if out is not None else data.path
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file; pass a folder to --out")
    markdown, html = render_markdown(title, sections), render_html(title, sections)
    return ReportFiles(write_text(folder / MARKDOWN, markdown), write_text(folder / HTML, html))
