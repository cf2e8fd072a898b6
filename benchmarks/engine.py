"""ENGINE and the node-level baselines on two WordNet text graphs (``wordnet``, whose edges
nearly give the label away, and ``wordnet_domains``, whose edges do not): test accuracy
over seeds with Student t intervals, paired t tests (Holm), trainable parameters,
measured peak training memory, inference latency per node over the whole test set, the
early-exit table, and training time per epoch with and without the LM-state cache.

    .venv/bin/python benchmarks/engine.py            # writes docs/benchmarks/engine.{md,json}
    .venv/bin/python benchmarks/engine.py --smoke    # a check of the script: writes to a temp folder
    .venv/bin/python benchmarks/engine.py --render-only docs/benchmarks/engine.json   # the markdown again

Rows, on each testbed with the same stratified training subsample: ``constant`` (the
majority class), ``text_mlp`` (the node's own LM state, no graph), ``gnn`` on the LM's
last layer and on layer 0 (the embeddings), ENGINE, ``lm_lora`` and ``lm_full``. Each
learned row's learning rate is searched first: ``--lrs`` log-spaced values from the row's
range (``--lm-lrs`` for the two rows that train the LM), each trained on seed 0; the best
by validation accuracy is kept, its seed-0 run is the reported seed 0 (the run training
that lr on seed 0 again would give: every seed is seeded on its own) and seeds 1, 2, ...
are trained with it. Training ends once validation has not improved for ``--patience``
epochs (at most ``--epochs``, ``--lm-epochs`` for the LM rows); each seed is tested at its
validation-best epoch. Every trial is a real ``workloads.run_trial`` (the sweep's loop and
its CPU allocator's memory peak; ``constant`` is fitted outside the loop by it too).
``lm_full`` may run on fewer seeds (``--lm-full-seeds``).

Latency is timed on the trained models (caught as ``build_model`` returns them:
``train_seed`` restores each seed's best state in place), from text (tokens in, class out:
the LM included), over the **whole test set** in batches: every batch timed once after one
untimed warm-up batch, total milliseconds over test nodes. ENGINE trains once per seed;
its exit rules act at inference only, so each rule runs on the same trained ladders, and
its exits per rung and LM rows per block are summed over every test batch
(``describe_inference()["since_reset"]``). The headline exit rule is the authors'
(patience 1, no exit at rung 1: ENGINE's defaults); patience 2 and the confidence
thresholds are ours, labelled so. Statistics and the markdown:
``benchmarks/support/engine_support.py``.
"""
from __future__ import annotations

import argparse
import math
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import workloads  # noqa: E402
import workloads.train as train_module  # noqa: E402
from benchmarks.support.engine_support import (  # noqa: E402
    family, graph_facts, interval, lr_grid, render, sums, whole_test_set)
from reports.verdicts import seed_scores  # noqa: E402
from runfolder.io import atomic_write_json, atomic_write_text  # noqa: E402
from workloads.backbones import BACKBONES, LMConfig, NodeModel  # noqa: E402
from workloads.config import BackboneConfig, TrialConfig  # noqa: E402
from workloads.datasets.config import DatasetConfig  # noqa: E402
from workloads.peft import METHODS  # noqa: E402
from workloads.tasks import task_of  # noqa: E402
from workloads.util import default_cache_dir, seeded  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
TESTBEDS = ("wordnet", "wordnet_domains")
LM = {"max_length": 32}
SUB = {"subgraph_size": 8}
AUTHORS = "authors' rule: patience 1, no exit at rung 1"
ROWS = [  # (key, label, method, params, lr range searched); ENGINE's defaults are the authors' exit rule
    ("constant", "constant (majority class)", "constant", {}, None),
    ("text_mlp", "text_mlp (last LM layer, no graph)", "text_mlp", {}, (1e-3, 1e-2)),
    ("gnn", "gnn (SAGE, last LM layer)", "gnn", {**SUB, "gnn": "sage"}, (1e-3, 1e-2)),
    ("gnn_l0", "gnn (SAGE, layer 0: embeddings)", "gnn", {**SUB, "gnn": "sage", "layer": 0}, (1e-3, 1e-2)),
    ("engine", f"engine ({AUTHORS})", "engine", {**SUB}, (1e-3, 1e-2)),
    ("lm_lora", "lm_lora (r 8)", "lm_lora", {"r": 8}, (2e-3, 1e-2)),
    ("lm_full", "lm_full", "lm_full", {}, (1e-4, 3e-4)),
]
LM_ROWS = ("lm_lora", "lm_full")  # they train the LM from text: --lm-lrs, --lm-epochs
PLANNED = [  # (label, a, b): paired tests of a − b, one Holm family per testbed; the first is the layer-0 gap
    ("the layer-0 gap: gnn (last layer) − gnn (layer 0)", "gnn", "gnn_l0"),
    ("gnn − text_mlp", "gnn", "text_mlp"),
    ("engine − text_mlp", "engine", "text_mlp"),
    ("engine − gnn", "engine", "gnn"),
]
EXIT_RULES = [  # (label, whose, the exit fields of EngineConfig); the first is the headline
    (AUTHORS, "authors", {"patience": 1, "min_exit_rung": 2, "threshold": None}),
    ("no early exit", "baseline", {"patience": None, "min_exit_rung": 2, "threshold": None}),
    ("patience 2", "ours", {"patience": 2, "min_exit_rung": 2, "threshold": None}),
    ("confidence ≥ 0.9, may exit at rung 1", "ours", {"patience": None, "min_exit_rung": 1, "threshold": 0.9}),
    ("confidence ≥ 0.7, may exit at rung 1", "ours", {"patience": None, "min_exit_rung": 1, "threshold": 0.7}),
]


