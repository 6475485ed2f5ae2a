export OMP_NUM_THREADS=1
P="/work/main/.venv/bin/python -m spikesculpt"
for s in "$@"; do
nice -n 10 $P lottery --strategy multilevel --model spikformer --dataset digits --epochs 20 --patch-keep 0.5 --rounds 1 --rate 0.5 --train-embedding --controls reinit,random --seed $s --no-progress --out OUT/ml_probetrain_s$s > ctl_probetrain_s$s.log 2>&1
done
