"""Training memory per method variant: the measured peak beside the sum of parts.

For every registered PEFT method (read from ``METHODS``, not listed here) plus the
plug-in variants ``g_adapter + proximal`` and ``lora + gist``, on two Graphormer
sizes and two batch sizes, one seed is trained with the sweep's own loop
(``workloads.train.train_seed``) and its memory record is read back:

* ``peak_train_bytes``: the measured peak of live tensor bytes over the training
  steps (CPU: the allocator's events through the PyTorch profiler; CUDA:
  ``torch.cuda.max_memory_allocated`` reset around the training steps);
* ``sum_of_parts_bytes``: parameters + gradients + optimizer state + tensors saved
  for backward, the old breakdown, which is not a peak.

Backbones are randomly initialised (``pretrain: null``): memory does not depend on
weight values, so nothing is pretrained. Every configuration trains on the same
B3DB molecules (a deterministic subset) for exactly ``--steps`` full steps, all of
them measured, with the same seed, so every method of a table sees the same batches.

The CPU is always measured; CUDA too when torch sees a GPU. Writes
docs/benchmarks/memory.md and docs/benchmarks/memory.json.

    .venv/bin/python benchmarks/memory.py            # the full table (about 5 min on 2 CPU cores)
    .venv/bin/python benchmarks/memory.py --quick    # smoke check: small model, batch 8, 2 methods
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/memory.py` from the repo root
    sys.path.insert(0, str(ROOT))

from runfolder.record import SeedResult  # noqa: E402

COMMAND = ".venv/bin/python benchmarks/memory.py"
BACKBONES = {
    "small": {"hidden_dim": 64, "num_layers": 4, "num_heads": 4, "ffn_dim": 128},
    "large": {"hidden_dim": 256, "num_layers": 8, "num_heads": 8, "ffn_dim": 512},
}
BATCH_SIZES = (8, 128)
# Variants beyond the bare methods: (label, method, plug-ins).
PLUGIN_VARIANTS = (("g_adapter + proximal", "g_adapter", ("proximal",)), ("lora + gist", "lora", ("gist",)))
DATASET = {"name": "b3db", "max_molecules": 700}
EVAL_GRAPHS = 32  # validation and test graphs kept (evaluation is not part of the training peak)
MB = 2**20


def variants(quick: bool) -> list[dict]:
    """The method variants, bare methods in registry order, then the plug-in variants."""
    from workloads.peft import METHODS, method_names
    from workloads.plugins import PLUGINS

    names = method_names("graph_transformer", references=False)  # graph methods; references have no training step
    if quick:
        names = ["full"] + [n for n in names if n != "full"][:1]
        return [{"label": n, "method": n, "plugins": {}} for n in names]
    names = [n for n in names if n == "full"] + [n for n in names if n != "full"]
    out = [{"label": n, "method": n, "plugins": {}} for n in names]
    for label, method, plugins in PLUGIN_VARIANTS:
        missing = [x for x in (method,) if x not in METHODS] + [p for p in plugins if p not in PLUGINS]
        if missing:
            print(f"skipping {label}: {', '.join(missing)} not registered", flush=True)
            continue
        out.append({"label": label, "method": method, "plugins": {p: {} for p in plugins}})
    return out


@contextmanager
def quiet_profiler_stderr():
    """Keep the profiler's per-window start/stop lines (written by C++ straight to
    fd 2) off the console; anything else written to stderr is passed through."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode(errors="replace").splitlines():
                if "profiler_start" not in line and "profiler_stop" not in line:
                    print(line, file=sys.stderr)


