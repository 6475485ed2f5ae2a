#!/usr/bin/env bash
# Issue 14, a diagnostic (twelfth session, 2026-12-01, AMD EPYC Zen 4, 2 cores, commit 1d52c18):
# does ESL's layer-density allocation starve the 64->128 conv of digits-dvs conv 64-128?
# ER (ESL's default; kernel ignored) gives conv1 72.5%, conv2 3.3%, readout 14.1% of their
# weights; uniform with --dense-first gives conv1 100%, conv2 and readout 9.4% each (the same
# 17,856 connections). 20 epochs, --augment shift, density 0.1, seeds 0-1, validation only.
# This folder keeps each run's config.yaml, metrics.json, history.csv and rewiring.csv.
set -euo pipefail
out=${1:-/tmp/alloc}
common=(--dataset digits-dvs --model conv --model-arg 'channels=[64,128]' --methods esl
        --densities 0.1 --seeds 2 --epochs 20 --augment shift --workers 1 --no-progress)
spikesculpt sweep "${common[@]}" --init uniform --dense-first --out "$out/uniform_df"
spikesculpt sweep "${common[@]}" --out "$out/er"
