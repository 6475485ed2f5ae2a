"""``spikesculpt report`` / ``write_report`` (issue 13, item 3): a real tiny sweep on mnist1d is
reported; the HTML is self-contained and every image a valid PNG; the tables' numbers equal
those computed here from cells.csv; paired differences equal a hand computation; the controls
of the row contract (matched-dense, lottery reinit / random, lowrank vs genetic) are paired
as documented (hand-written cells.json); old and partly finished sweeps report; bad input is
one line, exit status 2, nothing written."""

import base64
import csv
import html.parser
import io
import json
import math
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest
import torch
from cli_run import run_cli
from PIL import Image

import spikesculpt
from spikesculpt import TrainConfig, run_sweep
from spikesculpt.experiments.sweep.report.compare import comparisons
from spikesculpt.experiments.sweep.report.groups import make_groups
from spikesculpt.experiments.sweep.report.load import load_sweep
from spikesculpt.experiments.sweep.report.plots import MAX_PANELS, evenly_spaced, pareto_front

pytestmark = pytest.mark.usefixtures("one_thread")

T_975_DF1 = 12.706205  # Student's t, 97.5% quantile, 1 degree of freedom (two seeds)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """dense, static, esl × densities 0.5, 0.2 × seeds 0, 1 on a small mnist1d (10 cells); ESL
    rewires every 2 steps so that rewiring.csv has rows. The report is written by the sweep."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    base = TrainConfig(dataset="mnist1d:samples=600", model="mlp",
                       model_kwargs={"hidden": [32, 32]}, epochs=2, lr=1e-2)
    base.sparse.update_every = 2
    out = tmp_path_factory.mktemp("report") / "sweep"
    try:
        result = run_sweep(base, ["dense", "static", "esl"], densities=[0.5, 0.2], seeds=2,
                           out=str(out), progress=False, command="spikesculpt sweep (test)")
    finally:
        torch.set_num_threads(threads)
    return result


def csv_rows(folder):
    with open(Path(folder) / "cells.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def md_table(text: str, caption: str) -> list[list[str]]:
    """The rows (cells stripped) of the Markdown table after the line ``*caption*``."""
    lines = text.splitlines()
    start = lines.index(f"*{caption}*") + 2
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in line.strip("|").split("|")])
    return [table[0]] + table[2:]  # head, then the body (the ---| line dropped)


class Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parse_html(path) -> list:
    parser = Tags()
    parser.feed(Path(path).read_text(encoding="utf-8"))
    parser.close()
    return parser.tags


# ---------------------------------------------------------------------------- the real sweep
def test_sweep_writes_both_files(sweep):
    assert sweep.report.markdown == sweep.path / "report.md"
    assert sweep.report.html == sweep.path / "report.html"
    text = sweep.report.markdown.read_text(encoding="utf-8")
    assert "spikesculpt sweep (test)" in text               # the recorded command
    assert "test accuracy of the best-validation epoch; nothing here was chosen on test" \
        in text.lower()
    assert "all 10 finished" in text


def test_html_is_self_contained_and_every_image_is_a_png(sweep):
    tags = parse_html(sweep.report.html)
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed")]
    for tag, attrs in tags:
        for name in ("src", "href"):
            if name in attrs:
                assert attrs[name].startswith("data:image/png;base64,"), (tag, attrs[name][:40])
    images = [attrs["src"] for tag, attrs in tags if tag == "img"]
    assert len(images) == 5  # accuracy/density, accuracy/cost, curves, layer density, turnover
    for src in images:
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        image = Image.open(io.BytesIO(raw))
        image.load()
        assert image.format == "PNG"
        assert 400 <= image.width <= 2000 and 250 <= image.height <= 2000, image.size


def test_markdown_means_equal_those_of_cells_csv(sweep):
    groups = {}
    for row in csv_rows(sweep.path):
        groups.setdefault((row["method"], row["density_target"]), []).append(
            (float(row["test_accuracy"]), float(row["val_accuracy"])))
    text = sweep.report.markdown.read_text(encoding="utf-8")
    val_caption = "Validation accuracy (%), of the same epoch: the number to choose settings on"
    for caption, index in (("Test accuracy (%)", 0), (val_caption, 1)):
        head, *body = md_table(text, caption)
        assert head == ["method", "no density", "0.5", "0.2"]
        table = {(r[0], column): cell for r in body for column, cell in zip(head[1:], r[1:])}
        for (method, density), values in groups.items():
            v = [100 * x[index] for x in values]
            expected = f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f} ({len(v)})"
            column = "no density" if density == "" else f"{float(density):g}"
            assert table[(method, column)] == expected
        assert table[("dense", "0.5")] == ""


