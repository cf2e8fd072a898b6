"""Candidate WordNet text graphs whose edges do not give the label away; writes the chosen one
(data/wordnet_domains/, the ``wordnet_domains`` dataset).

Why: in ``data/wordnet/`` (all pointers, label = lexicographer file) 97% of edges join
same-label synsets, so a neighbour-majority vote is right 98% of the time and the text
hardly matters. Every candidate here has synsets as nodes with text = lemmas + gloss; they
differ in the label and the edges:

* label ``lexname`` (the lexicographer file, as data/wordnet): ~4,000 synsets sampled by
  snowball search over the candidate's edges from random seeds (each restart takes at most
  ``--restart-budget`` synsets, each expansion at most ``--fanout`` random neighbours, so
  hubs do not swallow the sample);
* label ``domain`` (the topic domain, WordNet's ``;c`` pointer: law, military, chemistry,
  baseball, music...): every synset with exactly one topic domain whose domain has at least
  ``--min-per-class`` members. A gloss's leading parenthesis is dropped from the text
  ("(law) the act of ..."), since it often names the label.

Edge kinds: ``ptr`` (WordNet pointers of the given symbols), ``cohypo`` (two nodes with a
common hypernym, a group of at most ``cap``), ``lemma`` (two synsets sharing a lemma, at
most ``cap`` synsets per lemma) and ``word`` (sharing a word of a lemma, at most ``cap``
per word). Classes with fewer than ``--min-per-class`` nodes are dropped. Fixed seed: the
same WordNet gives the same files.

    python scripts/make_wordnet_domains.py           # write the chosen candidate to data/wordnet_domains
    python scripts/make_wordnet_domains.py --table   # print every candidate's statistics; write nothing

``scripts/probe_textgraph_depth.py`` measures whether the LM's depth and the edges matter.
"""
from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runfolder.io import atomic_write_text  # noqa: E402
from workloads.textgraphs.wordnet import FILES, LEXNAMES, parse_data_line, wordnet_dir  # noqa: E402

# Relations by pointer symbol (wninput(5WN)).
DERIV = frozenset({"+", "\\", "="})  # derivationally related form, pertainym, attribute: across classes
DOMAIN = frozenset({";c", "-c", ";r", "-r", ";u", "-u"})  # topic / region / usage domain and members
HYPER = frozenset({"@", "~", "@i", "~i"})  # hypernym / hyponym (+ instance)
MERO = frozenset({"#m", "#s", "#p", "%m", "%s", "%p"})  # holonyms / meronyms
OTHER = frozenset({"$", "*", ">", "^", "&", "!"})  # verb group, entail, cause, also-see, similar-to, antonym
ALL = DERIV | DOMAIN | HYPER | MERO | OTHER
NON_DOMAIN = ALL - DOMAIN


@dataclass(frozen=True)
class Candidate:
    label: str  # "lexname" or "domain"
    edges: tuple  # ("ptr", symbols) | ("cohypo", cap) | ("lemma", cap) | ("word", cap)
    description: str


