"""Markdown tables from a ``run_all.py`` run folder, in the layout of the README / docs tables.

``write_tables(run_dir)`` reads ``run_dir/manifest.json`` and every job's JSON results and writes
``run_dir/tables.md``: per job a block headed by where its numbers go (file › section), the
result file, commit, machine and command, then the table(s). A skipped or failed job gives a
one-line block saying so. The lead pastes the blocks into the README / docs; nothing here edits
them. Accuracies are percentages; "[a, b]" is a 95% confidence interval of a paired difference
over seeds (benchmarks/summary.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from summary import diff_ci, mean_std, pct


# ------------------------------------------------------------------------------ helpers
def table(header: list[str], rows: list[list]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def load_results(job_dir: Path, prefix: str = "") -> list[tuple[Path, dict]]:
    """(path, data) of the job's JSON result files whose name starts with ``prefix``."""
    return [(p, json.loads(p.read_text())) for p in sorted(job_dir.glob(f"{prefix}*.json"))]


def meta_of(data: dict) -> dict:
    return data.get("meta") or data.get("machine") or {}


def source_line(path: Path, data: dict, run_dir: Path) -> str:
    m = meta_of(data)
    commit = (m.get("git_commit") or "unknown")[:7] + (" (dirty)" if m.get("git_dirty") else "")
    machine = m.get("gpu") or m.get("cpu", "?")
    return (f"Source: `{path.relative_to(run_dir)}` — commit {commit}, {machine}, "
            f"{m.get('torch_threads', '?')} thread(s), torch {m.get('torch', '?')}, "
            f"{m.get('date', '?')}")


def skipped_reason(data: dict) -> str | None:
    """A whole result that was skipped (e.g. CUDA missing)."""
    if data.get("skipped"):
        return data["skipped"]
    rows = data.get("results")
    if rows and all(str(r.get("status", "")).startswith("skipped") for r in rows):
        return rows[0]["status"]
    return None


def x(v: float) -> str:
    """A speed-up ratio: ``7.00×``, ``31.8×``."""
    return f"{v:.2f}×" if v < 10 else f"{v:.1f}×"


# ------------------------------------------------------------------------------ LIF
LIF_NAMES = {"relu": "ReLU network (same matmuls)",
             "spikesculpt": "**spikesculpt** LIF (default kernel)",
             "spikesculpt-torch": "spikesculpt LIF, PyTorch-ops kernel (no C compiler)",
             "spikingjelly": "SpikingJelly 2.0 `LIFNode` (multi-step)",
             "snntorch": "snnTorch 1.0 `Leaky`"}


def render_lif(data: dict) -> str:
    rows = []
    for r in data["results"]:
        name = LIF_NAMES.get(r["implementation"], r["implementation"])
        if r["status"] != "ok":
            rows.append([name, r["status"], "", ""])
        else:
            peak = r.get("peak_mib")
            rows.append([name, f"{r['ms_per_step']:.2f}", f"{r['ratio_to_relu']:.2f}",
                         "" if peak is None else f"{peak:,.0f}"])
    cfg = data["config"]
    model = cfg.get("model", "mlp")
    return (f"{model}, T = {cfg['T']}, batch {cfg['batch']}, {cfg['repeats']} rounds × "
            f"{cfg['steps']} steps; native kernel: "
            f"{data['machine'].get('spikesculpt_native_kernel')}\n\n"
            + table(["implementation", "ms/step (median)", "× ReLU", "peak MiB (GPU)"], rows)
            + f"\n\nspikesculpt vs SpikingJelly spikes: {data['spike_agreement_vs_spikingjelly']}")


# ------------------------------------------------------------------------------ sparse methods
def variant_label(variant: str, chosen_default: dict | None = None) -> str:
    if variant == "esl":
        return "**esl (defaults)**"
    if variant.startswith("esl-"):
        return f"esl, {variant[4:]} growth (other defaults)"
    return variant


