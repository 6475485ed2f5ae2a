#!/bin/bash
# job.sh NAME SEED : one run of the multi-level study (issue 14), 1 thread
NAME=$1; s=$2
export OMP_NUM_THREADS=1
P="/work/main/.venv/bin/python -m spikesculpt"
L="lottery --strategy multilevel --model spikformer --dataset digits --epochs 20 --patch-keep 0.5 --rounds 1 --rate 0.5"
case $NAME in
  dense) nice -n 10 $P train --dataset digits --model spikformer --epochs 20 --patch-keep 0.5 --seed $s --no-progress --out OUT/dense_pk05_s$s > dense_pk05_s$s.log 2>&1 ;;
  jointbin) nice -n 10 $P $L --embedding-search joint --binary-weights --seed $s --no-progress --out OUT/ml_jointbin_s$s > ml_jointbin_s$s.log 2>&1 ;;
  probetrain) nice -n 10 $P $L --train-embedding --seed $s --no-progress --out OUT/ml_probetrain_s$s > ml_probetrain_s$s.log 2>&1 ;;
  default) nice -n 10 $P $L --seed $s --no-progress --out OUT/ml_default_s$s > ml_default_s$s.log 2>&1 ;;
esac
