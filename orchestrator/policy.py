"""How the driver answers a trial's end: the tell policy (what Optuna is told) and the
retry policy (when a trial runs again).

Invariants:

* Every Optuna trial is told at most once, by whichever driver gets there first; a
  second tell is refused by the storage and ignored here (the record already says how
  it ended).
* ``ok`` trials are told their values in the cell's objective order; everything else
  but ``infeasible`` and ``stopped`` (``failed``, ``interrupted``) is told failed.
* An ``infeasible`` trial, over a user's hard limit (cause ``limit``) or out of memory
  (``oom``, ``share``), is told COMPLETE, after a positive constraint is set on it with
  ``Trial.set_constraint`` (:func:`constraint`): NSGA-II reads only COMPLETE trials, and
  both it and TPE rank a trial with a positive constraint below every feasible one and
  among the infeasible by how far over they were. Its values are the objectives it
  measured before it stopped, and :data:`PENALTY` (the worst value) for those it did not.
* A ``stopped`` trial (stopped early at a rung) is told PRUNED, and its trial carries
  ``stopped_at`` (the epoch) beside its rung values (``rung:<epoch>``). So a user reading the
  storage (``study.best_trials``, optuna-dashboard's Pareto front) never meets a 1-epoch
  value among finished ones, and a sampler is never told rung values as if they were final:
  TPE (Optuna 5) ranks pruned trials after every completed one (its "bad" group unless too
  few trials completed), NSGA-II reads completed trials only, random ignores both. What a
  sampler learns is that the configuration ranked low among its peers at a rung.
* A trial is retried only when its worker died under it (``worker_lost``), at most
  ``resources.max_retries`` times, in the same Optuna trial; a trial that raised is
  never retried (it would raise again).
"""
from __future__ import annotations

import math

import optuna
from optuna.trial import Trial, TrialState

from runfolder import TrialRecord
from runfolder.limits import Violation

PENALTY = 1e12  # the objective value an infeasible trial is told with


def penalty(directions: list[str]) -> list[float]:
    """The worst value in every objective: finite, dominated by every real trial so never on
    a front, and counted by TPE among its bad trials, which moves it away from that region."""
    return [-PENALTY if d == "maximize" else PENALTY for d in directions]


def constraint(record: TrialRecord) -> tuple[str, float]:
    """The constraint an infeasible trial is told: the objective over its limit and by how
    much (relative to the limit), or its cause (``oom``, ``share``) with 1."""
    inf = record.infeasible
    if inf is not None and inf.cause == "limit" and inf.objective and inf.limit is not None \
            and inf.measured is not None:
        bound = inf.bound or ("max" if inf.measured > inf.limit else "min")
        return inf.objective, Violation(inf.objective, bound, inf.limit, inf.measured).amount
    return (inf.cause if inf is not None else "oom"), 1.0


def infeasible_values(record: TrialRecord, directions: list[str]) -> list[float]:
    """What it measured before it stopped, the penalty for what it did not."""
    worst = penalty(directions)
    names = record.objective_names or []
    if len(names) != len(directions):
        return worst
    out = []
    for name, bad in zip(names, worst):
        v = record.objectives.get(name)
        out.append(float(v) if v is not None and math.isfinite(v) else bad)
    return out


def tell(study: optuna.Study, trial: Trial, record: TrialRecord, directions: list[str]) -> bool:
    """Tell Optuna how a recorded trial ended; False when another driver told it first."""
    try:
        if record.status == "ok" and record.values:
            study.tell(trial, record.values)
        elif record.status == "stopped":
            study.tell(trial, state=TrialState.PRUNED)
        elif record.status == "infeasible":
            trial.set_constraint(*constraint(record))  # before tell: samplers read it when the trial completes
            study.tell(trial, infeasible_values(record, directions))
        else:
            study.tell(trial, state=TrialState.FAIL)
    except (ValueError, RuntimeError):
        return False
    return True


def annotate(trial, record: TrialRecord) -> None:
    """Keep a trial's error (and that it did not fit, or where it stopped) in Optuna's storage beside it."""
    try:
        if record.status == "stopped":
            trial.set_user_attr("stopped_at", record.stopped_at)
            return
        if record.values is not None:
            return
        trial.set_user_attr("error", record.error)
        if record.status == "infeasible":
            trial.set_user_attr("infeasible", True)
    except (ValueError, RuntimeError):
        pass  # another driver settled it from the record first


def should_retry(record: TrialRecord, attempts: int, max_retries: int) -> bool:
    """Whether to run the same configuration again: its worker, not its configuration, failed."""
    return record.worker_lost and attempts < max_retries