def render_sparse_accuracy(acc: dict) -> str:
    summary = acc["summary"]
    densities = sorted({s["density_target"] for s in summary if s["variant"] != "dense"},
                       reverse=True)
    variants = list(dict.fromkeys(s["variant"] for s in summary if s["variant"] != "dense"))
    cell = {(s["variant"], s["density_target"]): s for s in summary}
    dense = cell[("dense", 1.0)]
    rows = [[variant_label(v)] + [pct(cell[(v, d)]["test_mean"], cell[(v, d)]["test_std"])
                                  if (v, d) in cell else "—" for d in densities]
            for v in variants]
    out = (f"Test accuracy (%), mean ± std over {dense['n']} seeds. Dense: "
           f"{pct(dense['test_mean'], dense['test_std'])}.\n\n"
           + table(["method"] + [f"{d:g}" for d in densities], rows))
    pairs = {}
    for p in acc.get("paired", []):
        pairs.setdefault((p["variant"], p["baseline"]), {})[p["density_target"]] = p
    if pairs:
        rows = [[f"{variant_label(v)} − {b}"] + [diff_ci(by_d.get(d)) for d in densities]
                for (v, b), by_d in pairs.items()]
        out += ("\n\nPaired differences (points), mean [95% CI] over seeds:\n\n"
                + table(["comparison"] + [f"{d:g}" for d in densities], rows))
    return out


def render_sparse_sweep(sweep: dict) -> str:
    cands = sweep["candidates"]
    everys = sorted({c["update_every"] for c in cands})
    grows = list(dict.fromkeys(c["variant"] for c in cands))
    cell = {(c["variant"], c["update_every"]): c for c in cands}
    ch, cur = sweep["chosen"], sweep["current_default"]
    rows = []
    for g in grows:
        row = [g[4:]]
        for e in everys:
            c = cell.get((g, e))
            text = pct(c["val_mean"], c["val_std"]) if c else "—"
            row.append(f"**{text}**" if (g, e) == (ch["variant"], ch["update_every"]) else text)
        rows.append(row)
    top = ch.get("best_mean")
    if ch["is_current_default"] and top and (top["variant"], top["update_every"]) != \
            (ch["variant"], ch["update_every"]):
        verdict = (f"the current default, kept: the best mean, {top['variant'][4:]} / T_iter "
                   f"{top['update_every']}, beats it by {diff_ci(top['val_minus_default'])} "
                   f"points, a 95% CI that includes 0")
    elif ch["is_current_default"]:
        verdict = "the current default"
    elif ch.get("val_minus_default") is None:
        verdict = (f"the current default, grow {cur['grow']}, T_iter {cur['update_every']}, was "
                   f"not among the candidates")
    else:
        verdict = (f"not the current default, grow {cur['grow']}, T_iter {cur['update_every']}; "
                   f"validation − default: {diff_ci(ch['val_minus_default'])} points")
    density = sweep["runs"][0]["density_target"] if sweep.get("runs") else "?"
    return (f"ESL sweep at density {density}: **validation** accuracy (%), mean ± std over "
            f"{ch['n']} seeds, growth rule × T_iter (bold: chosen):\n\n"
            + table(["growth"] + [f"T_iter {e}" for e in everys], rows)
            + f"\n\nChosen on validation: grow **{ch['grow']}**, T_iter **{ch['update_every']}** "
              f"({verdict}); its test accuracy: {pct(ch['test_mean'], ch['test_std'])}.")


def render_sparse_overhead(data: dict) -> str:
    steps, over = data.get("steps"), data.get("overhead")
    rows = []
    if steps:
        rows.append(["steps, one process"] + [f"{steps.get(k + '_ratio', float('nan')):.2f}"
                                              for k in ("static", "esl", "esl-hebbian")])
    if over:
        rows.append(["whole runs", "—"] + [f"{over[k + '_median_ratio']:.2f}"
                                           for k in ("esl", "esl-hebbian")])
    head = ""
    if steps:
        head = f"{steps['total_steps']} steps each (interleaved blocks of 30). "
    if over:
        head += f"Whole runs: median over {len(over['rounds'])} interleaved rounds. "
    return head + "Time / dense time:\n\n" + table(
        ["", "static", "esl (defaults)", "esl, Hebbian growth"], rows)


