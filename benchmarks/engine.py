"""ENGINE and the node-level baselines on the shipped WordNet subset: accuracy over
3 seeds, trainable parameters, measured peak training memory, training time per
epoch with and without the LM-state cache, and inference latency per node with
and without early exit.

    .venv/bin/python benchmarks/engine.py            # writes docs/benchmarks/engine.{md,json}

Every row is a real ``run_trial`` (the sweep's own loop: validation-selected epoch,
test at that epoch, the CPU allocator's measured peak, latency timed from text).
Exit settings act at inference only, so ENGINE's rows with and without early exit
share their trained ladders (the same seeds give the same weights; the script
checks it) and differ only in how inference runs.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runfolder.io import atomic_write_json, atomic_write_text  # noqa: E402
from workloads.backbones import BACKBONES, LMConfig, NodeModel  # noqa: E402
from workloads.config import TrialConfig  # noqa: E402
from workloads.datasets.config import DatasetConfig  # noqa: E402
from workloads.peft import METHODS  # noqa: E402
from workloads.tasks import task_of  # noqa: E402
from workloads.train import run_trial  # noqa: E402
from workloads.util import default_cache_dir, seeded  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
LM = {"max_length": 32}
SUB = {"subgraph_size": 8}
ROWS = [  # (label, method, params, lr)
    ("gnn (SAGE, 2 layers)", "gnn", {**SUB, "gnn": "sage"}, 3e-3),
    ("engine, no early exit", "engine", {**SUB, "patience": None, "threshold": None}, 3e-3),
    ("engine, patience 1", "engine", {**SUB, "patience": 1, "threshold": None}, 3e-3),
    ("engine, patience 2", "engine", {**SUB, "patience": 2, "threshold": None}, 3e-3),
    ("engine, confidence ≥ 0.9", "engine", {**SUB, "patience": None, "threshold": 0.9}, 3e-3),
    ("engine, confidence ≥ 0.7", "engine", {**SUB, "patience": None, "threshold": 0.7}, 3e-3),
    ("lm_lora (r 8)", "lm_lora", {"r": 8}, 1e-3),
    ("lm_full", "lm_full", {}, 1e-4),
]


def trial(method, params, lr, args, cache_dir) -> dict:
    cfg = TrialConfig(
        trial_id=f"bench-{method}", seed=0, seeds=args.seeds,
        dataset=DatasetConfig(name="wordnet", max_train_nodes=args.train_nodes),
        backbone={"name": "lm", "params": LM}, method={"name": method, "params": params},
        train={"epochs": args.epochs, "batch_size": 64, "lr": lr, "eval_batch_size": 256},
        profile={"latency_batch_size": args.latency_nodes, "latency_warmup": 2, "latency_repeats": args.repeats},
        cache_dir=str(cache_dir), device="cpu", num_threads=torch.get_num_threads(),
    )
    return run_trial(cfg, progress=lambda m: None)


def epoch_seconds(method, params, use_cache: bool, args, cache_dir) -> float:
    """Wall-clock seconds of one training epoch (data loading included), with batches
    read from the LM-state cache or computed from text by the frozen LM."""
    ds = DatasetConfig(name="wordnet", max_train_nodes=args.train_nodes)
    task = task_of(ds)
    data = task.load(ds, cache_dir)
    with seeded(0):
        model = NodeModel(BACKBONES.get("lm").build(LMConfig(**LM)), data.num_classes)
        m = METHODS.get(method)
        hooks = m.apply(model, m.parse(params))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    for mod in hooks.eval_modules:
        mod.eval()
    order = np.random.default_rng(0).permutation(data.train)
    t0 = time.perf_counter()
    for start in range(0, len(order), 64):
        batch = data.batch(order[start:start + 64], model, use_cache=use_cache)
        out = model(batch, with_slots=True)
        loss = task.loss(data, out["pred"], batch.y) + sum(f(model, batch, out) for f in hooks.extra_loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--train-nodes", type=int, default=600, help="stratified training subsample (every method)")
    ap.add_argument("--latency-nodes", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    cache_dir = default_cache_dir()
    t_all = time.perf_counter()
    rows = []
    for label, method, params, lr in ROWS:
        t0 = time.perf_counter()
        r = trial(method, params, lr, args, cache_dir)
        m = r.metrics
        rows.append({"label": label, "method": method, "params": params, "lr": lr,
                     "test_mean": m.test_score, "test_std": m.test_std, "test_scores": m.test_scores,
                     "val_mean": m.val_score, "trainable": r.trainable_params, "total": r.total_params,
                     "peak_mb": r.memory.peak_train_mb, "latency_ms_per_node": r.latency.ms_per_unit,
                     "inference": r.latency.inference,
                     "history": [[h.model_dump() for h in s.history] for s in r.seeds],
                     "train_s": r.timings.train_s})
        print(f"{label}: test {m.test_score:.4f}±{m.test_std:.4f}, "
              f"{r.latency.ms_per_unit:.2f} ms/node [{time.perf_counter() - t0:.0f}s]", flush=True)
    base = next(r for r in rows if r["label"] == "engine, no early exit")
    for r in rows:
        if r["method"] == "engine":  # exit settings act at inference only: the same training
            assert r["history"] == base["history"] or all(
                abs(a["train_loss"] - b["train_loss"]) < 1e-6 for ha, hb in zip(r["history"], base["history"])
                for a, b in zip(ha, hb)), f"{r['label']}: training differs from the no-exit run"
    cache = []
    for label, method, params in [("gnn", "gnn", {**SUB}), ("engine", "engine", {**SUB, "patience": 1})]:
        with_c = statistics.median(epoch_seconds(method, params, True, args, cache_dir) for _ in range(3))
        without = epoch_seconds(method, params, False, args, cache_dir)
        cache.append({"method": label, "epoch_s_cached": with_c, "epoch_s_uncached": without,
                      "speedup": without / with_c})
        print(f"{label}: epoch {with_c:.2f}s cached, {without:.2f}s from text ({without / with_c:.0f}x)", flush=True)
    result = {"rows": rows, "cache": cache, "args": vars(args), "lm": LM,
              "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                          "torch": torch.__version__, "python": platform.python_version()},
              "wall_s": time.perf_counter() - t_all}
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_json(OUT / "engine.json", result)
    atomic_write_text(OUT / "engine.md", render(result))
    print(f"wrote {OUT / 'engine.md'}")


def render(res: dict) -> str:
    a = res["args"]
    rows, base = res["rows"], next(r for r in res["rows"] if r["label"] == "engine, no early exit")
    lines = [
        "# ENGINE and node-level baselines on WordNet",
        "",
        f"Regenerate: `.venv/bin/python benchmarks/engine.py` (this run: {res['wall_s'] / 60:.0f} min on "
        f"{res['machine']['threads']} CPU threads, torch {res['machine']['torch']}, no GPU).",
        "",
        f"Data: the WordNet 3.0 subset shipped in `data/wordnet/` (4,272 synsets, 45 lexicographer classes, "
        f"stratified 60/20/20 split), with a stratified subsample of **{a['train_nodes']} training nodes for every "
        "method**: fine-tuning the LM on all 2,563 is too slow on 2 CPU cores, and every method sees the same nodes. "
        f"LM: all-MiniLM-L6-v2 (packaged, 22.7M parameters), {res['lm']['max_length']} tokens per node. "
        f"{a['epochs']} epochs, batch 64, the validation-best epoch of each seed; test accuracy is the mean ± std "
        f"over seeds {', '.join(map(str, range(a['seeds'])))}. Subgraphs: 1-hop, up to 8 nodes.",
        "",
        "Peak memory is the CPU allocator's measured peak over the first epoch's training steps. Latency is per "
        f"node, from text (tokens in, class out: the LM included), on batches of {a['latency_nodes']} test nodes "
        f"with their subgraphs, median of {a['repeats']} timed calls; LoRA is timed merged.",
        "",
        "| method | test accuracy | trainable params | % of the model | peak train memory (MB) | latency (ms/node) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['label']} | {r['test_mean']:.4f} ± {r['test_std']:.4f} | {r['trainable']:,} | "
                     f"{100 * r['trainable'] / r['total']:.2f}% | {r['peak_mb']:.1f} | {r['latency_ms_per_node']:.2f} |")
    lines += ["", "## Early exit", "",
              "The same trained ladders (exit settings act at inference only), run from text: the LM goes block by "
              "block and a node that exits, with its subgraph, skips every later block.", "",
              f"Rungs read LM layers {base['inference']['layers']} (layer 0 is the embedding output: a node that "
              "exits there runs no transformer block). Exits per rung and LM rows per block are those of the last "
              f"timed batch ({a['latency_nodes']} nodes and their subgraphs).", "",
              "| exit rule | speed-up vs no exit | test accuracy | relative change | exits per rung | rows per LM block |",
              "|---|---|---|---|---|---|"]
    for r in rows:
        if r["method"] == "engine":
            inf = r["inference"] or {}
            lines.append(f"| {r['label'].removeprefix('engine, ')} | "
                         f"{base['latency_ms_per_node'] / r['latency_ms_per_node']:.2f}× | {r['test_mean']:.4f} | "
                         f"{100 * (r['test_mean'] - base['test_mean']) / base['test_mean']:+.2f}% | "
                         f"{inf.get('exits_per_rung')} | {inf.get('rows_per_block')} |")
    engine = [r for r in rows if r["method"] == "engine"]
    spread = max(r["test_std"] for r in engine)
    change = max(abs(r["test_mean"] - base["test_mean"]) for r in engine)
    verdict = (f"every accuracy change (at most {change:.4f}) is within twice the seeds' spread (std up to "
               f"{spread:.4f}): no measurable accuracy cost on this graph" if change <= 2 * spread else
               f"the largest accuracy change ({change:.4f}) exceeds twice the seeds' spread ({spread:.4f})")
    lines += ["", f"Here {verdict}. The paper reports up to 5× with at most a 1.17% relative drop, on a "
              "32-layer 7B LM.", "",
              "## LM-state cache", "",
              "One training epoch (wall clock, batches built included) reading pooled LM states from the cache, "
              "against the same model computing them from text with the frozen LM at every step.", "",
              "| method | epoch, cached (s) | epoch, from text (s) | speed-up |", "|---|---|---|---|"]
    for c in res["cache"]:
        lines.append(f"| {c['method']} | {c['epoch_s_cached']:.2f} | {c['epoch_s_uncached']:.2f} | "
                     f"{c['speedup']:.0f}× |")
    lines += ["", "The cache turns every training step into a read of a few hundred pooled vectors; from text, "
              "each step runs MiniLM on every subgraph node (64 targets × up to 8 nodes). The ladder and the GNN "
              "are tiny next to that, so the speed-up is larger than the paper's 12× (whose side network is "
              "larger relative to its LM step). `lm_lora` and `lm_full` train the LM, so no cache applies.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
