"""The comparison table, with the statistics a reviewer asks for: per dataset and backbone,
every variant's configuration chosen on validation, confirmed on fresh seeds, its test
score with a 95% t interval, paired t tests against the best and against full
fine-tuning (Holm), the constant baseline on every row, "no signal" where nothing
beats it, and each paper's claim tested across datasets (Wilcoxon signed-rank, Holm)
with a Friedman/Nemenyi critical-difference diagram over the methods (Demšar 2006).

    .venv/bin/python benchmarks/table.py                      # the committed run (about 80 min on 2 cores)
    .venv/bin/python benchmarks/table.py --datasets freesolv --trials 2 --confirm-seeds 2 --out table-slice

Everything runs through the sweep's own driver (in-process executor): Optuna searches
each cell on validation with one seed per trial and early stopping per cell (MO-ASHA,
scope cell: every variant gets the same budget), training ends once validation stalls
(``train.patience``), and ``budget.confirm_seeds`` trains each cell's best configuration
again on fresh seeds: those runs give every figure below. Writes
docs/benchmarks/table.md, table.csv and table-cd.svg.
"""
from __future__ import annotations

import argparse
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
from orchestrator.resolve import families  # noqa: E402
from orchestrator.spec import parse_spec  # noqa: E402
from orchestrator.stopping import rung_epochs  # noqa: E402
from orchestrator.sweep import Sweep  # noqa: E402
from reports.cd_diagram import write_cd_diagram  # noqa: E402
from reports.stats import claim_test, claims_verdicts, friedman_nemenyi, holm, paired_test, verdict  # noqa: E402
from reports.summary import summarize  # noqa: E402
from reports.verdicts import seed_scores, verdict_text  # noqa: E402
from runfolder.io import atomic_write_text  # noqa: E402
from workloads.util import default_cache_dir  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
DATASETS = ["b3db", "b3db_regression", "freesolv", "solubility", "CHEMBL214_Ki", "CHEMBL2147_Ki"]
ARCH = {"hidden_dim": 32, "num_layers": 3, "num_heads": 4, "ffn_dim": 64}
PRETRAIN = {"epochs": 2, "batch_size": 128, "lr": 0.001}  # molecules: --pretrain-molecules
LR = {"type": "float", "low": 0.0003, "high": 0.01, "log": True}
BOTTLENECK = {"type": "categorical", "choices": [4, 8, 16]}
METHODS = {
    "full": {"search": {"lr": {"type": "float", "low": 0.0001, "high": 0.003, "log": True}}},
    "linear_probe": {"search": {"lr": {"type": "float", "low": 0.001, "high": 0.05, "log": True}}},
    "lora": {"search": {"r": {"type": "categorical", "choices": [2, 4, 8]}, "lr": LR}},
    "adapter": {"search": {"bottleneck": BOTTLENECK, "lr": LR}},
    "g_adapter": {"search": {"bottleneck": BOTTLENECK, "lr": LR}},
    "g_adapter_proximal": {"method": "g_adapter", "plugins": {"proximal": {}},
                           "search": {"bottleneck": BOTTLENECK, "lr": LR,
                                      "proximal.weight": {"type": "categorical", "choices": [0.01, 0.1, 1.0]}}},
    "adapter_gist": {"method": "adapter", "plugins": {"gist": {}},  # the authors' visible token and defaults
                     "search": {"bottleneck": BOTTLENECK, "lr": LR}},
    "full_random_init": {"method": "full", "random_init": True,
                         "search": {"lr": {"type": "float", "low": 0.0001, "high": 0.003, "log": True}}},
    "constant": {},
    "ecfp_rf": {},
}
# (label, A, B): "A beats B", as the papers claim it; tested two-sided
CLAIMS = [
    ("G-Adapter (with the proximal term) beats full fine-tuning (G-Adapter, Gui et al. 2024)",
     "g_adapter_proximal", "full"),
    ("G-Adapter beats the Adapter (G-Adapter)", "g_adapter_proximal", "adapter"),
    ("G-Adapter beats LoRA (G-Adapter)", "g_adapter_proximal", "lora"),
    ("the graph convolution helps: g_adapter beats adapter (G-Adapter, ablation)", "g_adapter", "adapter"),
    ("the Bregman proximal term helps: g_adapter_proximal beats g_adapter (G-Adapter, ablation)",
     "g_adapter_proximal", "g_adapter"),
    ("GIST's token helps the Adapter (GIST, Ruan et al. 2023)", "adapter_gist", "adapter"),
    ("pretraining helps: full beats full_random_init", "full", "full_random_init"),
]


