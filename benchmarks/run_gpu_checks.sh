#!/usr/bin/env bash
# GPU checks and benchmarks, for a machine with CUDA (run from the repository root).
#
#   OUT=/some/folder bash benchmarks/run_gpu_checks.sh          # issue 16: kernels (~7 min)
#   FULL=1 OUT=/some/folder bash benchmarks/run_gpu_checks.sh   # also the older checks below
#
# Results go to a temporary folder, then into $OUT/gpu_results.tgz (with the log, $OUT/gpu_log.txt).
# 1. the GPU tests of the neurons: the Triton kernels over every neuron x reset x detach x
#    surrogate x dtype against the PyTorch-ops path (tests/test_gpu_kernel.py), and the rest of
#    the neuron, surrogate, AMP and encoding tests with a CUDA device visible;
# 2. the neuron alone (bench_neuron_kernel.py): time and bytes kept per neuron per step, vs
#    SpikingJelly 2.0;
# 3. the LIF MLP training step (bench_lif_mlp.py): batch 256 T 8, and batch 64 T 16; then
#    batch 256 T 8 with each model also through torch.compile, mode reduce-overhead (CUDA
#    graphs; spikesculpt's --compile, train/compiled.py), eager and compiled rows side by side;
# 4. the VGGSNN training step (bench_lif_conv.py): float32 and bf16 autocast;
# 4b. issue 17's sparse inference benchmark (linear and conv parts) on this machine's CPU at 2
#    threads: a second CPU for its table (CPU_SPARSE=0 skips it; at most 4 minutes).
# With FULL=1 also: CUDA training runs (dense vs ESL, conv with AMP), the ESL overhead, and
# torchrun on one GPU vs plain (issue 15).
# Uses the python3 that holds a CUDA PyTorch; spikesculpt is taken from src/ (no install needed).
# SPIKESCULPT_GIT_COMMIT (if set) tags the result files where the tree has no .git.
set -uo pipefail
OUT=${OUT:-benchmarks/results}
R=$(mktemp -d)
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
exec > >(tee "$OUT/gpu_log.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'triton', triton.__version__, torch.cuda.get_device_name())"
echo "== 1. GPU tests"
XDIST=$(python3 -c "import xdist" 2>/dev/null && echo "-n 8")
timeout "${TEST_TIMEOUT:-300}" python3 -m pytest -q -p no:cacheprovider $XDIST tests/test_gpu_kernel.py tests/test_neurons.py \
  tests/test_surrogates.py tests/test_amp_steps.py tests/test_encoding.py 2>&1 | tail -15
echo "== 2. neuron kernel alone"
python3 benchmarks/bench_neuron_kernel.py --device cuda --out-dir "$R"
echo "== 3. LIF MLP step"
python3 benchmarks/bench_lif_mlp.py --device cuda --batch 256 --T 8 --repeats 10 --out-dir "$R" \
  2>&1 | tail -11
python3 benchmarks/bench_lif_mlp.py --device cuda --batch 64 --T 16 --repeats 10 --out-dir "$R" \
  2>&1 | tail -11
echo "== 3b. LIF MLP step through torch.compile (--compile; reduce-overhead = CUDA graphs)"
python3 benchmarks/bench_lif_mlp.py --device cuda --batch 256 --T 8 --repeats 10 \
  --compile reduce-overhead --only spikesculpt,spikesculpt-torch,spikingjelly --out-dir "$R" \
  2>&1 | tail -11
echo "== 4. VGGSNN step"
for amp in "" "--amp"; do
  python3 benchmarks/bench_lif_conv.py --device cuda --repeats 6 --steps 5 --warmup 3 $amp \
    --out-dir "$R" 2>&1 | tail -10
done
if [ "${CPU_SPARSE:-1}" = 1 ]; then
  # issue 17 wants its sparse-inference table on a second CPU: this machine's, at 2 threads
  echo "== 4b. sparse inference on this machine's CPU (issue 17; CPU_SPARSE=0 skips it)"
  timeout 240 python3 benchmarks/bench_sparse_inference.py --threads 2 --parts linear,conv \
    --densities 0.1,0.02 --rounds 5 --calls 3 --out-dir "$R" 2>&1 | grep -v "^ *$" | tail -20
fi
if [ "${FULL:-0}" = 1 ]; then
  echo "== 5. CUDA training runs"
  python3 -m spikesculpt compare --methods dense,esl --density 0.1 --epochs 30 --device cuda \
    --runs-root "$R/runs" --no-progress 2>&1 | tail -4
  for m in dense esl; do
    python3 -m spikesculpt train --model conv --method $m --density 0.1 --grow hebbian \
      --epochs 15 --device cuda --amp --runs-root "$R/runs" --no-progress 2>&1 | tail -1
  done
  echo "== 6. ESL overhead"
  python3 benchmarks/bench_sparse_methods.py --device cuda --parts overhead --model conv \
    --epochs 10 --overhead-repeats 6 --out-dir "$R" 2>&1 | tail -3
  echo "== 7. torchrun on 1 GPU vs plain"
  for round in 1 2; do
    for launch in plain torchrun; do
      if [ $launch = plain ]; then L="python3 -m spikesculpt"; else
        L="python3 -m torch.distributed.run --standalone --nproc-per-node 1 -m spikesculpt"; fi
      SPIKESCULPT_CHECK_MASKS=1 $L train --model conv --method esl --density 0.1 --epochs 10 \
        --device cuda --runs-root "$R/$launch$round" --no-progress 2>&1 | tail -1 \
        | sed "s/^/$launch round $round: /"
    done
  done
  rm -rf "$R/runs" "$R"/plain* "$R"/torchrun*
fi
tar czf "$OUT/gpu_results.tgz" -C "$R" .
echo "results: $(ls "$R" | wc -l) files in gpu_results.tgz"
