"""benchmarks/reproduction.py: statistics and verdicts on hand-made rows (no training)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduction.py"


@pytest.fixture(scope="module")
def rp():
    spec = importlib.util.spec_from_file_location("reproduction", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(method, accs):
    return [{"method": method, "rng": str(i), "test_acc": str(a), "best_test_acc": str(a),
             "anp": "1", "itop": "0.5", "train_seconds": "10", "cpu_seconds": "9"}
            for i, a in enumerate(accs)]


def test_mean_and_standard_error(rp):
    m, se = rp.mean_se([0.80, 0.82, 0.84])
    assert m == pytest.approx(0.82) and se == pytest.approx(0.02 / math.sqrt(3))
    assert rp.mean_se([0.5]) == (0.5, None)


def test_verdicts_follow_the_stated_rules(rp):
    rows = (_rows("fc", [0.900, 0.902, 0.904]) + _rows("chts", [0.897, 0.899, 0.901])
            + _rows("set", [0.880, 0.881, 0.882]) + _rows("chtss", [0.890, 0.891, 0.892]))
    v = {claim: (verdict, numbers) for claim, verdict, numbers in
         rp.verdicts(rp.summarise(rows, rp.PROTOCOLS["A"]["methods"]))}
    assert v["CHTs (alpha=1) within 0.5 points of FC"][0] == "observed"  # -0.3 points
    assert "-0.30 points" in v["CHTs (alpha=1) within 0.5 points of FC"][1]
    assert v["CHTs (alpha=1) above SET by more than two standard errors"][0] == "observed"
    assert v["CHTss at or above CHTs (alpha=1)"][0] == "not observed"
    assert v["CHTs (alpha=0) within 0.5 points of FC"][0] == "not measured"


def test_one_seed_cannot_show_a_two_standard_error_gap(rp):
    rows = _rows("chts", [0.95]) + _rows("set", [0.80])
    v = {c: verdict for c, verdict, _ in rp.verdicts(rp.summarise(rows, ("chts", "set")))}
    assert v["CHTs (alpha=1) above SET by more than two standard errors"] == \
        "not measured (one seed)"


def test_docs_block_is_replaced_between_markers_only(rp, tmp_path):
    page = tmp_path / "p.md"
    page.write_text("head\n<!-- x:begin -->\nold\n<!-- x:end -->\ntail\n")
    rp.update_docs_block(page, "x", "new table")
    assert page.read_text() == "head\n<!-- x:begin -->\nnew table\n<!-- x:end -->\ntail\n"
    rp.update_docs_block(page, "missing", "ignored")
    assert "ignored" not in page.read_text()
