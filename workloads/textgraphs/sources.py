"""Registered text-attributed graphs of the node-classification family (each a
``TextGraphDataSource``; entries validate against :class:`TextGraphConfig`).

* ``wordnet``: the stratified subset shipped in ``data/wordnet/`` (offline, the
  default), or all of WordNet from a dict folder given as ``root``.
* ``ogbn-arxiv``: OGB's on-disk files plus the paper texts, official time split.

The kind ``text_graph_csv`` (your own graph) lives in
:mod:`workloads.textgraphs.csv_graph`.
"""
from __future__ import annotations

from runfolder.io import file_digest, stable_hash
from workloads.textgraphs.base import TextGraph, TextGraphConfig, TextGraphError, TextGraphSource, with_split
from workloads.textgraphs.csv_graph import load_text_graph_csv
from workloads.textgraphs.wordnet import SUBSET_DIR, read_wordnet, wordnet_dir


def _read_wordnet(cfg: TextGraphConfig) -> TextGraph:
    if cfg.root:
        g = read_wordnet(cfg.root)
    else:
        g = load_text_graph_csv(SUBSET_DIR / "nodes.csv", SUBSET_DIR / "edges.csv", "random",
                                seed=cfg.split_seed, name="wordnet")
        g.split = None
    return with_split(g, cfg)


def _wordnet_fingerprint(cfg: TextGraphConfig) -> str:
    folder = wordnet_dir(cfg.root) if cfg.root else SUBSET_DIR
    files = sorted(folder.glob("data.*")) if cfg.root else [SUBSET_DIR / "nodes.csv", SUBSET_DIR / "edges.csv"]
    return stable_hash([file_digest(f) for f in files])


def _wordnet_check(cfg: TextGraphConfig) -> list[str]:
    if cfg.root:
        try:
            wordnet_dir(cfg.root)
        except TextGraphError as e:
            return [str(e)]
    return []


def _arxiv_read(cfg: TextGraphConfig) -> TextGraph:
    from workloads.textgraphs.ogbn_arxiv import read_arxiv

    return read_arxiv(cfg.root)  # the official time split; split_fractions does not apply


def _arxiv_fingerprint(cfg: TextGraphConfig) -> str:
    from workloads.textgraphs.ogbn_arxiv import _folder, text_file

    folder = _folder(cfg.root)
    files = sorted(p for p in folder.rglob("*.csv.gz")) + [text_file(folder)]
    return stable_hash([file_digest(f) for f in files])


def _arxiv_check(cfg: TextGraphConfig) -> list[str]:
    from workloads.textgraphs.ogbn_arxiv import check

    return check(cfg.root)


WORDNET = TextGraphSource(
    "wordnet", "WordNet 3.0 synsets (lemmas + gloss), typed pointers as edges, 45 lexicographer classes; "
    "the shipped 4,272-synset subset unless 'root' names a WordNet dict folder",
    _read_wordnet, _wordnet_fingerprint, _wordnet_check)
OGBN_ARXIV = TextGraphSource(
    "ogbn-arxiv", "OGB ogbn-arxiv: 169k arXiv CS papers (title + abstract), citations, 40 categories, "
    "official time split; read from OGB's on-disk format and titleabs.tsv (nothing downloads)",
    _arxiv_read, _arxiv_fingerprint, _arxiv_check)
