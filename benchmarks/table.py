"""The comparison table of the G-Adapter paper's grid, produced by the project: per
dataset, backbone and method variant, the validation-selected configuration's test
score (mean ± std over 3 seeds), trainable parameters as a share of the backbone,
measured peak training memory relative to full fine-tuning, and inference latency.

    .venv/bin/python benchmarks/table.py                 # the fixed budget (under 2 h on 2 cores)
    .venv/bin/python benchmarks/table.py --datasets freesolv CHEMBL262_Ki --trials 3   # a slice

Each cell is searched by the sweep's own driver (Optuna on validation, one seed per
trial, in-process; with the default 2 trials both are TPE's random start-up draws)
and its best configuration, chosen on validation, is trained with two more seeds;
its three seeds give the test figures (mean ± sample std); memory and latency come
from the extra seeds' runs. Writes
docs/benchmarks/table.md and table.csv.
"""
from __future__ import annotations

import argparse
import ast
import csv
import io
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from orchestrator.executor import InProcessExecutor  # noqa: E402
from orchestrator.spec import parse_spec  # noqa: E402
from orchestrator.sweep import Sweep, trial_config  # noqa: E402
from runfolder import TrialRecord  # noqa: E402
from runfolder.io import atomic_write_text  # noqa: E402
from workloads.train import mean_std, run_trial  # noqa: E402
from workloads.util import default_cache_dir  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
NINE = ["b3db", "b3db_regression", "freesolv", "solubility", "CHEMBL214_Ki", "CHEMBL234_Ki", "CHEMBL237_Ki",
        "CHEMBL262_Ki", "CHEMBL2147_Ki"]
ARCH = {"hidden_dim": 32, "num_layers": 3, "num_heads": 4, "ffn_dim": 64}
PRETRAIN = {"epochs": 2, "batch_size": 128, "lr": 0.001}  # molecules: --pretrain-molecules
LR = {"type": "float", "low": 0.0005, "high": 0.01, "log": True}
METHODS = {
    "full": {"search": {"lr": {"type": "float", "low": 0.0001, "high": 0.003, "log": True}}},
    "linear_probe": {"search": {"lr": {"type": "float", "low": 0.001, "high": 0.05, "log": True}}},
    "bitfit": {"search": {"lr": LR}},
    "lora": {"search": {"r": {"type": "categorical", "choices": [2, 4, 8]}, "lr": LR}},
    "adapter": {"search": {"bottleneck": {"type": "categorical", "choices": [4, 8, 16]}, "lr": LR}},
    "g_adapter": {"search": {"bottleneck": {"type": "categorical", "choices": [4, 8, 16]}, "lr": LR}},
    "g_adapter_proximal": {"method": "g_adapter", "plugins": {"proximal": {"momentum": 0.99}},
                           "search": {"bottleneck": {"type": "categorical", "choices": [4, 8, 16]},
                                      "proximal.weight": {"type": "categorical", "choices": [0.01, 0.1, 1.0]},
                                      "lr": LR}},
    "lora_proximal": {"method": "lora", "plugins": {"proximal": {"momentum": 0.99}},
                      "search": {"r": {"type": "categorical", "choices": [2, 4, 8]},
                                 "proximal.weight": {"type": "categorical", "choices": [0.01, 0.1, 1.0]}, "lr": LR}},
    "adapter_gist": {"method": "adapter", "plugins": {"gist": {}},
                     "search": {"bottleneck": {"type": "categorical", "choices": [4, 8, 16]}, "lr": LR}},
    "gpf": {"search": {"lr": LR}},
    "prompt_tokens": {"search": {"num_tokens": {"type": "categorical", "choices": [2, 4]}, "lr": LR}},
}


def spec_dict(args, name: str) -> dict:
    return {
        "name": name, "seed": 0,
        "datasets": [{"name": d, "max_molecules": args.max_molecules} for d in args.datasets],
        "backbones": [{"name": b, "params": ARCH, "pretrain": {**PRETRAIN, "max_molecules": args.pretrain_molecules}}
                      for b in args.backbones],
        "train": {"epochs": args.epochs, "batch_size": 64},
        "profile": {"latency_batch_size": 64, "latency_warmup": 2, "latency_repeats": 10, "memory_steps": 20},
        "methods": {k: v for k, v in METHODS.items() if k in args.methods},
        "budget": {"trials_per_cell": args.trials, "n_startup_trials": min(2, args.trials), "seeds": 1},
        "resources": {"num_workers": 1, "cpus_per_worker": args.threads, "max_concurrent_trials": 1},
        "storage": {"root": str(args.runs), "cache_dir": str(default_cache_dir())},
    }


