"""What the orchestrator costs: per-trial overhead, slot utilization, driver memory
as trials accumulate, report time, and load counters. Writes
docs/benchmarks/orchestration.md and docs/benchmarks/orchestration.json.

    .venv/bin/python benchmarks/orchestration.py            # everything (about 10 min on 2 CPU cores)
    .venv/bin/python benchmarks/orchestration.py --quick    # small counts, prints only
    .venv/bin/python benchmarks/orchestration.py --part rungs   # the early-stopping part alone (about 1 min)

Each part runs the real sweep driver (``orchestrator.sweep.Sweep``) with the
default executor (long-lived Ray Train worker groups), on synthetic trial
functions of known cost (``benchmarks/support/synthetic.py``: a no-op, and a
real small training loop that runs for a fixed wall time) or on real tiny trials,
against the floor: the same trials in a plain in-process Optuna ask/tell loop.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.support import worker_pythonpath  # noqa: E402
from runfolder import TrialRecord  # noqa: E402
from runfolder.record import Overhead  # noqa: E402

COMMAND = ".venv/bin/python benchmarks/orchestration.py"
SYN = "benchmarks.support.synthetic:{}"


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def spec_dict(name: str, root: Path, cells: int, trials: int, epochs: int, slots: int = 1, workers: int = 1,
              sampler: str = "tpe", stopping: dict | None = None) -> dict:
    """A spec whose cells differ only in name (one dataset, `cells` variants of `full`)."""
    return {
        "name": name,
        "datasets": [{"name": "freesolv", "max_molecules": 120}],
        "backbones": [{"name": "graphormer", "params": {"hidden_dim": 32, "num_layers": 2, "num_heads": 4,
                                                        "ffn_dim": 64},
                       "pretrain": {"max_molecules": 300, "epochs": 1}}],
        "train": {"epochs": epochs, "batch_size": 32},
        "profile": {"latency_batch_size": 8, "latency_warmup": 1, "latency_repeats": 3},
        "methods": {f"v{i}": {"method": "full", "search": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2,
                                                                   "log": True}}} for i in range(cells)},
        "budget": {"trials_per_cell": trials, "sampler": sampler, "n_startup_trials": 2,
                   **({"stopping": stopping} if stopping else {})},
        "resources": {"num_workers": workers, "cpus_per_worker": 1, "max_concurrent_trials": slots},
        "storage": {"root": str(root)},
    }


class Probe:
    """Samples the driver's RSS at chosen finished-trial counts."""

    def __init__(self, marks=()) -> None:
        self.marks, self.seen = set(marks), {}

    def __call__(self, finished: int) -> None:
        if finished in self.marks:
            self.seen[finished] = rss_mb()


def run_sweep(d: dict, trial_fn: str | None, probe: Probe | None = None, slots_cpus: int | None = None) -> tuple:
    """Run a sweep with the Ray slot executor; return (records, wall seconds)."""
    from rich.console import Console

    from orchestrator.executor.ray_slots import RaySlotExecutor
    from orchestrator.spec import parse_spec
    from orchestrator.sweep import Sweep

    spec = parse_spec(d)
    sweep = Sweep(spec, console=Console(file=open(os.devnull, "w")))
    if probe is not None:
        finish = sweep.finish

        def wrapped(p, record):
            finish(p, record)
            probe(sweep.finished)

        sweep.finish = wrapped  # the benchmark's own hook on its own object
    r = spec.resources
    ex = RaySlotExecutor({"num_workers": r.num_workers, "cpus_per_worker": r.cpus_per_worker, "use_gpu": False},
                         r.max_concurrent_trials, sweep.run.ray_dir, num_cpus=slots_cpus or os.cpu_count(),
                         trial_fn=trial_fn or "workloads:run_trial", name=spec.name)
    t0 = time.perf_counter()
    sweep.execute(executor=ex)
    wall = time.perf_counter() - t0
    return sweep.run.trial_records(), wall


def plain_loop(d: dict, trial_fn: str) -> float:
    """The floor: the same number of trials in a bare in-process Optuna loop."""
    import optuna

    from orchestrator.executor.base import resolve
    from orchestrator.spec import parse_spec
    from orchestrator.sweep import trial_config

    spec = parse_spec(d)
    fn = resolve(trial_fn)
    t0 = time.perf_counter()
    for cell in spec.cells():
        study = optuna.create_study(directions=["minimize"] * 3)
        for _ in range(spec.budget.trials_per_cell):
            t = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
            rec = fn(trial_config(spec, cell, t.params, "plain"))
            study.tell(t, [rec.objectives[k] for k in ("score", "train_memory_mb", "latency_ms_per_graph")])
    return time.perf_counter() - t0


