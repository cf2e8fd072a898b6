"""What a report shows, computed from trial records without any plotting library:
an overview of the sweep, then per task family, dataset and backbone (a *group*)
the finished, failed and infeasible trials, each cost plane's Pareto front over all
method variants with its knee, each variant's hypervolume (and its course over the
trials), Pareto-optimal configurations and parameter importance.

Everything is chosen on validation: a trial's ``objectives.score`` is its mean
validation score over seeds, and fronts, hypervolumes, knees and best trials are
built from it. Test scores (mean ± std over seeds) are only reported beside them."""
from __future__ import annotations

import shlex
from collections import Counter, defaultdict

import numpy as np

from reports.pareto import front_order, hypervolume_2d, knee_index, non_dominated

PARAMS_PLANE = "trainable_params"
REFERENCE_RULE = ("the worst cost of the group × 1.1 and its worst validation score moved 10% of the score "
                  "range further, so every finished trial adds area; the same point for every variant")


def plane_label(objective: str) -> str:
    """Axis label of a cost; the names come from the task (e.g. latency_ms_per_node)."""
    if objective == "train_memory_mb":
        return "peak training memory (MB)"
    if objective.startswith("latency_ms_per_"):
        return f"inference latency (ms / {objective.removeprefix('latency_ms_per_')})"
    if objective == PARAMS_PLANE:
        return "trainable parameters"
    return objective


def cost(r: dict, key: str) -> float:
    """A trial's value of a cost plane: an objective, or its trainable parameters."""
    return float(r["objectives"][key] if key in r["objectives"] else r[key])


def planes_of(records: list[dict]) -> list[tuple[str, str]]:
    """The cost planes of a group: every objective but the score, in the records'
    order, then trainable parameters (not an objective Optuna searched, but what a
    PEFT user budgets too)."""
    keys: list[str] = []
    for r in records:
        for k in r.get("objective_names") or r["objectives"]:
            if k != "score" and k not in keys and all(k in x["objectives"] for x in records):
                keys.append(k)
    if records and all(r.get(PARAMS_PLANE) for r in records):
        keys.append(PARAMS_PLANE)
    return [(k, plane_label(k)) for k in keys]


def seed_stats(r: dict) -> dict:
    """Validation and test mean ± std over seeds of one trial record (older records
    without seeds count as one seed)."""
    m = r["metrics"]
    vals = m.get("val_scores") or [m.get("val_score", r["objectives"]["score"])]
    tests = m.get("test_scores") or [m.get("test_score", float("nan"))]
    return {
        "val": m.get("val_score", r["objectives"]["score"]), "val_std": m.get("val_std", 0.0),
        "test": m.get("test_score", float("nan")), "test_std": m.get("test_std", 0.0), "seeds": len(vals),
        "test_scores": tests, "val_scores": vals,
    }


def family_of(r: dict) -> str:
    return r.get("task") or r.get("config", {}).get("task") or "graph_property"


def group_label(r: dict) -> str:
    return f"{r.get('dataset_name', '?')} / {r.get('backbone_name', '?')}"


def is_full_finetuning(r: dict) -> bool:
    return (r.get("base_method") or r.get("method")) in ("full", "lm_full") and not r.get("plugins")


def rerun_command(r: dict, spec_path: str) -> str:
    """The ``orchestrator run`` line that trains this trial's configuration again, with
    its seeds (values written in full, so the configuration is exactly the trial's)."""
    parts = ["orchestrator", "run", spec_path, "--dataset", r["dataset_name"], "--backbone", r["backbone_name"],
             "--method", r["method"]]
    if r.get("params"):
        parts += ["--set"] + [f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in r["params"].items()]
    parts += ["--seeds", str(seed_stats(r)["seeds"])]
    return " ".join(shlex.quote(p) for p in parts)


def _plane(ok: list[dict], key: str, direction: str) -> dict:
    score = np.array([r["objectives"]["score"] for r in ok])
    c = np.array([cost(r, key) for r in ok])
    pts = np.column_stack([c, score])
    dirs = ["minimize", direction]
    span = float(score.max() - score.min()) or 1.0
    ref = [float(c.max()) * 1.1 + 1e-9,
           float(score.min()) - 0.1 * span if direction == "maximize" else float(score.max()) + 0.1 * span]
    hv, trace = {}, {}
    for m in sorted({r["method"] for r in ok}):
        sel = sorted((i for i, r in enumerate(ok) if r["method"] == m), key=lambda i: ok[i].get("optuna_trial") or 0)
        hv[m] = hypervolume_2d(pts[sel], dirs, ref)
        # its course: after each of the variant's trials, in the order Optuna ran them
        trace[m] = {"trial": [ok[i].get("optuna_trial") for i in sel],
                    "hypervolume": [hypervolume_2d(pts[sel[:k + 1]], dirs, ref) for k in range(len(sel))]}
    return {"pareto_mask": non_dominated(pts, dirs).tolist(), "front": front_order(pts, dirs).tolist(),
            "knee": knee_index(pts, dirs), "hypervolume": hv, "hv_over_trials": trace, "reference": ref}


