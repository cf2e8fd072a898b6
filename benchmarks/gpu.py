"""``make gpu-check``: what only a CUDA GPU shows, measured in one go (within about 10 minutes
on one GPU) and written to docs/benchmarks/gpu.md and gpu.json, naming the GPU.

1. **Every method on CUDA**: a fixed subset of the quick sweep (``sweeps/quick.yaml``: both
   task families, every method variant once: one trial per cell, one seed, ``--epochs``
   epochs, no early stopping, no confirmations), one trial at a time on one whole GPU.
2. **Packing**: the same trials with ``resources.gpus_per_worker = 1/k`` (``--k``, default 4)
   and k slots, against (1): trials per hour over the trials' span (first submission to last
   record), and whether any trial failed (a neighbour's crash) or went over its share.
3. **Memory**: every cell's CUDA allocator peak (from run 1) beside the peak the same trial
   reaches on the CPU (the same subset run on CPU slots).
4. **The LM-state cache on the GPU**: nodes/s of the Ray Data builder with GPU actors and of
   the in-process builder on CUDA, over WordNet texts (all of WordNet when Debian's
   ``wordnet-base`` is installed, else the shipped subset).
5. **graphormer-base on CUDA**: the graphormer-base tables of docs/benchmarks/memory.md
   (HF Graphormer, 12 layers, 768 wide, 32 heads, random weights loaded through the
   ``hf_graphormer`` checkpoint path; every graph method and plug-in variant at batch 32
   and 128: training peak, trainable parameters, bytes a task stores, latency, each beside
   full fine-tuning), measured by memory.py's own code (``benchmarks.memory.run``) on CUDA,
   beside the CPU peaks memory.json holds.

Without CUDA it prints one line and exits 0 (``gpu.md`` keeps saying it has not been
measured). ``--dry-run`` runs the same steps on the CPU with small settings into a temp
folder, to check the script on a machine without a GPU (step 5: a tiny HF Graphormer, two
variants).

    .venv/bin/python benchmarks/gpu.py            # on a machine with a CUDA GPU
    .venv/bin/python benchmarks/gpu.py --dry-run  # the same steps on the CPU, small, temp output
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "docs" / "benchmarks"
COMMAND = "make gpu-check  # .venv/bin/python benchmarks/gpu.py"
MB = 2**20


def sweep_overrides(name: str, root: Path, epochs: int, gpu: bool, k: int, slots: int, cpus: int) -> list[str]:
    share = f"{1 / k:.6f}" if gpu else "1"
    return [f"name={name}", f"storage.root={root}", "budget.trials_per_cell=1", "budget.seeds=1",
            "budget.n_startup_trials=1", "budget.stopping.type=none", "budget.confirm_seeds=0",
            f"train.epochs={epochs}", f"resources.use_gpu={'true' if gpu else 'false'}",
            f"resources.gpus_per_worker={share}", f"resources.max_concurrent_trials={slots}",
            f"resources.cpus_per_worker={cpus}", "resources.trial_timeout_s=300"]


def run_sweep(overrides: list[str], extra: list[str]) -> dict:
    """One sweep of the subset; its records, trials per hour and what went wrong."""
    import ray
    from rich.console import Console

    from orchestrator.spec import load_spec
    from orchestrator.sweep import Sweep

    spec = load_spec(str(ROOT / "sweeps" / "quick.yaml"), overrides + extra)
    t0 = time.perf_counter()
    run = Sweep(spec, console=Console(file=sys.stderr, width=160)).execute()
    wall = time.perf_counter() - t0
    if ray.is_initialized():
        ray.shutdown()
    records = [r for r in run.trial_records() if r.counts]
    trained = [r for r in records if r.reference is None or r.reference.kind == "text_mlp"]
    starts = [r.timings.submitted_unix for r in trained if r.timings.submitted_unix]
    ends = [r.timings.driver_received_unix for r in trained if r.timings.driver_received_unix]
    span = (max(ends) - min(starts)) if starts and ends else wall
    return {
        "wall_s": wall, "span_s": span, "trials": len(trained), "trials_per_hour": 3600 * len(trained) / span,
        "failed": [f"{r.cell}: {r.error}" for r in records if r.status == "failed"],
        "over_share": [r.cell for r in records if r.infeasible is not None and r.infeasible.cause == "share"],
        "peaks_mb": {r.cell: r.memory.peak_train_mb for r in records if r.memory is not None and r.status == "ok"},
        "memory_by": {r.cell: r.memory.method for r in records if r.memory is not None},
        "latency_lock_wait_s": [r.latency.lock_wait_s for r in records
                                if r.latency is not None and getattr(r.latency, "lock_wait_s", None) is not None],
        "shares": sorted({str(r.executor.gpu_share.note) for r in records
                          if r.executor is not None and r.executor.gpu_share is not None}),
    }


def lm_cache_rates(nodes: int, device: str, cache: Path) -> dict:
    import ray

    from workloads.progress import null_progress
    from workloads.textgraphs import load_wordnet_subset, read_wordnet
    from workloads.textgraphs.lm_cache import LocalBuilder, cached_states, usable_cpus
    from workloads.textgraphs.lm_cache_ray import RayDataBuilder

    try:
        texts, source = read_wordnet().texts, "all of WordNet (wordnet-base)"
    except Exception:  # noqa: BLE001 - no wordnet-base here: the shipped subset
        texts, source = load_wordnet_subset().texts, "the shipped WordNet subset"
    texts = texts[:nodes]
    out = {"nodes": len(texts), "source": source, "layers": 7, "max_length": 32}
    ray.init(include_dashboard=False, log_to_driver=False)
    try:
        gpu = device == "cuda"
        for name, builder, dev in (("Ray Data, GPU actors" if gpu else "Ray Data, CPU actors",
                                    # on the CPU (--dry-run) actors are named: on one machine it would pool in process
                                    RayDataBuilder(use_gpu=gpu, gpus_per_actor=1.0 if gpu else 0.0,
                                                   actors=None if gpu else usable_cpus()), None),
                                   (f"in-process on {device}", LocalBuilder(), device)):
            t0 = time.perf_counter()
            cached_states(texts, list(range(7)), cache / name.split()[0], max_length=32, builder=builder,
                          device=dev, progress=null_progress)
            out[name] = len(texts) / (time.perf_counter() - t0)
    finally:
        ray.shutdown()
    return out


def render(r: dict) -> str:
    one, packed, cpu = r["one_at_a_time"], r["packed"], r["cpu"]
    lines = [
        "# GPU check",
        "",
        f"Regenerate: `{COMMAND}` ({r['wall_s'] / 60:.1f} min). Written by `benchmarks/gpu.py`, whose docstring "
        "says what runs.",
        "",
        f"Measured on **{r['gpu']}** ({r['gpu_memory_gib']:.0f} GiB), {r['cpus']} CPUs, torch {r['torch']}, "
        f"{r['date']}. The subset: every cell of `sweeps/quick.yaml`, one trial, one seed, {r['epochs']} epoch(s).",
        "",
        "## Packing trials on one GPU",
        "",
        "| mode | trials | span (s) | trials per hour | failed | over its share |",
        "|---|---:|---:|---:|---:|---:|",
        f"| one at a time (whole GPU) | {one['trials']} | {one['span_s']:.0f} | {one['trials_per_hour']:.0f} | "
        f"{len(one['failed'])} | – |",
        f"| packed, {r['k']} per GPU (1/{r['k']} each) | {packed['trials']} | {packed['span_s']:.0f} | "
        f"{packed['trials_per_hour']:.0f} | {len(packed['failed'])} | {len(packed['over_share'])} |",
        "",
        f"Packing gives **{r['packing_speedup']:.2f}×** the trials per hour (target ≥ 4×: "
        f"**{'met' if r['packing_speedup'] >= 4 else 'MISSED'}**; one run of each, no spread measured).",
    ]
    if packed["latency_lock_wait_s"]:
        w = packed["latency_lock_wait_s"]
        lines.append(f"Waiting for the per-GPU latency lock: median {statistics.median(w):.2f} s, max {max(w):.2f} s "
                     f"per trial (n={len(w)}).")
    if packed["shares"]:
        lines.append(f"How each packed process's cap was set: {'; '.join(packed['shares'])}.")
    for label, run in (("one at a time", one), ("packed", packed)):
        for f in run["failed"]:
            lines.append(f"- failed ({label}): {f}")
    lines += ["", "## Training memory: the CUDA allocator's peak beside the CPU's", "",
              "| cell | CUDA peak (MB) | CPU peak (MB) |", "|---|---:|---:|"]
    for cell in sorted(set(one["peaks_mb"]) | set(cpu["peaks_mb"])):
        g, c = one["peaks_mb"].get(cell), cpu["peaks_mb"].get(cell)
        lines.append(f"| {cell} | {g:.1f} | {c:.1f} |" if g is not None and c is not None else
                     f"| {cell} | {g if g is not None else '–'} | {c if c is not None else '–'} |")
    lc = r["lm_cache"]
    lines += ["", "## LM-state cache", "",
              f"{lc['nodes']:,} texts of {lc['source']}, MiniLM at {lc['max_length']} tokens, {lc['layers']} layers:", ""]
    lines += [f"- {k}: {v:,.0f} nodes/s" for k, v in lc.items() if isinstance(v, float)]
    if r.get("graphormer_base"):
        lines += ["", render_base(r["graphormer_base"])]
    lines.append("")
    return "\n".join(lines)


def base_row(dry_run: bool, say=print) -> dict:
    """memory.md's graphormer-base tables, measured on CUDA by memory.py's code (dry run: on
    the CPU, a tiny HF Graphormer, two variants); with the CPU peaks of memory.json beside them."""
    import json

    from benchmarks import memory

    if dry_run:
        res = memory.run(["graphormer-base"], ["cpu"], only=["full", "lora"], say=say,
                         hf_arch={"hidden_dim": 32, "num_layers": 2, "num_heads": 4, "ffn_dim": 32,
                                  "edge_type": "multi_hop", "multi_hop_max_dist": 5})
    else:
        res = memory.run(["graphormer-base"], ["cuda"], say=say)
    cpu_peaks = {}
    try:  # the CPU's peaks of the same configurations (a dry run's tiny model has none)
        if dry_run:
            raise OSError("dry run")
        saved = json.loads((OUT / "memory.json").read_text())
        for g in saved.get("groups", []):
            if g["backbone"] == "graphormer-base":
                for row in g["rows"]:
                    if "cpu" in row:
                        cpu_peaks[f"{g['batch_size']}/{row['variant']}"] = row["cpu"]["peak_train_bytes"]
    except (OSError, ValueError, KeyError):
        pass
    return {"groups": res["groups"], "checkpoints": res["checkpoints"], "total_s": res["total_s"],
            "latency": res["latency"].get("graphormer-base", {}),
            "cpu_peaks": cpu_peaks, "device": "cpu (dry run, tiny model)" if dry_run else "cuda"}


def render_base(base: dict) -> str:
    from benchmarks import memory

    ck = base["checkpoints"].get("graphormer-base", {})
    lines = ["## graphormer-base on CUDA (the memory.md tables)", "",
             f"HF Graphormer from a random `hf_graphormer` checkpoint ({ck.get('checkpoint_params', 0):,} parameters: "
             + ", ".join(f"{k} {v}" for k, v in (ck.get("arch") or {}).items())
             + f"), {len(base['groups'][0]['rows']) if base['groups'] else 0} graph method and plug-in variants, "
             f"`benchmarks/memory.py`'s code on {base['device']} ({base['total_s'] / 60:.1f} min). Columns as in "
             "[memory.md](memory.md); here every figure is the CUDA one (training peak: "
             "`torch.cuda.max_memory_allocated` over the training steps; latency: the round-robin pass on the "
             "GPU, synchronized around each forward).", ""]
    for g in base["groups"]:
        dev = "cuda" if any("cuda" in row for row in g["rows"]) else "cpu"
        lines += [f"### batch {g['batch_size']} ({g['steps']} training steps)", "",
                  memory.table(g["rows"], base.get("latency", {}).get(dev)).rstrip()]
        both = []
        for row in g["rows"]:
            here = row.get("cuda") or row.get("cpu")
            both.append((row["variant"], here["peak_train_bytes"],
                         base["cpu_peaks"].get(f"{g['batch_size']}/{row['variant']}")))
        if any(c for _, _, c in both):
            lines += ["", "| method variant | peak here (MB) | CPU peak, memory.json (MB) | here / CPU |",
                      "|---|--:|--:|--:|"]
            lines += [f"| {v} | {p / MB:,.1f} | {c / MB:,.1f} | {p / c:.2f} |" if c else
                      f"| {v} | {p / MB:,.1f} | – | – |" for v, p, c in both]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--k", type=int, default=4, help="trials per GPU when packed")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--cpus-per-trial", type=int, default=2)
    p.add_argument("--lm-nodes", type=int, default=50_000)
    p.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, small, temp output")
    p.add_argument("--only-base", action="store_true",
                   help="step 5 alone (graphormer-base): print its section, write nothing")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    import torch

    gpu = torch.cuda.is_available()
    if not gpu and not args.dry_run and torch.version.cuda is None and shutil.which("nvidia-smi"):
        print("gpu-check: this machine has an NVIDIA GPU but torch is a CPU build; install a CUDA build of torch "
              "(make setup with TORCH_INDEX unset) and run again", file=sys.stderr)
        return 2
    if not gpu and not args.dry_run:
        print("gpu-check: no CUDA GPU here (torch.cuda.is_available() is False); nothing measured, "
              "docs/benchmarks/gpu.md unchanged")
        return 0
    from runfolder.io import atomic_write_json, atomic_write_text

    if args.only_base:
        print(render_base(base_row(args.dry_run, say=lambda msg: print(msg, file=sys.stderr, flush=True))))
        return 0

    if gpu:  # the packing is per GPU: one GPU, whatever the machine has (set before Ray starts)
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")
    extra: list[str] = []
    if args.dry_run:
        args.epochs, args.lm_nodes, args.out = 1, 300, Path(tempfile.mkdtemp(prefix="gpu-check-dry-"))
        extra = ["datasets.freesolv.max_molecules=200", "datasets.wordnet.max_train_nodes=100"]
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    t0 = time.perf_counter()
    try:
        cpus = args.cpus_per_trial
        one = run_sweep(sweep_overrides("gpu-one", work, args.epochs, gpu, 1, 1, cpus), extra)
        packed = run_sweep(sweep_overrides("gpu-packed", work, args.epochs, gpu, args.k, args.k, cpus), extra)
        cpu = run_sweep(sweep_overrides("gpu-cpu", work, args.epochs, False, 1, args.k, cpus), extra)
        lm = lm_cache_rates(args.lm_nodes, "cuda" if gpu else "cpu", work / "cache")
        # last: it trains in this process, whose CUDA context and cache must not sit beside the sweeps' slots
        base = base_row(args.dry_run, say=lambda msg: print(msg, file=sys.stderr, flush=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    props = torch.cuda.get_device_properties(0) if gpu else None
    r = {"gpu": props.name if gpu else "none (dry run on the CPU)",
         "gpu_memory_gib": props.total_memory / 2**30 if gpu else 0.0,
         "cpus": len(os.sched_getaffinity(0)), "torch": torch.__version__,
         "date": time.strftime("%Y-%m-%d"), "host": platform.node(), "k": args.k, "epochs": args.epochs,
         "one_at_a_time": one, "packed": packed, "cpu": cpu, "lm_cache": lm, "graphormer_base": base,
         "packing_speedup": packed["trials_per_hour"] / one["trials_per_hour"],
         "wall_s": time.perf_counter() - t0, "dry_run": args.dry_run}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "gpu.json", r)
    atomic_write_text(args.out / "gpu.md", render(r))
    print(f"wrote {args.out / 'gpu.md'}: packing {r['packing_speedup']:.2f}x trials per hour")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
