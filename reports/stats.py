"""Statistics for reports (numpy/scipy/statsmodels/scikit-posthocs; no torch, no plotting).

Within a dataset × backbone *cell* the unit is the seed: paired Student t tests over shared
seeds (assumes roughly normal per-seed differences — with 3–5 seeds an assumption, not a
check), Holm-corrected per family. Across cells the unit is the cell: Wilcoxon signed-rank for
one claim, Friedman + Nemenyi with the critical difference for several methods, following
J. Demšar, "Statistical comparisons of classifiers over multiple data sets", JMLR 7:1–30
(2006). A test rejects when p < alpha; otherwise "not distinguishable", never "equal"."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

DIRECTIONS = ("maximize", "minimize")


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")


def _is_constant(d: np.ndarray) -> bool:
    """Zero variance up to rounding (ttest would divide by a float-noise standard deviation)."""
    return bool(np.ptp(d) <= 1e-12 * max(1.0, float(np.max(np.abs(d)))))


@dataclass(frozen=True)
class Interval:
    """Mean with its Student t interval mean ± t_{n-1,(1+c)/2}·s/√n (None for n < 2)."""
    mean: float
    low: float | None
    high: float | None
    n: int
    n_dropped: int = 0  # NaN values removed before computing
    confidence: float = 0.95
    method: str = "t"

    @property
    def half_width(self) -> float | None:
        return None if self.low is None or self.high is None else (self.high - self.low) / 2

    def text(self, digits: int = 3) -> str:
        if self.n == 0:
            return "n/a (n=0)"
        if self.half_width is None:
            return f"{self.mean:.{digits}f} (n={self.n}, no interval)"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f} ({self.confidence:.0%} t, n={self.n})"


def mean_ci(values: Iterable[float] | Mapping[int, float], confidence: float = 0.95) -> Interval:
    """Mean and Student t confidence interval of ``values`` (a mapping's values are used).
    NaN values are dropped and counted; n == 2 identical values give a zero-width interval."""
    x = np.asarray(list(values.values() if isinstance(values, Mapping) else values), dtype=float)
    finite = x[~np.isnan(x)]
    n, dropped = finite.size, int(x.size - finite.size)
    mean = float(finite.mean()) if n else math.nan
    if n < 2:
        return Interval(mean, None, None, n, dropped, confidence)
    if _is_constant(finite):
        return Interval(mean, mean, mean, n, dropped, confidence)
    lo, hi = stats.ttest_1samp(finite, 0.0).confidence_interval(confidence)
    return Interval(mean, float(lo), float(hi), n, dropped, confidence)


@dataclass(frozen=True)
class Paired:
    """Paired t test of a − b over the seeds both have (two-sided, df = n − 1)."""
    n: int
    seeds: tuple[int, ...]
    mean_diff: float  # mean of a − b
    low: float | None  # 95% t interval of the mean difference
    high: float | None
    t: float | None
    p: float | None  # None: no test (n < 2)
    direction: str
    effect: str  # "a better", "b better" or "no difference" (sign of mean_diff vs direction)
    note: str = ""


def _pair(a: Mapping[int, float], b: Mapping[int, float] | float) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """Seeds in both with a's and b's scores there (a constant ``b`` pairs with every seed
    of a); seeds where either score is NaN are left out."""
    bb = b if isinstance(b, Mapping) else dict.fromkeys(a, float(b))
    seeds = tuple(s for s in sorted(set(a) & set(bb)) if not (np.isnan(a[s]) or np.isnan(bb[s])))
    return seeds, np.array([a[s] for s in seeds], dtype=float), np.array([bb[s] for s in seeds], dtype=float)


def _effect(diff: float, direction: str) -> str:
    if diff == 0 or math.isnan(diff):
        return "no difference"
    return "a better" if (diff > 0) == (direction == "maximize") else "b better"


def paired_test(a: Mapping[int, float], b: Mapping[int, float] | float, *, direction: str,
                confidence: float = 0.95) -> Paired:
    """Paired Student t test (``scipy.stats.ttest_rel``) of a against b over their common seeds.

    ``b`` may be a number (a constant baseline): the test is then the one-sample t test of a's
    scores against that constant. Degenerate cases, handled here so results do not depend on
    the scipy version: n < 2 → no test (p None); all differences zero → t = 0, p = 1 (scipy
    returns NaN: 0/0); constant non-zero differences (zero variance) → t = ±inf, p = 0 (what
    scipy 1.17 returns; older versions returned NaN) and a zero-width interval."""
    _check_direction(direction)
    seeds, av, bv = _pair(a, b)
    d = av - bv
    n = d.size
    mean = float(d.mean()) if n else math.nan
    common = {"n": n, "seeds": seeds, "mean_diff": mean, "direction": direction, "effect": _effect(mean, direction)}
    if n < 2:
        return Paired(low=None, high=None, t=None, p=None, note="no test: n < 2", **common)
    if np.all(d == 0):
        return Paired(low=0.0, high=0.0, t=0.0, p=1.0, note="all differences are zero: p = 1", **common)
    if _is_constant(d):
        return Paired(low=mean, high=mean, t=math.copysign(math.inf, mean), p=0.0,
                      note="constant non-zero difference (zero variance): p = 0", **common)
    res = stats.ttest_rel(av, bv)
    lo, hi = res.confidence_interval(confidence)
    return Paired(low=float(lo), high=float(hi), t=float(res.statistic), p=float(res.pvalue), **common)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni step-down adjusted p-values (monotone, capped at 1) via statsmodels'
    ``multipletests(method="holm")``; None (no test) and NaN entries pass through untouched
    and do not count towards the family size."""
    idx = [i for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    out: list[float | None] = list(pvalues)
    if idx:
        adj = multipletests([pvalues[i] for i in idx], method="holm")[1]
        for i, p in zip(idx, adj):
            out[i] = float(p)
    return out


def verdict(paired: Paired, p_adjusted: float | None, alpha: float = 0.05) -> str:
    """"better" / "worse" (a compared with b, respecting the direction) when p_adjusted < alpha,
    "no test" when there was none (n < 2), otherwise "not distinguishable"."""
    if p_adjusted is None or math.isnan(p_adjusted):
        return "no test"
    if p_adjusted >= alpha:
        return "not distinguishable"
    return {"a better": "better", "b better": "worse"}.get(paired.effect, "not distinguishable")


@dataclass(frozen=True)
class Equivalence:
    """TOST: paired two one-sided t tests of H0 mean(a − b) ≤ −margin and ≥ +margin."""
    n: int
    mean_diff: float
    margin: float
    p_lower: float | None  # H1: mean diff > −margin
    p_upper: float | None  # H1: mean diff < +margin
    p: float | None  # max of the two; None: no test (n < 2)
    equivalent: bool
    note: str = ""


def tost(a: Mapping[int, float], b: Mapping[int, float] | float, margin: float, *,
         alpha: float = 0.05) -> Equivalence:
    """Paired TOST (Schuirmann 1987): equivalent when both one-sided ``ttest_1samp`` tests on
    a − b reject, i.e. max p < alpha. Zero-variance differences are decided exactly (p 0 or 1)."""
    if not margin > 0:
        raise ValueError("margin must be > 0")
    _, av, bv = _pair(a, b)
    d = av - bv
    n = d.size
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        return Equivalence(n, mean, margin, None, None, None, False, "no test: n < 2")
    if _is_constant(d):
        pl, pu = float(mean <= -margin), float(mean >= margin)
    else:
        pl = float(stats.ttest_1samp(d, -margin, alternative="greater").pvalue)
        pu = float(stats.ttest_1samp(d, margin, alternative="less").pvalue)
    return Equivalence(n, mean, margin, pl, pu, max(pl, pu), max(pl, pu) < alpha)


@dataclass(frozen=True)
class Versus:
    """A variant against a target: paired test, Holm-adjusted p, verdict ("best"/"reference" for
    the target itself)."""
    target: str
    paired: Paired | None
    p_holm: float | None
    verdict: str


@dataclass(frozen=True)
class Comparison:
    variant: str
    interval: Interval
    vs_best: Versus
    vs_reference: Versus | None

    @property
    def n(self) -> int:
        return self.interval.n


def _family(scores: Mapping[str, Mapping[int, float]], target: str, direction: str, alpha: float,
            own: str) -> dict[str, Versus]:
    tests = {v: paired_test(s, scores[target], direction=direction) for v, s in scores.items() if v != target}
    adj = holm([t.p for t in tests.values()])
    out = {v: Versus(target, t, p, verdict(t, p, alpha)) for (v, t), p in zip(tests.items(), adj)}
    out[target] = Versus(target, None, None, own)
    return out


def compare_cell(scores: Mapping[str, Mapping[int, float]], *, direction: str,
                 reference: str | None = "full", alpha: float = 0.05,
                 rank_by: Mapping[str, float] | None = None) -> list[Comparison]:
    """Compare the variants of one dataset × backbone cell (scores: variant → seed → score).

    The best variant has the best ``rank_by`` value (give the validation means, so the target
    is not chosen on the scores it is then tested with: the largest of k noisy means would
    inflate "worse"); without it, the best mean of ``scores``. Every other variant gets a
    paired t test against the best and, when ``reference`` (full fine-tuning) is among the
    variants, against it. Holm's correction runs within the cell over each family
    separately: the k − 1 tests against the best form one family, the k − 1 tests against
    the reference another. Rows come best first (variants without any score last)."""
    _check_direction(direction)
    iv = {v: mean_ci(s) for v, s in scores.items()}
    key = {v: (rank_by[v] if rank_by is not None and v in rank_by else iv[v].mean) for v in scores}
    sign = -1.0 if direction == "maximize" else 1.0  # stable sort: the first listed wins a tie
    order = sorted(scores, key=lambda v: (math.isnan(key[v]) or math.isnan(iv[v].mean),
                                          sign * np.nan_to_num(key[v])))
    if not order or math.isnan(iv[order[0]].mean):
        return []
    vs_best = _family(scores, order[0], direction, alpha, "best")
    vs_ref = _family(scores, reference, direction, alpha, "reference") if reference in scores else {}
    return [Comparison(v, iv[v], vs_best[v], vs_ref.get(v)) for v in order]


def no_signal(scores: Mapping[str, Mapping[int, float]], constant: Mapping[int, float] | float, *,
              direction: str, alpha: float = 0.05) -> bool | None:
    """True when no variant beats the constant baseline (e.g. predicting the majority class) by
    a paired / one-sample t test, Holm-corrected over the variants; None when no test could be
    run at all (every variant with fewer than 2 seeds paired with the baseline's)."""
    tests = [paired_test(s, constant, direction=direction) for s in scores.values()]
    if all(t.p is None for t in tests):
        return None
    return not any(verdict(t, p, alpha) == "better" for t, p in zip(tests, holm([t.p for t in tests])))


@dataclass(frozen=True)
class Claim:
    """A paper claim "A beats B" tested over cells by the two-sided Wilcoxon signed-rank test
    (Demšar 2006, §3.1.3): zero differences are dropped (scipy's zero_method="wilcox"), so the
    smallest attainable exact p is 2 / 2^n_nonzero; ``can_reach_alpha`` says whether it is
    below alpha at all (it is not for fewer than 6 non-zero differences at alpha = 0.05)."""
    label: str
    direction: str
    n: int  # pairs used (both means finite)
    n_nonzero: int
    median_diff: float  # median of A − B
    statistic: float | None
    p: float | None
    effect: str  # "A better", "B better" or "no difference" (by the signed-rank sums)
    min_p: float
    can_reach_alpha: bool
    alpha: float
    note: str = ""


def claim_test(pairs: Sequence[tuple[float, float]], *, direction: str, alpha: float = 0.05,
               label: str = "") -> Claim:
    """Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, two-sided, scipy's default method:
    exact for ≤ 50 non-zero differences without ties) of A − B over (A's mean, B's mean) pairs,
    one per dataset × backbone. Assumes the cells are independent; not that differences are normal."""
    _check_direction(direction)
    arr = np.asarray(pairs, dtype=float).reshape(-1, 2)
    d = (arr[:, 0] - arr[:, 1])[~np.isnan(arr).any(axis=1)]
    nz = d[d != 0]
    m = nz.size
    median = float(np.median(d)) if d.size else math.nan
    # smallest p for m non-zero differences, asked of scipy: all of one sign
    min_p = float(stats.wilcoxon(np.arange(1.0, m + 1)).pvalue) if m else 1.0
    ranks = stats.rankdata(np.abs(nz))
    r_plus, r_minus = float(ranks[nz > 0].sum()), float(ranks[nz < 0].sum())
    effect = {"a better": "A better", "b better": "B better"}.get(_effect(r_plus - r_minus, direction), "no difference")
    common = {"label": label, "direction": direction, "n": int(d.size), "n_nonzero": m, "median_diff": median,
              "effect": effect, "min_p": min_p, "can_reach_alpha": min_p < alpha, "alpha": alpha}
    if d.size == 0:
        return Claim(statistic=None, p=None, note="no test: no pairs", **common)
    if m == 0:  # scipy returns NaN when every difference is zero
        return Claim(statistic=0.0, p=1.0, note="all differences are zero: p = 1", **common)
    res = stats.wilcoxon(d)
    note = "" if min_p < alpha else f"with {m} non-zero differences p cannot fall below {min_p:.3g}"
    return Claim(statistic=float(res.statistic), p=float(res.pvalue), note=note, **common)


@dataclass(frozen=True)
class ClaimVerdict:
    claim: Claim
    p_holm: float | None
    verdict: str  # "reproduced", "refuted" or "not distinguishable"


def claims_verdicts(claims: Sequence[Claim], alpha: float = 0.05) -> list[ClaimVerdict]:
    """Holm over the claims, then "reproduced" (significant in the claimed direction, A better),
    "refuted" (significant in the opposite direction) or "not distinguishable" (a non-significant
    difference refutes nothing)."""
    out = []
    for c, p in zip(claims, holm([c.p for c in claims])):
        sig = p is not None and p < alpha
        v = {"A better": "reproduced", "B better": "refuted"}.get(c.effect) if sig else None
        out.append(ClaimVerdict(c, p, v or "not distinguishable"))
    return out


def q_alpha(k: int, alpha: float = 0.05) -> float:
    """Nemenyi critical value: studentized range quantile for k groups (df = ∞) / √2
    (Demšar 2006, Table 5a: 2.343 for k = 3, 2.569 for 4, 3.164 for 10)."""
    return float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2))


