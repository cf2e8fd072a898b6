"""The comparison table, with the statistics a reviewer asks for: per dataset and backbone,
every variant's configuration chosen on validation, confirmed on fresh seeds, its test
score with a 95% t interval, paired t tests against the best and against full
fine-tuning (Holm), the constant baseline on every row, "no signal" where nothing
beats it, each paper's claim tested once over every dataset (a random-effects
meta-analysis of the standardised per-seed differences, Hartung–Knapp, Holm; with the
smallest effect it could detect: reports/meta.py) beside the per-dataset paired tests,
and a Friedman/Nemenyi critical-difference diagram over the methods (Demšar 2006).

    .venv/bin/python benchmarks/table.py                      # the committed run (about 80 min on 2 cores)
    .venv/bin/python benchmarks/table.py --datasets freesolv --trials 2 --confirm-seeds 2 --out table-slice
    .venv/bin/python benchmarks/table.py --render-only 4440 --from-csv docs/benchmarks/table.csv   # the .md again

Everything runs through the sweep's own driver (in-process executor): Optuna searches
each cell on validation with one seed per trial and early stopping per cell (MO-ASHA,
scope cell: every variant gets the same budget), training ends once validation stalls
(``train.patience``), and ``budget.confirm_seeds`` trains each cell's best configuration
again on fresh seeds: those runs give every figure below. Writes
docs/benchmarks/table.md, table.csv and table-cd.svg.
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
from orchestrator.resolve import families  # noqa: E402
from orchestrator.spec import parse_spec  # noqa: E402
from orchestrator.stopping import rung_epochs  # noqa: E402
from orchestrator.sweep import Sweep  # noqa: E402
from reports.cd_diagram import write_cd_diagram  # noqa: E402
from reports.meta import SHARED_MOLECULES, DatasetInput, PooledVerdict, claim_verdicts, pooled_claim  # noqa: E402
from reports.stats import friedman_nemenyi, holm, paired_test, verdict  # noqa: E402
from reports.summary import summarize  # noqa: E402
from reports.verdicts import seed_scores, verdict_text  # noqa: E402
from runfolder.io import atomic_write_text  # noqa: E402
from workloads.metrics import metric_direction  # noqa: E402
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
BLOCKS = SHARED_MOLECULES  # datasets sharing molecules count as one block in the claims' pooling
# (label, A, B): "A beats B", as the papers claim it; tested in both directions
CLAIMS = [
    ("G-Adapter (with the proximal term) beats full fine-tuning (G-Adapter, Gui et al. 2024)",
     "g_adapter_proximal", "full"),
    ("G-Adapter beats the Adapter (G-Adapter)", "g_adapter_proximal", "adapter"),
    ("G-Adapter beats LoRA (G-Adapter)", "g_adapter_proximal", "lora"),
    ("the graph convolution helps: g_adapter beats adapter (G-Adapter, ablation)", "g_adapter", "adapter"),
    ("the Bregman proximal term helps: g_adapter_proximal beats g_adapter (G-Adapter, ablation)",
     "g_adapter_proximal", "g_adapter"),
    ("GIST's token helps the Adapter, on classification (GIST, Ruan et al. 2023: its KL term)",
     "adapter_gist", "adapter", "classification"),
    ("our regression variant of GIST (squared distance, no temperature; not the paper's) helps the Adapter",
     "adapter_gist", "adapter", "regression"),
    ("pretraining helps: full beats full_random_init", "full", "full_random_init"),
]
# a claim's optional fourth field keeps it to one kind of task: GIST's KL term is defined for
# classification, and its regression form here is the project's own, tested as a claim of its own
KIND_DIRECTION = {"classification": "maximize", "regression": "minimize"}


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


def claims(rows: list[dict]) -> tuple[list[PooledVerdict], list[str]]:
    """Each claim over the dataset × backbone groups with signal, pooled by a random-effects
    meta-analysis of the per-seed differences standardised by each group's gap between its best
    row and the constant predictor (``reports.meta``; b3db and b3db_regression one block), Holm
    over both directions of every claim; and per group the paired t test on the seeds (Holm over
    the groups), reported beside it."""
    groups = sorted({(r["dataset"], r["backbone"]) for r in rows if r["no_signal"] is not True})
    by = {(r["dataset"], r["backbone"], r["method"]): r for r in rows}
    tests, details = [], []
    for label, a, b, *kind in CLAIMS:
        inputs, paired = [], []
        for ds, bb in groups:
            ra, rb = by.get((ds, bb, a)), by.get((ds, bb, b))
            if ra is None or rb is None or (kind and ra["direction"] != KIND_DIRECTION[kind[0]]):
                continue
            means = [r["test_mean"] for r in rows if (r["dataset"], r["backbone"]) == (ds, bb)]
            best = max(means) if ra["direction"] == "maximize" else min(means)
            inputs.append(DatasetInput(f"{ds}/{bb}" if len({g[1] for g in groups}) > 1 else ds, ra["scores"],
                                       rb["scores"], ra["direction"], ra["constant"], best, BLOCKS.get(ds, ds)))
            paired.append(paired_test(ra["scores"], rb["scores"], direction=ra["direction"]))
        tests.append(pooled_claim(label, a, b, inputs))
        adj = holm([t.p for t in paired])
        counts = {"better": 0, "worse": 0, "not distinguishable": 0, "no test": 0}
        for t, p in zip(paired, adj):
            counts[verdict(t, p)] += 1
        details.append(f"per pair (paired t over seeds, Holm over the {len(paired)} pairs): {a} better in "
                       f"{counts['better']}, worse in {counts['worse']}, not distinguishable in "
                       f"{counts['not distinguishable']}" + (f", no test in {counts['no test']}"
                                                             if counts["no test"] else ""))
    return claim_verdicts(tests), details


def rank_test(rows: list[dict]):
    """Friedman/Nemenyi over the methods on the pairs with signal (scores signed so larger is better)."""
    table: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["no_signal"] is True or r["method"] == "constant":
            continue
        sign = 1.0 if r["direction"] == "maximize" else -1.0
        table.setdefault(f"{r['dataset']}/{r['backbone']}", {})[r["method"]] = sign * r["test_mean"]
    return friedman_nemenyi(table, direction="maximize")


def from_csv(path: Path) -> list[dict]:
    """The rows :func:`to_csv` wrote (per-seed scores included), with the verdict texts of the
    table rebuilt from the stored verdicts and Holm p values (what :func:`rows_of` would give)."""

    def num(x: str):
        return None if x == "" else float(x)

    def text(v: str, p: str, n: int) -> str:
        if v in ("best", "reference", ""):
            return v
        return f"no test (n={n})" if p == "" else f"{v} (p_Holm {float(p):.2g}, n={n})"

    out = []
    for r in csv.DictReader(io.StringIO(path.read_text())):
        n = int(r["n"])
        out.append({**r, "n": n, "test_mean": float(r["test_mean"]), "ci_low": num(r["ci_low"]),
                    "ci_high": num(r["ci_high"]), "constant": num(r["constant"]),
                    "no_signal": {"True": True, "False": False}.get(r["no_signal"]),
                    "direction": metric_direction(r["metric"]),
                    "trainable": int(r["trainable"]) if r["trainable"] else None,
                    "peak_rel_full": num(r["peak_rel_full"]), "latency_ms": num(r["latency_ms"]),
                    "params": ast.literal_eval(r["params"]), "scores": ast.literal_eval(r["scores"]),
                    "vs_best_text": text(r["vs_best"], r["vs_best_p_holm"], n),
                    "vs_full_text": text(r["vs_full"], r["vs_full_p_holm"], n)})
    return out


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


def _p(p: float | None) -> str:
    return "–" if p is None else f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def claims_section(verdicts: list[PooledVerdict], details: list[str]) -> list[str]:
    """The claims' table (pooled test) and, per claim, its datasets' effects and paired tests."""
    v0 = next((v for v in verdicts if v.claim.pooled is not None), None)
    fam = v0.family if v0 else 2 * len(verdicts)
    blocks = sorted({f"{' and '.join(bl.datasets)}" for v in verdicts for bl in v.claim.blocks
                     if len(bl.datasets) > 1})
    lines = [
        "Each claim \"a beats b\" is tested once over every dataset × backbone group with signal, by a "
        "random-effects meta-analysis (`reports/meta.py`). Per group, each confirmation seed's difference "
        "a − b is divided by the group's learnable gap, |best row's mean − the constant predictor's score| "
        "(the best row may be a reference such as ecfp_rf), and signed so that positive favours the claim "
        "(RMSE: lower is better): an effect of +0.10 is a tenth of the room above the constant predictor. A "
        "group's effect is the mean over its seeds, its variance s²/n"
        + (f"; {'; '.join(blocks)} share molecules and count as one block (their effects averaged, the "
           "variance of the average bounded for any correlation between them)" if blocks else "")
        + ". The blocks are pooled with DerSimonian–Laird τ² (DerSimonian & Laird 1986) and the modified "
        "Hartung–Knapp t interval on k − 1 df (Hartung & Knapp 2001; IntHout et al. 2014; the modification, "
        "max(SE_HK, SE_RE), keeps the level with variances from 5 seeds where plain HK does not). "
        f"Holm runs over the {fam} one-sided tests (every claim for and against), so a wrong verdict either "
        "way has probability at most 0.05. **Reproduced**: p for < 0.05 after Holm; **refuted**: p against "
        "< 0.05 after Holm; otherwise **not shown**, which refutes nothing. Detectable: the smallest true "
        f"pooled effect this design finds with 80% power at Holm's worst case, one-sided α = 0.05/{fam}, "
        "given these variances and τ² (modified-HK power with both taken as known: optimistic by up to about "
        "6 points of power when τ² is near 0, by the simulation in `tests/reports/test_pooled.py`). The "
        "interval is the unadjusted 95% one.",
        "",
        "| claim | k blocks (groups) | pooled effect (95% HK interval) | τ² | p for (Holm) | p against (Holm) "
        "| verdict | detectable (80%) |",
        "|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        c, f = v.claim, v.claim.pooled
        if f is None:
            lines.append(f"| {c.label} | {len(c.blocks)} ({len(c.datasets)}) | – | – | – | – | **no test** "
                         "(fewer than 2 blocks) | – |")
            continue
        lines.append(f"| {c.label} | {f.k} ({len(c.datasets)}) | {f.effect:+.3f} [{f.low:+.3f}, {f.high:+.3f}] "
                     f"| {f.tau2:.4f} | {_p(f.p_for)} ({_p(v.p_for_holm)}) | {_p(f.p_against)} "
                     f"({_p(v.p_against_holm)}) | **{v.verdict}** | {v.detectable:.3f} |")
    lines += ["", "Per claim, each group's standardised effect (mean ± standard error over its seeds) and the "
              "paired t tests on its seeds:", ""]
    for v, d in zip(verdicts, details):
        eff = ", ".join(f"{e.dataset} {e.effect:+.3f} ± {e.variance ** 0.5:.3f}"
                        + ("" if e.scale_by == "constant gap" else " (scaled by the seed SD)")
                        for e in v.claim.datasets)
        skipped = f" (no paired seeds: {', '.join(v.claim.skipped)})" if v.claim.skipped else ""
        lines.append(f"- {v.claim.label}: {eff}{skipped}; {d}.")
    return lines


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
    lines += ["", "## The papers' claims", ""] + claims_section(verdicts, details)
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
    ap.add_argument("--from-csv", type=Path, metavar="CSV", help="with --render-only: read the rows from a .csv "
                    "this script wrote (per-seed scores included) instead of the run folder; writes only the .md")
    ap.add_argument("--note", action="append", default=[], help="a paragraph on this run, added to the .md")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.from_csv is not None:
        if args.render_only is None:
            ap.error("--from-csv needs --render-only WALL_S (the run's wall seconds)")
        rows = from_csv(args.from_csv)
        verdicts, details = claims(rows)
        rt = rank_test(rows)
        cd = OUT / f"{args.out}-cd.svg"
        args.note.append(f"This page was re-rendered from {args.from_csv.name} (`--render-only {args.render_only:g} "
                         f"--from-csv`): the rows, scores and per-seed values are that run's; the claims section "
                         "is recomputed from its per-seed scores with the pooled test. Nothing was retrained.")
        atomic_write_text(OUT / f"{args.out}.md", render(rows, verdicts, details, rt, args, args.render_only,
                                                         cd.name if rt.nemenyi is not None and cd.exists() else None))
        print(f"wrote {OUT / args.out}.md from {args.from_csv}")
        return
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