def render_sparse(data: dict) -> str:
    m = meta_of(data)
    parts = [f"{m.get('dataset')}, {m.get('model')}, T = {m.get('timesteps')}, "
             f"{m.get('epochs')} epochs."]
    if "accuracy" in data:
        parts.append(render_sparse_accuracy(data["accuracy"]))
    if "sweep" in data:
        parts.append(render_sparse_sweep(data["sweep"]))
    if "steps" in data or "overhead" in data:
        parts.append(render_sparse_overhead(data))
    return "\n\n".join(parts)


# ------------------------------------------------------------------------------ inference
def render_inference(data: dict) -> str:
    rows = data["rows"]
    out = []
    linear = [r for r in rows if r["part"] == "linear"]
    if linear:
        impls = ("torch-csr", "rows", "events", "auto")
        body = []
        for shape in dict.fromkeys(r["shape"] for r in linear):
            first = True
            for d in dict.fromkeys(r["density"] for r in linear if r["shape"] == shape):
                by = {r["impl"]: r for r in linear if r["shape"] == shape and r["density"] == d}
                label = (f"{shape.replace('x', '→')}, {by['dense']['rows']}" if first else "")
                body.append([label, f"{d:g}", f"{by['dense']['ms']:.3g}"]
                            + [x(by[i]["speedup"]) if i in by else "—" for i in impls])
                first = False
        out.append("Linear layers (ms of `dense`; × = median per-round speed-up over dense):\n\n"
                   + table(["layer, rows", "density", "dense ms", "torch CSR",
                            "spikesculpt `rows`", "`events`", "`auto`"], body))
    activity = [r for r in rows if r["part"] == "activity"]
    if activity:
        body = [[f"{a:g}"] + [x(r["speedup"]) for i in ("rows", "events", "auto")
                              for r in activity if r["activity"] == a and r["impl"] == i]
                for a in dict.fromkeys(r["activity"] for r in activity)]
        out.append("1024→1024 at density 0.1, by input activity:\n\n"
                   + table(["activity", "`rows`", "`events`", "`auto`"], body))
    conv = [r for r in rows if r["part"] == "conv"]
    if conv:
        body = [[r["shape"], f"{r['density']:g}", x(r["speedup"])]
                for r in conv if r["impl"] != "dense"]
        out.append("3×3 convolutions, im2col + `rows` vs dense `conv2d`:\n\n"
                   + table(["conv", "density", "speed-up"], body))
    model = [r for r in rows if r["part"] == "model"]
    if model:
        body = []
        for d in dict.fromkeys(r["density"] for r in model):
            by = {r["impl"]: r for r in model if r["density"] == d}
            acc_d, acc_s = by["dense"]["test_accuracy"], by["sparse"]["test_accuracy"]
            same = "" if acc_d == acc_s else f" (sparse {100 * acc_s:.2f}%)"
            body.append([f"{d:.3g}", f"{by['dense']['activity']:.3f}",
                         f"{100 * acc_d:.2f}%{same}",
                         f"{by['sparse']['converted_layers']}/3", f"{by['dense']['ms']:.2f}",
                         f"{by['sparse']['ms']:.2f}", x(by["sparse"]["speedup"])])
        epochs = data.get("args", {}).get("epochs")
        out.append(f"A trained model (MLP 64-512-512-10, T = 4, {epochs} epochs, one seed):\n\n"
                   + table(["density", "firing rate", "test acc. (dense = sparse)",
                            "layers converted", "dense ms", "sparse ms", "speed-up"], body))
    return "\n\n".join(out)


