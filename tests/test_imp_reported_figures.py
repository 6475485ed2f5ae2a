"""The IMP figures docs/lottery.md and the README quote for issue 14 are recomputed from the
committed sweep cells (``benchmarks/imp_level_stats.py``), so an edit to the statistics, the
cells or the text that breaks their agreement fails here."""
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
import imp_level_stats  # noqa: E402

MNIST1D = BENCH / "results" / "imp_mnist1d_amd-epyc_20261201-issue14"
DIGITS = BENCH / "results" / "imp_rate_amd-epyc_20261130-issue14"


def _stats(folder, level, names, metric="test_accuracy"):
    rows = imp_level_stats.read_cells([folder / f"{n}_cells.csv" for n in names])
    return imp_level_stats.level_stats(rows, level, metric)


def _points(d):
    """(mean, low, high) of a paired difference in points, rounded as the docs print them."""
    return tuple(round(100 * v, 2) for v in (d["mean"], *d["ci95"]))


def test_mnist1d_bn_free_512_meets_the_target():
    s = _stats(MNIST1D, 4, ["nobn-h512-r44x4-e30", "nobn-h512-r44x4-e30-s5to9"])
    assert len(s["ticket"]) == len(s["dense"]) == 10
    assert _points(s["ticket-dense"]) == (0.51, -0.25, 1.27)
    assert _points(s["ticket-reinit"]) == (2.06, 0.89, 3.23)
    assert _points(s["ticket-random"]) == (7.63, 6.20, 9.06)
    # the target: gap CI above -0.5 points, both margins' CIs above 0
    assert s["ticket-dense"]["ci95"][0] > -0.005
    assert s["ticket-reinit"]["ci95"][0] > 0 and s["ticket-random"]["ci95"][0] > 0


def test_mnist1d_batchnorm_lr3e3_meets_the_target_on_validation_and_test():
    names = ["bn-r44x4-e30-lr3e-3", "bn-r44x4-e30-lr3e-3-s5to9"]
    val, test = _stats(MNIST1D, 4, names, "val_accuracy"), _stats(MNIST1D, 4, names)
    assert _points(val["ticket-reinit"]) == (2.53, 1.37, 3.69)   # the choice, on validation
    assert _points(test["ticket-dense"]) == (1.66, 0.13, 3.19)
    assert _points(test["ticket-reinit"]) == (2.52, 1.32, 3.72)
    assert _points(test["ticket-random"]) == (4.55, 2.80, 6.30)
    for s in (val, test):
        assert s["ticket-dense"]["ci95"][0] > -0.005
        assert s["ticket-reinit"]["ci95"][0] > 0 and s["ticket-random"]["ci95"][0] > 0


def test_mnist1d_batchnorm_lr1e2_margin_over_reinit_is_not_resolved():
    names = ["bn-r44x4-e30", "bn-r44x4-e30-s5to9"]
    val, test = _stats(MNIST1D, 4, names, "val_accuracy"), _stats(MNIST1D, 4, names)
    assert _points(val["ticket-reinit"]) == (1.15, -0.23, 2.53)
    assert _points(test["ticket-reinit"]) == (0.44, -1.34, 2.22)
    assert val["ticket-reinit"]["ci95"][0] < 0 < val["ticket-reinit"]["ci95"][1]


def test_digits_batchnorm_512_ten_seeds():
    s = _stats(DIGITS, 8, ["bn-h512-r25x8-e15", "bn-h512-r25x8-e15-s5to9"])
    assert _points(s["ticket-dense"]) == (-0.84, -1.45, -0.22)
    assert _points(s["ticket-reinit"]) == (0.56, 0.04, 1.07)
