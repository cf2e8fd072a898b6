"""Training memory per method variant: the measured peak beside the sum of parts.

For every registered PEFT method (read from ``METHODS``, not listed here) plus the
variants ``adapter (pfeiffer)``, ``g_adapter + proximal`` and ``lora + gist``, on
three Graphormer backbones and two batch sizes each, one seed is trained with the
sweep's own loop (``workloads.train.train_seed``) and its record is read back:

* ``peak_train_bytes``: the measured peak of live tensor bytes over the training
  steps (CPU: the allocator's events through the PyTorch profiler; CUDA:
  ``torch.cuda.max_memory_allocated`` reset around the training steps);
* ``sum_of_parts_bytes``: parameters + gradients + optimizer state + tensors saved
  for backward, the old breakdown, which is not a peak;
* ``trainable_params`` and the bytes a task must store (its trainable parameters,
  fp32: what differs from the shared frozen backbone; for full fine-tuning the
  whole model), and the inference latency (ms per graph) of the deployed model.

Backbones:

* ``small``, ``large``: the project's Graphormer, built from ``params``;
* ``graphormer-base``: Hugging Face's Graphormer at the size of its released
  ``graphormer-base-pcqm4mv2`` (12 layers, 768 wide, 32 heads, ffn 768, multi-hop
  edges over 5 hops; about 47M parameters), loaded through the real checkpoint path:
  a random ``HFGraphormer`` is written once per run as an HF ``save_pretrained``
  folder (``save_hf_checkpoint``) and every trial names it as
  ``checkpoint: {format: hf_graphormer, path: ..., spatial_pos_max: 20}``, so
  ``train_seed`` loads it as it loads a user's checkpoint.

Weights are random (``pretrain: null``, a random checkpoint): memory, parameter
counts and latency do not depend on weight values, so nothing is pretrained. Every
configuration trains on the same B3DB molecules (a deterministic subset) for exactly
its backbone's steps (``--steps``; 4, and 2 for ``graphormer-base``), all measured,
with the same seed, so every method of a table sees the same batches.

The CPU is always measured; CUDA too when torch sees a GPU. Writes
docs/benchmarks/memory.md and docs/benchmarks/memory.json; a run of some backbones
(``--backbones``) replaces those backbones' tables and keeps the others from
memory.json, each table naming the command and commit that produced it.

    .venv/bin/python benchmarks/memory.py            # every backbone (about 1.5 h, see below)
    .venv/bin/python benchmarks/memory.py --backbones graphormer-base   # that row alone
    .venv/bin/python benchmarks/memory.py --backbones small,large       # the two small rows
    .venv/bin/python benchmarks/memory.py --latency-only --backbones small,large --latency-rounds 15
    .venv/bin/python benchmarks/memory.py --quick    # smoke check: small model, batch 8, 2 methods
    .venv/bin/python benchmarks/memory.py --render   # memory.md again from memory.json, nothing measured

On the 2-core machine that made memory.md, shared with other jobs, graphormer-base took
64 min (2 steps; about 4 min per variant at batch 128, 18 GB peak RSS) and small with
large 32 min; the latency pass adds a few minutes per backbone.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
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
# The project's Graphormer, built from these params.
BACKBONES = {
    "small": {"hidden_dim": 64, "num_layers": 4, "num_heads": 4, "ffn_dim": 128},
    "large": {"hidden_dim": 256, "num_layers": 8, "num_heads": 8, "ffn_dim": 512},
}
# Hugging Face Graphormer, loaded from a random checkpoint written once per run: the
# HFGraphormerConfig fields set (the rest default). graphormer-base is the size of HF's
# graphormer-base-pcqm4mv2 (its config.json: embedding_dim 768, 12 layers, 32 heads, ffn 768).
HF_BACKBONES = {
    "graphormer-base": {"hidden_dim": 768, "num_layers": 12, "num_heads": 32, "ffn_dim": 768,
                        "edge_type": "multi_hop", "multi_hop_max_dist": 5},
}
SPATIAL_POS_MAX = 20  # what HF's GraphormerDataCollator masks at (checkpoint option spatial_pos_max)
ALL_BACKBONES = (*BACKBONES, *HF_BACKBONES)
BATCH_SIZES = {"small": (8, 128), "large": (8, 128), "graphormer-base": (32, 128)}
STEPS = {"small": 4, "large": 4, "graphormer-base": 2}  # full steps per configuration (--steps overrides)
# Variants beyond the bare methods: (label, method, method params, plug-ins).
EXTRA_VARIANTS = (("adapter (pfeiffer)", "adapter", {"placement": "pfeiffer"}, ()),
                  ("g_adapter + proximal", "g_adapter", {}, ("proximal",)),
                  ("lora + gist", "lora", {}, ("gist",)))
PLUGIN_VARIANTS = tuple((label, method, plugins) for label, method, _, plugins in EXTRA_VARIANTS if plugins)
LABELS = {"adapter": "adapter (houlsby)"}  # a bare method whose default placement the table names
DATASET = {"name": "b3db", "max_molecules": 700}
EVAL_GRAPHS = 32  # validation and test graphs kept (evaluation is not part of the training peak)
# inference latency: no-grad forwards of the EVAL_GRAPHS test graphs (the deployed model: LoRA merged)
LATENCY = {"latency_batch_size": EVAL_GRAPHS, "latency_warmup": 1, "latency_repeats": 3}
LATENCY_ROUNDS = 7  # rounds of the interleaved latency pass (the tables' latency column)
PARAM_BYTES = 4  # every parameter here is fp32: a task stores its trainable parameters at 4 bytes each
MB = 2**20


def variants(quick: bool) -> list[dict]:
    """The method variants, bare methods in registry order (full first), then the extra variants."""
    from workloads.peft import METHODS, method_names
    from workloads.plugins import PLUGINS

    names = method_names("graph_transformer", references=False)  # graph methods; references have no training step
    if quick:
        names = ["full"] + [n for n in names if n != "full"][:1]
        return [{"label": LABELS.get(n, n), "method": n, "params": {}, "plugins": {}} for n in names]
    names = [n for n in names if n == "full"] + [n for n in names if n != "full"]
    out = [{"label": LABELS.get(n, n), "method": n, "params": {}, "plugins": {}} for n in names]
    for label, method, params, plugins in EXTRA_VARIANTS:
        missing = [x for x in (method,) if x not in METHODS] + [p for p in plugins if p not in PLUGINS]
        if missing:
            print(f"skipping {label}: {', '.join(missing)} not registered", flush=True)
            continue
        out.append({"label": label, "method": method, "params": dict(params), "plugins": {p: {} for p in plugins}})
    return out


def make_checkpoint(name: str, folder: Path, arch: dict | None = None) -> dict:
    """Write a random ``HFGraphormer`` of backbone ``name`` (or of ``arch``) as an HF
    ``save_pretrained`` folder and check it as a spec's checkpoint is checked; what it holds."""
    import math

    import torch
    from safetensors import safe_open

    from workloads.backbones.hf_graphormer import HFGraphormer, HFGraphormerConfig
    from workloads.checkpoints.hf_graphormer import save_hf_checkpoint
    from workloads.config import BackboneConfig

    arch = dict(HF_BACKBONES[name] if arch is None else arch)
    torch.manual_seed(0)
    save_hf_checkpoint(HFGraphormer(HFGraphormerConfig(**arch)), folder)
    entry = backbone_entry(name, folder)
    problem = BackboneConfig.model_validate(entry).checkpoint_problem()
    if problem:
        raise SystemExit(f"the benchmark's own checkpoint does not load: {problem}")
    weights = folder / "model.safetensors"
    with safe_open(str(weights), framework="pt") as f:
        n = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    return {"arch": arch, "spatial_pos_max": SPATIAL_POS_MAX, "checkpoint_params": n,
            "weights_bytes": weights.stat().st_size, "seed": 0}