def config(args, dataset: str, key: str, method: str, params: dict, lr: float | None, *, seeds: int, seed: int,
           cache_dir: Path, tag: str = "") -> TrialConfig:
    return TrialConfig(
        trial_id=f"bench-{dataset}-{key}{tag}", seed=seed, seeds=seeds,
        dataset=DatasetConfig(name=dataset, max_train_nodes=args.train_nodes),
        backbone={"name": "lm", "params": LM}, method={"name": method, "params": params},
        train={"epochs": args.lm_epochs if method in LM_ROWS else args.epochs, "patience": args.patience or None,
               "batch_size": 64, "lr": lr or 1e-3, "eval_batch_size": 256},
        # run_trial's own latency (one batch, repeated): kept in the JSON; the md's is the whole test set's
        profile={"latency_batch_size": args.latency_nodes, "latency_warmup": 1, "latency_repeats": args.repeats},
        cache_dir=str(cache_dir), device="cpu", num_threads=torch.get_num_threads(),
    )


def trial(cfg: TrialConfig, catch: bool):
    """``workloads.run_trial`` and, with ``catch``, the models it trained, one per seed, at
    their validation-best epoch (caught as ``build_model`` returns them)."""
    built, build = [], train_module.build_model

    def catching(*a, **kw):
        out = build(*a, **kw)
        built.append(out[:2])
        return out

    if catch:
        train_module.build_model = catching
    try:
        r = workloads.run_trial(cfg, progress=lambda m: None)
    finally:
        train_module.build_model = build
    if r.status != "ok":
        raise RuntimeError(f"{cfg.trial_id}: {r.status}")
    return r, built


def epochs_of(r) -> tuple[list[int], list[int]]:
    return [len(s.history) for s in r.seeds], [s.best_epoch for s in r.seeds]


def search_lr(args, dataset: str, spec, lrs: list[float], cache_dir: Path):
    """Each of ``lrs`` trained on seed 0, the first reported seed; the best by validation
    accuracy is chosen (a tie: the smaller lr). Returns the chosen lr, what each lr gave
    (validation only), and the chosen lr's run and model: the reported seed 0 (the same run
    as training that lr on seed 0 again: each seed is seeded on its own)."""
    key, _, method, params, _ = spec
    tried, runs = [], {}
    for lr in lrs:
        t0 = time.perf_counter()
        try:
            r, models = trial(config(args, dataset, key, method, params, lr, seeds=1, seed=0, cache_dir=cache_dir,
                                     tag=f"-lr{lr:.2g}"), catch=True)
        except FloatingPointError as e:  # a diverging lr is a search outcome, not a crash
            tried.append({"lr": lr, "val": None, "error": str(e)[:80]})
            print(f"  {key} lr {lr:.2g}: failed ({e})", flush=True)
            continue
        ep, best = epochs_of(r)
        runs[lr] = (r, models)
        tried.append({"lr": lr, "val": r.metrics.val_score, "epochs": ep[0], "best_epoch": best[0],
                      "train_s": r.timings.train_s, "wall_s": time.perf_counter() - t0})
        print(f"  {key} lr {lr:.2g}: val {r.metrics.val_score:.4f}, {ep[0]} epochs (best {best[0] + 1}), "
              f"{r.timings.train_s / ep[0]:.2f} s/epoch [{time.perf_counter() - t0:.0f}s]", flush=True)
    ok = [t for t in tried if t["val"] is not None and not math.isnan(t["val"])]
    if not ok:
        raise RuntimeError(f"{dataset} {key}: every learning rate failed: {tried}")
    lr = max(ok, key=lambda t: t["val"])["lr"]
    return lr, tried, runs[lr]


