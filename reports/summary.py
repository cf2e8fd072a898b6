"""What a report shows, computed from trial records without any plotting library:
an overview of the sweep, then per task family, dataset and backbone (a *group*)
the finished, stopped, failed and infeasible trials, each cost plane's Pareto front over all
method variants with its knee, each variant's hypervolume (and its course over the
trials), Pareto-optimal configurations and parameter importance.

Everything is chosen on validation: a trial's score (``TrialRecord.score``) is its mean
validation score over seeds, and fronts, hypervolumes, knees and best trials are
built from it. Test scores (mean ± std over seeds) are only reported beside them.

Reference baselines (``TrialRecord.reference``: the constant predictor, fingerprints +
forest, the no-graph MLP, random-init variants) are kept apart: reference lines on every
plane of their group, rows in its comparisons (:mod:`reports.verdicts`), never on a
front, in a hypervolume or a knee."""
from __future__ import annotations

import shlex
from collections import Counter, defaultdict
from collections.abc import Mapping

import numpy as np

from reports.pareto import front_order, hypervolume_2d, knee_index, non_dominated
from reports.verdicts import chosen, group_verdicts
from runfolder import TrialRecord

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


def planes_of(records: list[TrialRecord]) -> list[tuple[str, str]]:
    """The cost planes of a group: every objective but the score, in the records'
    order, then trainable parameters (not an objective Optuna searched, but what a
    PEFT user budgets too)."""
    keys: list[str] = []
    for r in records:
        for k in r.objective_names or r.objectives:
            if k != "score" and k not in keys and all(k in x.objectives for x in records):
                keys.append(k)
    if records and all(r.trainable_params for r in records):
        keys.append(PARAMS_PLANE)
    return [(k, plane_label(k)) for k in keys]


def seed_stats(r: TrialRecord) -> dict:
    """Validation and test mean ± std over seeds of one finished trial, with the
    per-seed scores (a trial run with one seed lists its one score)."""
    m = r.metrics
    return {
        "val": m.val_score, "val_std": m.val_std, "test": m.test_score, "test_std": m.test_std, "seeds": m.seeds,
        "val_scores": m.val_scores or [m.val_score], "test_scores": m.test_scores or [m.test_score],
    }


def family_of(r: TrialRecord, families: Mapping[str, dict] | None = None,
              by_dataset: Mapping[str, str] | None = None) -> str | None:
    """A trial's task family: its own (the worker names it), else that of its dataset's
    other trials (``by_dataset``: a failed trial's record has no task), else the sweep's
    only family; None when nothing says."""
    if r.task:
        return r.task
    if by_dataset and r.dataset_name in by_dataset:
        return by_dataset[r.dataset_name]
    return next(iter(families)) if families and len(families) == 1 else None


def families_by_dataset(records: list[TrialRecord]) -> dict[str, str]:
    """The task family of each dataset, from the records that name one."""
    return {r.dataset_name: r.task for r in records if r.task and r.dataset_name}


def family_title(family: str, families: Mapping[str, dict]) -> str:
    """The family's heading as the driver wrote it (``families.json``), else its name."""
    return (families.get(family) or {}).get("title") or family


def group_label(r: TrialRecord) -> str:
    return f"{r.dataset_name or '?'} / {r.backbone_name or '?'}"


def is_full_finetuning(r: TrialRecord, families: Mapping[str, dict], family: str | None = None) -> bool:
    """Whether the trial is its family's full fine-tuning reference: a method the family
    names as such (``families.json``: ``full_reference``), without plug-ins."""
    reference = (families.get(family or r.task or "") or {}).get("full_reference") or []
    return r.base_method in reference and not r.plugins


def rerun_command(r: TrialRecord, spec_path: str) -> str:
    """The ``orchestrator run`` line that trains this trial's configuration again, with
    its seeds (values written in full, so the configuration is exactly the trial's)."""
    parts = ["orchestrator", "run", spec_path, "--dataset", r.dataset_name, "--backbone", r.backbone_name,
             "--method", r.method]
    if r.params:
        parts += ["--set"] + [f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in r.params.items()]
    parts += ["--seeds", str(r.metrics.seeds)]
    return " ".join(shlex.quote(p) for p in parts)