def overheads(records: list[TrialRecord]) -> list[float]:
    return [r.wall_s - r.timings.total_s for r in records if r.status in ("ok", "stopped")]


def driver_gaps(ok: list[TrialRecord]) -> list[float]:
    """Per slot, the time from receiving a record to submitting the slot's next trial."""
    by: dict[int, list[TrialRecord]] = {}
    for r in ok:
        by.setdefault(r.executor.slot, []).append(r)
    gaps = []
    for rs in by.values():
        rs.sort(key=lambda r: r.timings.submitted_unix)
        gaps += [b.timings.submitted_unix - a.timings.driver_received_unix for a, b in zip(rs, rs[1:])]
    return gaps


def busy_after_start(ok: list[TrialRecord]) -> float:
    """Mean over slots of the fraction of time each slot spent in trial work, from the
    moment its worker group was up (its first trial began) to its last record."""
    by: dict[int, list[TrialRecord]] = {}
    for r in ok:
        by.setdefault(r.executor.slot, []).append(r)
    fracs = []
    for rs in by.values():
        span = max(r.timings.driver_received_unix for r in rs) - min(r.timings.worker_start_unix for r in rs)
        fracs.append(sum(r.timings.total_s for r in rs) / span if span > 0 else 0.0)
    return statistics.fmean(fracs)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def part_overhead(tmp: Path, n: int, trial_s: float, quick: bool) -> dict:
    """Per-trial overhead and utilization: no-op trials and `trial_s`-second training trials."""
    out = {}
    for label, fn, epochs, slots, workers in (
        ("no-op, 1 worker", "noop_trial", 1, 1, 1),
        (f"{trial_s:g} s training loop, 2 slots × 1 worker", "busy_trial", int(trial_s * 10), 2, 1),
        ("no-op, 2-worker DDP group", "noop_trial", 1, 1, 2),
    ):
        cells = 2
        per_cell = max(1, n // cells)
        d = spec_dict(f"ovh-{fn}-{slots}-{workers}", tmp / "runs", cells, per_cell, epochs, slots, workers)
        recs, wall = run_sweep(d, SYN.format(fn))
        ok = [r for r in recs if r.status == "ok"]
        ov = overheads(ok)
        # each slot's first trial also waits for its worker group to start
        firsts = [o for r, o in zip(ok, ov) if r.executor.trials_served_by_worker == 1]
        steady = [o for r, o in zip(ok, ov) if r.executor.trials_served_by_worker > 1] or ov
        work = sum(r.timings.total_s for r in ok)
        start = min(r.timings.submitted_unix for r in ok)
        first_start = max(r.timings.worker_start_unix for r in ok
                          if r.executor.trials_served_by_worker == 1)  # every slot is up
        # The floor: a bare in-process loop. For the fixed-cost training trials it is known
        # without running it: their work, spread ideally over the slots.
        floor = plain_loop(d, SYN.format(fn)) if fn == "noop_trial" else work / slots
        out[label] = {
            "trials": len(recs), "ok": len(ok), "slots": slots, "workers_per_trial": workers,
            "median_overhead_s": statistics.median(steady), "p95_overhead_s": pct(steady, 0.95),
            "first_trial_overhead_s": max(firsts) if firsts else None,
            "utilization": work / (wall * slots),
            "utilization_after_start": busy_after_start(ok),
            "slot_start_s": first_start - start,
            # what the driver does between two trials of a slot (tell, record write, ask, config, submit)
            "driver_gap_s": statistics.median(driver_gaps(ok) or [0.0]),
            "wall_s": wall, "plain_loop_wall_s": floor,
            "wall_ratio": wall / floor if floor > 0 else None,
            "breakdown_median": {k: statistics.median(getattr(r.timings.overhead, k) for r in ok)
                                 for k in Overhead.model_fields}
                                if ok and ok[0].timings.overhead is not None else {},
        }
        print(label, json.dumps(out[label], default=float)[:400], flush=True)
    return out


def part_rungs(tmp: Path, n: int) -> dict:
    """Early stopping's cost: training-loop trials of 8 × 0.1 s epochs with ``mo_asha``
    (η = 2, rungs at epochs 1, 2 and 4, scope dataset), two slots. Each rung report is a
    round trip from the worker to the driver's decision and back, timed inside the trial;
    a trial's overhead with rungs is its overhead outside the trial plus those round trips."""
    d = spec_dict("rungs", tmp / "runs", 2, max(1, n // 2), 8, slots=2, sampler="random",
                  stopping={"type": "mo_asha", "min_epochs": 1, "reduction_factor": 2, "scope": "dataset"})
    recs, wall = run_sweep(d, SYN.format("busy_trial"))
    done = [r for r in recs if r.status in ("ok", "stopped")]
    with_rungs = [o + sum(r.notes.get("rung_round_trip_s", [])) for r, o in zip(done, overheads(done))]
    steady = [o for r, o in zip(done, with_rungs) if r.executor.trials_served_by_worker > 1] or with_rungs
    rtts = [x for r in done for x in r.notes.get("rung_round_trip_s", [])]
    out = {"trials": len(recs), "finished": sum(r.status == "ok" for r in recs),
           "stopped": sum(r.status == "stopped" for r in recs), "rung_reports": len(rtts),
           "median_overhead_with_rungs_s": statistics.median(steady), "p95_overhead_with_rungs_s": pct(steady, 0.95),
           "median_rung_round_trip_s": statistics.median(rtts) if rtts else None,
           "p95_rung_round_trip_s": pct(rtts, 0.95) if rtts else None, "wall_s": wall,
           "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    print("rungs", json.dumps(out, default=float), flush=True)
    return out


def part_scaling(tmp: Path, total: int, cells: int) -> dict:
    per_cell = total // cells
    marks = (total // 10, total)
    probe = Probe(marks)
    d = spec_dict("scale", tmp / "runs", cells, per_cell, 1, sampler="random")
    recs, wall = run_sweep(d, SYN.format("noop_trial"), probe)
    recs.sort(key=lambda r: r.timings.submitted_unix)
    ov = overheads(recs)
    k = max(1, len(ov) // 10)
    from reports.html import build_report

    t0 = time.perf_counter()
    build_report(tmp / "runs" / "scale")
    report_s = time.perf_counter() - t0
    lo, hi = probe.seen.get(marks[0]), probe.seen.get(marks[1])
    out = {
        "trials": len(recs), "cells": cells, "wall_s": wall,
        "rss_mb_at": {str(m): probe.seen.get(m) for m in marks},
        "rss_growth": (hi - lo) / lo if lo and hi else None,
        "median_overhead_first_s": statistics.median(ov[:k]), "median_overhead_last_s": statistics.median(ov[-k:]),
        "report_s": report_s,
    }
    print("scaling", json.dumps(out), flush=True)
    return out


def part_counters(tmp: Path, n: int) -> dict:
    d = spec_dict("counters", tmp / "runs", 1, n, 1)
    d["methods"] = {"lora": {"search": {"r": {"type": "categorical", "choices": [2, 4]}}}}
    recs, wall = run_sweep(d, None)
    recs.sort(key=lambda r: r.timings.submitted_unix)
    rows = [{"trial": r.optuna_trial, "worker_pid": r.executor.worker_pid, **{
        k: r.process.loads[k] for k in ("dataset_builds", "dataset_reads", "dataset_reuses", "checkpoint_reads",
                                        "checkpoint_reuses")}, "wall_s": r.wall_s, "work_s": r.timings.total_s}
            for r in recs if r.status == "ok"]
    print("counters", json.dumps(rows), flush=True)
    return {"rows": rows, "wall_s": wall}


def render(res: dict) -> str:
    o = res["overhead"]
    lines = [
        "# Orchestration cost",
        "",
        f"Regenerate with `{COMMAND}` (or `make benchmark`). Measured {res['when']} on {res['host']}: "
        f"{res['cpus']} CPUs, Ray {res['ray']}, Optuna {res['optuna']}, torch {res['torch']}; git `{res['git']}`. "
        f"The run took {res['seconds'] / 60:.1f} min.",
        "",
        "Every figure comes from the real sweep driver and its default executor: one long-lived Ray Train "
        "worker group per slot, pulling trials from a mailbox. Overhead of a trial = the wall time the "
        "driver saw from submitting it to receiving its record, minus the time the trial function "
        "reports for its own work. The first trial of each slot also pays the worker group's start "
        "(shown apart); the median and p95 are over the other trials. *Driver between trials*: per "
        "slot, the median time from receiving a record to submitting the slot's next trial (Optuna tell and "
        "ask on SQLite, the record write, the trial config), during which that slot idles.",
        "",
        "## Overhead and utilization",
        "",
        "| workload | trials | slots × workers | median overhead (s) | p95 (s) | driver between trials (s) | "
        "first trial of a slot (s) | utilization | slot busy once up | sweep wall (s) | "
        "plain loop wall (s) | ratio |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for label, r in o.items():
        lines.append(
            f"| {label} | {r['trials']} | {r['slots']} × {r['workers_per_trial']} | {r['median_overhead_s']:.3f} | "
            f"{r['p95_overhead_s']:.3f} | {r['driver_gap_s']:.3f} | {r['first_trial_overhead_s']:.1f} | "
            f"{r['utilization']:.3f} | "
            f"{r['utilization_after_start']:.3f} | "
            f"{r['wall_s']:.1f} | {r['plain_loop_wall_s']:.2f} | {r['wall_ratio']:.1f} |")
    lines += ["", "Utilization = summed trial work / (sweep wall × slots); the sweep wall includes starting Ray "
              "and the worker groups once. *Slot busy once up*: per slot, its trials' work over the time from its first trial's start to its last record, averaged over slots. Plain loop: the same trials in an in-process Optuna ask/tell loop "
              "with nothing else (the floor); for the fixed-cost training trials, their summed work divided by the "
              "slots (an ideal schedule).", "",
              "Median breakdown of the overhead (seconds):", "",
              "| workload | " + " | ".join(next(iter(o.values()))["breakdown_median"]) + " |",
              "|---|" + "--:|" * len(next(iter(o.values()))["breakdown_median"])]
    for label, r in o.items():
        lines.append(f"| {label} | " + " | ".join(f"{v:.4f}" for v in r["breakdown_median"].values()) + " |")
    s = res["scaling"]
    lines += ["", "## Scaling", "",
              f"{s['trials']} no-op trials across {s['cells']} cells (random sampler), one slot, in "
              f"{s['wall_s']:.0f} s.", "",
              "| finished trials | driver RSS (MB) |", "|--:|--:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in s["rss_mb_at"].items() if v is not None]
    lines += ["", f"Driver memory grew {100 * s['rss_growth']:.1f}% from the first to the last mark. Median "
              f"overhead of the first 10% of trials: {s['median_overhead_first_s']:.3f} s; of the last 10%: "
              f"{s['median_overhead_last_s']:.3f} s. `orchestrator report` on all {s['trials']} trials: "
              f"{s['report_s']:.1f} s.", "",
              "## Loads per worker, not per trial", "",
              "Real tiny trials (LoRA on a 2-layer Graphormer, FreeSolv subset) through one slot; the counters "
              "are the worker process's totals after each trial.", "",
              "| trial | worker pid | dataset builds | dataset reads | dataset reuses | checkpoint reads | "
              "checkpoint reuses | wall (s) | work (s) |", "|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in res["counters"]["rows"]:
        lines.append(f"| {r['trial']} | {r['worker_pid']} | {r['dataset_builds']} | {r['dataset_reads']} | "
                     f"{r['dataset_reuses']} | {r['checkpoint_reads']} | {r['checkpoint_reuses']} | "
                     f"{r['wall_s']:.2f} | {r['work_s']:.2f} |")
    if res.get("rungs"):
        g = res["rungs"]
        lines += ["", "## Rung round trips (early stopping)", "",
                  f"{g['trials']} training-loop trials (8 epochs of 0.1 s) with `budget.stopping: mo_asha` (η = 2, "
                  f"scope dataset), two slots, measured {g['when']}: {g['finished']} finished, {g['stopped']} "
                  f"stopped at a rung, {g['rung_reports']} rung reports. A rung report's round trip (worker → "
                  f"driver's decision, storage write included → worker): median {g['median_rung_round_trip_s']:.4f} s, "
                  f"p95 {g['p95_rung_round_trip_s']:.4f} s. Per-trial overhead, its rung round trips included: "
                  f"median {g['median_overhead_with_rungs_s']:.3f} s, p95 {g['p95_overhead_with_rungs_s']:.3f} s "
                  "(each slot's first trial, which waits for its worker group, left out).",
                  "", f"Regenerate this part alone: `{COMMAND} --part rungs`."]
    lines += ["", "## Targets", ""] + [f"- {t}" for t in res["targets"]]
    return "\n".join(lines) + "\n"


def targets(res: dict) -> list[str]:
    o = res["overhead"]  # find each part by what it is (the JSON file sorts keys)
    one = next(r for k, r in o.items() if k.startswith("no-op") and r["workers_per_trial"] == 1)
    ddp = next(r for r in o.values() if r["workers_per_trial"] == 2)
    busy = next(r for k, r in o.items() if not k.startswith("no-op"))
    s = res["scaling"]
    def mark(ok): return "met" if ok else "**missed**"
    g = res.get("rungs")
    rung_target = ([f"median overhead ≤ 0.05 s per trial with early stopping, rung round trips included: "
                    f"{g['median_overhead_with_rungs_s']:.3f} s, {mark(g['median_overhead_with_rungs_s'] <= 0.05)}"]
                   if g else [])
    return rung_target + [
        f"median overhead ≤ 0.3 s for single-worker trials: {one['median_overhead_s']:.3f} s, "
        f"{mark(one['median_overhead_s'] <= 0.3)}",
        f"median overhead ≤ 3 s for two-worker DDP trials: {ddp['median_overhead_s']:.3f} s, "
        f"{mark(ddp['median_overhead_s'] <= 3)}",
        f"slot utilization ≥ 0.95 for {res['trial_s']:g}-second trials: {busy['utilization']:.3f} over the whole "
        f"sweep wall (worker-group start included), {mark(busy['utilization'] >= 0.95)}; "
        f"{busy['utilization_after_start']:.3f} of each slot's time once it is up: the gap is the "
        f"one-time start of the worker groups ({busy['first_trial_overhead_s']:.0f} s, two groups starting at "
        f"once on {res['cpus']} cores) within a {busy['wall_s']:.0f} s sweep",
        f"driver memory within 20% between {list(s['rss_mb_at'])[0]} and {list(s['rss_mb_at'])[-1]} finished "
        f"trials: {100 * s['rss_growth']:+.1f}%, {mark(abs(s['rss_growth']) <= 0.2)}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts, print only")
    ap.add_argument("--trial-seconds", type=float, default=30.0, help="cost of the training-loop trials")
    ap.add_argument("--part", choices=["all", "rungs"], default="all",
                    help="rungs: measure the early-stopping part alone and update the doc's other parts as they are")
    args = ap.parse_args()
    os.environ.setdefault("GRAPH_PEFT_CACHE", str(ROOT / ".cache"))
    os.environ["PYTHONPATH"] = worker_pythonpath()  # the Ray workers import benchmarks.support too
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="orch-bench-"))
    import optuna
    import ray
    import torch

    from orchestrator.storage import git_sha

    res = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "host": platform.node(), "cpus": os.cpu_count(),
           "ray": ray.__version__, "optuna": optuna.__version__, "torch": torch.__version__, "git": git_sha()}
    trial_s = 2.0 if args.quick else args.trial_seconds
    out = ROOT / "docs" / "benchmarks"
    if args.part == "rungs":
        res = json.loads((out / "orchestration.json").read_text())
        res["rungs"] = part_rungs(tmp, 6 if args.quick else 40)
        res["targets"] = targets(res)
        if not args.quick:
            from workloads.util import atomic_write_json, atomic_write_text

            atomic_write_json(out / "orchestration.json", res)
            atomic_write_text(out / "orchestration.md", render(res))
            print(f"wrote {out / 'orchestration.md'}")
        return
    res["trial_s"] = trial_s
    res["overhead"] = part_overhead(tmp, 6 if args.quick else 20, trial_s, args.quick)
    res["scaling"] = part_scaling(tmp, 100 if args.quick else 2000, 10)
    res["counters"] = part_counters(tmp, 3 if args.quick else 6)
    res["rungs"] = part_rungs(tmp, 6 if args.quick else 40)
    res["seconds"] = time.perf_counter() - t0
    res["targets"] = targets(res)
    page = render(res)
    print(page)
    if not args.quick:
        from workloads.util import atomic_write_json, atomic_write_text

        atomic_write_json(out / "orchestration.json", res)
        atomic_write_text(out / "orchestration.md", page)
        print(f"wrote {out / 'orchestration.md'}")


if __name__ == "__main__":
    main()
