"""``spikesculpt sweep``: a grid of training runs (methods × densities × seeds × other fields).

``grid`` (the grid and its cells), ``cell_run`` (training one cell: run_training in the sweep's
``runs/``), ``executor`` (where cells run: ``Executor``, ``LocalExecutor``), ``sweep_dir`` (the
sweep directory: sweep.yaml, cells.csv / cells.json), ``summary`` (mean ± std over seeds),
``run`` (``run_sweep``). See docs/sweep.md.
"""

from spikesculpt.experiments.sweep.executor import Done, Executor, LocalExecutor
from spikesculpt.experiments.sweep.grid import Cell, SweepGrid, density_section
from spikesculpt.experiments.sweep.run import SweepResult, run_grid, run_sweep
from spikesculpt.experiments.sweep.summary import format_table, summarize
from spikesculpt.experiments.sweep.sweep_dir import SweepDir

__all__ = ["Cell", "Done", "Executor", "LocalExecutor", "SweepDir", "SweepGrid", "SweepResult",
           "density_section", "format_table", "run_grid", "run_sweep", "summarize"]
