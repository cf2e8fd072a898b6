"""A paper's claim "a beats b" tested once over every dataset, by random-effects meta-analysis
(numpy/scipy/statsmodels; no torch, no plotting).

Per dataset, the paired per-replicate (seed, or seed × split) differences a − b are
standardised so datasets are commensurate and signed so that positive favours the claim: each
difference is divided by the dataset's *learnable gap* |best score − constant baseline's score|
(the share of the room above the constant predictor that a gains over b; the best score is the
best mean of any method on the dataset, so one scale serves every claim there) and multiplied by
−1 for metrics to minimise (RMSE). Where the gap is ~0 the pooled seed SD of a's and b's scores
is the scale instead. A dataset's effect is the mean standardised difference, its variance s²/n.

Datasets that share molecules (b3db and b3db_regression) are not independent: they carry one
``block`` label, and their effects are averaged into one block effect before pooling, with the
variance of that average bounded for any correlation between them: (Σ√v_j / J)² (Cauchy–
Schwarz; independent errors would give Σv_j / J²). k is the number of blocks.

The blocks are pooled by a random-effects model: τ² by DerSimonian–Laird (DerSimonian & Laird,
Control. Clin. Trials 7:177–188, 1986) or Paule–Mandel, the pooled mean weighted by 1/(v + τ²),
its standard error by Hartung–Knapp (Hartung & Knapp, Stat. Med. 20:3875–3889, 2001; Sidik &
Jonkman 2002) with t on k − 1 df, which IntHout, Ioannidis & Borm (BMC Med. Res. Methodol. 14:25,
2014) show keeps its level with few studies where the DL z test does not. statsmodels'
``combine_effects`` does that work (τ², weights, the HK variance ``var_hksj_re``); written here
are only what it lacks: truncating a negative DL τ² at 0 (it does not; then the fixed-effect
quantities it also returns are the τ² = 0 fit), one-sided p values, and the *modified* HK
standard error max(SE_HK, SE_RE) (Knapp & Hartung 2003; Röver, Knapp & Friede, BMC Med. Res.
Methodol. 15:99, 2015), the default: with each dataset's variance estimated from 5 seeds the
plain HK test rejects a true null much more often than its level (about 0.04 at 0.025 in
tests/reports/test_pooled.py's simulation); the modified one keeps it (about 0.02).
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats
from statsmodels.stats.meta_analysis import combine_effects

from reports.stats import _check_direction, holm

HK = ("modified", "standard")
_GL_X, _GL_W = np.polynomial.legendre.leggauss(96)


# Datasets that share molecules: one block in a pooled claim (their effects averaged), so the same
# molecules are not counted as independent evidence twice.
SHARED_MOLECULES = {"b3db": "b3db", "b3db_regression": "b3db"}


@dataclass(frozen=True)
class DatasetInput:
    """One dataset's evidence for a claim "a beats b"."""
    dataset: str
    a: Mapping[Hashable, float]  # replicate (seed, or (seed, split)) → a's score
    b: Mapping[Hashable, float]  # the same replicates' scores of b; only common ones are paired
    direction: str  # "maximize" or "minimize": the metric's
    constant: float  # the constant baseline's score on this dataset
    best: float  # the dataset's best (mean) score of any method
    block: str | None = None  # datasets sharing molecules share a block; None: the dataset alone


@dataclass(frozen=True)
class DatasetEffect:
    dataset: str
    block: str
    n: int  # paired replicates
    scale: float
    scale_by: str  # "constant gap" or "pooled seed SD"
    effect: float  # mean standardised difference; > 0 favours the claim
    variance: float  # s² / n of the standardised differences


@dataclass(frozen=True)
class BlockEffect:
    block: str
    datasets: tuple[str, ...]
    effect: float  # mean of its datasets' effects
    variance: float  # (Σ√v_j / J)²: the bound for any correlation between them


@dataclass(frozen=True)
class Pooled:
    """A random-effects fit of k effects: the pooled mean, its (modified) HK standard error,
    the t interval on k − 1 df, τ², and the one-sided p values of the t statistic."""
    k: int
    effect: float
    se: float
    low: float
    high: float
    tau2: float
    t: float
    p_for: float  # H1: pooled effect > 0 (the claim)
    p_against: float  # H1: pooled effect < 0
    weight_total: float  # Σ 1/(v_i + τ²): the RE standard error is 1/√weight_total
    method_re: str
    hk: str
    confidence: float = 0.95

    @property
    def df(self) -> int:
        return self.k - 1