def _group(ok: list[dict], failed: list[dict], infeasible: list[dict], interrupted: int, importance: bool) -> dict:
    entry: dict = {"trials": ok, "failed": failed, "infeasible": infeasible, "interrupted": interrupted,
                   "family": family_of((ok + failed + infeasible)[0]) if ok + failed + infeasible else "?",
                   "planes": {}, "best": [], "method_fronts": {}, "importance": {}, "full_reference": None}
    if not ok:
        return entry
    direction = ok[0]["metrics"]["direction"]
    entry.update(metric=ok[0]["metrics"]["metric"], direction=direction, plane_labels=dict(planes_of(ok)))
    for key in entry["plane_labels"]:
        entry["planes"][key] = _plane(ok, key, direction)
    pick = max if direction == "maximize" else min
    objectives = [k for k in entry["plane_labels"] if k != PARAMS_PLANE]
    for m in sorted({r["method"] for r in ok}):
        idx = [i for i, r in enumerate(ok) if r["method"] == m]
        entry["best"].append(pick((ok[i] for i in idx), key=lambda r: r["objectives"]["score"]))
        # the variant's own Pareto-optimal configurations over the score and every searched cost
        pts = np.array([[ok[i]["objectives"]["score"]] + [cost(ok[i], k) for k in objectives] for i in idx])
        mask = non_dominated(pts, [direction] + ["minimize"] * len(objectives))
        entry["method_fronts"][m] = [i for i, keep in zip(idx, mask) if keep]
        if importance:
            from reports.importance import importances

            names = {"score": lambda r: r["objectives"]["score"]} | {k: (lambda r, k=k: cost(r, k)) for k in objectives}
            entry["importance"][m] = importances([ok[i] for i in idx], names)
    full = [r for r in ok if is_full_finetuning(r)]
    if full:
        entry["full_reference"] = pick(full, key=lambda r: r["objectives"]["score"])
    return entry


def summarize(records: list[dict], importance: bool = True) -> dict:
    """Everything the page shows, per group (``"dataset / backbone"``), in task-family
    then name order. Trials cut short by a crash and re-run are counted, not shown."""
    groups: dict[str, dict[str, list]] = defaultdict(lambda: {"ok": [], "failed": [], "infeasible": []})
    interrupted: Counter = Counter()
    for r in records:
        g = group_label(r)
        if r.get("interrupted"):
            interrupted[g] += 1
            groups[g]  # noqa: B018 - the group exists even if every trial was cut short
            continue
        status = r.get("status")
        groups[g]["ok" if status == "ok" else "infeasible" if status == "infeasible" else "failed"].append(r)
    out = {g: _group(v["ok"], v["failed"], v["infeasible"], interrupted[g], importance) for g, v in groups.items()}
    return dict(sorted(out.items(), key=lambda kv: (kv[1]["family"], kv[0])))


def _node(r: dict) -> str:
    ex = r.get("executor") or {}
    host = (r.get("device") or {}).get("host") or "?"
    return f"{host} ({ex['node_ip']}, node {ex['node_id'][:8]})" if ex.get("node_id") else host


def overview(records: list[dict], env: dict | None = None, spec_header: str | None = None,
             budget: int | None = None, sweep: str | None = None, n_cells: int | None = None) -> dict:
    """The sweep at a glance: when, where, and per cell how many trials finished,
    failed or were infeasible (against the budget per cell, where known); compute time
    and orchestration overhead."""
    cells: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        key = "interrupted" if r.get("interrupted") else r.get("status", "failed")
        cells[r.get("cell", "?")][key if key in ("ok", "infeasible", "interrupted") else "failed"] += 1
    compute = sum(float(r.get("timings", {}).get("total_s") or 0.0) for r in records)
    wall = sum(float(r.get("wall_s") or 0.0) for r in records)
    starts = [r["timings"]["submitted_unix"] for r in records if r.get("timings", {}).get("submitted_unix")]
    ends = [r["timings"]["driver_received_unix"] for r in records
            if r.get("timings", {}).get("driver_received_unix")]
    # nodes: Ray's node of each trial where the executor recorded it, else the host name
    hosts = Counter(_node(r) for r in records if r.get("device") or r.get("executor", {}).get("node_id"))
    devices = Counter(str(r.get("device", {}).get("name")) for r in records if r.get("device"))
    return {
        "spec_hash": spec_header.rsplit(" ", 1)[-1] if spec_header and "content hash" in spec_header else None,
        "first_unix": min(starts) if starts else None, "last_unix": max(ends) if ends else None,
        "hosts": dict(hosts), "devices": dict(devices),
        "cells": {c: dict(v) for c, v in sorted(cells.items())},
        "compute_s": compute,
        # driver-observed time per trial beyond the trial's own run: queueing to a worker, transfer, glue
        "overhead_s": max(0.0, wall - compute) if wall else None,
        "trials": len(records),
        "env": env,
        "sweep": sweep,
        "budget": budget,
        # trials that used budget (all but the interrupted ones) short of it, per cell
        # (cells of the sweep without any record yet, where the count of its cells is known, included)
        "n_cells": max(n_cells or 0, len(cells)),
        "cells_below_budget": sum(1 for v in cells.values()
                                  if budget and sum(v.values()) - v.get("interrupted", 0) < budget)
        + (max(0, (n_cells or 0) - len(cells)) if budget else 0),
    }
