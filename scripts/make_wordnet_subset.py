"""Make the WordNet subset shipped in data/wordnet/ (nodes.csv, edges.csv).

Stratified by lexicographer file: each of the 45 classes gets a quota
proportional to its share of WordNet's synsets (at least --min-per-class, at
most all of it). Within a class, synsets are taken by breadth-first search over
the pointer graph from random seeds of that class, so the subset keeps WordNet's
links instead of a scatter of isolated synsets. The edges are every pointer
between two chosen synsets. Fixed seed: the same WordNet gives the same subset.

    python scripts/make_wordnet_subset.py [--wordnet /usr/share/wordnet] [--nodes 4000] [--seed 0]
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from collections import deque
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runfolder.io import atomic_write_text  # noqa: E402
from workloads.textgraphs.wordnet import SUBSET_DIR, read_wordnet  # noqa: E402


def choose(g, n_nodes: int, min_per_class: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    counts = np.bincount(g.labels, minlength=len(g.classes))
    quota = np.minimum(counts, np.maximum(min_per_class, np.round(n_nodes * counts / counts.sum()).astype(int)))
    nbrs: list[list[int]] = [[] for _ in range(g.num_nodes)]
    for a, b in g.edges.T:
        nbrs[a].append(int(b))
        nbrs[b].append(int(a))
    chosen: list[int] = []
    for c in range(len(g.classes)):
        members = np.flatnonzero(g.labels == c)
        taken: set[int] = set()
        order = rng.permutation(members)
        seeds = iter(order)
        while len(taken) < quota[c]:
            start = next(s for s in seeds if s not in taken)
            queue = deque([int(start)])
            while queue and len(taken) < quota[c]:
                v = queue.popleft()
                if v in taken:
                    continue
                taken.add(v)
                nb = [u for u in nbrs[v] if g.labels[u] == c and u not in taken]
                queue.extend(rng.permutation(nb).tolist() if nb else [])
        chosen += sorted(taken)
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wordnet", default=None, help="folder with data.noun etc. (default: found automatically)")
    ap.add_argument("--nodes", type=int, default=4000)
    ap.add_argument("--min-per-class", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(SUBSET_DIR))
    args = ap.parse_args()
    g = read_wordnet(args.wordnet)
    keep = choose(g, args.nodes, args.min_per_class, args.seed)
    pos = {v: i for i, v in enumerate(keep)}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "text", "label"])
    for v in keep:
        w.writerow([g.ids[v], g.texts[v], g.classes[g.labels[v]]])
    out = Path(args.out)
    atomic_write_text(out / "nodes.csv", buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["src", "dst"])
    n_edges = 0
    for a, b in g.edges.T:
        if a in pos and b in pos:
            w.writerow([g.ids[a], g.ids[b]])
            n_edges += 1
    atomic_write_text(out / "edges.csv", buf.getvalue())
    print(f"wrote {len(keep)} synsets in {len(g.classes)} classes and {n_edges} pointers to {out}")


if __name__ == "__main__":
    main()
