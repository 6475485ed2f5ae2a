"""Export formats: safetensors with packed masks (``safetensors_export``) and NIR both ways
(``nir_export``, optional extra ``nir``). ``spikesculpt export`` (``experiments.export_run``) is
built on them."""
