"""Which hyperparameters matter, per method variant: Optuna's fANOVA importance of
each searched parameter for the score and for every cost, plus the sign of its
effect (Spearman's rank correlation), so "adapter rank against memory" reads as
"important, and more rank costs more".

The trials come from the run's records, not from Optuna's storage (a report reads
the run folder only); they are loaded into an in-memory Optuna study with
distributions spanning the values seen, which is all fANOVA needs.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

from runfolder import TrialRecord

MIN_TRIALS = 4  # fANOVA on fewer finished trials says nothing


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _distributions(trials: list[TrialRecord]) -> dict:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    out = {}
    names = set.intersection(*(set(r.params) for r in trials)) if trials else set()
    for p in sorted(names):
        values = [r.params[p] for r in trials]
        if len({repr(v) for v in values}) < 2:
            continue  # never varied: no importance to measure
        if all(_is_number(v) for v in values):
            lo, hi = float(min(values)), float(max(values))
            out[p] = FloatDistribution(lo, hi, log=lo > 0 and hi / lo >= 100)
        else:
            out[p] = CategoricalDistribution(sorted({str(v) for v in values}))
    return out


def importances(trials: list[TrialRecord], objectives: dict[str, Callable[[TrialRecord], float]]) -> dict | None:
    """``{param: {objective: {"importance": x, "rho": r}}}`` over the finished
    ``trials`` of one method variant; ``objectives`` maps a name to the record's value.
    None with fewer than :data:`MIN_TRIALS` trials or nothing varied."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    from scipy.stats import spearmanr

    if len(trials) < MIN_TRIALS:
        return None
    dists = _distributions(trials)
    if not dists:
        return None
    names = list(objectives)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["minimize"] * len(names))
    for r in trials:
        params = {p: (float(r.params[p]) if _is_number(r.params[p]) else str(r.params[p])) for p in dists}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists,
                                                  values=[float(objectives[n](r)) for n in names]))
    out: dict = {p: {} for p in dists}
    for i, n in enumerate(names):
        ys = np.array([float(objectives[n](r)) for r in trials])
        imp = {}
        if np.ptp(ys) > 0:  # an objective that never moved owes nothing to any parameter
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna flags its evaluators as experimental
                imp = get_param_importances(study, evaluator=FanovaImportanceEvaluator(n_trees=16, seed=0),
                                            target=lambda t, i=i: t.values[i])
        for p in dists:
            xs = [r.params[p] for r in trials]
            rho = float("nan")
            if all(_is_number(x) for x in xs) and np.ptp(ys) > 0:
                rho = float(spearmanr(xs, ys).statistic)
            out[p][n] = {"importance": float(imp.get(p, 0.0)), "rho": None if math.isnan(rho) else rho}
    return out