def measure(data, backbone: dict, batch_size: int, variant: dict, steps: int, device) -> dict:
    """Train one seed for ``steps`` full steps (all measured) and return its figures."""
    from workloads.config import TrialConfig
    from workloads.train import train_seed

    cfg = TrialConfig.model_validate({
        "trial_id": f"mem-{variant['label']}-{batch_size}",
        "dataset": DATASET,
        "backbone": {"name": "graphormer", "params": backbone, "pretrain": None},
        "method": {"name": variant["method"], "plugins": variant["plugins"], "variant": variant["label"]},
        "train": {"epochs": 1, "batch_size": batch_size, "eval_batch_size": EVAL_GRAPHS},
        "profile": {"latency_batch_size": 8, "latency_warmup": 0, "latency_repeats": 1, "memory_steps": steps},
        "device": device.type,
    })
    # Exactly `steps` full batches (drop_last holds: more graphs than one batch).
    sub = dataclasses.replace(data, train=data.train[: steps * batch_size],
                              valid=data.valid[:EVAL_GRAPHS], test=data.test[:EVAL_GRAPHS])
    gc.collect()
    if device.type == "cuda":
        import torch

        torch.cuda.empty_cache()
    t0 = time.perf_counter()
    with quiet_profiler_stderr():
        out = train_seed(cfg, 0, sub, None, device, say=lambda msg: None)
    # the seed's part of a trial record, read by attribute like every record
    rec = SeedResult.model_validate({k: v for k, v in out.items() if k in SeedResult.model_fields})
    mem = rec.memory
    return {
        "device": device.type, "device_name": mem.device,
        "trainable_params": rec.trainable_params, "total_params": rec.total_params,
        "peak_train_bytes": mem.peak_train_bytes, "sum_of_parts_bytes": mem.sum_of_parts_bytes,
        "parts": mem.parts, "eval_peak_bytes": mem.eval_peak_bytes, "peak_method": mem.method,
        "measured_steps": mem.detail.get("measured_steps"), "train_steps": len(sub.train) // batch_size,
        "wall_s": time.perf_counter() - t0,
    }


def _mb(x) -> str:
    return "" if x is None else f"{x / MB:,.1f}"


def _ratio(a, b) -> str:
    return "" if a is None or not b else f"{a / b:.2f}"


def _params(n: int) -> str:
    return f"{n:,}"