def _plane(ok: list[TrialRecord], key: str, direction: str) -> dict:
    score = np.array([r.score for r in ok])
    c = np.array([r.cost(key) for r in ok])
    pts = np.column_stack([c, score])
    dirs = ["minimize", direction]
    span = float(score.max() - score.min()) or 1.0
    ref = [float(c.max()) * 1.1 + 1e-9,
           float(score.min()) - 0.1 * span if direction == "maximize" else float(score.max()) + 0.1 * span]
    hv, trace = {}, {}
    for m in sorted({r.method for r in ok}):
        sel = sorted((i for i, r in enumerate(ok) if r.method == m), key=lambda i: ok[i].optuna_trial or 0)
        hv[m] = hypervolume_2d(pts[sel], dirs, ref)
        # its course: after each of the variant's trials, in the order Optuna ran them
        trace[m] = {"trial": [ok[i].optuna_trial for i in sel],
                    "hypervolume": [hypervolume_2d(pts[sel[:k + 1]], dirs, ref) for k in range(len(sel))]}
    return {"pareto_mask": non_dominated(pts, dirs).tolist(), "front": front_order(pts, dirs).tolist(),
            "knee": knee_index(pts, dirs), "hypervolume": hv, "hv_over_trials": trace, "reference": ref}


def _group(trials: dict[str, list[TrialRecord]], interrupted: int, family: str | None,
           families: Mapping[str, dict], importance: bool) -> dict:
    ok, refs = trials["ok"], trials["references"]
    entry: dict = {"trials": ok, "failed": trials["failed"], "infeasible": trials["infeasible"],
                   "stopped": trials["stopped"], "interrupted": interrupted, "family": family or "?",
                   "references": [], "planes": {}, "best": [], "method_fronts": {}, "importance": {},
                   "full_reference": None, "verdicts": {}}
    if refs:  # each reference variant's configuration chosen on validation: a line on every plane
        entry["references"] = list(chosen(refs, refs[0].metrics.direction).values())
    if not ok:
        return entry
    direction = ok[0].metrics.direction
    entry.update(metric=ok[0].metrics.metric, direction=direction, plane_labels=dict(planes_of(ok)))
    for key in entry["plane_labels"]:
        entry["planes"][key] = _plane(ok, key, direction)
    pick = max if direction == "maximize" else min
    objectives = [k for k in entry["plane_labels"] if k != PARAMS_PLANE]
    for m in sorted({r.method for r in ok}):
        idx = [i for i, r in enumerate(ok) if r.method == m]
        entry["best"].append(pick((ok[i] for i in idx), key=lambda r: r.score))
        # the variant's own Pareto-optimal configurations over the score and every searched cost
        pts = np.array([[ok[i].score] + [ok[i].cost(k) for k in objectives] for i in idx])
        mask = non_dominated(pts, [direction] + ["minimize"] * len(objectives))
        entry["method_fronts"][m] = [i for i, keep in zip(idx, mask) if keep]
        if importance:
            from reports.importance import importances

            names = {"score": lambda r: r.score} | {k: (lambda r, k=k: r.cost(k)) for k in objectives}
            entry["importance"][m] = importances([ok[i] for i in idx], names)
    full = [r for r in ok if is_full_finetuning(r, families, family)]
    if full:
        entry["full_reference"] = pick(full, key=lambda r: r.score)
    entry["verdicts"] = group_verdicts(ok, entry["references"], direction,
                                       entry["full_reference"].method if full else None, trials["confirmations"])
    return entry


def summarize(records: list[TrialRecord], families: Mapping[str, dict], importance: bool = True) -> dict:
    """Everything the page shows, per group (``"dataset / backbone"``), in task-family
    then name order. ``records`` may hold confirmation runs (``TrialRecord.confirms``): they
    feed the group's statistics only. ``families``: what the driver wrote into ``families.json``
    (:meth:`runfolder.RunDir.read_families`), ``{family: {"title": ..., "full_reference":
    [method, ...]}}``; empty when absent (then no group has a full fine-tuning
    reference). Trials cut short by a crash and re-run are counted, not shown; trials
    stopped early at a rung are kept apart (their scores are not final: never on a
    front)."""
    groups: dict[str, dict[str, list]] = defaultdict(
        lambda: {"ok": [], "failed": [], "infeasible": [], "stopped": [], "references": [], "confirmations": []})
    interrupted: Counter = Counter()
    for r in records:
        g = group_label(r)
        if r.confirms is not None:  # a selected configuration on fresh seeds: the statistics' runs
            groups[g]["confirmations"].append(r)
            continue
        if r.status == "interrupted":
            interrupted[g] += 1
            groups[g]  # noqa: B018 - the group exists even if every trial was cut short
            continue
        if r.status == "ok" and r.reference is not None:  # a line to compare with, never on a front
            groups[g]["references"].append(r)
            continue
        groups[g][r.status if r.status in ("ok", "infeasible", "stopped") else "failed"].append(r)
    by_dataset = families_by_dataset(records)
    out = {}
    for g, v in groups.items():
        shown = v["ok"] + v["failed"] + v["infeasible"] + v["stopped"] + v["references"]
        family = next((f for f in (family_of(r, families, by_dataset) for r in shown) if f), None)
        out[g] = _group(v, interrupted[g], family, families, importance)
    return dict(sorted(out.items(), key=lambda kv: (kv[1]["family"], kv[0])))