CANDIDATES: dict[str, Candidate] = {
    "lex/all": Candidate("lexname", (("ptr", ALL),), "every pointer (the relation set of data/wordnet)"),
    "lex/cross": Candidate("lexname", (("ptr", DERIV | DOMAIN),), "derivation, pertainym, attribute, domain"),
    "lex/cross+other": Candidate("lexname", (("ptr", DERIV | DOMAIN | OTHER),),
                                 "cross + verb group/entail/cause/also-see/similar/antonym"),
    "lex/cross+hyper": Candidate("lexname", (("ptr", DERIV | DOMAIN | HYPER),), "cross + hypernym/hyponym"),
    "lex/cross+mero": Candidate("lexname", (("ptr", DERIV | DOMAIN | MERO),), "cross + holonym/meronym"),
    "lex/lemma": Candidate("lexname", (("lemma", 6),), "synsets sharing a lemma"),
    "lex/lemma+cross": Candidate("lexname", (("lemma", 6), ("ptr", DERIV | DOMAIN)), "shared lemma + cross"),
    "dom/ptr": Candidate("domain", (("ptr", NON_DOMAIN),), "every pointer but the domain ones"),
    "dom/ptr+cohypo4": Candidate("domain", (("ptr", NON_DOMAIN), ("cohypo", 4)), "pointers + co-hyponyms (<= 4)"),
    "dom/ptr+cohypo8": Candidate("domain", (("ptr", NON_DOMAIN), ("cohypo", 8)), "pointers + co-hyponyms (<= 8)"),
    "dom/ptr+lemma": Candidate("domain", (("ptr", NON_DOMAIN), ("lemma", 6)), "pointers + shared lemma"),
    "dom/ptr+word3": Candidate("domain", (("ptr", NON_DOMAIN), ("word", 3)), "pointers + shared lemma word (<= 3)"),
    "dom/ptr+word3+lemma3+cohypo4": Candidate(
        "domain", (("ptr", NON_DOMAIN), ("word", 3), ("lemma", 3), ("cohypo", 4)),
        "pointers, shared lemma word or lemma (<= 3), co-hyponyms (<= 4)"),
    "dom/ptr+word+lemma": Candidate("domain", (("ptr", NON_DOMAIN), ("word", 6), ("lemma", 6)),
                                    "pointers, shared lemma word or lemma (<= 6)"),
    "dom/word+lemma": Candidate("domain", (("word", 6), ("lemma", 6)), "shared lemma word or lemma (<= 6)"),
}
CHOSEN = "dom/ptr+cohypo8"  # why: data/wordnet_domains/README.md


@dataclass
class WordNet:
    ids: list[str]
    texts: list[str]
    lexfile: np.ndarray  # [N] lexicographer file numbers
    ptrs: list[tuple[str, int, int]]  # (symbol, source index, target index)
    lemmas: list[set[str]]  # lower-case lemmas, adjective markers dropped


def _lemma_key(lemma: str) -> str:
    return re.sub(r"\((a|p|ip)\)$", "", lemma).lower()


def read_all(folder: Path) -> WordNet:
    ids, texts, labels, raw, lemmas = [], [], [], [], []
    for name in FILES:
        with open(folder / f"data.{name}", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("  "):
                    continue
                sid, lexfile, lem, ptrs, gloss = parse_data_line(line.rstrip("\n"))
                ids.append(sid)
                texts.append(f"{', '.join(lem)}: {gloss}")
                labels.append(lexfile)
                lemmas.append({_lemma_key(x) for x in lem})
                raw += [(sym, sid, t) for sym, t in ptrs]
    index = {s: i for i, s in enumerate(ids)}
    ptrs = [(sym, index[a], index[b]) for sym, a, b in raw if b in index and a != b]
    return WordNet(ids, texts, np.asarray(labels, np.int64), ptrs, lemmas)


LEADING_TAG = re.compile(r"^[(][^)]*[)]\s*")


def _strip_tag(text: str) -> str:
    lemmas, gloss = text.split(": ", 1)
    return f"{lemmas}: {LEADING_TAG.sub('', gloss)}"


def labelled(wn: WordNet, label: str, min_per_class: int) -> tuple[np.ndarray, list[str], list[str]]:
    """(universe of node indices, label name per universe node, text per universe node)."""
    if label == "lexname":
        return np.arange(len(wn.ids)), [LEXNAMES[c] for c in wn.lexfile], list(wn.texts)
    first = lambda d: wn.texts[d].split(": ", 1)[0].split(", ")[0]  # noqa: E731
    domains: dict[int, set[str]] = {}
    for sym, a, b in wn.ptrs:
        if sym == ";c":
            domains.setdefault(a, set()).add(first(b))
    single = {a: next(iter(d)) for a, d in domains.items() if len(d) == 1}
    counts = Counter(single.values())
    universe = np.array(sorted(a for a, d in single.items() if counts[d] >= min_per_class), np.int64)
    return universe, [single[a] for a in universe], [_strip_tag(wn.texts[a]) for a in universe]


def _groups_to_pairs(groups, cap: int) -> set[tuple[int, int]]:
    out = set()
    for members in groups:
        m = sorted(set(members))
        if 2 <= len(m) <= cap:
            out.update((a, b) for i, a in enumerate(m) for b in m[i + 1:])
    return out


def candidate_edges(wn: WordNet, universe: np.ndarray, kinds: tuple) -> np.ndarray:
    """[2, E] unique undirected pairs (a < b, global indices) between universe nodes."""
    inside = np.zeros(len(wn.ids), bool)
    inside[universe] = True
    pairs: set[tuple[int, int]] = set()
    for kind, arg in kinds:
        if kind == "ptr":
            pairs.update((min(a, b), max(a, b)) for sym, a, b in wn.ptrs if sym in arg and inside[a] and inside[b])
        elif kind == "cohypo":
            hyper: dict[int, list[int]] = {}
            for sym, a, b in wn.ptrs:
                if sym in ("@", "@i") and inside[a]:
                    hyper.setdefault(b, []).append(a)
            pairs |= _groups_to_pairs(hyper.values(), arg)
        elif kind in ("lemma", "word"):
            groups: dict[str, list[int]] = {}
            for v in universe:
                for lem in wn.lemmas[v]:
                    for key in ([lem] if kind == "lemma" else set(lem.replace("-", " ").split())):
                        groups.setdefault(key, []).append(int(v))
            pairs |= _groups_to_pairs(groups.values(), arg)
        else:
            raise ValueError(kind)
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2).T


