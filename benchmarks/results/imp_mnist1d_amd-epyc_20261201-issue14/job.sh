#!/bin/bash
# Issue 14, IMP on MNIST-1D (tenth session, 2026-12-01): every search stops at level 4, density
# 0.56^4 = 0.0983 (90.2% sparsity); tickets and both controls at every level; 2 workers x 1
# torch thread on the 2-core AMD EPYC. Files here: <name>_cells.csv, _report.md, _sweep.yaml.
# Stats: python ../../imp_level_stats.py 4 <name>_cells.csv [more seeds' cells.csv]
set -ef  # -f: no globbing of hidden=[512,512]
C="--no-progress --workers 2 --dataset mnist1d --model mlp --lr 1e-2 --epochs 30 --lottery imp --rounds 4 --rate 0.44 --controls reinit,random"
BN="--model-arg batch_norm=true"
NOBN="--prune layer --rescale"
W512="--model-arg hidden=[512,512]"
spikesculpt sweep $C --seeds 5 $NOBN --out sweeps/nobn-r44x4-e30                 # MLP 256-256, BN-free
spikesculpt sweep $C --seeds 5 $BN --out sweeps/bn-r44x4-e30                     # MLP 256-256, BatchNorm
spikesculpt sweep $C --seeds 5,6,7,8,9 $BN --out sweeps/bn-r44x4-e30-s5to9
spikesculpt sweep $C --seeds 5 $NOBN $W512 --out sweeps/nobn-h512-r44x4-e30       # MLP 512-512, BN-free
spikesculpt sweep $C --seeds 5 $BN $W512 --out sweeps/bn-h512-r44x4-e30           # MLP 512-512, BatchNorm
spikesculpt sweep $C --seeds 5,6,7,8,9 $NOBN $W512 --out sweeps/nobn-h512-r44x4-e30-s5to9
spikesculpt sweep $C --seeds 5 --rewind 3ep $BN --out sweeps/bn-r44x4-e30-rw3
spikesculpt sweep $C --seeds 5 --prune global --rescale --out sweeps/nobn-global-r44x4-e30
# BatchNorm 256-256 at lr 3e-3 (the margin over reinit; seeds 5-9 added to decide on validation)
spikesculpt sweep $C --seeds 5 --lr 3e-3 $BN --out sweeps/bn-r44x4-e30-lr3e-3
spikesculpt sweep $C --seeds 5,6,7,8,9 --lr 3e-3 $BN --out sweeps/bn-r44x4-e30-lr3e-3-s5to9