def _node(r: TrialRecord) -> str:
    ex = r.executor
    host = (r.device.host if r.device else None) or "?"
    return f"{host} ({ex.node_ip}, node {ex.node_id[:8]})" if ex and ex.node_id else host


def _complete(trials: int, epochs: int, cap: int | None, epochs_budget: int | None) -> bool:
    """A cell's search is over when either of its budgets is used up."""
    return (cap is not None and trials >= cap) or (epochs_budget is not None and epochs >= epochs_budget)


def overview(records: list[TrialRecord], env: dict | None = None, spec_header: str | None = None,
             budget: int | None = None, sweep: str | None = None, n_cells: int | None = None,
             epochs_budget: int | None = None) -> dict:
    """The sweep at a glance: when, where, and per cell how many trials finished, were
    stopped early, failed or were infeasible (against the budget per cell, where known);
    compute time and orchestration overhead."""
    cells: dict[str, Counter] = defaultdict(Counter)
    epochs: Counter = Counter()  # per cell: training epochs its search spent (TrialRecord.epochs_spent)
    one_trial: dict[str, bool] = {}  # cells of a reference that searches nothing: a budget of one
    confirmed = 0
    for r in records:
        if r.confirms is not None:  # a confirmation run: compute, but not a trial of the search's budget
            confirmed += 1
            continue
        cells[r.cell or "?"][r.status if r.status in ("ok", "infeasible", "interrupted", "stopped") else "failed"] += 1
        epochs[r.cell or "?"] += r.epochs_spent
        # (a failed or cut-short record carries no reference: any one of the cell's records that does says it)
        one_trial[r.cell or "?"] = one_trial.get(r.cell or "?", False) or (r.reference is not None and not r.params)
    compute = sum(float(r.timings.total_s or 0.0) for r in records)
    wall = sum(float(r.wall_s or 0.0) for r in records)
    starts = [r.timings.submitted_unix for r in records if r.timings.submitted_unix]
    ends = [r.timings.driver_received_unix for r in records if r.timings.driver_received_unix]
    # nodes: Ray's node of each trial where the executor recorded it, else the host name
    hosts = Counter(_node(r) for r in records if r.device or (r.executor and r.executor.node_id))
    devices = Counter(str(r.device.name) for r in records if r.device)
    return {
        "spec_hash": spec_header.rsplit(" ", 1)[-1] if spec_header and "content hash" in spec_header else None,
        "first_unix": min(starts) if starts else None, "last_unix": max(ends) if ends else None,
        "hosts": dict(hosts), "devices": dict(devices),
        "cells": {c: dict(v) for c, v in sorted(cells.items())},
        "compute_s": compute,
        # driver-observed time per trial beyond the trial's own run: queueing to a worker, transfer, glue
        "overhead_s": max(0.0, wall - compute) if wall else None,
        "trials": len(records) - confirmed,
        "confirmations": confirmed,
        "env": env,
        "sweep": sweep,
        "budget": budget,
        "epochs_budget": epochs_budget,
        "epochs_spent": {c: epochs[c] for c in sorted(cells) if not one_trial.get(c)},  # cells the epochs bound
        # trials that used budget (all but the interrupted ones: TrialRecord.counts) short of it, per cell
        # (cells of the sweep without any record yet, where the count of its cells is known, included)
        "n_cells": max(n_cells or 0, len(cells)),
        "cells_below_budget": sum(1 for c, v in cells.items()
                                  if (budget or epochs_budget) and not _complete(
                                      sum(v.values()) - v.get("interrupted", 0), epochs[c], 1 if one_trial.get(c)
                                      else budget, None if one_trial.get(c) else epochs_budget))
        + (max(0, (n_cells or 0) - len(cells)) if (budget or epochs_budget) else 0),
    }