def exit_rows(models, data, test: np.ndarray, args, cached_scores: list[float]) -> dict:
    """Every exit rule on the same trained ladders (every seed's), over the timed test nodes."""
    rules = []
    for label, whose, rule in EXIT_RULES:
        runs = []
        for model, _ in models:
            model.body.cfg = model.body.cfg.model_copy(update=rule)
            runs.append(whole_test_set(model, data, test, args.latency_nodes))
        rules.append({"label": label, "whose": whose, "rule": rule, "runs": runs,
                      "accuracy_by_seed": {s: x["accuracy"] for s, x in enumerate(runs)},
                      "latency_ms_per_node": statistics.median(x["ms_per_node"] for x in runs),
                      "exits_per_rung": sums([x["inference"]["exits_per_rung"] for x in runs]),
                      "rows_per_block": sums([x["inference"]["rows_per_block"] for x in runs])})
    base = next(e for e in rules if e["whose"] == "baseline")
    for e in rules:
        e["test"] = interval(e["accuracy_by_seed"])
        e["speedup"] = interval({s: b["ms_per_node"] / x["ms_per_node"]
                                 for s, (b, x) in enumerate(zip(base["runs"], e["runs"]))})
        print(f"  exit rule {e['label']} ({e['whose']}): test {e['test']['mean']:.4f}, "
              f"{e['latency_ms_per_node']:.2f} ms/node ({e['speedup']['mean']:.2f}x), exits {e['exits_per_rung']}",
              flush=True)
    tests = family([(e["label"], e["accuracy_by_seed"], base["accuracy_by_seed"]) for e in rules if e is not base])
    head = rules[0]  # ENGINE's defaults: what run_trial tested (on cached states, the same decisions)
    if len(test) == len(data.test) and any(abs(x["accuracy"] - c) > 2 / len(test)
                                           for x, c in zip(head["runs"], cached_scores)):
        print(f"warning: the authors' rule from text {[x['accuracy'] for x in head['runs']]} differs from "
              f"run_trial's cached test scores {cached_scores}", flush=True)
    for model, _ in models:
        model.body.cfg = model.body.cfg.model_copy(update=EXIT_RULES[0][2])
    return {"layers": head["runs"][0]["layers"], "rules": rules, "tests": tests}


