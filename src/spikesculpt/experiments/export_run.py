"""``spikesculpt export``: write a finished run's model in a deployable format.

``export_run(run_dir, fmt, out=None, force=False)`` reloads the run's best model
(``model.safetensors``) and, for sparse methods, its mask (``masks.safetensors``), and writes

- ``safetensors``: ``export/safetensors_export.py`` (default ``RUN_DIR/export.safetensors``);
- ``nir``: ``export/nir_export.py`` (default ``RUN_DIR/model.nir``; optional extra ``nir``),
  time constants in seconds at ``dt`` seconds per time step (default 1e-4, what SpikingJelly's
  and snnTorch's NIR importers read).

Bad input raises ``UserError`` (one line, exit 2 in the CLI) and writes nothing: a missing run
directory or checkpoint, an unknown format, an existing output file without ``force``, a model
the format cannot represent (the message names the module), a ``dt`` that is not a positive
number or is given with a format other than ``nir``. Writes are atomic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from spikesculpt.core.errors import UserError
from spikesculpt.experiments.rundir import config_hash
from spikesculpt.experiments.train_run import build, load_model_weights, load_run_config
from spikesculpt.export.nir_export import DEFAULT_DT, _nir, check_dt, to_nir, write_nir
from spikesculpt.export.safetensors_export import export_safetensors
from spikesculpt.metrics.model_stats import model_stats
from spikesculpt.sparse import Mask

FORMATS = {"safetensors": "export.safetensors", "nir": "model.nir"}


def export_run(run_dir: str | Path, fmt: str, out: Optional[str | Path] = None,
               force: bool = False, dt: Optional[float] = None) -> dict:
    """Export the run; returns ``{"path", "format", "density", "mask_density"}`` (and ``dt``
    for NIR). ``dt``: seconds per time step of a NIR export (default ``DEFAULT_DT`` = 1e-4)."""

    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if dt is not None and fmt != "nir":
        raise UserError(f"--dt applies to --format nir only (time constants in seconds), not "
                        f"to {fmt}; drop --dt")
    run, config = load_run_config(run_dir)
    if not run.model_path.is_file():
        raise UserError(f"{run.path} has no model.safetensors (the run did not finish); resume "
                        f"it with 'spikesculpt train --resume --out {run.path}'")
    path = Path(out) if out else run.path / FORMATS[fmt]
    if path.exists() and not force:
        raise UserError(f"{path} already exists; pass --force to overwrite it or --out FILE to "
                        f"write elsewhere")
    if path.exists() and path.is_dir():
        raise UserError(f"{path} is a directory; pass --out FILE")
    if fmt == "nir":

        dt = check_dt(DEFAULT_DT if dt is None else dt)
        _nir()  # fail early, before building anything, if the extra is missing
    config.device = "cpu"
    _, model, _ = build(config)
    load_model_weights(run.model_path, model)
    model.eval()
    mask_path = run.path / "masks.safetensors"
    mask = Mask.load(mask_path) if mask_path.is_file() else None
    if mask is not None:
        mask.validate(model)
    meta = {"model": config.model, "method": config.method, "dataset": config.dataset,
            "timesteps": config.timesteps, "encoding": config.encoding,
            "config_hash": config_hash(config), "config": config.to_dict()}
    if fmt == "safetensors":

        export_safetensors(model, path, mask, meta)
    else:

        graph_meta = {k: meta[k] for k in ("model", "method", "dataset", "timesteps",
                                           "encoding", "config_hash")}
        graph = to_nir(model, masks=dict(mask.items()) if mask is not None else None,
                       metadata=graph_meta, dt=dt)
        write_nir(graph, path)

    result = {"path": str(path), "format": fmt, "density": model_stats(model)["density"],
              "mask_density": mask.density() if mask is not None else None}
    if fmt == "nir":
        result["dt"] = dt
    return result
