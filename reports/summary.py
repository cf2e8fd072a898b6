"""What a report shows, computed from trial records without any plotting library:
per dataset, the finished and failed trials, each cost plane's Pareto front over
all method variants, each variant's hypervolume, and each variant's best trial.

Everything is chosen on validation: a trial's ``objectives.score`` is its mean
validation score over seeds, and fronts, hypervolumes and best trials are built
from it. Test scores (mean ± std over seeds) are only reported for what
validation chose."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from reports.pareto import front_order, hypervolume_2d, non_dominated

def plane_label(objective: str) -> str:
    """Axis label of a cost objective; the names come from the task (e.g. latency_ms_per_node)."""
    if objective == "train_memory_mb":
        return "peak training memory (MB)"
    if objective.startswith("latency_ms_per_"):
        return f"inference latency (ms / {objective.removeprefix('latency_ms_per_')})"
    return objective


def planes_of(records: list[dict]) -> list[tuple[str, str]]:
    """The cost planes of a dataset: every objective but the score, in the records' order."""
    keys: list[str] = []
    for r in records:
        for k in r.get("objective_names") or r["objectives"]:
            if k != "score" and k not in keys and all(k in x["objectives"] for x in records):
                keys.append(k)
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
        "test_scores": tests,
    }


def summarize(records: list[dict]) -> dict:
    """Everything the page shows, computed without any plotting: per dataset, the
    trials, each plane's global front, per-method hypervolume and best trials."""
    by_ds: dict[str, list[dict]] = defaultdict(list)
    failed: dict[str, list[dict]] = defaultdict(list)
    interrupted: dict[str, int] = defaultdict(int)  # cut short by a crash and re-run: not the method's failure
    # Fronts are per dataset and backbone: a dataset trained on two backbones gets a group each.
    backbones: dict[str, set] = defaultdict(set)
    for r in records:
        backbones[r.get("dataset_name", "?")].add(r.get("backbone_name"))
    for r in records:
        ds = r.get("dataset_name", "?")
        if len(backbones[ds]) > 1:
            ds = f"{ds} / {r.get('backbone_name')}"
        if r.get("interrupted"):
            interrupted[ds] += 1
            continue
        (by_ds if r.get("status") == "ok" else failed)[ds].append(r)
    out = {}
    for ds in sorted(set(by_ds) | set(failed) | set(interrupted)):
        ok = by_ds.get(ds, [])
        entry: dict = {"trials": ok, "failed": failed.get(ds, []), "interrupted": interrupted.get(ds, 0),
                       "planes": {}, "best": []}
        if ok:
            direction = ok[0]["metrics"]["direction"]
            entry["metric"] = ok[0]["metrics"]["metric"]
            entry["direction"] = direction
            score = np.array([r["objectives"]["score"] for r in ok])
            entry["plane_labels"] = dict(planes_of(ok))
            for key, _label in planes_of(ok):
                cost = np.array([r["objectives"][key] for r in ok])
                pts = np.column_stack([cost, score])
                dirs = ["minimize", direction]
                mask = non_dominated(pts, dirs)
                # reference: just beyond the worst cost and score seen, so every trial counts
                span = float(score.max() - score.min()) or 1.0
                ref = [float(cost.max()) * 1.1 + 1e-9,
                       float(score.min()) - 0.1 * span if direction == "maximize" else float(score.max()) + 0.1 * span]
                hv = {}
                for m in sorted({r["method"] for r in ok}):
                    sel = [i for i, r in enumerate(ok) if r["method"] == m]
                    hv[m] = hypervolume_2d(pts[sel], dirs, ref)
                entry["planes"][key] = {
                    "pareto_mask": mask.tolist(),
                    "front": front_order(pts, dirs).tolist(),
                    "hypervolume": hv,
                    "reference": ref,
                }
            for m in sorted({r["method"] for r in ok}):
                rs = [r for r in ok if r["method"] == m]
                pick = max if direction == "maximize" else min
                entry["best"].append(pick(rs, key=lambda r: r["objectives"]["score"]))
        out[ds] = entry
    return out
