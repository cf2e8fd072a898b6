"""``results.csv`` and ``results.parquet`` beside the report: one row per trial, with
its configuration, objectives, and every seed's validation and test score, peak
training memory and latency, for
people who prefer pandas to HTML."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports.summary import family_of, seed_stats
from runfolder import atomic_write, atomic_write_text


def rows(records: list[dict]) -> pd.DataFrame:
    out = []
    n_seeds = max((len(seed_stats(r)["val_scores"]) for r in records if r.get("status") == "ok"), default=0)
    for r in records:
        row = {
            "cell": r.get("cell"), "family": family_of(r), "dataset": r.get("dataset_name"),
            "backbone": r.get("backbone_name"), "method": r.get("method"), "base_method": r.get("base_method"),
            "plugins": ",".join(r.get("plugins") or []), "trial": r.get("optuna_trial"),
            "status": "interrupted" if r.get("interrupted") else r.get("status"),
            "error": r.get("error"),
        }
        row.update({f"param.{k}": v for k, v in (r.get("params") or {}).items()})
        if r.get("status") == "ok":
            st = seed_stats(r)
            m = r["metrics"]
            row.update({"metric": m.get("metric"), "direction": m.get("direction"), "seeds": st["seeds"],
                        "val_mean": st["val"], "val_std": st["val_std"], "test_mean": st["test"],
                        "test_std": st["test_std"]})
            per_seed = r.get("seeds") or []
            for k in range(n_seeds):
                row[f"val_seed{k}"] = st["val_scores"][k] if k < len(st["val_scores"]) else None
                row[f"test_seed{k}"] = st["test_scores"][k] if k < len(st["test_scores"]) else None
                s = per_seed[k] if k < len(per_seed) else {}
                row[f"peak_train_mb_seed{k}"] = (s.get("memory") or {}).get("peak_train_mb")
                row[f"latency_ms_seed{k}"] = (s.get("latency") or {}).get("ms_per_unit")
            row.update({f"objective.{k}": v for k, v in r["objectives"].items()})
            row.update({"trainable_params": r.get("trainable_params"), "total_params": r.get("total_params"),
                        "device": (r.get("device") or {}).get("name"), "host": (r.get("device") or {}).get("host"),
                        "train_s": (r.get("timings") or {}).get("train_s"),
                        "trial_s": (r.get("timings") or {}).get("total_s"), "wall_s": r.get("wall_s")})
        out.append(row)
    return pd.DataFrame(out).convert_dtypes()  # nullable ints: a rank stays 4, not 4.0, beside missing cells


def write_exports(records: list[dict], folder: Path) -> tuple[Path, Path]:
    """Write both files atomically; returns their paths."""
    df = rows(records)
    csv = atomic_write_text(Path(folder) / "results.csv", df.to_csv(index=False))
    # mixed-type parameter columns (a categorical of numbers and strings) are stored as text
    safe = df.copy()
    for c in safe.columns:
        if safe[c].dtype == object and len({type(v) for v in safe[c].dropna()}) > 1:
            safe[c] = safe[c].map(lambda v: None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
    parquet = atomic_write(Path(folder) / "results.parquet", lambda p: safe.to_parquet(p, index=False))
    return csv, parquet
