"""WordNet 3.0 as a text-attributed graph.

Synsets are nodes, with text = their lemmas and gloss; the typed pointers between
synsets are edges; the lexicographer file (45 classes: noun.animal, verb.motion,
...) is the label. Read from WordNet's database files (``data.noun``,
``data.verb``, ``data.adj``, ``data.adv``; their format is ``man wndb``), found in
Debian's ``wordnet-base`` (/usr/share/wordnet) or an NLTK data directory.

The default path needs neither: ``data/wordnet/`` in the repository holds a fixed
stratified subset, made by ``scripts/make_wordnet_subset.py``, with WordNet's
licence. Written by hand: the readers that exist (NLTK's) need NLTK's own data
layout and load far more than this needs.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from workloads.textgraphs.base import TextGraph, TextGraphError, random_split
from workloads.textgraphs.csv_graph import load_text_graph_csv

# The lexicographer files, by number (lexnames(5WN)).
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation",
    "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative",
    "verb.weather", "adj.ppl",
)
FILES = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
SUBSET_DIR = Path(__file__).resolve().parents[2] / "data" / "wordnet"


def wordnet_dir(explicit: str | Path | None = None) -> Path:
    """The folder holding ``data.noun`` etc.: ``explicit``, else Debian's wordnet-base,
    else an NLTK data directory ($NLTK_DATA, ~/nltk_data, /usr/share/nltk_data)."""
    candidates = [Path(explicit)] if explicit else []
    candidates.append(Path("/usr/share/wordnet"))
    for root in [os.environ.get("NLTK_DATA"), Path.home() / "nltk_data", "/usr/share/nltk_data",
                 "/usr/local/share/nltk_data"]:
        if root:
            candidates.append(Path(root) / "corpora" / "wordnet")
    for c in candidates:
        if (c / "data.noun").is_file():
            return c
    raise TextGraphError(
        "WordNet's database files (data.noun, data.verb, data.adj, data.adv) were not found in "
        + ", ".join(str(c) for c in candidates)
        + "; install Debian's wordnet-base (apt-get install wordnet-base) or NLTK's wordnet corpus, "
        "or use the subset shipped in data/wordnet/"
    )


def _node_id(pos: str, offset: str) -> str:
    return f"{'a' if pos == 's' else pos}{offset}"


def parse_data_line(line: str) -> tuple[str, int, list[str], list[tuple[str, str]], str]:
    """One synset line of a data.* file -> (id, lexfile number, lemmas, [(pointer, target id)], gloss)."""
    head, _, gloss = line.partition(" | ")
    f = head.split()
    offset, lexfile, ss_type = f[0], int(f[1]), f[2]
    w_cnt = int(f[3], 16)
    lemmas = [f[4 + 2 * i].replace("_", " ") for i in range(w_cnt)]
    k = 4 + 2 * w_cnt
    p_cnt = int(f[k])
    ptrs = []
    for i in range(p_cnt):
        sym, target, pos = f[k + 1 + 4 * i], f[k + 2 + 4 * i], f[k + 3 + 4 * i]
        ptrs.append((sym, _node_id(pos, target)))
    return _node_id(ss_type, offset), lexfile, lemmas, ptrs, gloss.strip()


def read_wordnet(folder: str | Path | None = None) -> TextGraph:
    """All of WordNet: ~117k synsets, 45 classes, every pointer as a directed edge."""
    folder = wordnet_dir(folder)
    ids, texts, labels, raw_edges = [], [], [], []
    for name in FILES:
        path = folder / f"data.{name}"
        with open(path, encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                if line.startswith("  "):  # the licence header
                    continue
                try:
                    sid, lexfile, lemmas, ptrs, gloss = parse_data_line(line.rstrip("\n"))
                except (IndexError, ValueError) as e:
                    raise TextGraphError(f"{path}:{n}: not a WordNet data line ({e})") from None
                ids.append(sid)
                texts.append(f"{', '.join(lemmas)}: {gloss}")
                labels.append(lexfile)
                raw_edges += [(sid, t) for _sym, t in ptrs]
    index = {s: i for i, s in enumerate(ids)}
    edges = np.array([[index[a], index[b]] for a, b in raw_edges if b in index and a != b], dtype=np.int64).T
    edges = np.unique(edges, axis=1)
    return TextGraph("wordnet", ids, texts, np.asarray(labels, np.int64), list(LEXNAMES), edges)


def load_wordnet_subset(split: str = "random", seed: int = 0) -> TextGraph:
    """The stratified subset shipped in ``data/wordnet/`` (see ``scripts/make_wordnet_subset.py``)."""
    g = load_text_graph_csv(SUBSET_DIR / "nodes.csv", SUBSET_DIR / "edges.csv", split, seed=seed, name="wordnet")
    if g.dropped:
        raise TextGraphError(f"{SUBSET_DIR}: the shipped subset has unusable rows: {g.dropped}")
    return g


__all__ = ["LEXNAMES", "load_wordnet_subset", "parse_data_line", "random_split", "read_wordnet", "wordnet_dir"]