def dataset_effect(x: DatasetInput, *, gap_tol: float = 1e-9) -> DatasetEffect | None:
    """The standardised, signed paired effect of one dataset (None when fewer than 2 replicates
    are paired: no variance). Scale: |best − constant|, or, where that is at most ``gap_tol``
    × max(1, |best|, |constant|), √((s_a² + s_b²)/2) over the paired replicates."""
    _check_direction(x.direction)
    keys = [s for s in x.a if s in x.b and not (math.isnan(x.a[s]) or math.isnan(x.b[s]))]
    if len(keys) < 2:
        return None
    av = np.array([x.a[s] for s in keys], float)
    bv = np.array([x.b[s] for s in keys], float)
    gap = abs(x.best - x.constant)
    if gap > gap_tol * max(1.0, abs(x.best), abs(x.constant)):
        scale, by = gap, "constant gap"
    else:
        scale, by = math.sqrt((av.var(ddof=1) + bv.var(ddof=1)) / 2), "pooled seed SD"
    if not scale > 0:
        return None
    d = (av - bv) / scale * (1.0 if x.direction == "maximize" else -1.0)
    return DatasetEffect(x.dataset, x.block or x.dataset, len(keys), scale, by, float(d.mean()),
                         float(d.var(ddof=1) / len(keys)))


def block_effects(effects: Sequence[DatasetEffect]) -> list[BlockEffect]:
    """Average the effects of the datasets in one block (first-seen block order)."""
    out = []
    for block in dict.fromkeys(e.block for e in effects):
        members = [e for e in effects if e.block == block]
        sd = sum(math.sqrt(e.variance) for e in members) / len(members)
        out.append(BlockEffect(block, tuple(e.dataset for e in members),
                               sum(e.effect for e in members) / len(members), sd * sd))
    return out


def random_effects(effects: Sequence[float], variances: Sequence[float], *, method_re: str = "dl",
                   hk: str = "modified", confidence: float = 0.95) -> Pooled | None:
    """Random-effects pooling through ``statsmodels.stats.meta_analysis.combine_effects``
    (``method_re`` "dl" or "pm"); None for k < 2 or a zero variance. ``hk="standard"`` is the
    plain HK interval, i.e. ``combine_effects(...).conf_int(use_t=True)[3]``."""
    if hk not in HK:
        raise ValueError(f"hk must be one of {HK}, not {hk!r}")
    y, v = np.asarray(effects, float), np.asarray(variances, float)
    k = y.size
    if k < 2 or not np.all(v > 0):
        return None
    with np.errstate(invalid="ignore"):  # √ of the negative-τ² RE variances it computes, unused then
        res = combine_effects(y, v, method_re=method_re, use_t=True)
    if res.tau2 > 0:
        tau2, mean, var_hk, w = float(res.tau2), res.mean_effect_re, res.var_hksj_re, res.w_total_re
    else:  # DL's (Q − df)/C below 0 is not truncated by statsmodels: τ² = 0 is the fixed-effect fit
        tau2, mean, var_hk, w = 0.0, res.mean_effect_fe, res.var_hksj_fe, res.w_total_fe
    se = math.sqrt(max(var_hk, 1.0 / w) if hk == "modified" else var_hk)
    t = float(mean / se) if se > 0 else math.copysign(math.inf, mean)
    half = float(special.stdtrit(k - 1, (1 + confidence) / 2)) * se  # scipy.stats.t's ufuncs, faster
    return Pooled(k, float(mean), se, float(mean - half), float(mean + half), tau2, t,
                  float(special.stdtr(k - 1, -t)), float(special.stdtr(k - 1, t)), float(w), method_re, hk,
                  confidence)


def power(delta: float, variances: Sequence[float], tau2: float, *, alpha: float, hk: str = "modified") -> float:
    """Power of the one-sided level-``alpha`` test when the true pooled effect is ``delta``,
    treating the variances and τ² as known. With W = Σ 1/(v_i + τ²), the pooled mean is
    N(δ, 1/W) and the weighted residual sum Q_w ~ χ²_{k−1}, independent of it, so the HK
    statistic is noncentral t: power = P(t_{k−1}(ncp = δ√W) > t_{1−α, k−1}); the modified one
    divides by √max(Q_w/(k−1), 1) instead, so power = E_X[Φ̄(t_{1−α,k−1}·√max(X/(k−1), 1) − δ√W)],
    X ~ χ²_{k−1}: over X > k − 1 a 96-node Gauss–Legendre rule in X's quantile (within 1e-5 of
    adaptive quadrature, at a fraction of its time). Estimating the variances (from 5 seeds) and τ²
    costs some of it: in tests/reports/test_pooled.py's simulation of 5 blocks the power at the
    detectable effect is 0.80 with τ = 0.05 but about 0.74 with τ = 0."""
    v = np.asarray(variances, float)
    df = v.size - 1
    ncp = delta * math.sqrt(float(np.sum(1.0 / (v + tau2))))
    tc = float(stats.t.isf(alpha, df))
    if hk == "standard":
        return float(stats.nct.sf(tc, df, ncp))
    lo = float(stats.chi2.cdf(df, df))  # P(X ≤ k − 1): there the RE standard error is used
    x = stats.chi2.ppf(lo + (1 - lo) * (_GL_X + 1) / 2, df)
    above = (1 - lo) / 2 * float(np.sum(_GL_W * stats.norm.sf(tc * np.sqrt(x / df) - ncp)))
    return lo * float(stats.norm.sf(tc - ncp)) + above