def test_paired_differences_equal_a_hand_computation(sweep):
    rows = csv_rows(sweep.path)

    def acc(method, density):
        return {r["seed"]: float(r["test_accuracy"]) for r in rows
                if r["method"] == method and r["density_target"] == density}

    text = sweep.report.markdown.read_text(encoding="utf-8")
    table = md_table(text, "Paired test-accuracy differences")
    for method, density, control, reference in (
            ("esl", "0.2", "static, same density", acc("static", "0.2")),
            ("static", "0.5", "dense", acc("dense", ""))):
        a = acc(method, density)
        d = [100 * (a[s] - reference[s]) for s in ("0", "1")]
        mean = (d[0] + d[1]) / 2
        half = T_975_DF1 * abs(d[0] - d[1]) / math.sqrt(2) / math.sqrt(2)  # sd = |d0-d1|/√2
        expected = f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"
        found = [r for r in table if r[:3] == [method, density, control]]
        assert len(found) == 1 and found[0][3] == expected and found[0][4] == "2"


def test_regenerating_replaces_only_the_report(sweep, capsys):
    before = {p: p.read_bytes() for p in sweep.path.rglob("*")
              if p.is_file() and not p.name.startswith("report.")}
    code, err, out = run_cli(["report", str(sweep.path)], capsys)
    assert code == 0 and not err
    assert out.split() == [str(sweep.path / "report.md"), str(sweep.path / "report.html")]
    after = {p: p.read_bytes() for p in sweep.path.rglob("*")
             if p.is_file() and not p.name.startswith("report.")}
    assert after == before
    assert not [p for p in sweep.path.iterdir() if p.name.startswith(".")]  # no temp files