def spec_dict(args) -> dict:
    return {
        "name": f"table-{args.out}", "seed": 0,
        "datasets": [{"name": d, "max_molecules": args.max_molecules} for d in args.datasets],
        "backbones": [{"name": b, "params": ARCH, "pretrain": {**PRETRAIN, "max_molecules": args.pretrain_molecules}}
                      for b in args.backbones],
        "train": {"epochs": args.epochs, "batch_size": 64, "patience": args.patience},
        "profile": {"latency_batch_size": 64, "latency_warmup": 2, "latency_repeats": 10, "memory_steps": 20},
        "methods": {k: v for k, v in METHODS.items() if k in args.methods},
        "budget": {"trials_per_cell": args.trials, "n_startup_trials": min(4, args.trials), "seeds": 1,
                   "stopping": {"type": "mo_asha", "min_epochs": 2, "reduction_factor": 3, "scope": "cell"},
                   "confirm_seeds": args.confirm_seeds, "confirm_max": 1},
        "resources": {"num_workers": 1, "cpus_per_worker": args.threads, "max_concurrent_trials": 1},
        "storage": {"root": str(args.runs), "cache_dir": str(default_cache_dir())},
    }


def rows_of(summary: dict) -> list[dict]:
    """One row per dataset × backbone × variant: its configuration chosen on validation (from
    the confirmation runs where there are some), its interval, verdicts and costs."""
    out = []
    for g, entry in summary.items():
        v = entry["verdicts"]
        if not v.get("rows"):
            continue
        full = v["chosen"].get("full")
        for c in v["rows"]:
            r = v["chosen"][c.variant]
            out.append({
                "dataset": r.dataset_name, "backbone": r.backbone_name, "method": c.variant,
                "kind": r.reference.kind if r.reference else "method", "metric": r.metrics.metric,
                "direction": r.metrics.direction, "n": c.n, "test_mean": c.interval.mean,
                "ci_low": c.interval.low, "ci_high": c.interval.high,
                "vs_best": c.vs_best.verdict, "vs_best_p_holm": c.vs_best.p_holm,
                "vs_full": c.vs_reference.verdict if c.vs_reference else None,
                "vs_full_p_holm": c.vs_reference.p_holm if c.vs_reference else None,
                "vs_best_text": verdict_text(c, "best"),
                "vs_full_text": verdict_text(c, "reference") if c.vs_reference else "",
                "constant": v["constant"], "no_signal": v["no_signal"],
                "trainable": r.trainable_params, "peak_mb": r.objectives.get("train_memory_mb"),
                "peak_rel_full": (r.cost("train_memory_mb") / full.cost("train_memory_mb")
                                  if full is not None and not r.reference and "train_memory_mb" in r.objectives
                                  and "train_memory_mb" in full.objectives else None),
                "latency_ms": r.latency.ms_per_unit if r.latency else None,
                "memory_by": r.reference.memory_by if r.reference else r.memory.method if r.memory else "",
                "confirmed": r.confirms is not None, "params": dict(r.params),
                "scores": seed_scores(r),
            })
    return out


def claims(rows: list[dict]) -> tuple[list, list[str]]:
    """Each claim across the dataset × backbone pairs with signal (Wilcoxon signed-rank on the
    test means, Holm over the claims), and per pair the paired t test on the seeds (Holm over
    the pairs)."""
    groups = sorted({(r["dataset"], r["backbone"]) for r in rows if r["no_signal"] is not True})
    by = {(r["dataset"], r["backbone"], r["method"]): r for r in rows}
    tests, details = [], []
    for label, a, b in CLAIMS:
        pairs, paired = [], []
        for ds, bb in groups:
            ra, rb = by.get((ds, bb, a)), by.get((ds, bb, b))
            if ra is None or rb is None:
                continue
            sign = 1.0 if ra["direction"] == "maximize" else -1.0  # larger is better for the rank test
            pairs.append((sign * ra["test_mean"], sign * rb["test_mean"]))
            paired.append(paired_test(ra["scores"], rb["scores"], direction=ra["direction"]))
        tests.append(claim_test(pairs, direction="maximize", label=label))
        adj = holm([t.p for t in paired])
        counts = {"better": 0, "worse": 0, "not distinguishable": 0}
        for t, p in zip(paired, adj):
            counts[verdict(t, p) if p is not None else "not distinguishable"] += 1
        details.append(f"per pair (paired t over seeds, Holm over the {len(paired)} pairs): {a} better in "
                       f"{counts['better']}, worse in {counts['worse']}, not distinguishable in "
                       f"{counts['not distinguishable']}")
    return claims_verdicts(tests), details