def detectable_effect(variances: Sequence[float], tau2: float, *, alpha: float, target: float = 0.8,
                      hk: str = "modified") -> float:
    """The smallest pooled effect the one-sided level-``alpha`` test detects with probability
    ``target`` (the root of :func:`power` − target)."""
    v = np.asarray(variances, float)
    unit = 1.0 / math.sqrt(float(np.sum(1.0 / (v + tau2))))  # the pooled standard error

    def f(d):
        return power(d, v, tau2, alpha=alpha, hk=hk) - target

    hi = unit
    while f(hi) < 0:
        hi *= 2
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-10 * unit))


@dataclass(frozen=True)
class PooledClaim:
    label: str
    a: str
    b: str
    datasets: tuple[DatasetEffect, ...]
    blocks: tuple[BlockEffect, ...]
    pooled: Pooled | None  # None: no test (fewer than 2 blocks)
    skipped: tuple[str, ...] = ()  # datasets without 2 paired replicates


def pooled_claim(label: str, a: str, b: str, inputs: Sequence[DatasetInput], *, method_re: str = "dl",
                 hk: str = "modified", confidence: float = 0.95) -> PooledClaim:
    """Standardise each dataset, average within blocks, pool the blocks."""
    effects, skipped = [], []
    for x in inputs:
        e = dataset_effect(x)
        if e is None:
            skipped.append(x.dataset)
        else:
            effects.append(e)
    blocks = block_effects(effects)
    fit = random_effects([bl.effect for bl in blocks], [bl.variance for bl in blocks], method_re=method_re,
                         hk=hk, confidence=confidence)
    return PooledClaim(label, a, b, tuple(effects), tuple(blocks), fit, tuple(skipped))


@dataclass(frozen=True)
class PooledVerdict:
    claim: PooledClaim
    p_for_holm: float | None
    p_against_holm: float | None
    verdict: str  # "reproduced", "refuted", "not shown" or "no test"
    detectable: float | None  # smallest pooled effect found with probability `power` at alpha / family
    alpha: float
    family: int  # one-sided tests in the Holm family: 2 per claim tested
    target_power: float


def claim_verdicts(claims: Sequence[PooledClaim], *, alpha: float = 0.05,
                   target_power: float = 0.8) -> list[PooledVerdict]:
    """Holm over one family of 2m one-sided tests, each claim's p_for and p_against: it bounds
    the chance of any wrong verdict (a false "reproduced" or a false "refuted") by alpha under
    any dependence between the claims, which share datasets and methods. Its first step equals
    Holm over the m two-sided p values (2·min(p_for, p_against) against alpha/m). Reproduced:
    p_for (Holm) < alpha; refuted: p_against (Holm) < alpha; else "not shown" (refutes nothing).
    The detectable effect is for the Holm worst case, a one-sided test at alpha / 2m."""
    ps = []
    for c in claims:
        ps += [None, None] if c.pooled is None else [c.pooled.p_for, c.pooled.p_against]
    adj = holm(ps)
    family = sum(p is not None for p in ps)
    out = []
    for i, c in enumerate(claims):
        pf, pa = adj[2 * i], adj[2 * i + 1]
        if c.pooled is None:
            out.append(PooledVerdict(c, None, None, "no test", None, alpha, family, target_power))
            continue
        v = "reproduced" if pf < alpha else "refuted" if pa < alpha else "not shown"
        det = detectable_effect([bl.variance for bl in c.blocks], c.pooled.tau2, alpha=alpha / family,
                                target=target_power, hk=c.pooled.hk)
        out.append(PooledVerdict(c, pf, pa, v, det, alpha, family, target_power))
    return out