# ------------------------------------------------------------------------------ lottery
def render_imp(imp: dict) -> str:
    rows = imp["rows"]
    dense = mean_std(rows[0]["tickets"])[0]
    body = []
    for r in rows:
        p = r.get("paired", {})
        body.append([r["level"], f"{100 * (1 - r['density']):.1f}%", pct(*mean_std(r["tickets"])),
                     diff_ci(p.get("dense")) if r["level"] else "—",
                     pct(*mean_std(r["reinit"])), pct(*mean_std(r["random"])),
                     diff_ci(p.get("reinit")), diff_ci(p.get("random"))])
    goal = imp.get("goal")
    text = (table(["level", "sparsity", "ticket", "Δ dense", "random re-init", "random pruning",
                   "ticket − re-init", "ticket − random"], body)
            + f"\n\nDense (level 0): {pct(dense)}. Δ and differences: paired over seeds, points, "
              f"mean [95% CI].")
    if goal:
        text += (f" Goal at sparsity {100 * goal['sparsity']:.1f}% (level {goal['level']}): "
                 f"{goal['delta_points']:+.2f} points vs dense (goal ≥ −0.5: "
                 f"{'met' if goal['within_half_point'] else 'not met'}); above random re-init: "
                 f"{'yes' if goal['above_reinit'] else 'no'}.")
    return text


