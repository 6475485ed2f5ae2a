#!/usr/bin/env bash
# Issue 14: ESL vs dense on digits-dvs, conv 64-128, 100 epochs, --augment shift, density 0.1.
# Eleventh session (2026-12-01, AMD EPYC Zen 4, 2 cores): seeds 0 and 1, 83 min with 2 workers
# (~22 s per epoch per worker).
#   spikesculpt sweep --dataset digits-dvs --model conv --model-arg channels=[64,128] \
#     --methods dense,esl --densities 0.1 --seeds 0,1 --epochs 100 --augment shift \
#     --workers 2 --out /work/exp/dvs_long
# This folder keeps each run's config.yaml, metrics.json and history.csv (not the checkpoints
# or weights): a sweep reads a run with metrics.json as finished, so to add seeds 2-4, copy
# the folder and extend the grid in place (the finished cells are reused, not retrained):
#   cp -r benchmarks/results/esl_dvs_conv64_long_amd-epyc_20261201-issue14 /tmp/dvs_long
#   spikesculpt sweep --dataset digits-dvs --model conv --model-arg channels=[64,128] \
#     --methods dense,esl --densities 0.1 --seeds 5 --epochs 100 --augment shift \
#     --workers 2 --force --out /tmp/dvs_long
# Twelfth session (2026-12-01, same Zen 4 host): seeds 2-4 done this way, 2.2 h; the folder now
# holds all 10 cells (5 seeds) and their report: ESL - dense -1.78 [-3.87, +0.30] points.
set -euo pipefail
out=${1:-/tmp/dvs_long}
spikesculpt sweep --dataset digits-dvs --model conv --model-arg channels=[64,128] \
  --methods dense,esl --densities 0.1 --seeds 5 --epochs 100 --augment shift \
  --workers 2 --force --out "$out"