def neighbours(n: int, edges: np.ndarray) -> list[list[int]]:
    nb: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges.T:
        nb[a].append(int(b))
        nb[b].append(int(a))
    return nb


def snowball(nb: list[list[int]], n_nodes: int, budget: int, fanout: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    starts = rng.permutation([v for v in range(len(nb)) if nb[v]])
    taken: set[int] = set()
    for s in starts:
        if len(taken) >= n_nodes:
            break
        if s in taken:
            continue
        queue, got = deque([int(s)]), 0
        while queue and got < budget and len(taken) < n_nodes:
            v = queue.popleft()
            if v in taken:
                continue
            taken.add(v)
            got += 1
            nxt = [u for u in nb[v] if u not in taken]
            if nxt:
                queue.extend(rng.permutation(nxt)[:fanout].tolist())
    return sorted(taken)


@dataclass
class Graph:
    ids: list[str]
    texts: list[str]
    labels: list[str]  # class name per node
    edges: np.ndarray  # [2, E] unique undirected pairs of local indices, a < b

    def label_index(self) -> np.ndarray:
        return np.unique(self.labels, return_inverse=True)[1]


def build(wn: WordNet, name: str, args) -> Graph:
    cand = CANDIDATES[name]
    universe, labels, texts = labelled(wn, cand.label, args.min_per_class)
    edges = candidate_edges(wn, universe, cand.edges)
    local = {int(v): i for i, v in enumerate(universe)}
    e = np.array([[local[a] for a in edges[0]], [local[b] for b in edges[1]]], np.int64).reshape(2, -1)
    if cand.label == "lexname":  # all of WordNet: a connected sample of it
        keep = snowball(neighbours(len(universe), e), args.nodes, args.restart_budget, args.fanout, args.seed)
    else:
        keep = list(range(len(universe)))
    counts = Counter(labels[v] for v in keep)
    keep = [v for v in keep if counts[labels[v]] >= args.min_per_class]
    pos = np.full(len(universe), -1)
    pos[keep] = np.arange(len(keep))
    e = pos[e]
    e = e[:, (e >= 0).all(0)]
    return Graph([wn.ids[universe[v]] for v in keep], [texts[v] for v in keep], [labels[v] for v in keep],
                 np.unique(np.sort(e, axis=0), axis=1))


def graph_stats(labels: np.ndarray, pairs: np.ndarray) -> dict:
    """Edge homophily over unique undirected pairs, neighbour-majority-vote accuracy over nodes
    with neighbours (ties: the smallest label index), isolated share. ``labels`` [N] ints,
    ``pairs`` [2, E] node indices (either or both directions)."""
    n = len(labels)
    pairs = np.unique(np.sort(pairs, axis=0), axis=1)
    pairs = pairs[:, pairs[0] != pairs[1]]
    homophily = float((labels[pairs[0]] == labels[pairs[1]]).mean()) if pairs.size else float("nan")
    nb = neighbours(n, pairs)
    right = total = 0
    for v in range(n):
        if nb[v]:
            right += int(np.argmax(np.bincount(labels[nb[v]])) == labels[v])
            total += 1
    return {"nodes": n, "edges": int(pairs.shape[1]), "classes": int(len(np.unique(labels))),
            "homophily": homophily, "majority_vote": right / max(total, 1), "isolated": 1 - total / n,
            "mean_degree": 2 * pairs.shape[1] / n}


def folder_stats(folder: Path) -> dict:
    with open(folder / "nodes.csv", encoding="utf-8") as fh:
        nodes = list(csv.DictReader(fh))
    index = {r["id"]: i for i, r in enumerate(nodes)}
    labels = np.unique([r["label"] for r in nodes], return_inverse=True)[1]
    with open(folder / "edges.csv", encoding="utf-8") as fh:
        e = [(index[r["src"]], index[r["dst"]]) for r in csv.DictReader(fh) if r["src"] in index and r["dst"] in index]
    return graph_stats(labels, np.array(e, np.int64).T)


HEADER = ("| candidate | label | nodes | edges | mean degree | classes | edge homophily | neighbour-majority acc | "
          "isolated |\n|---|---|---|---|---|---|---|---|---|")


def row(name: str, label: str, s: dict) -> str:
    return (f"| {name} | {label} | {s['nodes']:,} | {s['edges']:,} | {s['mean_degree']:.2f} | {s['classes']} | "
            f"{s['homophily']:.3f} | {s['majority_vote']:.3f} | {s['isolated']:.3f} |")


def write(out: Path, g: Graph) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "text", "label"])
    for row_ in zip(g.ids, g.texts, g.labels):
        w.writerow(row_)
    atomic_write_text(out / "nodes.csv", buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["src", "dst"])
    for a, b in g.edges.T:  # one row per undirected pair; the loader adds the reverse
        w.writerow([g.ids[a], g.ids[b]])
    atomic_write_text(out / "edges.csv", buf.getvalue())


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wordnet", default=None, help="folder with data.noun etc. (default: found automatically)")
    ap.add_argument("--candidate", default=CHOSEN, choices=sorted(CANDIDATES))
    ap.add_argument("--nodes", type=int, default=4000, help="sample size of the lexname candidates")
    ap.add_argument("--restart-budget", type=int, default=25)
    ap.add_argument("--fanout", type=int, default=4)
    ap.add_argument("--min-per-class", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table", action="store_true", help="print every candidate's statistics; write nothing")
    ap.add_argument("--out", default=str(ROOT / "data" / "wordnet_domains"))
    return ap


def main() -> None:
    args = parser().parse_args()
    wn = read_all(wordnet_dir(args.wordnet))
    if args.table:
        print(HEADER)
        print(row("data/wordnet (shipped)", "lexname", folder_stats(ROOT / "data" / "wordnet")))
        for name, cand in CANDIDATES.items():
            g = build(wn, name, args)
            print(row(name, cand.label, graph_stats(g.label_index(), g.edges)), flush=True)
        return
    g = build(wn, args.candidate, args)
    write(Path(args.out), g)
    print(HEADER)
    print(row(args.candidate, CANDIDATES[args.candidate].label, graph_stats(g.label_index(), g.edges)))
    print(f"wrote {len(g.ids)} synsets in {len(set(g.labels))} classes and {g.edges.shape[1]} edges to {args.out}")


if __name__ == "__main__":
    main()
