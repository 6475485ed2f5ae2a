"""The top floor below the CLI: everything that owns a run directory and drives the one training
loop — ``rundir`` (the run directory: name, hash, lock, ownership), ``train_run`` (one training
run: ``spikesculpt train``, ``evaluate``), ``fit`` (``spikesculpt.fit`` / ``sparsify`` on a
user's model), ``export_run`` (``spikesculpt export``), ``lottery/`` (the ticket search and its
strategies), ``evolution/`` (the evolution of genetic wiring rules)."""