def run_row(args, dataset: str, data, test: np.ndarray, spec, cache_dir: Path) -> tuple[dict, dict | None]:
    key, label, method, params, lr_range = spec
    t0 = time.perf_counter()
    seeds = args.lm_full_seeds if method == "lm_full" else args.seeds
    lr, tried, records, models = None, [], [], []
    if lr_range is None:  # constant: fitted by run_trial outside the loop, no model to time
        records.append(trial(config(args, dataset, key, method, params, None, seeds=seeds, seed=0,
                                    cache_dir=cache_dir), catch=False)[0])
    else:
        lrs = lr_grid(*args.lr_range.get(key, lr_range), args.lm_lrs if method in LM_ROWS else args.lrs)
        lr = lrs[0]
        if len(lrs) > 1:
            lr, tried, (r0, m0) = search_lr(args, dataset, spec, lrs, cache_dir)
            records, models = [r0], list(m0)
        if seeds > len(records):  # the remaining seeds with the chosen lr
            r, m = trial(config(args, dataset, key, method, params, lr, seeds=seeds - len(records),
                                seed=len(records), cache_dir=cache_dir), catch=True)
            records.append(r)
            models += m
        assert len(models) == seeds, f"{key}: caught {len(models)} models for {seeds} seeds"
    t_trained = time.perf_counter()
    test_by_seed = {s: x for r in records for s, x in seed_scores(r).items()}
    exits = None
    if method == "engine":  # every seed's ladders: the exit table's spread is over seeds
        exits = exit_rows(models, data, test, args, [test_by_seed[s] for s in sorted(test_by_seed)])
        runs = exits["rules"][0]["runs"]
    else:  # the work of a model without early exit does not depend on its weights; LoRA timed merged
        timed = models[:args.latency_seeds] if args.latency_seeds else models
        runs = [whole_test_set(h.deploy(mod) if h.deploy else mod, data, test, args.latency_nodes)
                for mod, h in timed]
    del models
    ep = [e for r in records for e in epochs_of(r)[0]] if lr_range else []
    best = [b for r in records for b in epochs_of(r)[1]] if lr_range else []
    cap = args.lm_epochs if method in LM_ROWS else args.epochs
    search_s = sum(t.get("wall_s", 0.0) for t in tried)
    train_s = sum(r.timings.train_s for r in records)
    one_batch = [x for r in records for x in (r.latency.ms_per_unit_seeds or [r.latency.ms_per_unit])]
    row = {"key": key, "label": label, "method": method, "params": params, "lr": lr, "search": tried,
           "seeds": seeds, "test_by_seed": test_by_seed,
           "val_by_seed": {s: x for r in records for s, x in seed_scores(r, "valid").items()},
           "trainable": records[0].trainable_params, "total": records[0].total_params,
           "peak_mb": max(r.memory.peak_train_mb for r in records), "memory_by": records[0].memory.method,
           "latency_ms_per_node": (statistics.median(x["ms_per_node"] for x in runs) if runs
                                   else records[0].latency.ms_per_unit),
           "latency_timed_seeds": len(runs), "latency_runs": runs,
           "latency_ms_per_node_one_batch": statistics.median(one_batch),  # run_trial's: one batch, repeated
           "epochs": ep, "best_epochs": best, "epoch_cap": cap,
           "hit_cap": any(e == cap and b == cap - 1 for e, b in zip(ep, best)),
           "train_s": train_s, "s_per_epoch": train_s / sum(ep) if sum(ep) else None,
           "search_s": search_s, "final_s": t_trained - t0 - search_s, "latency_s": time.perf_counter() - t_trained,
           "history": [[h.model_dump() for h in s.history] for r in records for s in r.seeds]}
    row["test"] = interval(test_by_seed)
    lr_s = "-" if lr is None else f"{lr:.2g}"
    spe = "" if row["s_per_epoch"] is None else f"{row['s_per_epoch']:.2f} s/epoch, "
    print(f"{dataset} {label}: lr {lr_s}, test {row['test']['mean']:.4f} (n={row['test']['n']}), epochs {ep}, "
          f"{spe}{row['latency_ms_per_node']:.2f} ms/node [search {search_s:.0f}s, then {row['final_s']:.0f}s, "
          f"latency {row['latency_s']:.0f}s]", flush=True)
    return row, exits


def run_testbed(name: str, args, cache_dir: Path) -> dict:
    ds = DatasetConfig(name=name, max_train_nodes=args.train_nodes)
    task = task_of(ds)
    t0 = time.perf_counter()
    task.prepare(ds, [BackboneConfig(name="lm", params=LM)], cache_dir)  # the LM-state cache, built once
    prepare_s = time.perf_counter() - t0
    data = task.load(ds, cache_dir)
    facts = graph_facts(data)
    print(f"{name}: homophily {facts['edge_homophily']:.3f}, vote {facts['vote_accuracy']:.3f}, "
          f"LM-state cache ready in {prepare_s:.0f}s", flush=True)
    test = np.asarray(data.test)
    if args.test_nodes and args.test_nodes < len(test):  # spread over the split (it is ordered by node, so by class)
        test = test[np.unique(np.linspace(0, len(test) - 1, args.test_nodes).round().astype(int))]
    rows, exits = [], None
    for spec in ROWS:
        row, ex = run_row(args, name, data, test, spec, cache_dir)
        rows.append(row)
        exits = ex or exits
    by = {r["key"]: r["test_by_seed"] for r in rows}
    const = by["constant"]
    return {"facts": facts, "rows": rows, "exits": exits, "test_nodes": len(test), "prepare_s": prepare_s,
            "planned": family([(lab, by[a], by[b]) for lab, a, b in PLANNED]),
            "vs_constant": family([(r["key"], r["test_by_seed"], const) for r in rows if r["key"] != "constant"])}


def epoch_seconds(dataset: str, method: str, params: dict, use_cache: bool, args, cache_dir: Path) -> float:
    """Wall-clock seconds of one training epoch (data loading included), with batches
    read from the LM-state cache or computed from text by the frozen LM."""
    ds = DatasetConfig(name=dataset, max_train_nodes=args.train_nodes)
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