def render_early_time(et: dict) -> str:
    pairs = et["pairs"]
    tp = sorted({p["t_prime"] for p in pairs})
    med = lambda k: sorted(p[k] for p in pairs)[len(pairs) // 2]  # noqa: E731
    body = [["IMP", "—", f"{med('search_s_without'):.1f} s",
             pct(*mean_std(p["ticket_without"] for p in pairs))],
            ["IMP + early-time", ", ".join(map(str, tp)), f"{med('search_s_with'):.1f} s",
             pct(*mean_std(p["ticket_with"] for p in pairs))]]
    return (table(["search", "T' picked", "search time (median)", "final ticket test acc"], body)
            + f"\n\nSearch-time ratio (median over seeds): wall ×{et['median_wall_ratio']:.2f}, "
              f"CPU ×{et['median_cpu_ratio']:.2f}; final ticket density "
              f"{pairs[0]['density']:.3f}; ticket with − without: "
              f"{diff_ci(et.get('ticket_with_minus_without'))} points.")


def render_patch(patch: dict, meta: dict) -> str:
    body = [[r["patch_keep"], f"{r['tokens_kept']:.3f}", pct(r["test_mean"], r["test_std"]),
             f"{r['block_spikes_per_sample']:,.0f}", f"{r['synops_effective']:,.0f}",
             f"{r['train_seconds']:.1f}", diff_ci(r.get("minus_keep_1"))]
            for r in patch["table"]]
    return (f"Patch tickets: spikformer {meta.get('patch_model_arg', '')}, "
            f"{meta.get('patch_epochs')} epochs; − keep 1.0: paired over seeds, points, "
            f"mean [95% CI].\n\n"
            + table(["`--patch-keep`", "`tokens_kept`", "test acc",
                     "spikes in the blocks / sample", "effective SynOps / sample", "train s",
                     "− keep 1.0"], body))


def render_score(score: dict) -> str:
    rows = score["table"]
    levels = sorted({r["level"] for r in rows})
    dens = {k: next(r["density"] for r in rows if r["level"] == k) for k in levels}
    body = []
    for strategy, label in (("score", "`score` (edge-popup, untrained weights)"),
                            ("score-binary", "`score --binary-weights` (biprop)")):
        by = {r["level"]: r for r in rows if r["strategy"] == strategy}
        body.append([label] + [pct(by[k]["test_mean"], by[k]["test_std"])
                               + (" (trained)" if k == 0 else "") for k in levels])
    return table(["strategy"] + [f"density {dens[k]:.3g}" for k in levels], body)


def render_lottery(data: dict) -> str:
    m = meta_of(data)
    out = [f"{m.get('dataset')}, T = {m.get('timesteps')}, seeds {m.get('seeds')}; test accuracy "
           f"(%) of the best-validation model, mean ± std."]
    model = f"{m.get('model')} {m.get('model_arg')}, {m.get('epochs')} epochs"
    if "imp" in data:
        out.append(f"IMP: {model}, rate {m.get('rate')}, rewind {m.get('rewind')}, "
                   f"{m.get('prune')} pruning.\n\n" + render_imp(data["imp"]))
    if "early-time" in data:
        out.append(f"Early-time: {model}, T = {m.get('et_timesteps')}, rate {m.get('rate')}, "
                   f"{m.get('et_rounds')} rounds, {m.get('prune')} pruning"
                   f"{', first layer dense' if m.get('dense_first') else ''}.\n\n"
                   + render_early_time(data["early-time"]))
    if "patch" in data:
        out.append(render_patch(data["patch"], m))
    if "score" in data:
        out.append(f"Score tickets: {model}, rate {m.get('score_rate')}.\n\n"
                   + render_score(data["score"]))
    return "\n\n".join(out)


# ------------------------------------------------------------------------------ genetic
def render_genetic_compression(data: dict) -> str:
    s = {(r["variant"], r["gene_dim"]): r for r in data["summary"]}
    dense = s[("dense", None)]
    body = [["dense", f"{dense['params']:,}", "—",
             pct(dense["test_accuracy_mean"], dense["test_accuracy_std"]), "", ""]]
    for g in sorted({k[1] for k in s if k[1] is not None}):
        gen, evo, low = s.get(("genetic", g)), s.get(("evolved", g)), s.get(("lowrank", g))
        fmt = (lambda r: pct(r["test_accuracy_mean"], r["test_accuracy_std"]) if r else "—")
        body.append([g, f"{gen['params']:,}", f"{100 * (1 - gen['params'] / dense['params']):.1f}%",
                     fmt(gen), fmt(evo),
                     f"{fmt(low)} (r {low.get('rank', '?')}; {low['params']:,})" if low else "—"])
    out = table(["gene dim g", "parameters", "fewer than dense", "genetic (random rule)",
                 "evolved rule", "low-rank U·Vᵀ"], body)
    if data.get("paired"):
        out += "\n\nPaired differences (points), mean [95% CI] over seeds:\n\n" + table(
            ["g", "comparison", "difference"],
            [[p["gene_dim"], f"{p['variant']} − {p['baseline']}", diff_ci(p)]
             for p in data["paired"]])
    return out


def render_genetic_evolution(data: dict) -> str:
    pairs = {p["variant"]: p for p in data.get("paired", [])}
    body = [[r["variant"], r.get("total_epochs", "?"),
             pct(r["test_accuracy_mean"], r["test_accuracy_std"]),
             diff_ci(pairs.get(r["variant"])) if r["variant"] in pairs else "—"]
            for r in data["summary"]]
    return table(["variant", "epochs", "test accuracy", "− random rule, equal compute"], body)


def render_genetic_speed(data: dict) -> str:
    rows = data["rows"]
    body = []
    for P in dict.fromkeys(r["population"] for r in rows):
        by = {r["mode"]: r for r in rows if r["population"] == P}
        body.append([P, f"{by['off']['median_seconds']:.2f} s"]
                    + [f"{by[m]['median_seconds']:.2f} s ({by[m]['speedup_vs_off']:.2f}×)"
                       for m in ("stack", "vmap") if m in by])
    checks = ", ".join(f"{k}: {v}" for k, v in data.get("check", {}).items())
    return (table(["P", "one at a time", "stacked population", "torch.func.vmap"], body)
            + f"\n\nSame accuracies in every mode: {checks}.")


def render_genetic_init_std(data: dict) -> str:
    ch = data["chosen"]
    body = [[c["init_std"], pct(c["val_mean"], c["val_std"])
             + ("  ← chosen" if c["init_std"] == ch["init_std"] else ""),
             diff_ci(c.get("val_minus_default"))] for c in data["candidates"]]
    top = ch.get("best_mean")
    if ch["is_current_default"] and top and top["init_std"] != ch["init_std"]:
        verdict = (f"the current default, kept: the best mean, s = {top['init_std']}, beats it "
                   f"by {diff_ci(top['val_minus_default'])} points, a 95% CI that includes 0")
    elif ch["is_current_default"]:
        verdict = "the current default"
    else:
        verdict = (f"not the current default {ch['current_default']}; validation − default: "
                   f"{diff_ci(ch.get('val_minus_default'))} points")
    g = data["rows"][0]["gene_dim"] if data.get("rows") else "?"
    return (f"Random rule, g = {g}: **validation** accuracy (%), mean ± std over {ch['n']} "
            f"seeds:\n\n" + table(["init_std s", "validation accuracy", "− default (paired)"],
                                   body)
            + f"\n\nChosen on validation: s = **{ch['init_std']}** ({verdict}); its test "
              f"accuracy: {pct(ch['test_mean'], ch['test_std'])}.")


# ------------------------------------------------------------------------------ event data
def render_event_data(data: dict) -> str:
    e = data["emulation"]
    body = [[r["dataset"], r["state"], f"{r['load_s']:.2f}", f"{r['epoch_iteration_s']:.2f}",
             f"{r['total_s']:.2f}", f"{r['ratio_first_to_this']:.1f}x"] for r in data["loading"]]
    return (f"Emulation: {e['images']:,} images, {e['events']:,} events "
            f"({e['events_per_image']:,.0f} per image) in {e['seconds_median']:.1f} s: "
            f"**{e['events_per_s'] / 1e6:.2f} M events/s**, {e['images_per_s']:.0f} images/s.\n\n"
            + table(["dataset", "state", "load s", "epoch pass s", "total s", "first / this"],
                    body))


# ------------------------------------------------------------------------------ dispatch
def renderer_for(job_name: str):
    """(file-name prefix, render function) for a run_all job."""
    if job_name.startswith("lif-mlp"):
        return "lif_mlp", render_lif
    if job_name.startswith("lif-vggsnn"):
        return "lif_vggsnn", render_lif
    if job_name.startswith("sparse-inference"):
        return "sparse_inference", render_inference
    if job_name.startswith("sparse-"):
        return "sparse_", render_sparse
    if job_name.startswith("lottery-"):
        return "lottery_", render_lottery
    if job_name.startswith("genetic-"):
        part = job_name[len("genetic-"):]
        fn = {"compression": render_genetic_compression, "evolution": render_genetic_evolution,
              "speed": render_genetic_speed, "init-std": render_genetic_init_std}[part]
        return f"genetic_{part}_", fn
    if job_name == "event-data":
        return "event_data", render_event_data
    raise KeyError(f"no table renderer for job {job_name!r}")


def render_job(run_dir: Path, job: dict) -> str:
    head = f"## {job['name']}\n\nGoes to: " + "; ".join(job.get("quoted_in", [])) + "\n"
    head += f"Command: `{job['command']}`\n"
    prefix, fn = renderer_for(job["name"])
    results = load_results(run_dir / job["name"], prefix)
    if job["status"] != "ok" or not results:
        why = job["status"] if job["status"] != "ok" else "no result file"
        return head + f"\n{why}: see `{job.get('log')}`.\n"
    blocks = []
    for path, data in results:
        reason = skipped_reason(data)
        body = reason if reason else fn(data)
        blocks.append(source_line(path, data, run_dir) + "\n\n" + body)
    return head + "\n" + "\n\n".join(blocks) + "\n"


def write_tables(run_dir: Path) -> Path:
    """Render every job of ``run_dir/manifest.json`` into ``run_dir/tables.md``."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    commit = (manifest.get("git_commit") or "unknown")[:12]
    out = [f"# Benchmark tables ({manifest['variant']} run)\n",
           f"Commit {commit}{' (dirty tree)' if manifest.get('git_dirty') else ''}, "
           f"{manifest.get('cpu')}, {manifest.get('cpu_threads_available')} CPUs, torch "
           f"{manifest.get('torch')}, Python {manifest.get('python')}, started "
           f"{manifest.get('date')}, `{manifest.get('command')}`; "
           f"{manifest.get('wall_seconds', 0) / 60:.1f} min.\n"]
    for job in manifest["jobs"]:
        try:
            out.append(render_job(run_dir, job))
        except Exception as e:  # a table that cannot be drawn must not hide the others
            out.append(f"## {job['name']}\n\ntable not rendered ({type(e).__name__}: {e})\n")
    path = run_dir / "tables.md"
    path.write_text("\n".join(out))
    return path
