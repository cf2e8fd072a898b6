"""From trial records to the statistics a verdict needs, per dataset × backbone (a group).

Each variant is represented by its configuration that validation chose (its best trial by
mean validation score); its *test* scores per seed are what the tests compare, paired by
seed (every configuration trains with the same seeds). The comparisons themselves are
:mod:`reports.stats` (scipy, statsmodels, scikit-posthocs); this module only picks the
scores and names the targets:

* every variant against the group's best and against full fine-tuning (paired t tests,
  Holm-corrected within the group, n stated);
* "no signal": no searched variant beats the constant predictor by the same test.

Reference baselines take part in the comparisons (the table shows them) but never in a
front, a hypervolume or a knee (:mod:`reports.summary`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from reports.stats import Comparison, Interval, compare_cell, holm, mean_ci, no_signal, paired_test, verdict
from runfolder import TrialRecord

ALPHA = 0.05


def seed_scores(r: TrialRecord, split: str = "test") -> dict[int, float]:
    """seed → score of one finished trial (its validation or test score at each seed's
    selected epoch). A record without per-seed results (written by hand, or by older code)
    numbers its scores from seed 0."""
    if r.seeds:
        return {s.seed: (s.test_score if split == "test" else s.val_score) for s in r.seeds}
    m = r.metrics
    scores = m.test_scores if split == "test" else m.val_scores
    return dict(enumerate(scores or [m.test_score if split == "test" else m.val_score]))


def interval(r: TrialRecord, split: str = "test") -> Interval:
    """Mean and 95% Student-t interval over the trial's seeds (none with one seed)."""
    return mean_ci(seed_scores(r, split))


def chosen(trials: list[TrialRecord], direction: str) -> dict[str, TrialRecord]:
    """Each variant's configuration chosen on validation (its best mean validation score)."""
    pick = max if direction == "maximize" else min
    out: dict[str, TrialRecord] = {}
    for m in sorted({r.method for r in trials if r.method}):
        out[m] = pick((r for r in trials if r.method == m), key=lambda r: r.score)
    return out


def group_verdicts(trials: list[TrialRecord], references: list[TrialRecord], direction: str,
                   full_variant: str | None, confirmations: list[TrialRecord] | None = None) -> dict:
    """The group's comparisons: ``rows`` (:class:`reports.stats.Comparison`, best first, over
    the chosen configuration of every variant, references included), ``chosen`` (variant →
    its record), ``no_signal`` (True/False where the group has a ``constant`` reference,
    else None), ``constant`` (its test mean) and ``n_seeds`` (the smallest n of any row).

    ``confirmations``: the group's confirmation runs (``budget.confirm_seeds``: selected
    configurations on fresh seeds). When every variant has a finished one, each is
    represented by its confirmation with the best validation mean, and the fresh seeds'
    scores are what is tested (``confirmed`` True); when some variant has none yet (a sweep
    still running, a confirmation that failed) the search's runs are used for all, so every
    test pairs the same seeds.

    The group's best (the target of every "vs best" test) is the variant with the best
    validation mean, so it is not chosen on the test scores it is then tested with.
    ``search_best``: the same, among the search's own runs (the Pareto table's target)."""
    picked = chosen(trials + references, direction)
    search_best = _best(picked, direction)
    confirmed = chosen([r for r in confirmations or [] if r.status == "ok"], direction)
    use_confirmed = bool(picked) and set(picked) <= set(confirmed)
    if use_confirmed:
        picked = {m: confirmed[m] for m in picked}
    scores = {m: seed_scores(r) for m, r in picked.items()}
    val_means = {m: r.score for m, r in picked.items()}
    rows: list[Comparison] = compare_cell(scores, direction=direction, reference=full_variant, alpha=ALPHA,
                                          rank_by=val_means)
    const = next((r for r in picked.values() if r.reference and r.reference.kind == "constant"), None)
    signal = None
    if const is not None:
        searched = {m: s for m, s in scores.items() if m in {r.method for r in trials}}
        signal = no_signal(searched, seed_scores(const), direction=direction, alpha=ALPHA) if searched else None
    return {"rows": rows, "chosen": picked, "no_signal": signal, "confirmed": use_confirmed,
            "search_best": search_best, "constant": const.metrics.test_score if const is not None else None,
            "n_seeds": min((c.n for c in rows), default=0)}


def _best(picked: Mapping[str, TrialRecord], direction: str) -> TrialRecord | None:
    ok = [r for r in picked.values() if not math.isnan(r.score)]
    if not ok:
        return None
    return (max if direction == "maximize" else min)(ok, key=lambda r: r.score)


def verdict_text(c: Comparison, which: str = "best") -> str:
    """``worse (p_Holm 0.012, n=5)``, ``not distinguishable (p_Holm 0.41, n=3)``, ``best``,
    ``no test (n=1)``."""
    v = c.vs_best if which == "best" else c.vs_reference
    if v is None:
        return ""
    if v.paired is None:
        return v.verdict
    if v.p_holm is None:
        return f"no test (n={v.paired.n})"
    return f"{v.verdict} (p_Holm {v.p_holm:.2g}, n={v.paired.n})"


def by_variant(verdicts: Mapping) -> dict[str, Comparison]:
    return {c.variant: c for c in verdicts.get("rows", [])}


def rows_against(records: list[TrialRecord], target: TrialRecord, direction: str) -> list[str]:
    """For each record, a paired t test of its test scores against ``target``'s (the group's
    best), Holm-corrected over the records: the verdict text per record ("target" for itself)."""
    tests = [None if r is target else paired_test(seed_scores(r), seed_scores(target), direction=direction)
             for r in records]
    adj = iter(holm([t.p for t in tests if t is not None]))
    out = []
    for t in tests:
        if t is None:
            out.append("the best")
            continue
        p = next(adj)
        out.append(f"no test (n={t.n})" if p is None else f"{verdict(t, p, ALPHA)} (p_Holm {p:.2g}, n={t.n})")
    return out