@dataclass(frozen=True)
class RankTest:
    """Friedman test over blocks (dataset × backbone cells) with average ranks (1 = best, ties
    averaged), the Nemenyi pairwise p-values, the critical difference and the groups of methods
    (consecutive by rank) that no Nemenyi test separates. Read the post-hoc part only when the
    Friedman test rejects (Demšar 2006, §3.2.2)."""
    direction: str
    methods: tuple[str, ...]  # kept: present in every block, input order
    dropped: tuple[str, ...]  # missing (or NaN) in some block
    n_blocks: int
    average_ranks: dict[str, float]
    statistic: float | None
    p: float | None
    nemenyi: dict[str, dict[str, float]] | None
    q_alpha: float | None
    cd: float | None
    groups: tuple[tuple[str, ...], ...] = field(default=())
    alpha: float = 0.05
    reason: str = ""  # why there is no test


def friedman_nemenyi(table: Mapping[str, Mapping[str, float]], *, direction: str,
                     alpha: float = 0.05) -> RankTest:
    """Friedman test (``scipy.stats.friedmanchisquare``; needs ≥ 3 methods and ≥ 2 blocks) of
    the methods' mean scores per block, Nemenyi post-hoc (``scikit_posthocs.
    posthoc_nemenyi_friedman``: rows are blocks, columns methods, ranked ascending, so scores to
    maximize are negated) and CD = q_α·√(k(k+1)/(6N)) (Demšar 2006, §3.2.2). If every block ties
    all methods scipy returns NaN; that is reported as statistic 0, p = 1."""
    _check_direction(direction)
    blocks = list(table)
    seen = list(dict.fromkeys(m for b in blocks for m in table[b]))
    kept = tuple(m for m in seen if all(m in table[b] and not math.isnan(table[b][m]) for b in blocks))
    dropped = tuple(m for m in seen if m not in kept)
    n, k = len(blocks), len(kept)
    x = np.array([[table[b][m] for m in kept] for b in blocks], dtype=float).reshape(n, k)
    x = -x if direction == "maximize" else x  # ascending ranks of x: 1 = best
    ranks = dict(zip(kept, stats.rankdata(x, axis=1).mean(axis=0).tolist())) if n else {}
    common = {"direction": direction, "methods": kept, "dropped": dropped, "n_blocks": n,
              "average_ranks": ranks, "alpha": alpha}
    if k < 3 or n < 2:
        return RankTest(statistic=None, p=None, nemenyi=None, q_alpha=None, cd=None,
                        reason=f"no test: needs >= 3 methods and >= 2 blocks, has {k} and {n}", **common)
    import pandas as pd
    import scikit_posthocs as sp  # lazily: it imports matplotlib.pyplot and seaborn

    if np.all(np.ptp(x, axis=1) == 0):  # every block ties every method: scipy divides 0 by 0
        stat, p = 0.0, 1.0
    else:
        res = stats.friedmanchisquare(*x.T)
        stat, p = float(res.statistic), float(res.pvalue)
    pm = sp.posthoc_nemenyi_friedman(pd.DataFrame(x, columns=list(kept)))
    nemenyi = {a: {b: float(pm.loc[a, b]) for b in kept} for a in kept}
    q = q_alpha(k, alpha)
    order = sorted(kept, key=lambda m: ranks[m])
    groups: list[tuple[str, ...]] = []
    for i in range(k):  # maximal runs whose extremes the Nemenyi test does not separate
        j = max(j for j in range(i, k) if nemenyi[order[i]][order[j]] >= alpha)
        if j > i and not (groups and order[j] in groups[-1]):
            groups.append(tuple(order[i:j + 1]))
    return RankTest(statistic=stat, p=p, nemenyi=nemenyi, q_alpha=q, cd=q * math.sqrt(k * (k + 1) / (6 * n)),
                    groups=tuple(groups), **common)
