"""Does the language model's depth matter on a text graph? A quick probe.

For each graph: MiniLM (the packaged all-MiniLM-L6-v2, through the project's own cache,
``workloads.textgraphs.lm_cache.cached_states``) mean-pooled states at layer 0 (the
embedding output) and the last layer; then on a stratified 60/20/20 split (the project's
``random_split``), for each seed: logistic regression, a 2-layer MLP (no graph) and a
2-layer GraphSAGE (torch_geometric ``SAGEConv``, mean aggregation, full batch), each on
layer 0 and on the last layer, the epoch / C chosen on the validation nodes. Prints test
accuracy mean +- std over the seeds. One CPU thread.

    python scripts/probe_textgraph_depth.py data/wordnet_domains data/wordnet [--seeds 3]
    python scripts/probe_textgraph_depth.py --candidates lex/cross+hyper dom/ptr   # unwritten candidates
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from workloads.textgraphs.base import random_split  # noqa: E402
from workloads.textgraphs.csv_graph import load_text_graph_csv  # noqa: E402


def _graphs(args) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
    """name -> (texts, labels [N], edges [2, E] both directions)."""
    out = {}
    for folder in args.folders:
        g = load_text_graph_csv(Path(folder) / "nodes.csv", Path(folder) / "edges.csv", name=folder)
        out[folder] = (g.texts, g.labels, g.edges)
    if args.candidates:
        import make_wordnet_domains as mk
        from workloads.textgraphs.wordnet import wordnet_dir

        wn = mk.read_all(wordnet_dir())
        opts = mk.parser().parse_args([])
        for name in args.candidates:
            g = mk.build(wn, name, opts)
            out[f"candidate {name}"] = (g.texts, g.label_index(), np.concatenate([g.edges, g.edges[::-1]], axis=1))
    return out


def _lr(x, y, tr, va, te) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(x[tr])
    xs = sc.transform(x)
    best = (-1.0, 0.0)
    for c in (0.1, 1.0):
        m = LogisticRegression(C=c, max_iter=1000).fit(xs[tr], y[tr])
        best = max(best, (m.score(xs[va], y[va]), m.score(xs[te], y[te])))
    return best[1]


class _Net(torch.nn.Module):
    def __init__(self, d: int, h: int, c: int, graph: bool) -> None:
        super().__init__()
        from torch_geometric.nn import SAGEConv

        self.graph = graph
        self.l1 = SAGEConv(d, h) if graph else torch.nn.Linear(d, h)
        self.l2 = SAGEConv(h, c) if graph else torch.nn.Linear(h, c)

    def forward(self, x, ei):
        f = (lambda m, z: m(z, ei)) if self.graph else (lambda m, z: m(z))
        x = torch.nn.functional.dropout(x, 0.5, self.training)
        x = torch.relu(f(self.l1, x))
        x = torch.nn.functional.dropout(x, 0.5, self.training)
        return f(self.l2, x)


def _nn(x, y, ei, tr, va, te, graph: bool, seed: int, epochs: int = 200) -> tuple[float, np.ndarray]:
    """(test accuracy, [len(te)] right or wrong per test node) at the validation-best epoch."""
    torch.manual_seed(seed)
    x = torch.as_tensor((x - x[tr].mean(0)) / (x[tr].std(0) + 1e-6), dtype=torch.float32)
    yt = torch.as_tensor(y)
    ei = torch.as_tensor(ei)
    m = _Net(x.shape[1], 128, int(y.max()) + 1, graph)
    opt = torch.optim.Adam(m.parameters(), lr=0.01, weight_decay=5e-4)
    best = (-1.0, 0.0, None)
    for _ in range(epochs):
        m.train()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x, ei)[tr], yt[tr]).backward()
        opt.step()
        m.eval()
        with torch.no_grad():
            p = m(x, ei).argmax(1)
        acc = float((p[va] == yt[va]).float().mean())
        if acc > best[0]:
            best = (acc, float((p[te] == yt[te]).float().mean()), (p[te] == yt[te]).numpy())
    return best[1], best[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", help="folders with nodes.csv and edges.csv")
    ap.add_argument("--candidates", nargs="*", default=[], help="candidates of make_wordnet_domains.py")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cache", default="/tmp/textgraph_depth_cache")
    ap.add_argument("--max-length", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from workloads.textgraphs.lm_cache import cached_states

    graphs = _graphs(args)
    texts = sorted({t for tx, _, _ in graphs.values() for t in tx})
    t0 = time.time()
    states, info = cached_states(texts, [0, 6], args.cache, max_length=args.max_length)
    print(f"# LM states of {len(texts)} texts, layers 0 and 6, max_length {args.max_length}: "
          f"{'built' if info['built'] else 'read'} in {time.time() - t0:.0f}s", flush=True)
    row_of = {t: i for i, t in enumerate(texts)}
    cols = ["LR L0", "LR L6", "MLP L0", "MLP L6", "SAGE L0", "SAGE L6", "vote*", "MLP L6*", "SAGE L6*"]
    print("| graph | " + " | ".join(cols) + " |\n" + "|---" * (len(cols) + 1) + "|")
    for name, (tx, y, ei) in graphs.items():
        rows = [row_of[t] for t in tx]
        x0, x6 = np.asarray(states[0][rows]), np.asarray(states[1][rows])
        res: dict[str, list[float]] = {}
        for seed in range(args.seeds):
            split = np.asarray(random_split(len(y), y, seed=seed))
            tr, va, te = (np.flatnonzero(split == s) for s in ("train", "valid", "test"))
            linked = np.isin(te, ei[0])  # test nodes with a neighbour
            vote = [np.argmax(np.bincount(y[ei[1][ei[0] == v]])) == y[v] for v in te[linked]]
            res.setdefault("vote*", []).append(float(np.mean(vote)))
            for lay, x in (("L0", x0), ("L6", x6)):
                res.setdefault(f"LR {lay}", []).append(_lr(x, y, tr, va, te))
                for model, graph in (("MLP", False), ("SAGE", True)):
                    acc, right = _nn(x, y, ei, tr, va, te, graph, seed)
                    res.setdefault(f"{model} {lay}", []).append(acc)
                    if lay == "L6":
                        res.setdefault(f"{model} L6*", []).append(float(right[linked].mean()))
        print(f"| {name} | " + " | ".join(f"{np.mean(res[c]):.3f} ± {np.std(res[c]):.3f}" for c in cols) + " |",
              flush=True)
    print(f"# {args.seeds} seeds (split and init), test accuracy mean ± std; *: over the test nodes that have a "
          f"neighbour (vote: the majority label of the neighbours, all labels known); {time.time() - t0:.0f}s in all")


if __name__ == "__main__":
    main()