def backbone_entry(name: str, checkpoint: Path | None = None) -> dict:
    """The trial's ``backbone`` entry: params, or the checkpoint folder of an HF backbone."""
    if name in HF_BACKBONES:
        return {"name": "graphormer", "checkpoint": {"format": "hf_graphormer", "path": str(checkpoint),
                                                     "spatial_pos_max": SPATIAL_POS_MAX}}
    return {"name": "graphormer", "params": BACKBONES[name], "pretrain": None}


def load_data(entry: dict):
    """The dataset featurized as the backbone reads it (the multi-hop paths of HF Graphormer)."""
    from workloads.config import BackboneConfig
    from workloads.datasets import DatasetConfig
    from workloads.tasks import task_of
    from workloads.util import default_cache_dir

    dcfg = DatasetConfig(**DATASET)
    return task_of(dcfg).load(dcfg, default_cache_dir(), BackboneConfig.model_validate(entry))


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


def trial_config(backbone: dict, batch_size: int, variant: dict, steps: int, device):
    from workloads.config import TrialConfig

    return TrialConfig.model_validate({
        "trial_id": f"mem-{variant['label']}-{batch_size}",
        "dataset": DATASET,
        "backbone": backbone,
        "method": {"name": variant["method"], "params": variant.get("params", {}), "plugins": variant["plugins"],
                   "variant": variant["label"]},
        "train": {"epochs": 1, "batch_size": batch_size, "eval_batch_size": EVAL_GRAPHS},
        "profile": {**LATENCY, "memory_steps": steps},
        "device": device.type,
    })


def latency_pass(data, backbone: dict, vs: list[dict], rounds: int, device) -> dict:
    """ms per graph of each variant's deployed model (LoRA merged), a no-grad forward of the
    EVAL_GRAPHS test graphs, built as ``train_seed`` builds it (``build_model``, the checkpoint
    loaded; latency does not depend on weight values, so untrained). Timed round-robin: each
    round times every variant once, after one untimed round, so load from other processes
    that drifts during the pass falls on every variant alike; median and min over rounds."""
    import torch

    from workloads.tasks import task_of
    from workloads.train import build_model
    from workloads.util import seeded

    sub = dataclasses.replace(data, test=data.test[:EVAL_GRAPHS])
    models, batches = {}, {}
    for v in vs:
        cfg = trial_config(backbone, EVAL_GRAPHS, v, 2, device)
        task = task_of(cfg.dataset)
        with seeded(0):
            model, hooks, _ = build_model(cfg, task, sub, None)
        model.to(device).eval()
        if hooks.deploy is not None:
            model = hooks.deploy(model).eval()
        models[v["label"]] = model
        batches[v["label"]] = task.latency_batch(sub, EVAL_GRAPHS, device, model=model)
    times: dict[str, list[float]] = {label: [] for label in models}
    gc.collect()
    with torch.no_grad():
        for r in range(rounds + 1):
            for label, model in models.items():
                batch, units = batches[label]
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
                model(batch)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if r:
                    times[label].append(1000 * (time.perf_counter() - t0) / units)
    return {label: {"median_ms_per_graph": statistics.median(ts), "min_ms_per_graph": min(ts), "rounds": rounds,
                    "graphs": batches[label][1], "ms_per_graph": ts} for label, ts in times.items()}