def best_of(records: list[TrialRecord], direction: str) -> TrialRecord:
    """The finished trial with the best validation score."""
    ok = [r for r in records if r.status == "ok" and not math.isnan(r.score)]
    key = (lambda r: r.score) if direction == "maximize" else (lambda r: -r.score)
    return max(ok, key=key)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="*", default=NINE)
    ap.add_argument("--backbones", nargs="*", default=["graphormer", "mat"])
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--trials", type=int, default=2, help="search trials per cell (one seed each)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds of the selected configuration")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="torch threads per trial")
    ap.add_argument("--pretrain-molecules", type=int, default=20000,
                    help="MOSES molecules per backbone (docs/benchmarks/pretraining.md: 5k does not beat random "
                    "initialisation here, 20k does)")
    ap.add_argument("--max-molecules", type=int, default=600,
                    help="a seeded subset of each dataset, drawn before the split (datasets with their own "
                    "split keep it)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs")
    ap.add_argument("--out", default="table", help="file stem under docs/benchmarks/")
    ap.add_argument("--render-only", type=float, metavar="WALL_S",
                    help="rewrite the .md from the committed .csv (with that run's wall seconds); no training")
    args = ap.parse_args()
    if args.render_only is not None:
        from workloads.metrics import metric_direction

        with open(OUT / f"{args.out}.csv") as fh:
            rows = [dict(r, failed=True) if not r["test_mean"] else
                    dict(r, direction=metric_direction(r["metric"]), test_mean=float(r["test_mean"]),
                         test_std=float(r["test_std"]), peak_rel_full=float(r["peak_rel_full"]) if r["peak_rel_full"]
                         else None, latency_ms=float(r["latency_ms"])) for r in csv.DictReader(fh)]
        atomic_write_text(OUT / f"{args.out}.md", render(rows, args, args.render_only))
        return
    t0 = time.perf_counter()
    spec = parse_spec(spec_dict(args, f"table-{args.out}"))
    console = Console(stderr=True)
    run = Sweep(spec, console=console).execute(executor=InProcessExecutor())
    records = run.trial_records()
    rows = []
    for cell in spec.cells():
        recs = [r for r in records if r.cell == cell.id]
        if not any(r.status == "ok" for r in recs):
            rows.append({"dataset": cell.dataset, "backbone": cell.backbone, "method": cell.method, "failed": True})
            continue
        direction = next(r for r in recs if r.status == "ok").metrics.direction
        best = best_of(recs, direction)
        # The search trained the chosen configuration with the first seed; the others are trained now.
        cfg = trial_config(spec, cell, best.params, f"{cell.id}/table")
        r = run_trial(cfg.model_copy(update={"seed": cfg.seed + 1, "seeds": args.seeds - 1}), progress=lambda m: None) \
            if args.seeds > 1 else best
        rows.append(table_row(cell.dataset, cell.backbone, cell.method, best, r if args.seeds > 1 else None))
        console.print(f"{cell.id}: test {r.metrics.metric} {rows[-1]['test_mean']:.4f} ± {rows[-1]['test_std']:.4f}",
                      markup=False)
    for row in rows:  # memory relative to full fine-tuning of the same dataset and backbone
        full = next((x for x in rows if x["dataset"] == row["dataset"] and x["backbone"] == row["backbone"]
                     and x["method"] == "full" and not x.get("failed")), None)
        row["peak_rel_full"] = row["peak_mb"] / full["peak_mb"] if full and not row.get("failed") else None
    wall = time.perf_counter() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT / f"{args.out}.csv", to_csv(rows))
    atomic_write_text(OUT / f"{args.out}.md", render(rows, args, wall))
    print(f"wrote {OUT / args.out}.md ({wall / 60:.0f} min)")


