"""Compute to the same Pareto front: early stopping (``budget.stopping: mo_asha``) against
running every trial to its end. Writes docs/benchmarks/search.md, .json and .svg.

    .venv/bin/python benchmarks/search.py                 # every strategy × sampler seed (about 80 min here)
    .venv/bin/python benchmarks/search.py --calibrate     # one trial per cell, its CPU-seconds
    .venv/bin/python benchmarks/search.py --analyze DIR   # the doc from sweeps already run under DIR

Real training on the quick sweep's cells (``sweeps/quick.yaml``: B3DB and FreeSolv × the
four graph methods on Graphormer, WordNet × the three node methods on MiniLM), made
cheaper the same way for every strategy (smaller data slices, see ``CHEAPER``), with
``EPOCHS`` = 9 so that the rungs are epochs 1 and 3 (η = 3) and a trial that goes on ends at 9. Every strategy gets
``TRIALS`` trials per cell and runs with each sampler seed in ``SEEDS``:

1. ``tpe``: TPE, every trial to its end (the reference);
2. ``tpe_asha_cell``, ``tpe_asha_dataset``: TPE with ``mo_asha``, scope cell and dataset;
3. ``random_asha_dataset``: random search with ``mo_asha`` (scope dataset).

Each sweep runs with the real driver and the in-process executor (one trial at a time,
one torch thread), two sweeps at once on the two cores. Compute is CPU-seconds of the
trial (``benchmarks/support/search_trial.py``), rung latency timing included.

Per dataset: the hypervolume of the validation front (finished trials; stopped ones
are not final and never on it) after each trial, against the dataset's cumulative
compute, in the order trials finished. Objectives are scaled to [0, 1] from the ideal to
the nadir point of the union of every strategy's finished fronts of that dataset, and
the reference point is 1.1 in each (nadir plus a tenth of the range, after Ishibuchi et
al. 2018): one reference point per dataset, shared by every strategy. The doc also gives
the figures with the box set by every finished trial instead (``analyze(box="trials")``).
The hypervolume is Optuna's (``optuna._hypervolume.compute_hypervolume``, its WFG
implementation, private in Optuna but the only one installed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

COMMAND = ".venv/bin/python benchmarks/search.py"
DOC = ROOT / "docs" / "benchmarks" / "search"
EPOCHS, TRIALS, SEEDS = 9, 12, (0, 1, 2)
REFERENCE = "tpe"
STRATEGIES = {
    "tpe": {"sampler": "tpe", "stopping": {"type": "none"}},
    "tpe_asha_cell": {"sampler": "tpe", "stopping": {"type": "mo_asha", "min_epochs": 1, "reduction_factor": 3,
                                                     "scope": "cell"}},
    "tpe_asha_dataset": {"sampler": "tpe", "stopping": {"type": "mo_asha", "min_epochs": 1, "reduction_factor": 3,
                                                        "scope": "dataset"}},
    "random_asha_dataset": {"sampler": "random", "stopping": {"type": "mo_asha", "min_epochs": 1,
                                                              "reduction_factor": 3, "scope": "dataset"}},
}
# The same for every strategy: smaller slices than quick.yaml's, so the whole benchmark fits here.
CHEAPER = {"b3db": {"max_molecules": 400}, "freesolv": {"max_molecules": 400},
           "wordnet": {"max_train_nodes": 80, "split_fractions": [0.9, 0.05, 0.05]}}  # 214 validation nodes
LM_MAX_LENGTH = 16
PROFILE = {"latency_batch_size": 32, "latency_warmup": 2, "latency_repeats": 10, "rung_latency_repeats": 3}


def spec_dict(strategy: str, seed: int, root: Path) -> dict:
    d = yaml.safe_load((ROOT / "sweeps" / "quick.yaml").read_text())
    d["name"] = f"{strategy}-s{seed}"
    d["seed"] = seed
    for ds in d["datasets"]:
        ds.update(CHEAPER.get(ds["name"], {}))
    for b in d["backbones"]:
        if b["name"] == "lm":
            b["params"]["max_length"] = LM_MAX_LENGTH
    d["train"]["epochs"] = EPOCHS
    d["profile"] = PROFILE
    s = STRATEGIES[strategy]
    d["budget"] = {"trials_per_cell": TRIALS, "sampler": s["sampler"], "n_startup_trials": 4, "seeds": 1,
                   "stopping": s["stopping"]}
    d["resources"] = {"num_workers": 1, "cpus_per_worker": 1, "use_gpu": False, "max_concurrent_trials": 1}
    d["storage"] = {"root": str(root)}
    return d


def run_one(strategy: str, seed: int, root: Path) -> None:
    """One sweep, in this process (the driver and the in-process executor)."""
    from rich.console import Console

    from orchestrator.executor.inprocess import InProcessExecutor
    from orchestrator.spec import parse_spec
    from orchestrator.sweep import Sweep

    spec = parse_spec(spec_dict(strategy, seed, root), f"{strategy}-s{seed}")
    log = (root / f"{strategy}-s{seed}.log").open("a")
    Sweep(spec, console=Console(file=log, width=200)).execute(
        executor=InProcessExecutor("benchmarks.support.search_trial:timed_trial"))


def prepare(root: Path) -> None:
    """Featurize, cache LM states and pretrain once, before sweeps run side by side."""
    from rich.console import Console

    from orchestrator.spec import parse_spec
    from orchestrator.sweep import Sweep

    Sweep(parse_spec(spec_dict(REFERENCE, 0, root), "prepare"), console=Console(width=200)).prepare()


def calibrate(root: Path) -> None:
    """One trial per cell to the end: its CPU-seconds (to size the benchmark)."""
    from benchmarks.support.search_trial import timed_trial
    from orchestrator.resolve import trial_config
    from orchestrator.spec import parse_spec

    spec = parse_spec(spec_dict(REFERENCE, 0, root), "calibrate")
    total = 0.0
    for cell in spec.cells():
        params = {k: p.default() for k, p in spec.methods[cell.method].search.items()}
        r = timed_trial(trial_config(spec, cell, params, f"{cell.id}/cal"))
        total += r.notes["cpu_s"]
        print(f"{cell.id}: {r.notes['cpu_s']:.1f} CPU-s, {r.status} {r.objectives}", flush=True)
    print(f"one trial per cell: {total:.0f} CPU-s; a reference sweep ≈ {total * TRIALS:.0f} CPU-s")


# -- analysis ----------------------------------------------------------------
def load_runs(root: Path) -> dict[tuple[str, int], list]:
    from runfolder import RunDir

    runs = {}
    for strategy in STRATEGIES:
        for seed in SEEDS:
            path = root / f"{strategy}-s{seed}"
            if path.exists():
                runs[(strategy, seed)] = RunDir(path).trial_records()
    return runs


def _loss(r, name: str) -> float:
    v = float(r.objectives[name])
    return -v if name == "score" and r.metrics.direction == "maximize" else v


def _compute(r) -> float:
    """The trial's CPU-seconds; a trial that raised has none recorded: its worker's wall time
    (one thread) stands in, so failures are not free."""
    if "cpu_s" in r.notes:
        return float(r.notes["cpu_s"])
    t = r.timings
    if t.total_s is not None:
        return float(t.total_s)
    if t.worker_start_unix is not None and t.worker_done_unix is not None:
        return float(t.worker_done_unix - t.worker_start_unix)
    return 0.0


def hv(points: np.ndarray, ref: np.ndarray) -> float:
    from optuna._hypervolume import compute_hypervolume

    inside = points[np.all(points < ref, axis=1)]
    return float(compute_hypervolume(inside, ref)) if len(inside) else 0.0


def analyze(root: Path, box: str = "front") -> dict:
    """``box``: the scaling and reference point of each dataset's hypervolume. ``front``
    (the headline): objectives scaled from the ideal to the nadir point of the union of
    every strategy's finished fronts of that dataset, reference point 1.1 in each, so the
    hypervolume measures the region where the fronts are; ``trials``: scaled over every
    finished trial (the worst trials set the box, and most of its volume is won early)."""
    runs = load_runs(root)
    for (s, seed), recs in runs.items():  # a sweep cut short would lower its strategy's curve, or the target
        cells = {r.cell for r in recs}
        if len(recs) < TRIALS * len(cells):
            raise SystemExit(f"{root / f'{s}-s{seed}'}: {len(recs)} trial records, not {TRIALS} per cell: "
                             "run it to its end first")
    if (REFERENCE, SEEDS[0]) not in runs:
        raise SystemExit(f"{root}: no reference sweep ({REFERENCE}-s{SEEDS[0]}) to compare with")
    datasets = sorted({r.dataset_name for recs in runs.values() for r in recs})
    out: dict = {"datasets": {}, "box": box}
    for ds in datasets:
        recs = {k: sorted([r for r in v if r.dataset_name == ds], key=lambda r: r.timings.driver_received_unix or 0)
                for k, v in runs.items()}
        names = next(r.objective_names for v in recs.values() for r in v if r.status == "ok")
        ok_all = np.array([[_loss(r, n) for n in names] for v in recs.values() for r in v if r.status == "ok"])
        if box == "front":  # the union front's ideal and nadir points (Ishibuchi et al. 2018)
            from orchestrator.stopping import non_dominated_fronts

            ok_all = ok_all[non_dominated_fronts(ok_all, ["minimize"] * len(names))[0]]
        lo, hi = ok_all.min(axis=0), ok_all.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        ref = np.full(len(names), 1.1)
        curves = {}
        for key, v in recs.items():
            pts, cum, curve = [], 0.0, []
            for r in v:
                cum += _compute(r)
                if r.status == "ok":
                    pts.append((np.array([_loss(r, n) for n in names]) - lo) / span)
                curve.append((cum, hv(np.array(pts), ref) if pts else 0.0))
            curves[key] = curve
        per = {}
        for (strategy, seed), curve in curves.items():
            target_curve = curves.get((REFERENCE, seed))
            if target_curve is None:
                continue
            target = 0.98 * target_curve[-1][1]
            reach = next((c for c, h in curve if h >= target), None)
            knee = _knee(recs[(strategy, seed)], names, lo, span)
            per.setdefault(strategy, []).append({
                "seed": seed, "final_hv": curve[-1][1], "reference_final_hv": target_curve[-1][1],
                "compute_s": curve[-1][0], "compute_to_target_s": reach,
                "trials": len(recs[(strategy, seed)]),
                "stopped": sum(r.status == "stopped" for r in recs[(strategy, seed)]),
                "finished": sum(r.status == "ok" for r in recs[(strategy, seed)]),
                "knee": knee})
        out["datasets"][ds] = {"objectives": names, "per_strategy": per,
                               "curves": {f"{s}-s{seed}": c for (s, seed), c in curves.items()}}
    ratios, hv_rel, missed = [], [], 0
    for ds, d in out["datasets"].items():
        ref_by_seed = {e["seed"]: e for e in d["per_strategy"].get(REFERENCE, [])}
        for seed, ref_e in ref_by_seed.items():
            best = None
            for s, entries in d["per_strategy"].items():
                if s == REFERENCE:
                    continue
                for e in entries:
                    if e["seed"] == seed and e["compute_to_target_s"] is not None:
                        best = e["compute_to_target_s"] if best is None else min(best, e["compute_to_target_s"])
            if best is None:
                missed += 1
                ratios.append(0.0)  # missed: no saving at all counted (not the whole budget)
            else:
                ratios.append(ref_e["compute_to_target_s"] / best)
        for s, entries in d["per_strategy"].items():
            for e in entries:
                if s != REFERENCE and e["reference_final_hv"] > 0:
                    hv_rel.append((s, ds, e["final_hv"] / e["reference_final_hv"]))
    out["compute_ratio"] = statistics.median(ratios) if ratios else None
    out["compute_ratios"] = ratios
    out["missed"] = missed
    by_strategy = {}
    for s, _, x in hv_rel:
        by_strategy.setdefault(s, []).append(x)
    out["final_hv_ratio_median"] = {s: statistics.median(v) for s, v in by_strategy.items()}
    return out


def _knee(recs: list, names: list[str], lo: np.ndarray, span: np.ndarray) -> dict | None:
    """The finished trial nearest the ideal point (scaled objectives): its validation and test score."""
    ok = [r for r in recs if r.status == "ok"]
    if not ok:
        return None
    d = [float(np.linalg.norm((np.array([_loss(r, n) for n in names]) - lo) / span)) for r in ok]
    r = ok[int(np.argmin(d))]
    return {"cell": r.cell, "trial": r.optuna_trial, "val_score": r.metrics.val_score,
            "test_score": r.metrics.test_score, "metric": r.metrics.metric}


def svg(result: dict) -> str:
    """Hypervolume against compute, one panel per dataset: a small SVG written by hand
    (no plotting library with a static backend is installed here)."""
    colors = {"tpe": "#444", "tpe_asha_cell": "#1f77b4", "tpe_asha_dataset": "#d62728",
              "random_asha_dataset": "#2ca02c"}
    w, h, pad = 360, 240, 40
    panels = []
    for i, (ds, d) in enumerate(result["datasets"].items()):
        curves = d["curves"]
        xmax = max(c[-1][0] for c in curves.values()) or 1.0
        ymax = max(max(hh for _, hh in c) for c in curves.values()) or 1.0
        g = [f'<g transform="translate({i * (w + 20)},0)"><rect width="{w}" height="{h}" fill="white" stroke="#ccc"/>',
             f'<text x="{w / 2}" y="16" text-anchor="middle" font-size="13">{ds}</text>',
             f'<text x="{w / 2}" y="{h - 6}" text-anchor="middle" font-size="11">cumulative CPU-s (max {xmax:.0f})</text>',
             f'<text x="12" y="{h / 2}" font-size="11" transform="rotate(-90 12 {h / 2})" text-anchor="middle">'
             f'hypervolume (max {ymax:.3f})</text>']
        for key, c in curves.items():
            strategy = key.rsplit("-s", 1)[0]
            pts = " ".join(f"{pad + (w - 2 * pad) * x / xmax:.1f},{h - pad - (h - 2 * pad) * y / ymax:.1f}" for x, y in c)
            g.append(f'<polyline fill="none" stroke="{colors.get(strategy, "#999")}" stroke-width="1.3" '
                     f'points="{pts}"><title>{key}</title></polyline>')
        g.append("</g>")
        panels.append("".join(g))
    legend = "".join(f'<text x="{10 + j * 170}" y="{h + 18}" fill="{c}" font-size="12">— {s}</text>'
                     for j, (s, c) in enumerate(colors.items()))
    width = len(panels) * (w + 20)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h + 30}" font-family="sans-serif">'
            + "".join(panels) + legend + "</svg>\n")


def _compute_share(result: dict) -> dict[str, float]:
    """Each strategy's whole compute over the reference's, median over datasets × seeds."""
    out: dict[str, list[float]] = {}
    for d in result["datasets"].values():
        ref = {e["seed"]: e["compute_s"] for e in d["per_strategy"].get(REFERENCE, [])}
        for s, entries in d["per_strategy"].items():
            for e in entries:
                if ref.get(e["seed"]):
                    out.setdefault(s, []).append(e["compute_s"] / ref[e["seed"]])
    return {s: statistics.median(v) for s, v in out.items()}


def write_doc(result: dict, other: dict | None, wall_s: float | None, git: str | None,
              notes: list[str] | None = None) -> None:
    """``result``: the headline analysis (box ``front``); ``other``: the same sweeps with the
    box set by every finished trial."""
    from runfolder.io import atomic_write_text

    share = _compute_share(result)
    ratio = result["compute_ratio"]
    best_hv = max(result["final_hv_ratio_median"].values()) if result["final_hv_ratio_median"] else float("nan")
    mark = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    lines = ["# Early stopping: compute to the same Pareto front", "",
             f"Regenerate: `{COMMAND}` (then `{COMMAND} --analyze DIR` to rewrite this page from the sweeps). "
             f"Measured on {platform.node()} ({os.cpu_count()} CPUs), git `{git or '?'}`, "
             f"{'%.0f min' % (wall_s / 60) if wall_s else 'wall time not recorded'} for all sweeps, two at a time.", "",
             f"Real training on the quick sweep's 11 cells with smaller slices ({CHEAPER}, LM max_length "
             f"{LM_MAX_LENGTH}), profile {PROFILE}, {EPOCHS} epochs, {TRIALS} trials per cell, sampler seeds "
             f"{list(SEEDS)}; rungs at epochs 1 and 3 (η = 3). Strategies: `tpe` (every trial to its end, the "
             "reference), `tpe_asha_cell`, `tpe_asha_dataset` (TPE with `mo_asha`, scope cell / dataset), "
             "`random_asha_dataset` (random search with `mo_asha`, scope dataset). Compute: the trials' "
             "CPU-seconds (one thread each), rung latency timing included. Hypervolume of the validation front "
             "(finished trials only) with objectives scaled from the ideal to the nadir point of the union of "
             "every strategy's finished fronts of the dataset, reference point 1.1 in each (shared by every "
             "strategy and seed).", "",
             "## Targets", "",
             f"- compute to the reference's hypervolume: **compute_ratio {ratio:.2f}** (median over datasets × seeds "
             f"of the reference's compute over the best `mo_asha` strategy's, both to 0.98 × the reference's final "
             f"hypervolume; target ≥ 3): {mark(ratio is not None and ratio >= 3)}. Per dataset × seed: "
             f"{[round(x, 2) for x in result['compute_ratios']]}; in {result['missed']} of "
             f"{len(result['compute_ratios'])} pairs no `mo_asha` strategy reached the target (counted as 0).",
             "- final hypervolume within 2% of the reference's (median over datasets × seeds): "
             + ", ".join(f"{s} {x:.3f}" for s, x in result["final_hv_ratio_median"].items())
             + f": {mark(best_hv >= 0.98)}.",
             "- whole compute over the reference's (median over datasets × seeds): "
             + ", ".join(f"{s} {x:.2f}" for s, x in share.items() if s != REFERENCE) + ".", ""]
    if other is not None:
        lines += [f"With the box set by every finished trial instead (the worst trials far from the fronts set "
                  f"it, so most of its volume is won by the first few good trials): compute_ratio "
                  f"{other['compute_ratio']:.2f} ({other['missed']} of {len(other['compute_ratios'])} pairs missed), "
                  "final hypervolume over the reference's "
                  + ", ".join(f"{s} {x:.3f}" for s, x in other["final_hv_ratio_median"].items()) + ".", ""]
    lines += ["![hypervolume against compute, one panel per dataset, one line per strategy and seed](search.svg)", ""]
    for ds, d in result["datasets"].items():
        lines += [f"## {ds}", "", f"objectives: {', '.join(d['objectives'])}", "",
                  "| strategy | seed | trials | stopped | finished | compute (CPU-s) | compute to 0.98×ref HV | "
                  "final HV | ref final HV | knee: validation, test (variant) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for s, entries in d["per_strategy"].items():
            for e in entries:
                reach = "missed" if e["compute_to_target_s"] is None else f"{e['compute_to_target_s']:.0f}"
                knee = e["knee"]
                kt = (f"{knee['val_score']:.3f}, {knee['test_score']:.3f} {knee['metric']} "
                      f"({knee['cell'].split('__')[-1]})" if knee else "–")
                lines.append(f"| {s} | {e['seed']} | {e['trials']} | {e['stopped']} | {e.get('finished', '?')} | "
                             f"{e['compute_s']:.0f} | {reach} | {e['final_hv']:.4f} | {e['reference_final_hv']:.4f} | "
                             f"{kt} |")
        lines.append("")
    lines += WHY
    if notes:
        lines += ["## Since these sweeps ran", ""] + [f"- {n}" for n in notes] + [""]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(DOC.with_suffix(".md"), "\n".join(lines) + "\n")
    atomic_write_text(DOC.with_suffix(".json"), json.dumps(
        {"command": COMMAND, "git": git, "wall_s": wall_s, "compute_ratio": ratio,
         "compute_share": share, "front_box": result, "trials_box": other}, indent=1, default=float) + "\n")
    atomic_write_text(DOC.with_suffix(".svg"), svg(result))


# Read from the figures above when they were written; kept with the script so the page says it.
WHY = [
    "## Why the targets are missed",
    "",
    "- **Every strategy gets the same trials.** With 12 trials per cell, early stopping can only save the "
    "epochs of the trials it stops; it cannot spend them on more configurations. The reference keeps every "
    "trial's final point, while a `mo_asha` front is built from the third or so of trials that went on, so its "
    "final hypervolume is lower unless those were exactly the front's trials.",
    "- **Rung 1 is one epoch of nine on small, noisy validation sets** (40 molecules, 214 nodes): a rank "
    "after one epoch often differs from the rank at nine, and stopped trials are lost to the front for good.",
    "- **Fixed costs per trial.** Loading, the final test and latency profile of a finished trial, and the "
    "rung latency timing do not shrink with fewer epochs; on FreeSolv a whole trial is 1–3 CPU-s, so "
    "stopping at epoch 1 saves little there.",
    "- **Scope.** `dataset` stops more (a variant dominated on the dataset stops after one epoch) and saves "
    "the most compute, `cell` keeps more of each variant's front. The defaults follow the figures: the laptop "
    "sweep (`quick.yaml`, bound by its time) stops with scope `dataset`; the cluster sweep (`full.yaml`, the "
    "comparison a reviewer reads) keeps every trial, since stopping cost it front quality here.",
    "",
]


def _git() -> str | None:
    from orchestrator.storage import git_sha

    return git_sha()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT / "runs" / "bench-search")
    ap.add_argument("--one", nargs=2, metavar=("STRATEGY", "SEED"), help="run one sweep (used by the full run)")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--analyze", type=Path, metavar="DIR", help="write the doc from sweeps already run under DIR")
    ap.add_argument("--parallel", type=int, default=2, help="sweeps at once (one core each)")
    ap.add_argument("--wall-s", type=float, help="with --analyze: the sweeps' wall time, for the page")
    ap.add_argument("--git", help="with --analyze: the commit the sweeps ran (default: this checkout's)")
    ap.add_argument("--note", action="append", default=[], help="with --analyze: a paragraph for the page "
                    "(what changed in the code since the sweeps ran)")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if a.one:
        run_one(a.one[0], int(a.one[1]), a.root)
        return
    a.root.mkdir(parents=True, exist_ok=True)
    if a.calibrate:
        calibrate(a.root)
        return
    if a.analyze:
        write_doc(analyze(a.analyze), analyze(a.analyze, box="trials"), a.wall_s, a.git or _git(), a.note)
        return
    t0 = time.perf_counter()
    prepare(a.root)
    jobs = [(s, seed) for seed in SEEDS for s in STRATEGIES]

    def go(job):
        s, seed = job
        t = time.perf_counter()
        rc = subprocess.call([sys.executable, __file__, "--root", str(a.root), "--one", s, str(seed)])
        print(f"{s}-s{seed}: rc {rc}, {time.perf_counter() - t:.0f} s", flush=True)
        if rc != 0:
            raise SystemExit(f"{s}-s{seed} exited {rc}: see {a.root / f'{s}-s{seed}.log'}")

    with ThreadPoolExecutor(a.parallel) as pool:
        list(pool.map(go, jobs))
    write_doc(analyze(a.root), analyze(a.root, box="trials"), time.perf_counter() - t0, _git())
    print(f"wrote {DOC.with_suffix('.md')}")


if __name__ == "__main__":
    main()
