"""What ``benchmarks/engine.py`` computes from its trials and how it writes them: the
testbeds' graph facts, the learning-rate grid, the statistics (Student t intervals,
paired t tests over seeds, Holm within each family, through :mod:`reports.stats`) and
the markdown of ``docs/benchmarks/engine.md``, and the latency over a whole test set.
Nothing here trains."""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch

from reports.stats import holm, mean_ci, paired_test, tost, verdict

ALPHA = 0.05
PAPER_DROP = 0.0117  # ENGINE's reported worst accuracy cost of early exit: 1.17% relative to no exit


# --- the testbeds ----------------------------------------------------------------------------

def graph_facts(data) -> dict:
    """Edge homophily (share of the loaded graph's edges, both directions, joining two nodes of
    the same label: the share of undirected pairs too, as every pair is stored both ways), the
    neighbour-majority vote (for each node with a neighbour, its neighbours' most common label,
    every label known, ties to the first class; right for what share of them) and the same
    vote on the test nodes that have a neighbour."""
    g, y = data.graph, np.asarray(data.graph.labels)
    e = g.edges
    has = np.diff(data.indptr) > 0
    vote = np.full(g.num_nodes, -1)
    for i in np.flatnonzero(has):
        vote[i] = np.bincount(y[data.indices[data.indptr[i]:data.indptr[i + 1]]], minlength=data.num_classes).argmax()
    test = np.asarray(data.test)
    test_has = test[has[test]]
    return {"name": g.name, "nodes": g.num_nodes, "edge_pairs": int(e.shape[1] // 2), "classes": data.num_classes,
            "train": len(data.train), "train_of": data.train_subsampled_from, "valid": len(data.valid),
            "test": len(data.test),
            "edge_homophily": float((y[e[0]] == y[e[1]]).mean()) if e.shape[1] else math.nan,
            "vote_accuracy": float((vote[has] == y[has]).mean()) if has.any() else math.nan,
            "vote_test_accuracy": float((vote[test_has] == y[test_has]).mean()) if len(test_has) else math.nan,
            "isolated_share": float(1 - has.mean()), "isolated_test_share": float(1 - has[test].mean())}


def lr_grid(lo: float, hi: float, n: int) -> list[float]:
    """``n`` log-spaced learning rates from ``lo`` to ``hi``; one: their geometric mean."""
    if n == 1:
        return [float(np.sqrt(lo * hi))]
    return [float(x) for x in np.geomspace(lo, hi, n)]


# --- measuring -------------------------------------------------------------------------------

def whole_test_set(model, data, test: np.ndarray, batch_size: int) -> dict:
    """Inference from text over every node of ``test``, in batches of ``batch_size``: each
    batch is timed once (tokenised beforehand, as the sweep's latency batch is), after one
    untimed warm-up call; ms per node = total ms / nodes. ``inference``: what the model
    reports summed over every batch (ENGINE: exits per rung, rows per LM block)."""
    model.eval()
    batches = [data.batch(test[s:s + batch_size], model, use_cache=False) for s in range(0, len(test), batch_size)]
    body = getattr(model, "body", None)
    seconds, correct = 0.0, 0
    with torch.no_grad():
        model(batches[0])
        if hasattr(body, "reset_inference"):
            body.reset_inference()
        for b in batches:
            t0 = time.perf_counter()
            pred = model(b)
            seconds += time.perf_counter() - t0
            correct += int((pred.argmax(-1) == b.y).sum())
    info = model.describe_inference() if hasattr(model, "describe_inference") else None
    return {"ms_per_node": 1000 * seconds / len(test), "total_ms": 1000 * seconds, "nodes": len(test),
            "batches": len(batches), "accuracy": correct / len(test),
            "inference": (info or {}).get("since_reset"), "layers": (info or {}).get("layers")}


def sums(lists: list[list[int]]) -> list[int]:
    out = [0] * max((len(x) for x in lists), default=0)
    for x in lists:
        for i, v in enumerate(x):
            out[i] += v
    return out


# --- statistics ------------------------------------------------------------------------------

def interval(scores: dict[int, float]) -> dict:
    iv = mean_ci(scores)
    return {"mean": iv.mean, "low": iv.low, "high": iv.high, "half": iv.half_width, "n": iv.n}


def family(pairs: list[tuple[str, dict[int, float], dict[int, float]]]) -> list[dict]:
    """Paired t tests (a − b over the seeds both have, accuracy: maximize), Holm within the family."""
    tests = [paired_test(a, b, direction="maximize") for _, a, b in pairs]
    adj = holm([t.p for t in tests])
    return [{"label": label, **dataclasses.asdict(t), "p_holm": p, "verdict": verdict(t, p, ALPHA)}
            for (label, _, _), t, p in zip(pairs, tests, adj)]


# --- markdown --------------------------------------------------------------------------------

def ci_text(iv: dict, digits: int = 4, unit: str = "") -> str:
    if iv["n"] == 0:
        return "n/a (n=0)"
    if iv["half"] is None:
        return f"{iv['mean']:.{digits}f}{unit} (n={iv['n']}, no interval)"
    return f"{iv['mean']:.{digits}f}{unit} ± {iv['half']:.{digits}f} (n={iv['n']})"


def p_text(p: float | None) -> str:
    return "–" if p is None else (f"{p:.2g}" if p >= 1e-4 else "<1e-4")


def test_cells(t: dict) -> str:
    """| a − b | 95% t interval | n | p | p_Holm | verdict | of one paired test."""
    ci = "–" if t["low"] is None else f"[{t['low']:+.4f}, {t['high']:+.4f}]"
    v = t["verdict"] if t["p_holm"] is not None else f"no test (n={t['n']})"
    return f"{t['mean_diff']:+.4f} | {ci} | {t['n']} | {p_text(t['p'])} | {p_text(t['p_holm'])} | {v}"


def _seeds(n: int) -> str:
    return f"seed{'s' if n != 1 else ''} {', '.join(map(str, range(n)))}"


def _lr_bullet(a: dict) -> str:
    if a["lrs"] == 1 and a["lm_lrs"] == 1:
        return "* learning rates not searched (`--lrs 1 --lm-lrs 1`): each row trains at its range's geometric mean;"
    return (f"* the learning rate of each row and testbed: {a['lrs']} log-spaced values over the row's range "
            f"(`--lrs {a['lrs']}`), {a['lm_lrs']} for lm_lora and lm_full (`--lm-lrs {a['lm_lrs']}`; 1: not "
            "searched, the range's geometric mean), each trained on seed 0; the best by **validation** accuracy is "
            "kept: its seed-0 run is the reported seed 0, and the other seeds are trained with it;")


def _lr(x: float | None) -> str:
    return "–" if x is None else f"{x:.2g}"


def _epochs(r: dict) -> str:
    if not r["epochs"]:
        return "–"
    capped = " †" if r["hit_cap"] else ""
    return f"{np.mean(r['epochs']):.1f} ({np.mean(r['best_epochs']) + 1:.1f}){capped}"


def _claim(verdicts: list[str]) -> str:
    """"yes" when every test shows the claim, "no" when one shows the reverse, otherwise "not
    shown": a test that does not reject shows neither."""
    if verdicts and all(v == "better" for v in verdicts):
        return "**yes**"
    if any(v == "worse" for v in verdicts):
        return "**no: the reverse is shown**"
    return "**not shown**"


def shows(planned: list[dict]) -> list[str]:
    """What the testbed can show, from the planned tests: the LM's depth matters (the layer-0
    gap is "better") and the graph adds to the text (every graph row − text_mlp is "better");
    where no test rejects either way, "not shown"."""
    gap, vs_text = planned[0], [t for t in planned if t["label"].endswith("− text_mlp")]
    verdicts = "; ".join(f"{t['label']}: {t['verdict']} ({t['mean_diff']:+.4f}, p_Holm {p_text(t['p_holm'])})"
                         for t in vs_text)
    depth, graph = _claim([gap["verdict"]]), _claim([t["verdict"] for t in vs_text])
    return ["What this testbed shows, by the tests above (not shown: the test does not reject, which shows "
            "neither the claim nor its opposite):", "",
            f"* the LM's depth matters (gnn on layer 0 worse than on the last layer): {depth} "
            f"({gap['mean_diff']:+.4f}, p_Holm {p_text(gap['p_holm'])});",
            f"* the graph adds to the text (every graph method better than `text_mlp`): {graph} ({verdicts}).", ""]


def render(res: dict) -> str:
    a, m = res["args"], res["machine"]
    lines = [
        "# ENGINE and node-level baselines on two WordNet text graphs", "",
        *(["**SMOKE RUN** (`--smoke`): a check of the script on a few nodes, seeds and epochs; not results.", ""]
          if a["smoke"] else []),
        f"Regenerate this file: `{res['command']}` ({res['wall_s'] / 60:.1f} min on {m['threads']} CPU threads, "
        f"{m['cpu']}, torch {m['torch']}, no GPU).", "",
        "What each figure needs (this run):", "",
        f"* every row on both testbeds: {_seeds(a['seeds'])} (`--seeds {a['seeds']}`), "
        f"except **lm_full on {_seeds(a['lm_full_seeds'])}** (`--lm-full-seeds {a['lm_full_seeds']}`); every n is "
        "stated where it is used;",
        _lr_bullet(a),
        f"* training: batch 64, AdamW, at most {a['epochs']} epochs (`--epochs`; lm_lora and lm_full at most "
        f"{a['lm_epochs']}, `--lm-epochs`), " + (f"ending once validation has not improved for {a['patience']} epoch(s) (`--patience`)"
               if a["patience"] else "every epoch trained (`--patience 0`)") + "; each seed is tested at its validation-best epoch;",
        f"* latency: the trained models of "
        f"{'every seed' if a['latency_seeds'] is None else 'the first ' + str(a['latency_seeds']) + ' seed(s)'} "
        f"{'' if a['latency_seeds'] is None else '(ENGINE: every seed) '}over "
        f"{'the whole test set' if a['test_nodes'] is None else str(a['test_nodes']) + ' test nodes spread over the split'}"
        f" in batches of {a['latency_nodes']} (`--latency-nodes`).", "",
        "Data: stratified 60/20/20 splits of two graphs shipped in the repository, and on each a stratified "
        f"subsample of **{a['train_nodes']} training nodes for every method** (`--train-nodes`; fine-tuning the LM "
        "on all of them is too slow on 2 CPU cores); validation and test sets are whole. LM: all-MiniLM-L6-v2 "
        f"(packaged, 22.7M parameters, 6 layers), {res['lm']['max_length']} tokens per node. Subgraphs: 1-hop, up "
        "to 8 nodes. `gnn` is a 2-layer GraphSAGE on the frozen LM's pooled states of one layer (the last, or "
        "layer 0: the embeddings); `text_mlp` the same states of the node alone (no graph); ENGINE's ladder reads "
        "layers [0, 2, 4, 6] (the LM-state cache while training).", "",
        "## Testbeds", "",
        "| testbed | nodes | edges (pairs) | classes | train (of) / valid / test | edge homophily "
        "| neighbour-majority vote | vote, test nodes | isolated nodes |", "|---|---|---|---|---|---|---|---|---|"]
    for tb in res["testbeds"]:
        f = tb["facts"]
        lines.append(f"| `{f['name']}` | {f['nodes']:,} | {f['edge_pairs']:,} "
                     f"| {f['classes']} | {f['train']} ({f['train_of'] or f['train']}) / {f['valid']} / {f['test']} "
                     f"| {f['edge_homophily']:.3f} | {f['vote_accuracy']:.3f} | {f['vote_test_accuracy']:.3f} "
                     f"| {f['isolated_share']:.3f} |")
    lines += ["", "Edge homophily: the share of edges joining two nodes of the same label, from the loaded graph. "
              "Vote: each node with a neighbour gets its neighbours' most common label (every label known); the "
              "share right, over all such nodes and over the test nodes that have a neighbour. An isolated node "
              "has only its text. `wordnet`'s edges nearly give the label away; `wordnet_domains`' do not "
              "(`data/wordnet_domains/README.md`).", ""]
    for tb in res["testbeds"]:
        lines += _testbed(tb, a)
    if res.get("cache"):
        lines += ["## LM-state cache", "",
                  f"One training epoch on `{res['cache_testbed']}` ({a['train_nodes']} nodes; wall clock, batches "
                  "built included) reading pooled LM states from the cache, against the same model computing them "
                  "from text with the frozen LM at every step (seed 0, lr 1e-3).", "",
                  "| method | epoch, cached (s) | epoch, from text (s) | speed-up |", "|---|---|---|---|"]
        for c in res["cache"]:
            lines.append(f"| {c['method']} | {c['epoch_s_cached']:.2f} | {c['epoch_s_uncached']:.2f} | "
                         f"{c['speedup']:.0f}× |")
        lines += ["", "`lm_lora` and `lm_full` train the LM, so no cache applies.", ""]
    return "\n".join(lines)


def _testbed(tb: dict, a: dict) -> list[str]:
    name, rows = tb["facts"]["name"], tb["rows"]
    out = [f"## `{name}`", "",
           "Test accuracy: mean ± the 95% Student t half-width over the seeds (n seeds). Epochs: trained, mean over "
           "seeds (validation-best epoch, counted from 1); † a seed whose best epoch was the cap's last (it may "
           "want more). Peak memory: the CPU allocator's measured peak over the first epoch's training steps "
           "(`constant`: tracemalloc over its fit). Latency: per node from text (tokens in, class out, the LM "
           "included), total time over the timed test nodes in batches, each batch timed once after one untimed "
           "warm-up batch, median over the timed seeds; LoRA timed merged; ENGINE with the authors' exit rule "
           "(`constant`: one call of its broadcast, no LM). Versus constant: paired t test of the row − "
           "`constant` over the same seeds, Holm over the rows.", "",
           "| method | lr | test accuracy | epochs (best) | trainable params | % of model | peak train MB "
           "| latency ms/node | vs constant |", "|---|---|---|---|---|---|---|---|---|"]
    vc = {t["label"]: t for t in tb["vs_constant"]}
    for r in rows:
        t = vc.get(r["key"])
        v = "–" if t is None else (f"no test (n={t['n']})" if t["p_holm"] is None else
                                   f"{t['verdict']} (p_Holm {p_text(t['p_holm'])}, n={t['n']})")
        pct = 100 * r["trainable"] / r["total"] if r["total"] else 0.0
        out.append(f"| {r['label']} | {_lr(r['lr'])} | {ci_text(r['test'])} | {_epochs(r)} | {r['trainable']:,} | "
                   f"{pct:.2f}% | {r['peak_mb']:.1f} | {r['latency_ms_per_node']:.2f} | {v} |")
    sig = [t for t in tb["vs_constant"] if t["p_holm"] is not None]
    if not sig:
        out += ["", "Versus constant: no test (every row has n < 2)."]
    elif not any(t["verdict"] == "better" for t in sig):
        out += ["", "**No signal**: no row beats the constant predictor by the paired test."]
    else:
        better = [t["label"] for t in sig if t["verdict"] == "better"]
        out += ["", f"{len(better)} of {len(tb['vs_constant'])} rows beat the constant predictor by the paired test "
                "(Holm): there is signal."]
    out += ["", "Planned comparisons (paired t tests of a − b over the seeds both rows have, Holm over these four; "
            "test accuracy):", "",
            "| comparison (a − b) | mean difference | 95% t interval | n | p | p_Holm | verdict (a vs b) |",
            "|---|---|---|---|---|---|---|"]
    for t in tb["planned"]:
        out.append(f"| {t['label']} | {test_cells(t)} |")
    gap = tb["planned"][0]
    out += ["", f"The layer-0 gap (gnn on the last LM layer − gnn on layer 0, the embeddings): "
            f"{gap['mean_diff']:+.4f}, p {p_text(gap['p'])} (p_Holm {p_text(gap['p_holm'])}, n={gap['n']}).", ""]
    out += shows(tb["planned"])
    out += ["Learning-rate search (validation accuracy on seed 0; the chosen lr in bold):", "",
            "| method | lr: validation accuracy |", "|---|---|"]
    for r in rows:
        if r["search"]:
            cells = ", ".join((f"**{_lr(s['lr'])}**" if s["lr"] == r["lr"] else _lr(s["lr"]))
                              + (f": {s['val']:.4f}" if s["val"] is not None and not math.isnan(s["val"])
                                 else f": failed ({s.get('error', 'NaN')})") for s in r["search"])
        else:
            cells = "not searched" if r["lr"] is None else f"{_lr(r['lr'])} only (one value, not searched)"
        out.append(f"| {r['label']} | {cells} |")
    out += ["", "Where the time went (s): the learning-rate search (every value, seed 0), the other seeds, the "
            "latency timing; training seconds per epoch (validation included) over the reported seeds.", "",
            "| method | search | other seeds | s/epoch | latency |", "|---|---|---|---|---|"]
    for r in rows:
        spe = "–" if r.get("s_per_epoch") is None else f"{r['s_per_epoch']:.2f}"
        out.append(f"| {r['label']} | {r.get('search_s', 0):.0f} | {r.get('final_s', 0):.0f} | {spe} | "
                   f"{r.get('latency_s', 0):.0f} |")
    out += [""] + _exits(tb)
    return out


def _exits(tb: dict) -> list[str]:
    ex = tb["exits"]
    if not ex:
        return []
    n_seeds = len(ex["rules"][0]["runs"])
    nodes = ex["rules"][0]["runs"][0]["nodes"]
    out = [f"### Early exit on `{tb['facts']['name']}`", "",
           "ENGINE trains once per seed; the exit rules act at inference only, so every rule runs on the same "
           "trained ladders, from text over the timed test nodes: the LM goes block by block and a node that "
           "exits, with its subgraph, skips every later block. The headline (bold) is the authors' rule "
           "(`main.py:150` of github.com/ZhuYun97/ENGINE: a node leaves at the first rung whose prediction equals "
           "the previous rung's, never at rung 1); patience 2 and the confidence thresholds are our extensions. "
           "Speed-up: no exit's ms/node over the rule's, per seed, mean ± 95% t half-width over seeds. Accuracy "
           "change: the rule − no exit, paired over seeds, Holm over the four rules. Exits per rung and LM rows "
           f"per block: summed over every test batch and every seed ({n_seeds} × {nodes} nodes).", "",
           f"Rungs read LM layers {ex['layers']} (layer 0 is the embedding output: a node that exits there runs no "
           "transformer block).", "",
           "| exit rule | whose | speed-up vs no exit | ms/node | test accuracy | change vs no exit (95% t) "
           "| n | p_Holm | verdict | exits per rung | rows per LM block |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    tests = {t["label"]: t for t in ex["tests"]}
    for i, e in enumerate(ex["rules"]):
        name = f"**{e['label']}**" if i == 0 else e["label"]
        t = tests.get(e["label"])
        if t is None:
            change = "| – | – | – | –"
        else:
            ci = "" if t["low"] is None else f" [{t['low']:+.4f}, {t['high']:+.4f}]"
            v = t["verdict"] if t["p_holm"] is not None else f"no test (n={t['n']})"
            change = f"| {t['mean_diff']:+.4f}{ci} | {t['n']} | {p_text(t['p_holm'])} | {v}"
        out.append(f"| {name} | {e['whose']} | {ci_text(e['speedup'], 2, '×')} | {e['latency_ms_per_node']:.2f} | "
                   f"{ci_text(e['test'])} {change} | {e['exits_per_rung']} | {e['rows_per_block']} |")
    head, base = ex["rules"][0], next(e for e in ex["rules"] if e["whose"] == "baseline")
    t = tests.get(head["label"])
    if t is not None:
        rel = 100 * t["mean_diff"] / base["test"]["mean"] if base["test"]["mean"] else math.nan
        v = t["verdict"] if t["p_holm"] is not None else f"no test (n={t['n']})"
        out += ["", f"The authors' rule runs at {ci_text(head['speedup'], 2, '×')} the speed of no early exit and "
                f"changes test accuracy by {t['mean_diff']:+.4f} ({rel:+.2f}% relative): {v}"
                + (f" (p_Holm {p_text(t['p_holm'])}, n={t['n']})" if t["p_holm"] is not None else "")
                + ". " + equivalence(head, base) + " The paper reports up to 5× with at most a 1.17% relative drop, "
                "on a 32-layer 7B LM; this LM has 6 layers."]
    out.append("")
    return out


def equivalence(rule: dict, base: dict) -> str:
    """Is the rule's accuracy within the paper's margin of no early exit's? Paired TOST
    (``reports.stats.tost``, Schuirmann 1987) of rule − no exit over the seeds, margin ±1.17% of
    no exit's mean accuracy; equivalent at 0.05 exactly when the 90% t interval of the mean
    change lies inside ±margin."""
    margin = PAPER_DROP * base["test"]["mean"]
    eq = tost(rule["accuracy_by_seed"], base["accuracy_by_seed"], margin, alpha=ALPHA)
    if eq.p is None:
        return f"Equivalence within the paper's 1.17% relative margin: no test (n={eq.n})."
    ci = paired_test(rule["accuracy_by_seed"], base["accuracy_by_seed"], direction="maximize", confidence=0.90)
    return (f"Equivalence within the paper's margin, 1.17% of no exit's accuracy (±{margin:.4f}), by TOST (paired "
            f"t over {eq.n} seeds, both one-sided tests at 0.05): 90% interval of the change "
            f"[{ci.low:+.4f}, {ci.high:+.4f}], p {p_text(eq.p)}: "
            f"**{'equivalent' if eq.equivalent else 'not shown equivalent'}**.")