def table_row(dataset: str, backbone: str, method: str, best: TrialRecord, more: TrialRecord | None) -> dict:
    """The table's row of a cell: the validation-selected trial ``best`` and the run of
    its configuration with the remaining seeds (``more``; None with one seed), whose
    measurements (memory, latency, parameters) the row reports."""
    r = more or best
    tests = best.metrics.test_scores + (more.metrics.test_scores if more else [])
    vals = best.metrics.val_scores + (more.metrics.val_scores if more else [])
    return {
        "dataset": dataset, "backbone": backbone, "method": method, "metric": r.metrics.metric,
        "direction": r.metrics.direction, "test_mean": mean_std(tests)[0],
        "test_std": mean_std(tests)[1], "val_mean": mean_std(vals)[0],
        "trainable": r.trainable_params, "total": r.total_params,
        "peak_mb": r.memory.peak_train_mb, "latency_ms": r.latency.ms_per_unit,
        "params": best.params, "plugin_params": r.notes.get("plugin_params", {}),
    }


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    keys = ["dataset", "backbone", "method", "metric", "test_mean", "test_std", "val_mean", "trainable", "total",
            "peak_mb", "peak_rel_full", "latency_ms", "params", "plugin_params"]
    w = csv.DictWriter(buf, keys, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def verdicts(rows: list[dict]) -> list[str]:
    """The papers' claims, checked on these rows (counted, either way)."""
    ok = [r for r in rows if not r.get("failed")]
    groups = {(r["dataset"], r["backbone"]) for r in ok}

    def score(ds, bb, method):
        r = next((x for x in ok if (x["dataset"], x["backbone"], x["method"]) == (ds, bb, method)), None)
        if r is None:
            return None
        return r["test_mean"] if r["direction"] == "maximize" else -r["test_mean"]

    out = []
    n = wins = 0
    for ds, bb in sorted(groups):
        g = score(ds, bb, "g_adapter_proximal")
        rivals = [score(ds, bb, m) for m in ("adapter", "lora")]
        if g is not None and all(x is not None for x in rivals):
            n += 1
            wins += g >= max(rivals)
    if n:
        out.append(f"G-Adapter (with the proximal term) at or above both Adapter and LoRA: {wins} of {n} "
                   "dataset × backbone pairs" + (" (most)." if wins > n / 2 else " (not most)."))
    n = helped = 0
    for ds, bb in sorted(groups):
        for base, prox in (("g_adapter", "g_adapter_proximal"), ("lora", "lora_proximal")):
            a, b = score(ds, bb, base), score(ds, bb, prox)
            if a is not None and b is not None:
                n += 1
                helped += b > a
    if n:
        out.append(f"The proximal term improved the test score in {helped} of {n} method × dataset × backbone "
                   "comparisons.")
    n = gained = 0
    extra, rel = set(), []
    for ds, bb in sorted(groups):
        a, b = score(ds, bb, "adapter"), score(ds, bb, "adapter_gist")
        if a is not None and b is not None:
            n += 1
            gained += b > a
            rel.append((b - a) / abs(a))  # scores are signed so that larger is better
            rb = next(x for x in ok if (x["dataset"], x["backbone"], x["method"]) == (ds, bb, "adapter_gist"))
            extra.add(_plugin_params(rb).get("gist"))
    if n:
        out.append(f"GIST on the adapter: {gained} of {n} pairs gained, a mean relative change of "
                   f"{100 * sum(rel) / len(rel):+.1f}% in test score (positive: better); the plug-in itself adds "
                   f"{' / '.join(str(x) for x in sorted(extra, key=str))} trainable parameters (its token, counted "
                   "in the trial record's notes.plugin_params)"
                   + ("; under 1K parameters, as claimed" if all(isinstance(x, int) and x < 1000 for x in extra)
                      else "; not under 1K") + "; the gain on average is "
                   + ("reproduced." if sum(rel) > 0 else "not reproduced here."))
    wins: dict[str, int] = {}
    for ds, bb in sorted(groups):
        mine = [x for x in ok if (x["dataset"], x["backbone"]) == (ds, bb)]
        best = max(mine, key=lambda x: score(ds, bb, x["method"]))
        wins[best["method"]] = wins.get(best["method"], 0) + 1
    out.append("Best test score per dataset × backbone pair: " + ", ".join(
        f"{m} {k}" for m, k in sorted(wins.items(), key=lambda kv: -kv[1])) + f" (of {len(groups)}).")
    peft = [r for r in ok if r["method"] != "full" and r.get("peak_rel_full") is not None]
    if peft:
        below = sum(float(r["peak_rel_full"]) < 1 for r in peft)
        out.append(f"PEFT methods peaked below full fine-tuning's training memory in {below} of {len(peft)} cells "
                   f"(median {sorted(float(r['peak_rel_full']) for r in peft)[len(peft) // 2]:.2f}× of full): on "
                   "these small backbones activations dominate, so the saving is small.")
    return out


def backbone_params(rows: list[dict], dataset: str, backbone: str) -> int:
    """The backbone's own parameter count: full fine-tuning trains all of it and the head;
    the linear probe trains the head alone."""
    def trainable(method):
        r = next((x for x in rows if (x["dataset"], x["backbone"], x["method"]) == (dataset, backbone, method)
                  and not x.get("failed")), None)
        return int(r["trainable"]) if r else None

    full, head = trainable("full"), trainable("linear_probe")
    if full is None:  # no full fine-tuning row: every parameter of some trained row's model
        return max(int(x["total"]) for x in rows
                   if (x["dataset"], x["backbone"]) == (dataset, backbone) and not x.get("failed"))
    return full - (head or 0)


def _plugin_params(row: dict) -> dict:
    p = row.get("plugin_params") or {}
    return p if isinstance(p, dict) else ast.literal_eval(p)  # from the .csv: its repr


def command(args) -> str:
    return (".venv/bin/python benchmarks/table.py --datasets " + " ".join(args.datasets) + " --backbones "
            + " ".join(args.backbones) + " --methods " + " ".join(args.methods)
            + f" --trials {args.trials} --seeds {args.seeds} --epochs {args.epochs}"
            + f" --pretrain-molecules {args.pretrain_molecules} --max-molecules {args.max_molecules}" + (f" --threads {args.threads}" if args.threads != 2 else ""))


def render(rows: list[dict], args, wall: float) -> str:
    lines = [
        "# PEFT methods on the molecular grid", "",
        f"Regenerate: `{command(args)}` (this run: {wall / 60:.0f} min on this 2-core machine, CPU only). "
        "Without arguments the script runs the whole fixed budget: the nine datasets, eleven variants.", "",
        f"Run: datasets {', '.join(args.datasets)}; backbones {', '.join(args.backbones)} ({ARCH['hidden_dim']} wide, "
        f"{ARCH['num_layers']} layers, pretrained on {args.pretrain_molecules:,} MOSES molecules × "
        f"{PRETRAIN['epochs']} epochs); "
        f"{args.trials} search trials per cell on validation (one seed), then the selected configuration trained "
        f"with {args.seeds - 1} more seeds ({args.seeds} in all); {args.epochs} epochs; each dataset subsampled to at most {args.max_molecules:,} "
        "molecules before its split.",
        "",
        "Test score: mean ± std over the seeds at each seed's validation-best epoch (↑ ROC-AUC, ↓ RMSE). Trainable: "
        "trainable parameters (the method's, the plug-ins' and the task head's) as a share of the backbone's own "
        "(full fine-tuning's trainable parameters less the head, which the linear probe trains alone). Memory: measured peak (CPU allocator) relative to full fine-tuning of the same "
        "dataset and backbone. Latency: ms per molecule, 64-molecule batches, LoRA merged.", "",
        "| dataset | backbone | method | test score | trainable | memory vs full | latency (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("failed"):
            lines.append(f"| {r['dataset']} | {r['backbone']} | {r['method']} | failed | | | |")
            continue
        share = 100 * int(r["trainable"]) / backbone_params(rows, r["dataset"], r["backbone"])
        arrow = "↑" if r["direction"] == "maximize" else "↓"
        rel = f"{r['peak_rel_full']:.2f}×" if r["peak_rel_full"] is not None else "–"
        lines.append(f"| {r['dataset']} ({r['metric']} {arrow}) | {r['backbone']} | {r['method']} | "
                     f"{r['test_mean']:.3f} ± {r['test_std']:.3f} | {share:.2f}% | "
                     f"{rel} | {r['latency_ms']:.3f} |")
    if args.pretrain_molecules < 20000:
        lines += ["", f"These backbones were pretrained on {args.pretrain_molecules:,} molecules, below the budget that "
                  "beats random initialisation here (`pretraining.md`: 20k does, 5k does not): a backbone barely "
                  "worth adapting, which favours full fine-tuning. Treat this slice's ranking as preliminary."]
    lines += ["", "## Against the papers' claims", ""] + [f"- {v}" for v in verdicts(rows)] + [
        "", f"With small backbones, few trials and {args.seeds} seeds, differences within a standard deviation are not "
        "evidence either way."]
    if args.trials <= 2:
        lines += ["", f"Each variant's configuration is the better of {args.trials} draws from its search space "
                  "(TPE's random start-up trials): a method with a sensitive hyperparameter (an adapter's learning "
                  "rate, the proximal weight) is judged at a near-random setting. Run `orchestrator sweep` with a "
                  "real budget (`sweeps/full.yaml`) before drawing conclusions about a method."]
    lines += [""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
