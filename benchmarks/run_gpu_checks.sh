#!/usr/bin/env bash
# GPU checks and benchmarks, for a machine with CUDA (run from the repository root).
#
#   OUT=/some/folder bash benchmarks/run_gpu_checks.sh     # results and logs go to $OUT
#
# 1. the test suite with a CUDA device visible (the CUDA-only tests run instead of skipping);
# 2. real training runs on CUDA (fp32 and AMP): dense vs ESL on digits, the conv model;
# 3. the LIF training-step benchmark on the GPU (spikesculpt vs SpikingJelly vs snnTorch vs ReLU);
# 4. the ESL-vs-dense whole-run overhead on the GPU;
# 5. torch.distributed on one GPU (NCCL): the same ESL run with torchrun and plain, interleaved
#    (issue 15: the overhead of the distributed path; each line ends with the training seconds).
# Uses the python3 that holds a CUDA PyTorch; spikesculpt is taken from src/ (no install needed).
set -uo pipefail
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
echo "== 1. tests"
python3 -m pytest -q -p no:cacheprovider 2>&1 | tail -15 | tee "$OUT/gpu_pytest.txt"
echo "== 2. CUDA training runs"
R=$(mktemp -d)
python3 -m spikesculpt compare --methods dense,esl --density 0.1 --epochs 30 --device cuda \
  --runs-root "$R" --no-progress 2>&1 | tail -4 | tee "$OUT/gpu_train.txt"
for m in dense esl; do
  python3 -m spikesculpt train --model conv --method $m --density 0.1 --grow hebbian --epochs 15 \
    --device cuda --amp --runs-root "$R" --no-progress 2>&1 | tail -1 | tee -a "$OUT/gpu_train.txt"
done
echo "== 3. LIF step benchmark"
python3 benchmarks/bench_lif_mlp.py --device cuda --batch 256 --repeats 10 --out-dir "$OUT" 2>&1 | tail -12
echo "== 4. ESL overhead"
python3 benchmarks/bench_sparse_methods.py --device cuda --parts overhead --model conv \
  --epochs 10 --overhead-repeats 6 --out-dir "$OUT" 2>&1 | tail -3
echo "== 5. torchrun on 1 GPU vs plain"
for round in 1 2; do
  for launch in plain torchrun; do
    if [ $launch = plain ]; then L="python3 -m spikesculpt"; else
      L="python3 -m torch.distributed.run --standalone --nproc-per-node 1 -m spikesculpt"; fi
    SPIKESCULPT_CHECK_MASKS=1 $L train --model conv --method esl --density 0.1 --epochs 10 \
      --device cuda --runs-root "$R/$launch$round" --no-progress 2>&1 | tail -1 \
      | sed "s/^/$launch round $round: /" | tee -a "$OUT/gpu_torchrun.txt"
  done
done