def lr_range(text: str) -> tuple[str, tuple[float, float]]:
    key, _, span = text.partition("=")
    lo, _, hi = span.partition(":")
    if key not in {r[0] for r in ROWS if r[4]} or not lo or not hi:
        raise argparse.ArgumentTypeError(f"expected ROW=LO:HI with ROW one of the learned rows, not {text!r}")
    return key, (float(lo), float(hi))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="seeds of every row (the headline)")
    ap.add_argument("--lm-full-seeds", type=int, default=2, help="seeds of lm_full (the slowest row)")
    ap.add_argument("--lrs", type=int, default=3, help="learning rates searched per method, log-spaced over its "
                    "range, each on seed 0 (1: none, the range's geometric mean)")
    ap.add_argument("--lm-lrs", type=int, default=2, help="the same for lm_lora and lm_full")
    ap.add_argument("--lr-range", type=lr_range, action="append", default=[], metavar="ROW=LO:HI",
                    help="override a row's searched range (e.g. lm_lora=3e-4:3e-3)")
    ap.add_argument("--epochs", type=int, default=15, help="the cap on training epochs")
    ap.add_argument("--lm-epochs", type=int, default=10, help="the same for lm_lora and lm_full")
    ap.add_argument("--patience", type=int, default=3, help="end training once validation has not improved for "
                    "this many epochs (0: train every epoch)")
    ap.add_argument("--train-nodes", type=int, default=600, help="stratified training subsample (every method)")
    ap.add_argument("--latency-nodes", type=int, default=64, help="test nodes per timed batch")
    ap.add_argument("--latency-seeds", type=int, default=None, help="rows without early exit: time this many "
                    "seeds' models (their work does not depend on the weights; default: every seed)")
    ap.add_argument("--test-nodes", type=int, default=None, help="time this many test nodes, evenly spread over the "
                    "test split (default: all)")
    ap.add_argument("--repeats", type=int, default=3, help="run_trial's own one-batch latency: timed calls (JSON)")
    ap.add_argument("--no-cache-timing", action="store_true", help="skip the LM-state cache's epoch timings")
    ap.add_argument("--out", type=Path, default=None, help="a folder for engine.{md,json}, or a .md file (its .json "
                    f"beside it); default {OUT.relative_to(ROOT)}, with --smoke a temporary folder")
    ap.add_argument("--smoke", action="store_true", help="check the script: 2 seeds (lm_full 1), 1 lr, at most 2 "
                    "epochs, 60 training nodes, latency on 40 test nodes")
    ap.add_argument("--render-only", type=Path, default=None, metavar="JSON",
                    help="rewrite the markdown from an engine.json this script wrote (no training)")
    args = ap.parse_args()
    if args.render_only is not None:
        import json

        result = json.loads(args.render_only.read_text())
        atomic_write_text(args.render_only.with_suffix(".md"), render(result))
        print(f"wrote {args.render_only.with_suffix('.md')}")
        return
    args.lr_range = dict(args.lr_range)
    if args.smoke:
        args.seeds, args.lm_full_seeds, args.lrs, args.lm_lrs = 2, 1, 1, 1
        args.epochs, args.lm_epochs, args.patience, args.train_nodes, args.test_nodes, args.repeats = 2, 2, 1, 60, 40, 1
        args.latency_nodes = min(args.latency_nodes, 16)
        args.out = args.out or Path(tempfile.mkdtemp(prefix="engine-bench-"))
    out = args.out or OUT
    md, js = (out, out.with_suffix(".json")) if out.suffix == ".md" else (out / "engine.md", out / "engine.json")
    cache_dir = default_cache_dir()
    t_all = time.perf_counter()
    testbeds = [run_testbed(name, args, cache_dir) for name in TESTBEDS]
    cache = []
    if not args.no_cache_timing:
        for label, method, params in [("gnn", "gnn", {**SUB}), ("engine", "engine", {**SUB})]:
            with_c = statistics.median(epoch_seconds(TESTBEDS[0], method, params, True, args, cache_dir)
                                       for _ in range(3))
            without = epoch_seconds(TESTBEDS[0], method, params, False, args, cache_dir)
            cache.append({"method": label, "epoch_s_cached": with_c, "epoch_s_uncached": without,
                          "speedup": without / with_c})
            print(f"{label}: epoch {with_c:.2f}s cached, {without:.2f}s from text ({without / with_c:.0f}x)",
                  flush=True)
    wall = time.perf_counter() - t_all
    result = {"testbeds": testbeds, "cache": cache, "cache_testbed": TESTBEDS[0], "lm": LM,
              "command": shlex.join([".venv/bin/python", "benchmarks/engine.py", *sys.argv[1:]]),
              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                          "torch": torch.__version__, "python": platform.python_version()},
              "wall_s": wall}
    md.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(js, result)
    atomic_write_text(md, render(result))
    print(f"wrote {md} and {js.name}; total wall time {wall:.0f}s ({wall / 60:.1f} min)")


if __name__ == "__main__":
    main()