def measure(data, backbone: dict, batch_size: int, variant: dict, steps: int, device) -> dict:
    """Train one seed for ``steps`` full steps (all measured) and return its figures;
    ``backbone`` is the trial's backbone entry (:func:`backbone_entry`)."""
    from workloads.train import train_seed

    cfg = trial_config(backbone, batch_size, variant, steps, device)
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
    mem, lat = rec.memory, rec.latency
    return {
        "device": device.type, "device_name": mem.device,
        "trainable_params": rec.trainable_params, "total_params": rec.total_params,
        "stored_bytes": PARAM_BYTES * rec.trainable_params,
        "peak_train_bytes": mem.peak_train_bytes, "sum_of_parts_bytes": mem.sum_of_parts_bytes,
        "parts": mem.parts, "eval_peak_bytes": mem.eval_peak_bytes, "peak_method": mem.method,
        "measured_steps": mem.detail.get("measured_steps"), "train_steps": len(sub.train) // batch_size,
        "latency_ms_per_graph": lat.ms_per_unit, "latency_batch": lat.batch_size,
        "latency_repeats": lat.repeats, "latency_deployed": lat.deployed,
        "checkpoint": (out.get("pretrained") or {}).get("format"),
        "wall_s": time.perf_counter() - t0,
    }


def run(backbones: list[str], devices: list[str], *, steps: int | None = None, quick: bool = False,
        only: list[str] | None = None, hf_arch: dict | None = None, latency_rounds: int = LATENCY_ROUNDS,
        trials: bool = True, say=print) -> dict:
    """Measure every (backbone, batch size) of ``backbones`` for every variant on each of
    ``devices``; ``only``: those variant labels; ``hf_arch``: another HF architecture (a
    dry run's tiny one); ``latency_rounds``: rounds of each backbone's interleaved latency
    pass (:func:`latency_pass`, per device; 0: none); ``trials``: False measures only that
    pass. The groups, each backbone's checkpoint, data and latency, and the variants."""
    import torch

    vs = variants(quick)
    if only:
        unknown = sorted(set(only) - {v["label"] for v in vs})
        if unknown:
            raise SystemExit(f"unknown variants {unknown}; known: {[v['label'] for v in vs]}")
        vs = [v for v in vs if v["label"] in only]
    grid = [("small", 8)] if quick else [(b, bs) for b in backbones for bs in BATCH_SIZES[b]]
    steps_of = {b: steps or STEPS[b] for b, _ in grid}
    n_total, n_done, t_start = len(grid) * len(vs) * len(devices), 0, time.perf_counter()
    say(f"{n_total} measurements: {len(grid)} backbone x batch, {len(vs)} variants, devices {devices}"
        if trials else f"the latency of {len(vs)} variants on {', '.join(dict.fromkeys(b for b, _ in grid))}, "
        f"devices {devices}")
    tmp = tempfile.TemporaryDirectory(prefix="memory-ckpt-")
    checkpoints, data_info, groups, latency = {}, {}, [], {}
    try:
        entries, datas = {}, {}
        for b in dict.fromkeys(b for b, _ in grid):
            folder = None
            if b in HF_BACKBONES:
                folder = Path(tmp.name) / b
                t0 = time.perf_counter()
                checkpoints[b] = make_checkpoint(b, folder, hf_arch)
                say(f"{b}: random HFGraphormer checkpoint, {checkpoints[b]['checkpoint_params']:,} parameters "
                    f"({checkpoints[b]['weights_bytes'] / MB:,.1f} MB safetensors), written to {folder} "
                    f"({time.perf_counter() - t0:.1f}s)")
            entries[b] = backbone_entry(b, folder)
            datas[b] = load_data(entries[b])
            need = steps_of[b] * max(bs for bb, bs in grid if bb == b)
            if len(datas[b].train) < need:
                raise SystemExit(f"{DATASET} has {len(datas[b].train)} training graphs; {steps_of[b]} steps need {need}")
            g0 = datas[b].train[0]
            data_info[b] = {"train_graphs": len(datas[b].train),
                            "path_hops": int(g0.path_edges.shape[1]) if hasattr(g0, "path_edges") else 0}
        for b, bs in grid if trials else ():
            rows = []
            for v in vs:
                row = {"variant": v["label"], "method": v["method"], "params": v.get("params", {}),
                       "plugins": sorted(v["plugins"])}
                for dev in devices:
                    device = torch.device("cuda", torch.cuda.current_device()) if dev == "cuda" else torch.device("cpu")
                    r = measure(datas[b], entries[b], bs, v, steps_of[b], device)
                    row[dev] = r
                    n_done += 1
                    say(f"[{n_done}/{n_total} {time.perf_counter() - t_start:6.0f}s] {b:15s} batch {bs:3d} "
                        f"{v['label']:22s} {dev:4s} peak {r['peak_train_bytes'] / MB:9.1f} MB  parts "
                        f"{r['sum_of_parts_bytes'] / MB:9.1f} MB  trainable {r['trainable_params']:>10,}  "
                        f"latency {r['latency_ms_per_graph']:7.2f} ms/graph  ({r['wall_s']:.1f}s)")
                rows.append(row)
            arch = BACKBONES.get(b) or (checkpoints[b]["arch"] if b in checkpoints else {})
            groups.append({"backbone": b, "params": arch, "batch_size": bs, "steps": steps_of[b],
                           "train_graphs": data_info[b]["train_graphs"],
                           "source": "hf_graphormer checkpoint" if b in HF_BACKBONES else "params",
                           "rows": rows})
        for b in dict.fromkeys(b for b, _ in grid) if latency_rounds else ():
            for dev in devices:
                device = torch.device("cuda", torch.cuda.current_device()) if dev == "cuda" else torch.device("cpu")
                t0 = time.perf_counter()
                lat = latency_pass(datas[b], entries[b], vs, latency_rounds, device)
                latency.setdefault(b, {})[dev] = lat
                say(f"{b}: latency on {dev}, {latency_rounds} interleaved rounds ({time.perf_counter() - t0:.0f}s): "
                    + ", ".join(f"{k} {x['min_ms_per_graph']:.1f}" for k, x in lat.items()) + " ms/graph")
    finally:
        tmp.cleanup()
    return {"groups": groups, "checkpoints": checkpoints, "data": data_info, "variants": vs, "latency": latency,
            "total_s": time.perf_counter() - t_start}


def _mb(x) -> str:
    return "" if x is None else f"{x / MB:,.1f}"


