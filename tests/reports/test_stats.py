"""reports.stats against scipy and hand-computed cases; reports.cd_diagram writes a file."""
import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as ss

from reports.stats import (
    claim_test,
    claims_verdicts,
    compare_cell,
    friedman_nemenyi,
    holm,
    mean_ci,
    no_signal,
    paired_test,
    q_alpha,
    tost,
    verdict,
)

A = {0: 0.80, 1: 0.82, 2: 0.79, 3: 0.85}
B = {0: 0.78, 1: 0.80, 2: 0.80, 5: 0.90}


def test_import_pulls_in_neither_torch_nor_matplotlib():
    code = ("import sys, reports.stats\n"
            "print([m for m in ('torch', 'matplotlib', 'plotly') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_t_interval_by_formula_and_text():
    x = [0.80, 0.83, 0.81]
    mean, s = sum(x) / 3, float(np.std(x, ddof=1))
    half = ss.t.ppf(0.975, 2) * s / math.sqrt(3)
    iv = mean_ci(x)
    assert (iv.n, iv.method, iv.n_dropped) == (3, "t", 0)
    assert iv.mean == pytest.approx(mean)
    assert iv.low == pytest.approx(mean - half) and iv.high == pytest.approx(mean + half)
    assert iv.text() == f"{mean:.3f} ± {half:.3f} (95% t, n=3)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        iv.mean = 0.0
    # a mapping seed -> score uses its values; 90% interval uses t_{0.95}
    iv90 = mean_ci({1: 0.80, 2: 0.83, 3: 0.81}, confidence=0.90)
    assert iv90.high - iv90.mean == pytest.approx(ss.t.ppf(0.95, 2) * s / math.sqrt(3))


def test_interval_edge_cases():
    one = mean_ci([0.812])
    assert (one.low, one.high, one.n) == (None, None, 1)
    assert one.text() == "0.812 (n=1, no interval)"
    dropped = mean_ci([0.812, float("nan")])
    assert (dropped.n, dropped.n_dropped, dropped.low) == (1, 1, None)
    assert "no interval" in dropped.text()
    two = mean_ci([0.8, float("nan"), 0.82])
    assert (two.n, two.n_dropped) == (2, 1)
    assert two.high - two.mean == pytest.approx(ss.t.ppf(0.975, 1) * np.std([0.8, 0.82], ddof=1) / math.sqrt(2))
    same = mean_ci([0.7, 0.7])
    assert same.low == same.high == pytest.approx(0.7)
    empty = mean_ci([])
    assert math.isnan(empty.mean) and empty.n == 0


def test_paired_test_equals_ttest_rel_on_common_seeds():
    res = paired_test(A, B, direction="maximize")
    assert res.seeds == (0, 1, 2) and res.n == 3
    ref = ss.ttest_rel([0.80, 0.82, 0.79], [0.78, 0.80, 0.80])
    assert res.t == pytest.approx(ref.statistic) and res.p == pytest.approx(ref.pvalue)
    lo, hi = ref.confidence_interval()
    assert (res.low, res.high) == (pytest.approx(lo), pytest.approx(hi))
    assert res.mean_diff == pytest.approx(0.01)
    assert res.effect == "a better"
    assert paired_test(A, B, direction="minimize").effect == "b better"


def test_paired_test_degenerate_cases():
    assert paired_test({0: 0.8, 1: 0.9}, {1: 0.7}, direction="maximize").p is None
    zero = paired_test({0: 0.8, 1: 0.9}, {0: 0.8, 1: 0.9}, direction="maximize")
    assert (zero.p, zero.t, zero.effect) == (1.0, 0.0, "no difference")
    const = paired_test({0: 0.5, 1: 0.25, 2: 1.0}, {0: 0.25, 1: 0.0, 2: 0.75}, direction="minimize")
    assert const.p == 0.0 and const.t == math.inf and const.low == const.high == 0.25
    assert const.effect == "b better"
    with pytest.raises(ValueError, match="direction"):
        paired_test(A, B, direction="up")


def test_constant_baseline_is_a_one_sample_t_test():
    vals = [A[s] for s in sorted(A)]
    ref = ss.ttest_1samp(vals, 0.75)
    for baseline in (0.75, dict.fromkeys(A, 0.75)):
        res = paired_test(A, baseline, direction="maximize")
        assert res.n == 4 and res.p == pytest.approx(ref.pvalue) and res.t == pytest.approx(ref.statistic)


def test_holm_hand_computed():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    out = holm([0.01, None, 0.04, 0.03])
    assert out[1] is None and [out[0], out[2], out[3]] == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped
    assert holm([]) == [] and holm([None]) == [None]


def test_verdict_respects_direction():
    hi = {s: 0.9 + 0.001 * s for s in range(5)}
    lo = {s: 0.5 + 0.002 * (s % 2) for s in range(5)}
    up = paired_test(hi, lo, direction="maximize")
    down = paired_test(hi, lo, direction="minimize")
    assert verdict(up, 0.001) == "better" and verdict(down, 0.001) == "worse"
    assert verdict(paired_test(lo, hi, direction="maximize"), 0.001) == "worse"
    assert verdict(paired_test(lo, hi, direction="minimize"), 0.001) == "better"
    assert verdict(up, 0.2) == "not distinguishable" and verdict(up, None) == "no test"
    assert verdict(up, 0.04, alpha=0.01) == "not distinguishable"


def test_tost_by_hand():
    b = {s: 0.8 for s in range(6)}
    close = {s: 0.8 + d for s, d in enumerate([0.004, -0.003, 0.002, -0.001, 0.003, -0.002])}
    d = np.array([close[s] - 0.8 for s in range(6)])
    se = d.std(ddof=1) / math.sqrt(6)
    res = tost(close, b, 0.02)
    assert res.p_lower == pytest.approx(ss.t.sf((d.mean() + 0.02) / se, 5))
    assert res.p_upper == pytest.approx(ss.t.cdf((d.mean() - 0.02) / se, 5))
    assert res.p == pytest.approx(max(res.p_lower, res.p_upper)) and res.equivalent
    far = {s: 0.8 + d for s, d in enumerate([0.04, 0.01, 0.05, 0.02, 0.03, 0.045])}
    res = tost(far, b, 0.02)
    assert not res.equivalent and res.p > 0.05
    assert tost({0: 0.8}, b, 0.02).p is None
    # zero-variance differences are decided exactly: inside the margin, or not
    inside, outside = tost(dict.fromkeys(b, 0.81), b, 0.02), tost(dict.fromkeys(b, 0.83), 0.8, 0.02)
    assert (inside.p_lower, inside.p_upper, inside.equivalent) == (0.0, 0.0, True)
    assert (outside.p_lower, outside.p_upper, outside.equivalent) == (0.0, 1.0, False)
    with pytest.raises(ValueError):
        tost(close, b, 0.0)


def _cell():
    base = [0.800, 0.810, 0.790, 0.805, 0.798]
    return {
        "full": dict(enumerate(base)),
        "lora": {s: v + d for s, (v, d) in enumerate(zip(base, [0.003, -0.004, 0.001, -0.002, -0.0015]))},
        "bad": {s: v - 0.2 + d for s, (v, d) in enumerate(zip(base, [0.001, -0.001, 0.002, 0.0, -0.002]))},
    }


def test_compare_cell_worse_and_indistinguishable():
    cell = _cell()
    rows = compare_cell(cell, direction="maximize")
    assert [r.variant for r in rows] == ["full", "lora", "bad"]  # lora's mean is 0.0007 lower
    by = {r.variant: r for r in rows}
    assert by["full"].vs_best.verdict == "best" and by["full"].vs_reference.verdict == "reference"
    assert by["lora"].vs_best.verdict == "not distinguishable"
    assert by["bad"].vs_best.verdict == "worse" and by["bad"].n == 5
    # Holm over the two tests against the best, by hand
    p_lora = ss.ttest_rel(list(cell["lora"].values()), list(cell["full"].values())).pvalue
    p_bad = ss.ttest_rel(list(cell["bad"].values()), list(cell["full"].values())).pvalue
    assert p_bad < p_lora  # Holm: the smaller p times 2, the larger times 1 (kept monotone)
    assert by["bad"].vs_best.p_holm == pytest.approx(2 * p_bad)
    assert by["lora"].vs_best.p_holm == pytest.approx(min(1.0, max(2 * p_bad, p_lora)))
    assert by["lora"].vs_best.paired.p == pytest.approx(p_lora)
    # best is full, so the reference family is the same tests
    assert by["bad"].vs_reference.verdict == "worse"


def test_compare_cell_minimize_and_no_reference():
    cell = {v: {s: 1.0 - x for s, x in sc.items()} for v, sc in _cell().items()}  # losses
    rows = compare_cell(cell, direction="minimize", reference=None)
    assert rows[0].variant == "full" and rows[-1].variant == "bad"
    assert rows[-1].vs_best.verdict == "worse" and all(r.vs_reference is None for r in rows)
    rows = compare_cell({"lora": cell["lora"], "bad": cell["bad"]}, direction="minimize")
    assert rows[0].variant == "lora" and rows[1].vs_reference is None
    assert compare_cell({}, direction="maximize") == []


def test_no_signal():
    noise = [0.01, -0.012, 0.004, -0.003, 0.006, -0.005]
    scores = {"a": {s: 0.5 + d for s, d in enumerate(noise)},
              "b": {s: 0.5 - d for s, d in enumerate(noise)}}
    assert no_signal(scores, 0.5, direction="maximize")
    assert no_signal(scores, dict.fromkeys(range(6), 0.5), direction="minimize")
    scores["good"] = {s: 0.7 + d for s, d in enumerate(noise)}
    assert not no_signal(scores, 0.5, direction="maximize")
    assert no_signal(scores, 0.5, direction="minimize")  # higher is worse there
    # one seed each: nothing could be tested, which is not "no signal"
    assert no_signal({"a": {0: 0.9}, "b": {0: 0.8}}, 0.5, direction="maximize") is None


def test_compare_cell_picks_the_best_by_the_selection_score_not_the_tested_one():
    cell = _cell()
    # validation prefers lora (as a search would have chosen it): it is the target the others are tested against
    rows = compare_cell(cell, direction="maximize", rank_by={"full": 0.70, "lora": 0.72, "bad": 0.5})
    assert [r.variant for r in rows] == ["lora", "full", "bad"] and rows[0].vs_best.verdict == "best"
    p = ss.ttest_rel(list(cell["full"].values()), list(cell["lora"].values())).pvalue
    assert rows[1].vs_best.paired.p == pytest.approx(p)


def test_claim_matches_scipy_wilcoxon():
    a = [0.81, 0.75, 0.66, 0.90, 0.72, 0.88, 0.79, 0.70]
    b = [0.79, 0.76, 0.60, 0.85, 0.69, 0.80, 0.78, 0.71]
    c = claim_test(list(zip(a, b)), direction="maximize")
    ref = ss.wilcoxon(a, b)
    assert c.p == pytest.approx(ref.pvalue) and c.statistic == pytest.approx(ref.statistic)
    assert c.n == 8 and c.median_diff == pytest.approx(np.median(np.subtract(a, b)))
    assert c.effect == "A better"
    assert claim_test(list(zip(a, b)), direction="minimize").effect == "B better"


def test_claim_can_reach_alpha():
    def pairs(n):
        return [(0.5 + 0.01 * i, 0.5) for i in range(1, n + 1)]
    five, six = claim_test(pairs(5), direction="maximize"), claim_test(pairs(6), direction="maximize")
    assert five.min_p == pytest.approx(2 / 2**5) and not five.can_reach_alpha
    assert five.p == pytest.approx(0.0625) and "cannot" in five.note
    assert six.min_p == pytest.approx(2 / 2**6) and six.can_reach_alpha and six.p < 0.05
    # a zero difference is dropped: six pairs, five informative
    tied = claim_test([(0.5, 0.5), *pairs(5)], direction="maximize")
    assert tied.n == 6 and tied.n_nonzero == 5 and not tied.can_reach_alpha
    assert claim_test([(0.5, 0.5)] * 3, direction="maximize").p == 1.0
    assert claim_test([], direction="maximize").p is None


def test_claims_verdicts_with_holm():
    up = [(0.6 + 0.01 * i, 0.5) for i in range(10)]
    down = [(b, a) for a, b in up]
    mixed = [(0.5 + d, 0.5) for d in [0.01, -0.02, 0.03, -0.01, 0.02, -0.03, 0.015, -0.012]]
    claims = [claim_test(p, direction="maximize") for p in (up, down, mixed)]
    out = claims_verdicts(claims)
    assert [v.verdict for v in out] == ["reproduced", "refuted", "not distinguishable"]
    raw = [ss.wilcoxon([x - y for x, y in p]).pvalue for p in (up, down, mixed)]
    assert raw[0] == raw[1] == pytest.approx(2 / 2**10)
    assert out[0].p_holm == pytest.approx(3 * raw[0]) and out[2].p_holm == pytest.approx(min(1, raw[2]))
    # minimize flips what the same data mean
    assert claims_verdicts([claim_test(up, direction="minimize")])[0].verdict == "refuted"


TABLE = {
    "b1": {"A": 0.90, "B": 0.80, "C": 0.70, "D": 0.5},
    "b2": {"A": 0.85, "B": 0.85, "C": 0.60},
    "b3": {"A": 0.70, "B": 0.90, "C": 0.80, "D": 0.6},
}


def test_friedman_ranks_by_hand_and_scipy():
    rt = friedman_nemenyi(TABLE, direction="maximize")
    assert rt.methods == ("A", "B", "C") and rt.dropped == ("D",) and rt.n_blocks == 3
    assert rt.average_ranks == pytest.approx({"A": 5.5 / 3, "B": 4.5 / 3, "C": 8 / 3})
    ref = ss.friedmanchisquare([0.90, 0.85, 0.70], [0.80, 0.85, 0.90], [0.70, 0.60, 0.80])
    assert rt.statistic == pytest.approx(ref.statistic) and rt.p == pytest.approx(ref.pvalue)
    low = friedman_nemenyi(TABLE, direction="minimize")
    assert low.average_ranks == pytest.approx({"A": 4 - 5.5 / 3, "B": 4 - 4.5 / 3, "C": 4 - 8 / 3})


def test_nemenyi_matrix():
    rt = friedman_nemenyi(TABLE, direction="maximize")
    m = np.array([[rt.nemenyi[a][b] for b in rt.methods] for a in rt.methods])
    assert np.allclose(m, m.T) and np.allclose(np.diag(m), 1.0)
    # B vs C by the Nemenyi formula (Demšar 2006, §3.2.2): q = |ΔR| / sqrt(k(k+1)/(6N))
    q = abs(4.5 / 3 - 8 / 3) / math.sqrt(3 * 4 / 18)
    assert rt.nemenyi["B"]["C"] == pytest.approx(ss.studentized_range.sf(q * math.sqrt(2), 3, np.inf))


def test_cd_constants_match_demsar_table():
    for k, table_value in [(3, 2.343), (4, 2.569), (10, 3.164)]:
        assert abs(q_alpha(k) - table_value) < 1e-3
    rng = np.random.default_rng(0)
    table = {f"d{i}": dict(zip("ABCD", rng.random(4))) for i in range(14)}
    assert friedman_nemenyi(table, direction="maximize").cd == pytest.approx(1.25, abs=0.005)  # Demšar §3.2.4


def test_groups_and_no_test_cases():
    table = {f"d{i}": {"A": 0.9, "B": 0.8, "C": 0.5 + 0.1 * (i % 2), "D": 0.6 - 0.1 * (i % 2)} for i in range(20)}
    rt = friedman_nemenyi(table, direction="maximize")
    assert rt.average_ranks == pytest.approx({"A": 1.0, "B": 2.0, "C": 3.5, "D": 3.5})
    assert rt.cd == pytest.approx(2.569 * math.sqrt(20 / 120), abs=1e-3)
    assert rt.groups == (("A", "B"), ("C", "D")) and rt.p < 0.05
    middle = {f"d{i}": {"A": 0.9, "B": 0.7 + 0.1 * (i % 2), "C": 0.8 - 0.1 * (i % 2), "D": 0.1} for i in range(20)}
    assert friedman_nemenyi(middle, direction="maximize").groups == (("B", "C"),)  # A and D stand alone
    two = friedman_nemenyi({"d1": {"A": 1, "B": 2}, "d2": {"A": 1, "B": 3}}, direction="maximize")
    assert two.p is None and "3 methods" in two.reason and two.average_ranks == {"A": 2.0, "B": 1.0}
    assert friedman_nemenyi({"d1": {"A": 1, "B": 2, "C": 3}}, direction="maximize").p is None
    ties = friedman_nemenyi({b: {"A": 1, "B": 1, "C": 1} for b in "xy"}, direction="maximize")
    assert ties.p == 1.0 and ties.groups == (("A", "B", "C"),)


@pytest.mark.parametrize("name, magic", [("cd.svg", b"<svg"), ("cd.png", b"\x89PNG")])
def test_cd_diagram_written(tmp_path, name, magic):
    from reports.cd_diagram import write_cd_diagram

    rt = friedman_nemenyi({f"d{i}": {"A": 0.9, "B": 0.8, "C": 0.5 + 0.1 * (i % 2), "D": 0.6 - 0.1 * (i % 2)}
                           for i in range(20)}, direction="maximize")
    out = write_cd_diagram(rt, tmp_path / "sub" / name)
    data = out.read_bytes()
    assert out == tmp_path / "sub" / name and len(data) > 1000 and magic in data[:2000]
    assert [p.name for p in out.parent.iterdir()] == [name]  # no temporary file left behind
    with pytest.raises(ValueError, match="svg"):
        write_cd_diagram(rt, tmp_path / "cd.pdf")