def copy_sweep(sweep, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(sweep.path, target, ignore=shutil.ignore_patterns("report.*", "*.pt",
                                                                      "model.safetensors"))
    return target


def test_partly_finished_sweep_reports_what_is_missing(sweep, tmp_path):
    folder = copy_sweep(sweep, tmp_path)
    data = json.loads((folder / "cells.json").read_text())
    data["cells"][-1].update(status="failed", error="RuntimeError: boom",
                             test_accuracy=None, val_accuracy=None)
    (folder / "cells.json").write_text(json.dumps(data))
    files = spikesculpt.write_report(folder, out=tmp_path / "out")
    text = files.markdown.read_text(encoding="utf-8")
    assert "1 of 10 cells missing" in text
    assert "## Failed cells" in text and "RuntimeError: boom" in text
    assert "(1)" in md_table(text, "Test accuracy (%)")[3][-1]  # esl 0.2: one seed left
    assert not (folder / "report.md").exists()                  # --out: written elsewhere


def test_old_sweep_without_new_columns_or_cells_json_reports(sweep, tmp_path):
    folder = copy_sweep(sweep, tmp_path)
    (folder / "cells.json").unlink()                     # cells.csv only, as text
    new_columns = ("role", "params", "width", "level")   # added to the sweep by issue 13
    old_rows = [{k: v for k, v in row.items() if k not in new_columns} for row in csv_rows(folder)]
    with open(folder / "cells.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(old_rows[0]))
        writer.writeheader()
        writer.writerows(old_rows)
    rows = csv_rows(folder)
    assert "role" not in rows[0] and "params" not in rows[0]
    record = (folder / "sweep.yaml").read_text().replace("command:", "old_command:")
    (folder / "sweep.yaml").write_text(record)           # a sweep.yaml from before `command`
    text = spikesculpt.write_report(folder).markdown.read_text(encoding="utf-8")
    assert "were not recorded" in text and "Machine: not recorded" in text
    assert md_table(text, "Test accuracy (%)") == md_table(
        sweep.report.markdown.read_text(encoding="utf-8"), "Test accuracy (%)")


# ---------------------------------------------------------------------------- bad input
def test_bad_input_is_one_line_exit_2_nothing_written(sweep, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = copy_sweep(sweep, tmp_path)
    data = json.loads((failed / "cells.json").read_text())
    for row in data["cells"]:
        row["status"] = "failed"
    (failed / "cells.json").write_text(json.dumps(data))
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(sweep.path / "sweep.yaml", unfinished / "sweep.yaml")
    for target, words in ((tmp_path / "missing", "is not a directory"),
                          (empty, "holds no sweep.yaml"),
                          (failed, "no cell of"),
                          (unfinished, "has no cells.csv yet")):
        before = sorted(p.name for p in target.iterdir()) if target.exists() else None
        code, err, out = run_cli(["report", str(target)], capsys)
        assert code == 2 and len(err) == 1 and words in err[0], err
        assert out == ""
        assert (sorted(p.name for p in target.iterdir()) if target.exists() else None) == before


# ---------------------------------------------------------------------------- the controls
def fixture_rows() -> list[dict]:
    """Hand-written rows of the issue-13 contract: dense, static / esl at 0.1, the matched
    dense control, IMP levels 0 / 1 with reinit and random controls, genetic and lowrank."""
    acc = {  # test accuracy per (method, role, level, density) for seeds 0, 1, 2
        ("dense", "", "", None): [0.80, 0.82, 0.81],
        ("static", "", "", 0.1): [0.70, 0.73, 0.71],
        ("esl", "", "", 0.1): [0.75, 0.76, 0.77],
        ("dense", "matched-dense", "", 0.1): [0.72, 0.70, 0.74],
        ("imp", "", 0, 1.0): [0.79, 0.83, 0.80],
        ("imp", "", 1, 0.75): [0.78, 0.82, 0.79],
        ("imp", "reinit", 1, 0.75): [0.74, 0.75, 0.73],
        ("imp", "random", 1, 0.75): [0.70, 0.71, 0.69],
        ("genetic", "", "", None): [0.60, 0.62, 0.64],
        ("lowrank", "", "", None): [0.58, 0.63, 0.61],
    }
    rows = []
    for (method, role, level, density), values in acc.items():
        for seed, value in enumerate(values):
            rows.append({"method": method, "density_target": density, "seed": seed,
                         "genetic.gene_dim": 8 if method in ("genetic", "lowrank") else None,
                         "role": role, "level": level, "params": 1000,
                         "run_dir": f"runs/{method}-{role}-{level}-{seed}", "status": "trained",
                         "test_accuracy": value, "val_accuracy": value - 0.01, "density": 0.5,
                         "synops": 1e5 * (density or 1.0), "energy_pj": 3e5 * (density or 1.0),
                         "train_seconds": 1.0, "error": ""})
    return rows


def write_fixture(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir()
    grid = {"methods": ["dense"], "densities": [0.1], "seeds": 3,
            "vary": {"genetic.gene_dim": [8]}}
    (folder / "sweep.yaml").write_text(f"kind: sweep\nsweep_hash: abc\ngrid: {json.dumps(grid)}\n"
                                       f"base: {{dataset: mnist1d, model: mlp}}\n")
    (folder / "cells.json").write_text(json.dumps({"grid": grid, "cells": rows}))
    return folder


def hand_ci(a: list, b: list) -> tuple[float, float, float]:
    d = [x - y for x, y in zip(a, b)]
    mean = sum(d) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 2)
    half = 4.302653 * sd / math.sqrt(3)  # t(0.975, 2)
    return mean, mean - half, mean + half


def found_pairs(folder) -> dict:
    data = load_sweep(folder)
    found = comparisons(make_groups(data.finished, data.vary_keys))
    return {(c.group.label, str(c.group.level), str(c.group.density), c.versus): c
            for c in found}


def test_controls_are_paired_as_the_contract_says(tmp_path):
    rows = fixture_rows()
    pairs = found_pairs(write_fixture(tmp_path / "s", rows))
    acc = {}
    for r in rows:
        acc.setdefault((r["method"], r["role"], r["level"]), []).append(r["test_accuracy"])
    expected = {
        ("esl", "", "0.1", "dense"): (("esl", "", ""), ("dense", "", "")),
        ("esl", "", "0.1", "static, same density"): (("esl", "", ""), ("static", "", "")),
        ("esl", "", "0.1", "dense (same connections)"): (("esl", "", ""),
                                                          ("dense", "matched-dense", "")),
        ("static", "", "0.1", "dense (same connections)"): (("static", "", ""),
                                                             ("dense", "matched-dense", "")),
        ("dense (same connections)", "", "0.1", "dense"): (("dense", "matched-dense", ""),
                                                           ("dense", "", "")),
        ("imp ticket", "1", "0.75", "dense"): (("imp", "", 1), ("dense", "", "")),
        ("imp ticket", "1", "0.75", "reinit control"): (("imp", "", 1), ("imp", "reinit", 1)),
        ("imp ticket", "1", "0.75", "random-pruning control"): (("imp", "", 1),
                                                                ("imp", "random", 1)),
        ("lowrank", "", "", "genetic"): (("lowrank", "", ""), ("genetic", "", "")),
    }
    for key, (a, b) in expected.items():
        mean, low, high = hand_ci(acc[a], acc[b])
        d = pairs[key].difference
        assert d["n"] == 3
        assert d["mean"] == pytest.approx(mean) and d["ci95"] == pytest.approx([low, high])
    assert ("static", "", "0.1", "static, same density") not in pairs
    assert ("dense", "", "", "dense") not in pairs


def test_lottery_without_plain_dense_pairs_with_level_0(tmp_path):
    rows = [r for r in fixture_rows() if not (r["method"] == "dense" and r["role"] == "")]
    pairs = found_pairs(write_fixture(tmp_path / "s", rows))
    c = pairs[("imp ticket", "1", "0.75", "level 0 (dense)")]
    assert c.reference.level == 0 and c.reference.role == ""
    assert not [k for k in pairs if k[3] == "dense"]


def test_fixture_report_names_the_controls(tmp_path):
    folder = write_fixture(tmp_path / "s", fixture_rows())
    text = spikesculpt.write_report(folder).markdown.read_text(encoding="utf-8")
    head, *body = md_table(text, "Test accuracy (%)")
    assert head == ["method", "genetic.gene_dim", "no density", "1", "0.75", "0.1"]
    labels = [r[0] for r in body]
    assert labels == ["dense", "static", "esl", "dense (same connections)", "imp ticket",
                      "imp reinit control", "imp random-pruning control", "genetic", "lowrank"]
    assert "## Failed cells" not in text and "## Figures" in text  # run files absent: no curves


def test_pareto_front():
    points = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (2.0, 0.4), (4.0, 0.9)]
    assert pareto_front(points) == [0, 1, 4]


# ---------------------------------------------------------------------------- the CLI sweep
def test_sweep_cli_writes_the_report_unless_told_not_to(tmp_path, capsys):
    args = ["sweep", "--dataset", "mnist1d:samples=600", "--model", "mlp", "--model-arg",
            "hidden=[16]", "--epochs", "1", "--methods", "dense", "--seeds", "1",
            "--no-progress", "--out", str(tmp_path / "s")]
    code, _, out = run_cli([*args, "--no-report"], capsys)
    assert code == 0 and not (tmp_path / "s" / "report.md").exists()
    code, _, out = run_cli(args, capsys)
    assert code == 0
    assert out.strip().splitlines()[-1] == f"report: {tmp_path / 's' / 'report.html'}"
    record = (tmp_path / "s" / "sweep.yaml").read_text()
    assert "command: spikesculpt sweep --dataset mnist1d:samples=600" in record
    invocations = json.loads((tmp_path / "s" / "cells.json").read_text())["invocations"]
    assert [i["counts"] for i in invocations] == [{"trained": 1}, {"reused": 1}]
    assert invocations[0]["machine"]["cpu"] and invocations[1]["wall_seconds"] > 0


@pytest.mark.skipif(not shutil.which("chromium"), reason="no chromium on this machine "
                    "(the PNG decode test above always runs)")
def test_report_renders_in_a_headless_browser(sweep, tmp_path):
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--window-size=1200,3000", f"--screenshot={shot}",
                    sweep.report.html.as_uri()], capture_output=True, timeout=120, check=False)
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 3000)
    low, high = image.getextrema()
    assert high - low > 100  # not a blank page


def test_panels_beyond_the_cap_are_evenly_spaced_with_both_ends():
    """A 12-level lottery search plus controls has more densities than panels: the sparsest
    levels (the interesting ones) must not be cut off."""
    assert evenly_spaced(list(range(MAX_PANELS)), MAX_PANELS) == list(range(MAX_PANELS))
    picked = evenly_spaced(list(range(20)), 5)
    assert picked == [0, 5, 10, 14, 19] and picked[0] == 0 and picked[-1] == 19
