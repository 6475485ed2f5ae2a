# usage: seeds.sh NAME "FLAGS" SEEDS...
NAME=$1; FLAGS=$2; shift 2
export OMP_NUM_THREADS=1
P="/work/main/.venv/bin/python -m spikesculpt"
for s in "$@"; do
  if [ "$NAME" = dense ]; then
    nice -n 10 $P train --dataset digits --model spikformer --epochs 20 --patch-keep 0.5 --seed $s --no-progress --out OUT/dense_pk05_s$s > dense_pk05_s$s.log 2>&1
  else
    nice -n 10 $P lottery --strategy multilevel --model spikformer --dataset digits --epochs 20 --patch-keep 0.5 --rounds 1 --rate 0.5 $FLAGS --seed $s --no-progress --out OUT/ml_${NAME}_s$s > ml_${NAME}_s$s.log 2>&1
  fi
done