def rank_test(rows: list[dict]):
    """Friedman/Nemenyi over the methods on the pairs with signal (scores signed so larger is better)."""
    table: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["no_signal"] is True or r["method"] == "constant":
            continue
        sign = 1.0 if r["direction"] == "maximize" else -1.0
        table.setdefault(f"{r['dataset']}/{r['backbone']}", {})[r["method"]] = sign * r["test_mean"]
    return friedman_nemenyi(table, direction="maximize")


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    keys = ["dataset", "backbone", "method", "kind", "metric", "n", "test_mean", "ci_low", "ci_high", "vs_best",
            "vs_best_p_holm", "vs_full", "vs_full_p_holm", "constant", "no_signal", "trainable", "peak_mb",
            "peak_rel_full", "latency_ms", "memory_by", "confirmed", "params", "scores"]
    w = csv.DictWriter(buf, keys, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def _num(x, fmt="{:.3f}") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def render(rows: list[dict], verdicts: list, details: list[str], rt, args, wall: float, cd_file: str | None) -> str:
    lines = [
        "# PEFT methods on molecular property prediction, with their statistics", "",
        f"Regenerate: `{command(args)}` (this run: {wall / 60:.0f} min on this 2-core machine, CPU only, "
        f"{args.threads} torch thread(s)).", "",
        f"Run: datasets {', '.join(args.datasets)} (each subsampled to at most {args.max_molecules:,} molecules before "
        f"its split); backbone(s) {', '.join(args.backbones)} ({ARCH['hidden_dim']} wide, {ARCH['num_layers']} layers, "
        f"pretrained on {args.pretrain_molecules:,} MOSES molecules × {PRETRAIN['epochs']} epochs). Every variant is "
        f"searched with the same budget: {args.trials} Optuna (TPE) trials per cell on validation, one seed each, "
        f"MO-ASHA early stopping per cell (rungs at epochs {rung_epochs(2, 3, args.epochs)}, η 3), training up to "
        f"{args.epochs} epochs and ending once validation has not improved for {args.patience}. Each cell's best "
        f"configuration (by validation) then trains again on {args.confirm_seeds} fresh seeds "
        "(`budget.confirm_seeds`); every figure below comes from those runs.", "",
        "Test score: mean and 95% Student t interval over the confirmation seeds (↑ ROC-AUC, ↓ RMSE). "
        "vs best / vs full: paired t test over the same seeds against the group's best (its first row: the "
        "variant with the best validation mean, so the target is not chosen on the test scores it is tested "
        "with; a row can therefore be 'better' than it on test) and against full fine-tuning, Holm-corrected "
        "within the group, α = 0.05. Rows: by validation mean. constant: the training-mean (or class-prior) "
        "predictor's test score, the floor that shows learning. Memory: measured training peak relative to full "
        "fine-tuning (CPU allocator through the PyTorch profiler; the references' own memory is measured by "
        "tracemalloc and not compared). Latency: ms per molecule, 64-molecule batches.", "",
        "| dataset | method | test score (95% t) | vs best | vs full | constant | trainable | memory vs full "
        "| latency (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        arrow = "↑" if r["direction"] == "maximize" else "↓"
        ci = f"{r['test_mean']:.3f} ± {(r['ci_high'] - r['ci_low']) / 2:.3f} (n={r['n']})" \
            if r["ci_low"] is not None else f"{r['test_mean']:.3f} (n={r['n']}, no interval)"
        name = r["method"] + (" (reference)" if r["kind"] != "method" else "")
        ds = f"{r['dataset']} / {r['backbone']} ({r['metric']} {arrow})" + (" **no signal**" if r["no_signal"] else "")
        lines.append(f"| {ds} | {name} | {ci} | {r['vs_best_text']} | {r['vs_full_text']} | "
                     f"{_num(r['constant'])} | {r['trainable'] or 0:,} | {_num(r['peak_rel_full'], '{:.2f}×')} | "
                     f"{_num(r['latency_ms'])} |")
    silent = sorted({f"{r['dataset']} / {r['backbone']}" for r in rows if r["no_signal"] is True})
    lines += ["", "## Signal", "",
              (f"No signal (no searched variant beats the constant predictor by the paired t test, Holm): "
               f"{', '.join(silent)}. These groups are left out of the claims below." if silent else
               "Every group has signal: some searched variant beats the constant predictor by the paired t test.")]
    lines += ["", "## The papers' claims", "",
              "Each claim over the dataset × backbone pairs with signal: Wilcoxon signed-rank test on the pairs' "
              "test means (scipy, two-sided), Holm over the claims. Reproduced: significant in the claimed "
              "direction; refuted: significant in the opposite one; otherwise not distinguishable, which refutes "
              "nothing. Per pair, the paired t test over the confirmation seeds.", "",
              "| claim | pairs | median difference | p (Holm) | verdict | smallest p possible |",
              "|---|---|---|---|---|---|"]
    for v, d in zip(verdicts, details):
        c = v.claim
        lines.append(f"| {c.label} | {c.n} | {_num(c.median_diff, '{:+.4f}')} | "
                     f"{_num(c.p, '{:.3g}')} ({_num(v.p_holm, '{:.3g}')}) | **{v.verdict}** | {c.min_p:.3g}"
                     + ("" if c.can_reach_alpha else " (cannot reach 0.05)") + " |")
    lines += [""] + [f"- {v.claim.label}: {d}." for v, d in zip(verdicts, details)]
    lines += ["", "## Ranks over methods (Friedman, Nemenyi)", ""]
    if rt.p is None:
        lines.append(f"No rank test ({rt.reason}).")
    else:
        ranks = ", ".join(f"{m} {rt.average_ranks[m]:.2f}" for m in sorted(rt.methods, key=rt.average_ranks.get))
        lines.append(f"Friedman χ² = {rt.statistic:.2f}, p = {rt.p:.3g} over {rt.n_blocks} dataset × backbone "
                     f"blocks and {len(rt.methods)} methods (the constant predictor left out). Average ranks "
                     f"(1 = best): {ranks}. Nemenyi critical difference CD = {rt.cd:.2f} (α = 0.05): methods "
                     f"whose average ranks differ by less are not separated"
                     + (f"; not separated: {'; '.join(', '.join(g) for g in rt.groups)}." if rt.groups else "."))
        if cd_file:
            lines += ["", f"![critical-difference diagram]({cd_file})"]
    if args.note:
        lines += ["", "## Notes on this run", ""] + [f"- {n}" for n in args.note]
    lines += [""]
    return "\n".join(lines)


def command(args) -> str:
    return (".venv/bin/python benchmarks/table.py --datasets " + " ".join(args.datasets) + " --backbones "
            + " ".join(args.backbones) + " --methods " + " ".join(args.methods)
            + f" --trials {args.trials} --confirm-seeds {args.confirm_seeds} --epochs {args.epochs}"
            + f" --patience {args.patience} --pretrain-molecules {args.pretrain_molecules}"
            + f" --max-molecules {args.max_molecules} --threads {args.threads} --out {args.out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="*", default=DATASETS)
    ap.add_argument("--backbones", nargs="*", default=["graphormer"])
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--trials", type=int, default=8, help="search trials per cell (one seed each)")
    ap.add_argument("--confirm-seeds", type=int, default=5, help="fresh seeds of each cell's chosen configuration")
    ap.add_argument("--epochs", type=int, default=12, help="the cap on a seed's epochs")
    ap.add_argument("--patience", type=int, default=3, help="epochs without validation gain before a seed ends")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per trial")
    ap.add_argument("--pretrain-molecules", type=int, default=20000,
                    help="MOSES molecules per backbone (docs/benchmarks/pretraining.md)")
    ap.add_argument("--max-molecules", type=int, default=600)
    ap.add_argument("--runs", type=Path, default=ROOT / "runs")
    ap.add_argument("--out", default="table", help="file stem under docs/benchmarks/")
    ap.add_argument("--render-only", type=float, metavar="WALL_S",
                    help="write the files from the run folder these arguments name (that run's wall seconds); "
                    "nothing trains")
    ap.add_argument("--note", action="append", default=[], help="a paragraph on this run, added to the .md")
    args = ap.parse_args()
    t0 = time.perf_counter()
    spec = parse_spec(spec_dict(args))
    if args.render_only is not None:
        from runfolder import RunDir

        run = RunDir(spec.run_dir(args.runs))
        if not run.spec_file.exists():
            raise SystemExit(f"{run.path}: no run of these arguments to render")
    else:
        run = Sweep(spec, console=Console(stderr=True)).execute(executor=InProcessExecutor())
    summary = summarize(run.trial_records() + run.confirmation_records(), families(spec), importance=False)
    rows = rows_of(summary)
    verdicts, details = claims(rows)
    rt = rank_test(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    cd_file = None
    if rt.nemenyi is not None:
        cd_file = write_cd_diagram(rt, OUT / f"{args.out}-cd.svg").name
    wall = args.render_only if args.render_only is not None else time.perf_counter() - t0
    atomic_write_text(OUT / f"{args.out}.csv", to_csv(rows))
    atomic_write_text(OUT / f"{args.out}.md", render(rows, verdicts, details, rt, args, wall, cd_file))
    print(f"wrote {OUT / args.out}.md ({wall / 60:.0f} min)")


if __name__ == "__main__":
    main()
