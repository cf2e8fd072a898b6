"""``results.csv`` and ``results.parquet`` beside the report: one row per trial, with
its configuration, objectives, every seed's validation and test score, peak training
memory and latency, each score's 95% Student t interval over seeds, and for each
variant's configuration chosen on validation its verdicts (paired t tests against the
group's best and full fine-tuning, Holm-corrected), for people who prefer pandas to HTML."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports.summary import families_by_dataset, family_of, seed_stats, summarize
from reports.verdicts import interval
from runfolder import TrialRecord, atomic_write, atomic_write_text


def rows(records: list[TrialRecord], families: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per trial. ``families`` (``families.json``) only helps name the family of a
    trial whose record has none (a failed one) when the sweep has one family."""
    out = []
    by_dataset = families_by_dataset(records)
    # the comparisons of each group: a verdict for each variant's chosen configuration
    verdicts = {}
    for entry in summarize(records, families or {}, importance=False).values():
        v = entry["verdicts"]
        for c in v.get("rows", []):
            verdicts[id(v["chosen"][c.variant])] = (c, v["no_signal"])
    n_seeds = max((len(seed_stats(r)["val_scores"]) for r in records if r.status == "ok"), default=0)
    for r in records:
        row = {
            "cell": r.cell, "family": family_of(r, families, by_dataset), "dataset": r.dataset_name,
            "backbone": r.backbone_name, "method": r.method, "base_method": r.base_method,
            "plugins": ",".join(r.plugins), "trial": r.optuna_trial, "status": r.status, "error": r.error,
        }
        if r.confirms is not None:  # a confirmation run of trial `trial` on fresh seeds
            row["confirms"] = r.confirms
        row.update({f"param.{k}": v for k, v in r.params.items()})
        if r.status == "ok":
            st, m = seed_stats(r), r.metrics
            row.update({"metric": m.metric, "direction": m.direction, "seeds": st["seeds"],
                        "val_mean": st["val"], "val_std": st["val_std"], "test_mean": st["test"],
                        "test_std": st["test_std"]})
            for k in range(n_seeds):
                row[f"val_seed{k}"] = st["val_scores"][k] if k < len(st["val_scores"]) else None
                row[f"test_seed{k}"] = st["test_scores"][k] if k < len(st["test_scores"]) else None
                s = r.seeds[k] if k < len(r.seeds) else None
                row[f"peak_train_mb_seed{k}"] = s.memory.peak_train_mb if s else None
                row[f"latency_ms_seed{k}"] = s.latency.ms_per_unit if s else None
            row.update({f"objective.{k}": v for k, v in r.objectives.items()})
            row.update({"trainable_params": r.trainable_params, "total_params": r.total_params,
                        "device": r.device.name if r.device else None, "host": r.device.host if r.device else None,
                        "train_s": r.timings.train_s, "trial_s": r.timings.total_s, "wall_s": r.wall_s})
            for split in ("val", "test"):  # 95% Student t interval over seeds (empty with one seed)
                iv = interval(r, split)
                row.update({f"{split}_ci95_low": iv.low, f"{split}_ci95_high": iv.high})
            row.update({"ci_n": interval(r).n, "ci_method": "student_t",
                        "reference": r.reference.kind if r.reference else None,
                        "memory_by": r.reference.memory_by if r.reference else None})
            if id(r) in verdicts:  # the variant's configuration chosen on validation: its tests
                c, signal = verdicts[id(r)]
                row.update({"chosen": True, "vs_best": c.vs_best.verdict, "vs_best_p_holm": c.vs_best.p_holm,
                            "vs_full": c.vs_reference.verdict if c.vs_reference else None,
                            "vs_full_p_holm": c.vs_reference.p_holm if c.vs_reference else None,
                            "group_no_signal": signal})
        elif r.status == "stopped" and r.rungs:  # where it stood when stopped: not final
            row["stopped_at_epoch"] = r.stopped_at
            row.update({f"rung.{k}": v for k, v in r.rungs[-1].values.items()})
        elif r.status == "infeasible" and r.infeasible is not None:
            row.update({"infeasible_cause": r.infeasible.cause, "limit_objective": r.infeasible.objective,
                        "limit": r.infeasible.limit, "measured": r.infeasible.measured})
            row.update({f"objective.{k}": v for k, v in r.objectives.items()})  # what it measured before it ended
        out.append(row)
    return pd.DataFrame(out).convert_dtypes()  # nullable ints: a rank stays 4, not 4.0, beside missing cells


def write_exports(records: list[TrialRecord], folder: Path,
                  families: dict[str, dict] | None = None) -> tuple[Path, Path]:
    """Write both files atomically; returns their paths."""
    df = rows(records, families)
    csv = atomic_write_text(Path(folder) / "results.csv", df.to_csv(index=False))
    # mixed-type parameter columns (a categorical of numbers and strings) are stored as text
    safe = df.copy()
    for c in safe.columns:
        if safe[c].dtype == object and len({type(v) for v in safe[c].dropna()}) > 1:
            safe[c] = safe[c].map(lambda v: None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
    parquet = atomic_write(Path(folder) / "results.parquet", lambda p: safe.to_parquet(p, index=False))
    return csv, parquet
