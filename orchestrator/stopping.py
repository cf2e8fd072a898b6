"""Multi-objective asynchronous successive halving (MO-ASHA): the rung rule.

Follows Schmucker et al., "Multi-objective Asynchronous Successive Halving" (2021,
arXiv 2106.12639; syne-tune's ``moasha.py``): trials report at rung epochs
``min_epochs · η^k``; among the ``n`` trials that reached a rung, one goes on if its
rank is at most ``⌈n/η⌉``, the ranking being a non-dominated sort of the rung's
objective vectors. While ``n < η`` every trial goes on (ASHA's asynchronous rule: a
decision is made with whoever has arrived, never waiting for the rest).

Within a front, ties are broken by crowding distance (NSGA-II, Deb et al. 2002): the
more isolated point ranks first, boundary points of each objective rank before
interior ones, so the survivors spread along the front instead of crowding one end.
syne-tune breaks ties with an ε-net; crowding distance is the tie-break NSGA-II users
know, and is deterministic here: equal distances fall back to the objectives in order
(the score first), then to the order of arrival. An objective on which a front does not
differ (one variant's memory) marks no point as an end; a non-finite value is the worst.

Written by hand: Optuna has no multi-objective pruner (``Trial.should_prune`` raises
in multi-objective studies), Ray Tune's ASHA takes one metric, and the non-dominated
sort in Optuna is private API.
"""
from __future__ import annotations

import math
from typing import Hashable, Sequence

import numpy as np


def rung_epochs(min_epochs: int, eta: int, epochs: int) -> list[int]:
    """The rung epochs (1-based counts of finished epochs) below the last one:
    ``min_epochs · η^k < epochs``."""
    out, r = [], min_epochs
    while r < epochs:
        out.append(r)
        r *= eta
    return out