def _mb_fine(x) -> str:
    """MB with three significant digits below 10 MB (a prompt's few kB still show)."""
    if x is None:
        return ""
    v = x / MB
    return f"{v:,.1f}" if v >= 10 or v == 0 else f"{v:.{max(1, 2 - math.floor(math.log10(v)))}f}"


def _ratio(a, b) -> str:
    """a / b: two decimals, or two significant digits below 0.1 (trainable parameters: 0.0028)."""
    if a is None or not b:
        return ""
    x = a / b
    if x == 0 or x >= 0.095:
        return f"{x:.2f}"
    return f"{x:.{1 - math.floor(math.log10(x))}f}"


def _params(n: int) -> str:
    return f"{n:,}"


def stored_bytes(fig: dict) -> int:
    """The bytes a task stores beside the shared frozen backbone: its trainable parameters, fp32."""
    return fig.get("stored_bytes", PARAM_BYTES * fig["trainable_params"])


def table(rows: list[dict], latency: dict | None = None) -> str:
    """One table: the CPU figures where measured, else the CUDA ones; each beside full's.
    ``latency``: the interleaved pass's figures by variant (else the trial record's)."""
    full = next((r for r in rows if r["variant"] == "full" and r.get("cpu")), None)
    full_cuda = next((r for r in rows if r["variant"] == "full" and r.get("cuda")), None)
    lines = ["| method variant | trainable params | × full | task stores (MB) | × full | training peak (MB) | "
             "× full | sum of parts (MB) | peak / parts | latency (ms/graph) | × full | CUDA peak (MB) |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        cpu, cuda = r.get("cpu"), r.get("cuda")
        main = cpu or cuda  # the CPU figures when measured, else the CUDA ones
        ref = ((full or {}).get("cpu") if cpu else (full_cuda or {}).get("cuda")) or {}
        if latency:
            lat = (latency.get(r["variant"]) or {}).get("min_ms_per_graph")
            ref_lat = (latency.get("full") or {}).get("min_ms_per_graph")
        else:
            lat, ref_lat = main.get("latency_ms_per_graph"), ref.get("latency_ms_per_graph")
        lines.append(
            f"| {r['variant']} | {_params(main['trainable_params'])} | "
            f"{_ratio(main['trainable_params'], ref.get('trainable_params'))} | "
            f"{_mb_fine(stored_bytes(main))} | {_ratio(stored_bytes(main), stored_bytes(ref) if ref else None)} | "
            f"{_mb(main['peak_train_bytes'])} | {_ratio(main['peak_train_bytes'], ref.get('peak_train_bytes'))} | "
            f"{_mb(main['sum_of_parts_bytes'])} | {_ratio(main['peak_train_bytes'], main['sum_of_parts_bytes'])} | "
            f"{'' if lat is None else f'{lat:.2f}'} | {_ratio(lat, ref_lat)} | "
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
    paras = claim(out, key)
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
    lat_lines = []
    for b, per_dev in out.get("latency", {}).items():
        passed = per_dev.get(key)
        if b in HF_BACKBONES or not passed or "full" not in passed:
            continue  # an HF backbone's latency is in its own paragraph
        full = passed["full"]["min_ms_per_graph"]
        rel = sorted((x["min_ms_per_graph"] / full, v) for v, x in passed.items() if v != "full")
        iqr = [(lambda q: (q[2] - q[0]) / q[1])(statistics.quantiles(x["ms_per_graph"], n=4))
               for x in passed.values() if len(x["ms_per_graph"]) >= 4]
        lat_lines.append(f"{b}: full fine-tuning {full:.1f} ms per graph, the other variants {rel[0][0]:.2f}× "
                         f"({rel[0][1]}) to {rel[-1][0]:.2f}× ({rel[-1][1]})"
                         + (f", a variant's timings spreading by {statistics.median(iqr):.0%} of their median "
                            "(interquartile range, median over variants)" if iqr else ""))
    if lat_lines:
        paras.append("**Latency of the smaller backbones.** " + "; ".join(lat_lines) + ". With timings that "
                     "spread this much (a shared 2-core machine), the differences between variants there are "
                     "noise, not what a method adds to the forward.")
    return "\n\n".join(paras) + "\n"


def claim(out: dict, key: str) -> list[str]:
    """For each HF backbone: where the papers' memory claim (PEFT trains in much less memory
    than full fine-tuning) shows, where the tensors saved for backward swamp it, and what
    a task stores and how fast it runs, each beside full fine-tuning; from the numbers."""
    paras = []
    for b in HF_BACKBONES:
        gs = sorted((g for g in out["groups"] if g["backbone"] == b), key=lambda g: g["batch_size"])
        per = []
        for g in gs:
            rows = [r for r in g["rows"] if key in r]
            full = next((r[key] for r in rows if r["variant"] == "full"), None)
            peft = [r for r in rows if r["variant"] not in ("full", "linear_probe")]
            if full is None or not peft:
                continue
            fp, parts = full["peak_train_bytes"], full["parts"]
            state = parts.get("gradient_bytes", 0) + parts.get("optimizer_state_bytes", 0)
            by = sorted(peft, key=lambda r: r[key]["peak_train_bytes"])
            per.append({"bs": g["batch_size"], "fp": fp, "state": state, "act": parts.get("saved_activation_bytes", 0),
                        "n": full["trainable_params"], "lo": by[0], "hi": by[-1],
                        "ratios": [r[key]["peak_train_bytes"] / fp for r in by],
                        "below": [fp - r[key]["peak_train_bytes"] for r in by],
                        "lp": next((r[key] for r in rows if r["variant"] == "linear_probe"), None), "rows": rows})
            per[-1]["median"] = statistics.median(per[-1]["ratios"])
        if not per:
            continue

        def said(x: dict) -> str:
            return (f"at batch {x['bs']} full fine-tuning peaks at {x['fp'] / MB:,.0f} MB, of which the gradients "
                    f"and AdamW moments of its {x['n']:,} trainable parameters (12 bytes each, beside the 4 bytes "
                    f"of the weights every method holds) are {x['state'] / MB:,.0f} MB ({x['state'] / 1e9:.2f}·10^9 bytes, "
                    f"{x['state'] / x['fp']:.0%} of the peak) and the tensors it saves for backward "
                    f"{x['act'] / MB:,.0f} MB ({x['act'] / x['fp']:.0%}). The PEFT variants (linear_probe aside) "
                    f"peak at {x['ratios'][0]:.2f}× ({x['lo']['variant']}) to {x['ratios'][-1]:.2f}× "
                    f"({x['hi']['variant']}) full, median {x['median']:.2f}×: {min(x['below']) / MB:,.0f}–"
                    f"{max(x['below']) / MB:,.0f} MB below it")

        shows = min(per, key=lambda x: x["median"])  # where PEFT's peak is the smallest share of full's
        text = (f"**{b}: where the papers' memory claim shows.** On this checkpoint-loaded backbone, {said(shows)}"
                + (f"; linear_probe, which saves almost nothing for backward, peaks at "
                   f"{shows['lp']['peak_train_bytes'] / shows['fp']:.2f}× full" if shows["lp"] else "") + ". ")
        gap = statistics.median(shows["below"])
        text += (f"The median saving, {gap / MB:,.0f} MB, is "
                 f"{gap / shows['state']:.0%} of full fine-tuning's gradients and optimizer state: "
                 + ("what PEFT saves here is that state, the saving the papers claim."
                    if 0.8 <= gap / shows["state"] <= 1.25 else
                    "PEFT saves that state, the saving the papers claim, and tensors saved for backward besides "
                    "(a frozen linear layer's backward needs its weight, not its saved input)."
                    if gap > shows["state"] else
                    "PEFT saves that state, the saving the papers claim, less what its own modules save for "
                    "backward."))
        paras.append(text)
        swamped = max(per, key=lambda x: x["median"])
        if swamped is not shows:
            grows = swamped["act"] / max(shows["act"], 1)
            swamp = swamped["median"] >= 0.8 and swamped["act"] > 0.5 * swamped["fp"]
            paras.append(
                f"**{b}: {'where activations swamp it' if swamp else 'as the batch grows'}.** "
                f"{said(swamped)[0].upper()}{said(swamped)[1:]}. The "
                f"gradients and optimizer state PEFT does not keep are the same {swamped['state'] / MB:,.0f} MB, "
                f"but the tensors saved for backward, which every method that backpropagates through the backbone "
                f"keeps (adapters, LoRA, prompts and GPF all need the gradient at their inputs), are {grows:.1f}× "
                f"those at batch {shows['bs']}: PEFT now peaks {1 - swamped['median']:.0%} below full (median) "
                f"instead of {1 - shows['median']:.0%}"
                + (f", and memory is set by the batch's activations ({swamped['act'] / swamped['fp']:.0%} of "
                   "full's peak), not by the number of trainable parameters." if swamp else "."))
        rows = per[0]["rows"]
        full = next(r[key] for r in rows if r["variant"] == "full")
        st = sorted((r for r in rows if r["variant"] != "full"), key=lambda r: stored_bytes(r[key]))
        least = ", ".join(r["variant"] for r in st if stored_bytes(r[key]) == stored_bytes(st[0][key]))
        most = ", ".join(r["variant"] for r in st if stored_bytes(r[key]) == stored_bytes(st[-1][key]))
        text = (f"**{b}: what a task stores, and latency.** Full fine-tuning stores the whole model per task, "
                f"{stored_bytes(full) / MB:,.1f} MB; the other variants store {_mb_fine(stored_bytes(st[0][key]))}–"
                f"{_mb_fine(stored_bytes(st[-1][key]))} MB ({_ratio(stored_bytes(st[0][key]), stored_bytes(full))}–"
                f"{_ratio(stored_bytes(st[-1][key]), stored_bytes(full))}× full; {least} least, "
                f"{most} most), task head included: on storage the claim holds at any batch size.")
        rec = {}  # variant -> the trial records' latency, one per table (timed after its training)
        for x in per:
            for r in x["rows"]:
                if r[key].get("latency_ms_per_graph") is not None:
                    rec.setdefault(r["variant"], []).append(r[key]["latency_ms_per_graph"])
        rec_spread = [max(xs) / min(xs) - 1 for xs in rec.values() if len(xs) > 1 and min(xs) > 0]
        passed = out.get("latency", {}).get(b, {}).get(key)
        if passed and "full" in passed and len(passed) > 1:
            med = {v: x["min_ms_per_graph"] for v, x in passed.items()}
            rel = sorted(((v, m / med["full"]) for v, m in med.items() if v != "full"), key=lambda t: t[1])
            iqr = [(lambda q: (q[2] - q[0]) / q[1])(statistics.quantiles(x["ms_per_graph"], n=4))
                   for x in passed.values() if len(x["ms_per_graph"]) >= 4]
            rounds = next(iter(passed.values()))["rounds"]
            text += (f" Inference of the deployed model (LoRA merged) on the {key.upper()}, {EVAL_GRAPHS} graphs per "
                     f"forward, timed round-robin over the variants (the fastest of {rounds} rounds): full fine-tuning "
                     f"{med['full']:.1f} ms per graph; the other variants {rel[0][1]:.2f}× ({rel[0][0]}) to "
                     f"{rel[-1][1]:.2f}× ({rel[-1][0]}) of it.")
            if iqr:
                spread = statistics.median(iqr)
                beyond = [f"{v} ({x:.2f}×)" for v, x in rel if abs(x - 1) > spread]
                text += (f" A variant's {rounds} timings spread by {spread:.0%} of their median (interquartile "
                         "range, median over variants): "
                         + ("no variant differs from full fine-tuning by more than that, so on this machine the "
                            "methods' additions to the forward (adapters, prompt tokens, GPF's prompt; LoRA is "
                            "merged away) are not resolved from the noise." if not beyond else
                            f"beyond it: {', '.join(beyond)}; the others are within it."))
            if rec_spread:
                text += (f" The trial records' own timings (once per table, right after training, other processes' "
                         f"load then unrelated across variants) differ between the two tables by "
                         f"{statistics.median(rec_spread):.0%} (median) and up to {max(rec_spread):.0%}: that is "
                         "why the latency column is the round-robin pass's.")
        elif "full" in rec and len(rec) > 1:
            med = {v: statistics.median(xs) for v, xs in rec.items()}
            rel = sorted(((v, m / med["full"]) for v, m in med.items() if v != "full"), key=lambda t: t[1])
            text += (f" Inference of the deployed model (LoRA merged) on the {key.upper()}, {EVAL_GRAPHS} graphs "
                     f"per forward: full fine-tuning {med['full']:.1f} ms per graph; the variants "
                     f"{rel[0][1]:.2f}× ({rel[0][0]}) to {rel[-1][1]:.2f}× ({rel[-1][0]}) of it (each the median "
                     "of its tables' timings).")
            if rec_spread:
                text += (f" Each variant is timed once per table, so the two timings of the same model show the "
                         f"noise: they differ by {statistics.median(rec_spread):.0%} (median) and up to "
                         f"{max(rec_spread):.0%}; ratios within that are not differences.")
        paras.append(text)
    return paras


def _run_of(g: dict, out: dict) -> dict:
    return g.get("run") or {k: out.get(k) for k in ("command", "measured_at", "total_s", "devices", "machine")}


def render(out: dict) -> str:
    has_cuda = "cuda" in out["devices"]
    gpus = sorted({(_run_of(g, out).get("machine") or {}).get("gpu") for g in out["groups"]} - {None})
    cuda_line = (f"CUDA column: `torch.cuda.max_memory_allocated` on {', '.join(gpus)}, reset around each training "
                 "step." if has_cuda else
                 "**No GPU on the machine that ran this; CUDA column empty.** The CUDA allocator peak of every "
                 "method on a real GPU is in [gpu.md](gpu.md) (`make gpu-check`), which also measures the "
                 "graphormer-base tables below on CUDA.")
    peak_line = ("Measured peak: on the CPU, the highest running total of live tensor bytes from the allocator's "
                 "own allocation and free events (PyTorch profiler, `profile_memory=True`), added to the model "
                 "already in memory when the first step starts." if "cpu" in out["devices"] else
                 "Measured peak: the CUDA allocator's peak (no CPU run).")
    s = out["setup"]
    runs: dict[tuple, dict] = {}
    for g in out["groups"]:
        r = _run_of(g, out)
        runs.setdefault((r["command"], r["measured_at"]), {**r, "backbones": []})
        if g["backbone"] not in runs[(r["command"], r["measured_at"])]["backbones"]:
            runs[(r["command"], r["measured_at"])]["backbones"].append(g["backbone"])
    run_lines = []
    for r in runs.values():
        m = r.get("machine") or {}
        git = str(r.get("git") or "unknown").replace("workloads/", "`workloads/`")
        run_lines.append(
            f"- {', '.join(r['backbones'])}: `{r['command']}` at commit {git}, measured {r['measured_at']} on "
            f"{m.get('host')}: {m.get('cpu_count')} CPUs, torch {m.get('torch')} ({m.get('torch_threads')} threads), "
            f"Python {m.get('python')}; devices: {', '.join(r.get('devices') or [])}; the run took "
            f"{(r.get('total_s') or 0) / 60:.1f} min.")
    lat_runs: dict[tuple, tuple[dict, list[str]]] = {}
    for b, r in out.get("latency_runs", {}).items():
        if (r.get("command"), r.get("measured_at")) not in runs:
            lat_runs.setdefault((r.get("command"), r.get("measured_at")), (r, []))[1].append(b)
    for r, bs in lat_runs.values():
        git = str(r.get("git") or "unknown").replace("workloads/", "`workloads/`")
        run_lines.append(f"- {', '.join(bs)}, the latency column: `{r['command']}` at commit {git}, measured "
                         f"{r['measured_at']}" + (f"; it took {r['total_s'] / 60:.1f} min" if r.get("total_s") else "")
                         + ".")
    steps = ", ".join(f"{b}: {n} (at batch {', '.join(str(g['batch_size']) for g in out['groups'] if g['backbone'] == b)})"
                      for b, n in dict.fromkeys((g["backbone"], g.get("steps", s.get("steps"))) for g in out["groups"]))
    rounds_said = ", ".join(f"{b} {next(iter(per.values()))['rounds']}" for b, per in
                            ((b, next(iter(d.values()))) for b, d in out.get("latency", {}).items()) if per) or "none"
    parts = [
        "# Training memory per method: measured peak vs. sum of parts\n\n",
        f"Regenerate every table with `{COMMAND}`" + ("" if out["quick"] else " (or `make benchmark-memory`)")
        + f"; one backbone's tables with `{COMMAND} --backbones NAME` (e.g. `--backbones graphormer-base`), "
        "which keeps the other tables from `memory.json`. The runs that produced the tables below:\n\n",
        "\n".join(run_lines) + "\n\n",
        f"{cuda_line}\n\n",
        f"Setup: real molecules, a deterministic subset of {s['dataset']['max_molecules']} `{s['dataset']['name']}` "
        f"molecules (scaffold split, {s.get('train_graphs', 560)} training graphs), of which each configuration "
        f"trains on the first steps × batch: full training steps per backbone {steps}, all measured (the first "
        f"step has no gradients or optimizer state yet), one epoch, seed {s['seed']} everywhere, so every row of "
        f"a table sees the same batches. Default method and plug-in parameters (listed in `memory.json`; "
        f"*adapter (houlsby)* is the adapter method's default placement, *adapter (pfeiffer)* sets "
        f"`placement: pfeiffer`); AdamW; gradient clipping {s['grad_clip']}.\n\n",
        "Backbones, all randomly initialised (memory, parameter counts and latency do not depend on weight "
        "values): *small* and *large* are the project's Graphormer built from `params`; *graphormer-base* is "
        "Hugging Face's Graphormer at the size of the released `graphormer-base-pcqm4mv2`, loaded through the "
        "checkpoint path a user's checkpoint takes: the run writes a random `HFGraphormer` once as an HF "
        "`save_pretrained` folder (`save_hf_checkpoint`: `config.json`, `model.safetensors`) and each trial's "
        "backbone is `{name: graphormer, checkpoint: {format: hf_graphormer, path: <folder>, spatial_pos_max: "
        f"{SPATIAL_POS_MAX}}}}}`, read by the sweep's own `train_seed` (molecules featurized with HF's multi-hop "
        "paths).\n\n",
        f"{peak_line} Sum of parts: parameters + gradients + optimizer state + tensors saved for backward at the "
        "step with the most saved bytes; a breakdown, not a peak. *peak / parts* is the measured peak over "
        "the sum of parts. *task stores*: the bytes a task must keep beside the shared frozen backbone, its "
        f"trainable parameters (task head included) at {PARAM_BYTES} bytes (fp32); for full fine-tuning that is the "
        "whole model. *latency*: ms per graph of the deployed model (LoRA merged into its weights), a no-grad "
        f"forward of the {EVAL_GRAPHS} test graphs, from a pass after the trials that builds every variant as "
        "`train_seed` does and times them round-robin (each round times every variant once, after one untimed "
        f"round; the fastest round, as load from other processes only ever adds time; rounds: {rounds_said}), so "
        "that load falls on all variants alike; "
        "the same figure in both batch sizes' tables (training batch does not change inference). The trial "
        f"records' own latency (median of {LATENCY['latency_repeats']} forwards after training) is in `memory.json`. "
        "Tables from runs before the latency column have it empty. Every *× full* is the figure over full "
        "fine-tuning's in the same table. MB = 2^20 bytes.\n\n",
        "## What the numbers show\n\n", findings(out), "\n",
    ]
    for g in out["groups"]:
        b = g["params"]
        if g["backbone"] in HF_BACKBONES:
            ck = out.get("checkpoints", {}).get(g["backbone"], {})
            head = (f"## {g['backbone']} backbone (HF checkpoint, random weights: hidden {b['hidden_dim']}, "
                    f"{b['num_layers']} layers, {b['num_heads']} heads, ffn {b['ffn_dim']}, "
                    f"{b.get('edge_type', 'multi_hop')} edges over {b.get('multi_hop_max_dist', 5)} hops; "
                    f"{ck.get('checkpoint_params', 0):,} parameters), batch {g['batch_size']}\n\n")
        else:
            head = (f"## {g['backbone']} backbone (hidden {b['hidden_dim']}, {b['num_layers']} layers, "
                    f"{b['num_heads']} heads, ffn {b['ffn_dim']}), batch {g['batch_size']}\n\n")
        parts.append(head)
        dev = "cpu" if any("cpu" in r for r in g["rows"]) else "cuda"
        parts.append(table(g["rows"], out.get("latency", {}).get(g["backbone"], {}).get(dev)) + "\n")
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


def merge(out: dict, old: dict) -> dict:
    """``out`` with the tables of ``old`` (a memory.json) for the backbones ``out`` did not
    measure, each kept with the run that produced it; groups in backbone, then batch order."""
    mine = {g["backbone"] for g in out["groups"]}
    old_run = {k: old.get(k) for k in ("command", "measured_at", "total_s", "devices", "machine")}
    old_run["git"] = (old.get("setup") or {}).get("git")
    kept = []
    for g in old.get("groups", []):
        if g["backbone"] in mine:
            continue
        g = dict(g)
        g.setdefault("run", old_run)
        g.setdefault("steps", (old.get("setup") or {}).get("steps"))
        kept.append(g)
    if not kept:
        return out
    order = {b: i for i, b in enumerate(ALL_BACKBONES)}
    merged = dict(out)
    merged["groups"] = sorted(kept + out["groups"], key=lambda g: (order.get(g["backbone"], 99), g["batch_size"]))
    merged["devices"] = sorted({d for g in merged["groups"] for d in (g["run"].get("devices") or [])},
                               key=["cpu", "cuda"].index)
    merged["checkpoints"] = {**old.get("checkpoints", {}), **out.get("checkpoints", {})}
    for k in ("latency", "latency_runs"):
        merged[k] = {**{b: v for b, v in old.get(k, {}).items() if b not in mine}, **out.get(k, {})}
    setup = dict(out["setup"])
    for k in ("method_params", "plugin_params"):
        setup[k] = {**(old.get("setup") or {}).get(k, {}), **out["setup"][k]}
    merged["setup"] = setup
    return merged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke check: small backbone, batch 8, 2 methods (writes only with --out)")
    ap.add_argument("--backbones", default=",".join(ALL_BACKBONES),
                    help=f"comma-separated, of {', '.join(ALL_BACKBONES)} (default all); the other backbones' "
                    "tables are kept from memory.json")
    ap.add_argument("--variants", default=None,
                    help="comma-separated variant labels to measure (a check; writes only with --out)")
    ap.add_argument("--steps", type=int, default=None,
                    help="full training steps per configuration, all measured (default: "
                    + ", ".join(f"{b} {n}" for b, n in STEPS.items()) + ")")
    ap.add_argument("--devices", default="auto",
                    help="comma-separated cpu,cuda; auto: cpu, plus cuda when torch sees a GPU")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder for memory.md and memory.json (default docs/benchmarks; --quick, --variants: none)")
    ap.add_argument("--latency-rounds", type=int, default=LATENCY_ROUNDS,
                    help="rounds of the interleaved latency pass after each backbone's trials (0: none)")
    ap.add_argument("--latency-only", action="store_true",
                    help="measure only the latency pass of --backbones and put it into memory.json and memory.md")
    ap.add_argument("--render", action="store_true",
                    help="measure nothing: rewrite memory.md from memory.json (after a change to the page's text)")
    args = ap.parse_args()
    if args.render:
        from workloads.util import atomic_write_text

        folder = args.out or ROOT / "docs" / "benchmarks"
        atomic_write_text(folder / "memory.md", render(json.loads((folder / "memory.json").read_text())))
        print(f"wrote {folder / 'memory.md'} from {folder / 'memory.json'}")
        return
    if args.steps is not None and args.steps < 2:
        ap.error("--steps must be at least 2 (the first step has no gradients or optimizer state)")
    backbones = [b.strip() for b in args.backbones.split(",") if b.strip()]
    if not backbones or set(backbones) - set(ALL_BACKBONES):
        ap.error(f"--backbones takes {', '.join(ALL_BACKBONES)}, got {args.backbones!r}")
    backbones = [b for b in ALL_BACKBONES if b in backbones]
    only = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None

    import torch

    from workloads.util import atomic_write_text

    if args.devices == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [d.strip() for d in args.devices.split(",") if d.strip()]
        if not devices or set(devices) - {"cpu", "cuda"}:
            ap.error(f"--devices takes cpu and/or cuda, got {args.devices!r}")
        if "cuda" in devices and not torch.cuda.is_available():
            ap.error("--devices names cuda but torch sees no GPU")
    partial = args.quick or only is not None
    out_dir = args.out if args.out is not None else (None if partial else ROOT / "docs" / "benchmarks")

    if args.latency_only:
        if only or args.quick or args.latency_rounds < 1:
            ap.error("--latency-only measures every variant of full tables: no --variants, --quick, or 0 rounds")
        folder = args.out or ROOT / "docs" / "benchmarks"
        saved = json.loads((folder / "memory.json").read_text())
        git = git_state()
        res = run(backbones, devices, latency_rounds=args.latency_rounds, trials=False,
                  say=lambda msg: print(msg, flush=True))
        for b, lat in res["latency"].items():
            saved.setdefault("latency", {})[b] = lat
            saved.setdefault("latency_runs", {})[b] = {
                "command": COMMAND + f" --latency-only --backbones {','.join(backbones)}"
                + (f" --latency-rounds {args.latency_rounds}" if args.latency_rounds != LATENCY_ROUNDS else "")
                + (f" --devices {args.devices}" if args.devices != "auto" else ""),
                "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), "total_s": res["total_s"], "git": git,
                "host": platform.node(), "torch_threads": torch.get_num_threads()}
        saved.setdefault("checkpoints", {}).update(res["checkpoints"])
        atomic_write_text(folder / "memory.json", json.dumps(saved, indent=2) + "\n")
        atomic_write_text(folder / "memory.md", render(saved))
        print(f"wrote the latency of {', '.join(res['latency'])} into {folder / 'memory.json'} and memory.md")
        return

    git = git_state()  # the code this process imports now, before the measurements
    res = run(backbones, devices, steps=args.steps, quick=args.quick, only=only,
              latency_rounds=args.latency_rounds, say=lambda msg: print(msg, flush=True))
    vs = res["variants"]

    from workloads.config import TrainConfig
    from workloads.peft import METHODS
    from workloads.plugins import PLUGINS

    command = (COMMAND + (" --quick" if args.quick else "")
               + (f" --backbones {','.join(backbones)}" if not args.quick and backbones != list(ALL_BACKBONES) else "")
               + (f" --variants {args.variants}" if only else "")
               + (f" --steps {args.steps}" if args.steps is not None else "")
               + (f" --devices {args.devices}" if args.devices != "auto" else ""))
    machine = {
        "host": platform.node(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name() if "cuda" in devices else None,
    }
    measured_at = time.strftime("%Y-%m-%d %H:%M:%S")
    the_run = {"command": command, "measured_at": measured_at, "total_s": res["total_s"], "devices": devices,
               "machine": machine, "git": git}
    for g in res["groups"]:
        g["run"] = the_run
    out = {
        "command": command,
        "quick": args.quick,
        "measured_at": measured_at,
        "total_s": res["total_s"],
        "devices": devices,
        "machine": machine,
        "setup": {
            "dataset": DATASET, "train_graphs": next(iter(res["data"].values()))["train_graphs"],
            "batch_sizes": {b: list(BATCH_SIZES[b]) for b in backbones},
            "eval_graphs": EVAL_GRAPHS, "steps": {g["backbone"]: g["steps"] for g in res["groups"]}, "seed": 0,
            "git": the_run["git"], "pretrain": None, "optimizer": "AdamW", "grad_clip": TrainConfig().grad_clip,
            "latency": LATENCY, "param_bytes": PARAM_BYTES,
            "method_params": {v["label"]: METHODS.get(v["method"]).parse(v.get("params", {})).model_dump(mode="json")
                              for v in vs},
            "plugin_params": {p: PLUGINS.get(p).parse({}).model_dump(mode="json")
                              for v in vs for p in v["plugins"]},
        },
        "checkpoints": res["checkpoints"],
        "latency": res["latency"],
        "latency_runs": {b: {k: the_run[k] for k in ("command", "measured_at", "git")} for b in res["latency"]},
        "groups": res["groups"],
    }
    if out_dir is not None and (out_dir / "memory.json").is_file() and not args.quick:
        out = merge(out, json.loads((out_dir / "memory.json").read_text()))
    page = render(out)
    print("\n" + page)
    if out_dir is not None:
        atomic_write_text(out_dir / "memory.json", json.dumps(out, indent=2) + "\n")
        atomic_write_text(out_dir / "memory.md", page)
        print(f"wrote {out_dir / 'memory.md'} and {out_dir / 'memory.json'}", flush=True)


if __name__ == "__main__":
    main()
