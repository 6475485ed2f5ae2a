"""python stats.py: multilevel settings vs the dense spikformer at patch-keep 0.5, paired over seeds
(level 1 of each search; its controls where present). Reads the folders beside this file."""
import glob, json, os, re

from spikesculpt.metrics.stats import paired_difference, diff_ci, mean_std
D = os.path.dirname(os.path.abspath(__file__))
def load(pattern, getter):
    out = {}
    for f in glob.glob(pattern):
        s = int(re.search(r'_s(\d+)/', f + '/').group(1))
        out[s] = getter(json.load(open(f)))
    return out
res = {'dense_pk05': {m: load(f'{D}/dense_pk05_s*/metrics.json', lambda d: d[m]) for m in ('val_accuracy', 'test_accuracy')}}
names = sorted({re.match(r'ml_(.*)_s\d+$', p.split('/')[-1]).group(1) for p in glob.glob(f'{D}/ml_*_s*') if not p.endswith('.log')})
for n in names:
    res[n] = {m: load(f'{D}/ml_{n}_s*/summary.json', lambda d: d['levels'][1][m]) for m in ('val_accuracy', 'test_accuracy')}
    res[n + ':L0'] = {m: load(f'{D}/ml_{n}_s*/summary.json', lambda d: d['levels'][0][m]) for m in ('val_accuracy', 'test_accuracy')}
    for c in ('reinit', 'random'):
        got = {m: load(f'{D}/ml_{n}_s*/level_1/control_{c}/metrics.json', lambda d: d[m]) for m in ('val_accuracy', 'test_accuracy')}
        if got['val_accuracy']:
            res[n + ':' + c] = got
base = res['dense_pk05']
for n, r in res.items():
    line = f"{n:22s} n={len(r['test_accuracy'])} seeds={sorted(r['test_accuracy'])}"
    for m in ('val_accuracy', 'test_accuracy'):
        mu, sd = mean_std(r[m].values())
        line += f" | {m[:4]} {100*mu:6.2f}±{100*sd:4.2f} vs dense {diff_ci(paired_difference(r[m], base[m]))}"
    print(line)
    for c in ('reinit', 'random'):
        if n + ':' + c in res:
            print(f"   ticket - {c}: test {diff_ci(paired_difference(r['test_accuracy'], res[n+':'+c]['test_accuracy']))}")