def _minimised(vectors: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return vectors * signs


def non_dominated_fronts(vectors: np.ndarray, directions: Sequence[str],
                         tolerance: np.ndarray | None = None) -> list[list[int]]:
    """Indices of each front, best first (all objectives as ``directions`` say).

    ``tolerance`` [n, n, m]: differences within it are ties, so i dominates j only if i is
    nowhere worse than j by more than the tolerance and somewhere better by more than it.
    With tolerances dominance need not be transitive; should no point of what is left be
    undominated, what is left is one front."""
    pts = _minimised(np.asarray(vectors, dtype=float), directions)
    n = len(pts)
    tol = np.zeros((n, n, pts.shape[1])) if tolerance is None else tolerance
    same = pts[:, None, :] == pts[None, :, :]  # equal values (inf and inf included) differ by 0, not NaN
    diff = np.where(same, 0.0, pts[:, None, :] - pts[None, :, :])  # diff[i, j] = i - j (lower is better)
    leq = (diff <= tol).all(-1)
    lt = (diff < -tol).any(-1)
    dominates = leq & lt  # dominates[i, j]: i dominates j
    left, fronts = set(range(n)), []
    while left:
        front = [j for j in sorted(left) if not any(dominates[i, j] for i in left)] or sorted(left)
        fronts.append(front)
        left -= set(front)
    return fronts


def crowding_distance(vectors: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
    """NSGA-II's crowding distance of each point of one front (inf at each objective's ends).
    ``noise`` [m]: an objective whose span over the front is within it tells no point apart
    (the fastest-timed of trials that differ only by timing noise is no end of the front)."""
    pts = np.asarray(vectors, dtype=float)
    n, m = pts.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, math.inf)
    for k in range(m):
        order = np.argsort(pts[:, k], kind="stable")
        span = pts[order[-1], k] - pts[order[0], k]
        if span <= (0 if noise is None else noise[k]):
            continue  # an objective on which the front does not differ tells no point apart
        dist[order[0]] = dist[order[-1]] = math.inf
        dist[order[1:-1]] += (pts[order[2:], k] - pts[order[:-2], k]) / span
    return dist


def tolerances(vectors: np.ndarray, noise: np.ndarray | None, relative: float = 0.0) -> np.ndarray:
    """[n, n, m] the difference below which points i and j tie on each objective: twice the
    standard error of their difference, sqrt(se_i² + se_j²), and at least ``relative`` of the
    larger magnitude (drift between trials timed at different moments, which no trial's own
    repeats see). Objectives without noise (the score) get ``relative`` only where noise is
    given for them; a zero noise and zero ``relative`` leave exact comparison."""
    pts = np.asarray(vectors, dtype=float)
    n, m = pts.shape
    if noise is None:
        return np.zeros((n, n, m))
    se = np.asarray(noise, dtype=float)
    measured = np.isfinite(se) & (se >= 0)
    se = np.where(measured, se, 0.0)
    tol = 2.0 * np.sqrt(se[:, None, :] ** 2 + se[None, :, :] ** 2)
    mag = np.maximum(np.abs(pts[:, None, :]), np.abs(pts[None, :, :]))
    rel = np.where(measured.any(0), relative, 0.0)  # only objectives that carry noise (costs)
    return np.maximum(tol, rel * np.where(np.isfinite(mag), mag, 0.0))


def ranking(vectors: np.ndarray, directions: Sequence[str], noise: np.ndarray | None = None,
            relative: float = 0.0) -> list[int]:
    """Indices from best to worst: by front, then by crowding distance (larger first),
    then by the objectives in order (the score first), then by index (arrival). A
    non-finite value counts as the worst of its objective. ``noise`` [n, m]: each point's
    standard error per objective (NaN: none); differences within :func:`tolerances` are
    ties, in the fronts and in the crowding distance."""
    pts = _minimised(np.asarray(vectors, dtype=float), directions)
    pts = np.where(np.isfinite(pts), pts, np.inf)
    mins = ["minimize"] * pts.shape[1]
    tol = tolerances(np.where(np.isfinite(pts), pts, np.nan), noise, relative)
    out: list[int] = []
    for front in non_dominated_fronts(pts, mins, tol):
        span_noise = tol[np.ix_(front, front)].max(axis=(0, 1)) if len(front) else None
        cd = crowding_distance(np.where(np.isfinite(pts[front]), pts[front], np.finfo(float).max), span_noise)
        out += [front[i] for i in sorted(range(len(front)), key=lambda i: (-cd[i], tuple(pts[front[i]]), front[i]))]
    return out


def goes_on(rung: dict[Hashable, Sequence[float]], me: Hashable, directions: Sequence[str], eta: int,
            noise: dict[Hashable, Sequence[float]] | None = None, relative: float = 0.0) -> bool:
    """Whether trial ``me`` continues past a rung where ``rung`` holds every trial that
    reached it (``me`` included; ties that nothing else breaks go to the earlier key in
    insertion order). ``noise``: each trial's standard errors per objective (missing or NaN:
    none known), with ``relative`` the drift between trials: see :func:`ranking`."""
    keys = list(rung)
    n = len(keys)
    if n < eta:
        return True
    se = None
    if noise is not None:
        m = len(rung[me])
        se = np.array([list(noise.get(k, [math.nan] * m)) for k in keys], dtype=float)
    order = ranking(np.array([list(rung[k]) for k in keys]), directions, se, relative)
    return order.index(keys.index(me)) < math.ceil(n / eta)


class Rungs:
    """The driver's rung decisions for one sweep (``budget.stopping``).

    Invariants:

    * Rung values and decisions live in Optuna's storage, as user attributes of the
      trial that reported them (``rung:<epoch>``: its values in the cell's objective
      order; ``rung:<epoch>:go``: the decision), never only in a driver's memory. Every
      driver of a sweep sees the same rungs; a resumed driver keeps the decisions made.
    * A decision compares the trials in scope that reached the rung so far (``cell``:
      the variant's own trials; ``dataset``: every variant of its dataset × backbone),
      whatever their state now: a trial that went on, ended or was stopped keeps its
      place at the rungs it reached.
    * The objectives a rung ranks on are the cell's (the same for every cell of a
      dataset, whose task names them); a user's limit is never a reason to stop here.
    * A rung's score is the trial's best validation score so far, its latency the deployed
      model's, and a cost counts only where two trials differ by more than its noise (twice
      the standard error of the difference of their timed medians, and at least
      ``cost_tolerance`` of the value): within it they tie, so timing noise picks no survivor.
    * With scope ``dataset``, a variant's first trial to reach a rung goes on whatever its
      rank (a deviation from MO-ASHA, where only the first η−1 trials of the whole scope
      do): otherwise a variant whose trials all arrive after others' would have no
      finished trial, and no point on the fronts the report draws.
    """

    def __init__(self, spec, studies, directions) -> None:
        self.spec, self.studies = spec, studies
        self.eta = spec.budget.stopping.reduction_factor
        self._directions = directions  # (spec, cell) -> the cell's Optuna directions

    def scope(self, cell) -> list:
        if self.spec.budget.stopping.scope == "cell":
            return [cell]
        return [c for c in self.studies.cells
                if (c.dataset_index, c.backbone_index) == (cell.dataset_index, cell.backbone_index)]

    def decide(self, cell, trial, rung) -> bool:
        """Record ``trial``'s rung and whether it goes on; True to go on."""
        key = f"rung:{rung.epoch}"
        made = trial.user_attrs.get(f"{key}:go")
        if made is not None:  # a retried trial reports again: the decision made stands
            return bool(made)
        objectives = self.spec.cell_objectives(cell)
        mine = [float(rung.values[o]) for o in objectives]
        my_noise = [float(rung.noise.get(o, math.nan)) for o in objectives]
        trial.set_user_attr(key, mine)
        trial.set_user_attr(f"{key}:noise", [None if math.isnan(x) else x for x in my_noise])
        vectors: dict = {}
        noise: dict = {}
        variant_went_on = False  # a trial of this variant already went on at this rung
        for c in self.scope(cell):
            for t in self.studies.by_cell[c.id].get_trials(deepcopy=False):
                if key in t.user_attrs and (c.id, t.number) != (cell.id, trial.number):
                    vectors[(c.id, t.number)] = t.user_attrs[key]
                    noise[(c.id, t.number)] = [math.nan if x is None else x
                                               for x in t.user_attrs.get(f"{key}:noise", [None] * len(mine))]
                    variant_went_on |= c.id == cell.id and bool(t.user_attrs.get(f"{key}:go"))
        vectors[(cell.id, trial.number)] = mine  # arrival order: the trials before it, then it
        noise[(cell.id, trial.number)] = my_noise
        go = goes_on(vectors, (cell.id, trial.number), self._directions(self.spec, cell), self.eta,
                     noise, self.spec.budget.stopping.cost_tolerance)
        if not go and self.spec.budget.stopping.scope == "dataset" and not variant_went_on:
            go = True  # every variant keeps a trial that goes on, so each has a finished point on the fronts
        trial.set_user_attr(f"{key}:go", go)
        return go