def table(rows: list[dict]) -> str:
    full = next((r for r in rows if r["variant"] == "full" and r.get("cpu")), None)
    full_cuda = next((r for r in rows if r["variant"] == "full" and r.get("cuda")), None)
    lines = ["| method variant | trainable params | measured peak (MB) | sum of parts (MB) | peak / parts | "
             "peak vs full | CUDA peak (MB) |",
             "|---|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        cpu, cuda = r.get("cpu"), r.get("cuda")
        main = cpu or cuda  # the CPU figures when measured, else the CUDA ones
        ref = (full or {}).get("cpu") if cpu else (full_cuda or {}).get("cuda")
        lines.append(
            f"| {r['variant']} | {_params(main['trainable_params'])} | {_mb(main['peak_train_bytes'])} | "
            f"{_mb(main['sum_of_parts_bytes'])} | {_ratio(main['peak_train_bytes'], main['sum_of_parts_bytes'])} | "
            f"{_ratio(main['peak_train_bytes'], ref['peak_train_bytes'] if ref else None)} | "
            f"{_mb(cuda['peak_train_bytes']) if cuda else ''} |")
    return "\n".join(lines) + "\n"


# Why a variant's peak can sit far above its sum of parts (said only when its numbers show it).
WHY_ABOVE_PARTS = {
    "linear_probe": "its frozen backbone saves almost nothing for backward, so the forward's own working "
                    "memory, which the parts leave out, is most of its peak",
    "g_adapter + proximal": "the proximal anchor's no-grad forward runs while the training forward's saved "
                            "tensors are still held; its working memory is in the peak but not in the parts",
}
NEAR = 1.10  # a peak within this factor of the sum of parts counts as "close"


def findings(out: dict) -> str:
    """What the numbers show, computed from them (so a re-run rewrites it)."""
    key = "cpu" if "cpu" in out["devices"] else "cuda"
    paras = []
    ratios = {}
    for g in out["groups"]:
        for r in g["rows"]:
            if key in r and r[key]["sum_of_parts_bytes"]:
                ratios.setdefault(r["variant"], []).append(r[key]["peak_train_bytes"] / r[key]["sum_of_parts_bytes"])
    every = sorted(x for xs in ratios.values() for x in xs)
    if every:
        below = sum(x < 1 for x in every)
        near = sum(1 <= x <= NEAR for x in every)
        text = (f"**Peak vs. sum of parts.** Over all {len(every)} configurations the measured peak is "
                f"{every[0]:.2f}–{every[-1]:.2f}× the sum of parts (median {statistics.median(every):.2f}×); "
                f"{near} of them lie within 1.00–{NEAR:.2f}×"
                + (f", and in {below} the sum of parts exceeds the peak (saved tensors are freed during "
                   "backward while gradients are allocated, so the parts are never all live at once)"
                   if below else "") + ".")
        far = sorted((v for v, xs in ratios.items() if max(xs) > NEAR), key=lambda v: -max(ratios[v]))
        if far:
            text += " Further above it: " + "; ".join(
                f"{v} ({min(ratios[v]):.2f}–{max(ratios[v]):.2f}×"
                + (f": {WHY_ABOVE_PARTS[v]}" if v in WHY_ABOVE_PARTS else "") + ")" for v in far) + "."
        paras.append(text)
    both = [r["cuda"]["peak_train_bytes"] / r["cpu"]["peak_train_bytes"]
            for g in out["groups"] for r in g["rows"] if "cpu" in r and "cuda" in r and r["cpu"]["peak_train_bytes"]]
    if both:
        paras.append(f"**CUDA vs. CPU.** The CUDA allocator's peak is {min(both):.2f}–{max(both):.2f}× the CPU "
                     f"measurement of the same configuration (median {statistics.median(both):.2f}×, "
                     f"{len(both)} configurations).")
    for g in out["groups"]:
        rows = [r for r in g["rows"] if key in r]
        full = next((r for r in rows if r["variant"] == "full"), None)
        others = sorted((r for r in rows if r["variant"] != "full"), key=lambda r: r[key]["peak_train_bytes"])
        if full is None or not others:
            continue
        fp = full[key]["peak_train_bytes"]
        act = full[key]["parts"].get("saved_activation_bytes", 0)
        state = full[key]["sum_of_parts_bytes"] - act
        lo, rest = others[0], others[1:]
        text = (f"**{g['backbone']} backbone, batch {g['batch_size']}.** Full fine-tuning peaks at "
                f"{fp / MB:,.1f} MB; its parameters, gradients and optimizer state are {state / MB:,.1f} MB and the "
                f"tensors it saves for backward {act / MB:,.1f} MB ({act / max(act + state, 1):.1%} of its parts). "
                f"Lowest: {lo['variant']} at {lo[key]['peak_train_bytes'] / MB:,.1f} MB "
                f"({lo[key]['peak_train_bytes'] / fp:.2f}× full)")
        if rest:
            a, b = rest[0], rest[-1]
            text += (f"; every other variant peaks at {a[key]['peak_train_bytes'] / fp:.2f}–"
                     f"{b[key]['peak_train_bytes'] / fp:.2f}× full ({a['variant']} lowest, {b['variant']} highest)")
        text += "."
        extra = []
        for label, base, _ in PLUGIN_VARIANTS:
            x = next((r for r in rows if r["variant"] == label), None)
            y = next((r for r in rows if r["variant"] == base), None)
            if x and y:
                extra.append(f"{label} peaks at {x[key]['peak_train_bytes'] / y[key]['peak_train_bytes']:.2f}× "
                             f"{base} alone")
        if extra:
            text += " Plug-ins: " + "; ".join(extra) + "."
        paras.append(text)
    return "\n\n".join(paras) + "\n"


def render(out: dict) -> str:
    m = out["machine"]
    has_cuda = "cuda" in out["devices"]
    cuda_line = (f"CUDA column: `torch.cuda.max_memory_allocated` on {m['gpu']}, reset around each training step."
                 if has_cuda else "**No GPU on the machine that ran this; CUDA column empty.** The CUDA allocator peak of every method on a real GPU is in [gpu.md](gpu.md) (`make gpu-check`).")
    peak_line = ("Measured peak: on the CPU, the highest running total of live tensor bytes from the allocator's "
                 "own allocation and free events (PyTorch profiler, `profile_memory=True`), added to the model "
                 "already in memory when the first step starts." if "cpu" in out["devices"] else
                 "Measured peak: the CUDA allocator's peak (no CPU run).")
    s = out["setup"]
    per_batch = ", ".join(f"{s['steps'] * b} at batch {b}" for b in s["batch_sizes"])
    parts = [
        "# Training memory per method: measured peak vs. sum of parts\n\n",
        f"Regenerate with `{out['command']}`" + ("" if out["quick"] else " (or `make benchmark-memory`)") + ". "
        f"Measured {out['measured_at']} on {m['host']}: {m['cpu_count']} CPUs, torch {m['torch']} "
        f"({m['torch_threads']} threads), Python {m['python']}; devices: {', '.join(out['devices'])}. "
        f"The run took {out['total_s'] / 60:.1f} min.\n\n",
        f"{cuda_line}\n\n",
        f"Setup: Graphormer with random initialisation (memory does not depend on weight values), "
        f"real molecules: a deterministic subset of {s['dataset']['max_molecules']} `{s['dataset']['name']}` "
        f"molecules (scaffold split, {s['train_graphs']} training graphs), of which each configuration trains on "
        f"the first steps × batch ({per_batch}): "
        f"{s['steps']} full training steps, all measured (the first step has no gradients or optimizer state "
        f"yet), one epoch, seed {s['seed']} everywhere, so every row of a table sees the same batches. Default "
        f"method and plug-in parameters (listed in `memory.json`); AdamW; gradient clipping {s['grad_clip']}. "
        f"Code: commit {s['git'].replace('workloads/', '`workloads/`')}.\n\n",
        f"{peak_line} Sum of parts: parameters + gradients + optimizer state + tensors saved for backward at the "
        "step with the most saved bytes; a breakdown, not a peak. *peak / parts* is the measured peak over "
        "the sum of parts; *peak vs full* is the peak over full fine-tuning's peak in the same table. "
        "MB = 2^20 bytes.\n\n",
        "## What the numbers show\n\n", findings(out), "\n",
    ]
    for g in out["groups"]:
        b = g["params"]
        parts.append(f"## {g['backbone']} backbone (hidden {b['hidden_dim']}, {b['num_layers']} layers, "
                     f"{b['num_heads']} heads, ffn {b['ffn_dim']}), batch {g['batch_size']}\n\n")
        parts.append(table(g["rows"]) + "\n")
    return "".join(parts)


def git_state() -> str:
    """The commit measured, and whether the code it ran differs from it."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "workloads"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return head + (" with uncommitted changes in workloads/" if dirty else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke check: small backbone, batch 8, 2 methods (writes only with --out)")
    ap.add_argument("--steps", type=int, default=4, help="full training steps per configuration, all measured")
    ap.add_argument("--devices", default="auto",
                    help="comma-separated cpu,cuda; auto: cpu, plus cuda when torch sees a GPU")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder for memory.md and memory.json (default docs/benchmarks; --quick: none)")
    args = ap.parse_args()
    if args.steps < 2:
        ap.error("--steps must be at least 2 (the first step has no gradients or optimizer state)")

    import torch

    from workloads.datasets import DatasetConfig, load_dataset
    from workloads.util import atomic_write_text, default_cache_dir

    if args.devices == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [d.strip() for d in args.devices.split(",") if d.strip()]
        if not devices or set(devices) - {"cpu", "cuda"}:
            ap.error(f"--devices takes cpu and/or cuda, got {args.devices!r}")
        if "cuda" in devices and not torch.cuda.is_available():
            ap.error("--devices names cuda but torch sees no GPU")
    out_dir = args.out if args.out is not None else (None if args.quick else ROOT / "docs" / "benchmarks")

    t_start = time.perf_counter()
    data = load_dataset(DatasetConfig(**DATASET), default_cache_dir())
    grid = [("small", 8)] if args.quick else [(b, bs) for b in BACKBONES for bs in BATCH_SIZES]
    need = args.steps * max(bs for _, bs in grid)
    if len(data.train) < need:
        raise SystemExit(f"{DATASET} has {len(data.train)} training graphs; {args.steps} steps need {need}")
    vs = variants(args.quick)
    n_total, n_done = len(grid) * len(vs) * len(devices), 0
    print(f"{n_total} measurements: {len(grid)} backbone x batch, {len(vs)} variants, devices {devices}; "
          f"{len(data.train)} training graphs available", flush=True)

    groups = []
    for backbone, bs in grid:
        rows = []
        for v in vs:
            row = {"variant": v["label"], "method": v["method"], "plugins": sorted(v["plugins"])}
            for dev in devices:
                device = torch.device("cuda", torch.cuda.current_device()) if dev == "cuda" else torch.device("cpu")
                r = measure(data, BACKBONES[backbone], bs, v, args.steps, device)
                row[dev] = r
                n_done += 1
                print(f"[{n_done}/{n_total} {time.perf_counter() - t_start:6.0f}s] {backbone:5s} batch {bs:3d} "
                      f"{v['label']:22s} {dev:4s} peak {r['peak_train_bytes'] / MB:9.1f} MB  parts "
                      f"{r['sum_of_parts_bytes'] / MB:9.1f} MB  trainable {r['trainable_params']:>9,}  "
                      f"({r['wall_s']:.1f}s)", flush=True)
            rows.append(row)
        groups.append({"backbone": backbone, "params": BACKBONES[backbone], "batch_size": bs, "rows": rows})

    from workloads.config import TrainConfig
    from workloads.peft import METHODS
    from workloads.plugins import PLUGINS

    out = {
        "command": COMMAND + (" --quick" if args.quick else "")
        + (f" --steps {args.steps}" if args.steps != 4 else "")
        + (f" --devices {args.devices}" if args.devices != "auto" else ""),
        "quick": args.quick,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "total_s": time.perf_counter() - t_start,
        "devices": devices,
        "machine": {
            "host": platform.node(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "platform": platform.platform(),
            "gpu": torch.cuda.get_device_name() if "cuda" in devices else None,
        },
        "setup": {
            "dataset": DATASET, "train_graphs": len(data.train), "batch_sizes": sorted({bs for _, bs in grid}),
            "eval_graphs": EVAL_GRAPHS, "steps": args.steps, "seed": 0, "git": git_state(),
            "pretrain": None, "optimizer": "AdamW", "grad_clip": TrainConfig().grad_clip,
            "method_params": {v["label"]: METHODS.get(v["method"]).parse({}).model_dump(mode="json") for v in vs},
            "plugin_params": {p: PLUGINS.get(p).parse({}).model_dump(mode="json")
                              for v in vs for p in v["plugins"]},
        },
        "groups": groups,
    }
    page = render(out)
    print("\n" + page)
    if out_dir is not None:
        atomic_write_text(out_dir / "memory.json", json.dumps(out, indent=2) + "\n")
        atomic_write_text(out_dir / "memory.md", page)
        print(f"wrote {out_dir / 'memory.md'} and {out_dir / 'memory.json'}", flush=True)


if __name__ == "__main__":
    main()
