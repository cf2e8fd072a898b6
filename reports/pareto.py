"""Pareto-front and hypervolume maths, free of any plotting library.

Written by hand for 2-D fronts over plain arrays (Optuna's own helpers work on
``FrozenTrial`` objects of one study; a report compares trials across studies).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _as_minimize(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    if pts.size == 0:
        pts = pts.reshape(0, len(directions))
    if pts.ndim != 2 or pts.shape[1] != len(directions):
        raise ValueError(f"points of shape {pts.shape} do not match {len(directions)} directions")
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    if any(d not in ("minimize", "maximize") for d in directions):
        raise ValueError(f"directions must be 'minimize' or 'maximize', got {list(directions)}")
    return pts * sign


def non_dominated(points, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of points no other point dominates (equal points are all kept)."""
    p = _as_minimize(points, directions)
    n = len(p)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        le = np.all(p <= p[i], axis=1)
        lt = np.any(p < p[i], axis=1)
        if np.any(le & lt):
            mask[i] = False
    return mask


def front_order(points, directions: Sequence[str]) -> np.ndarray:
    """Indices of the non-dominated points, sorted along the first objective."""
    pts = np.asarray(points, dtype=float)
    idx = np.flatnonzero(non_dominated(pts, directions))
    return idx[np.argsort(pts[idx, 0], kind="stable")]


def hypervolume_2d(points, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Area dominated by ``points`` and bounded by ``reference`` (in the original units).

    Points that do not strictly improve on the reference in both objectives add nothing.
    """
    p = _as_minimize(points, directions)
    ref = _as_minimize(np.asarray([reference], dtype=float), directions)[0]
    p = p[np.all(p < ref, axis=1)]
    if len(p) == 0:
        return 0.0
    p = p[non_dominated(p, ["minimize", "minimize"])]
    p = p[np.argsort(p[:, 0])]
    area, prev_y = 0.0, ref[1]
    for x, y in p:
        if y < prev_y:
            area += (ref[0] - x) * (prev_y - y)
            prev_y = y
    return float(area)


def knee_index(points, directions: Sequence[str], log_x: bool = True) -> int | None:
    """Index (into ``points``) of the knee of their 2-D Pareto front: the front point
    farthest from the straight line joining the front's two ends, both objectives
    scaled to [0, 1] over the front (the first, a cost, on a log scale when ``log_x``:
    costs span orders of magnitude, as the plots show them). With fewer than three
    points on the front there is no bend: the one with the best second objective."""
    pts = np.asarray(points, dtype=float)
    front = front_order(pts, directions)
    if len(front) == 0:
        return None
    if len(front) < 3:
        best = np.argmin(_as_minimize(pts[front], directions)[:, 1])
        return int(front[best])
    f = pts[front].copy()
    if log_x and np.all(f[:, 0] > 0):
        f[:, 0] = np.log10(f[:, 0])
    span = f.max(0) - f.min(0)
    f = (f - f.min(0)) / np.where(span > 0, span, 1.0)
    a, b = f[0], f[-1]
    d = b - a
    dist = np.abs(d[0] * (f[:, 1] - a[1]) - d[1] * (f[:, 0] - a[0])) / max(float(np.hypot(*d)), 1e-12)
    return int(front[int(np.argmax(dist))])
