"""Text-attributed graphs as registered datasets of the node-classification family.

* ``wordnet``: the stratified subset shipped in ``data/wordnet/`` (offline, the
  default), or all of WordNet from a dict folder given as ``root``.
* ``text_graph_csv`` (a *kind*: ``{name: mine, kind: text_graph_csv, nodes: ...,
  edges: ..., split: random|column:<name>}``): your own graph, read and checked
  when the spec is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from runfolder.io import file_digest, stable_hash
from workloads.metrics import metric_direction
from workloads.textgraphs.base import TextGraph, TextGraphError, random_split
from workloads.textgraphs.csv_graph import load_text_graph_csv
from workloads.textgraphs.wordnet import SUBSET_DIR, read_wordnet, wordnet_dir

NODE_FRACTIONS = (0.6, 0.2, 0.2)


@dataclass(frozen=True)
class TextGraphSource:
    """A text-attributed graph with one class per node."""

    name: str
    description: str
    read: Callable[[object], TextGraph]  # DatasetConfig -> graph (split assigned)
    fingerprint: Callable[[object], str]  # content digest of what it reads
    check: Callable[[object], list[str]]  # DatasetConfig -> problems (empty: usable), before any work
    family: str = "node_classification"
    task: str = "multiclass"
    metric: str = "accuracy"
    is_kind: bool = False  # read from the user's files named in the dataset entry

    @property
    def direction(self):
        return metric_direction(self.metric)


def _with_split(g: TextGraph, cfg) -> TextGraph:
    if g.split is None or ((cfg.split or "random") == "random" and cfg.split_fractions is not None):
        g.split = random_split(g.num_nodes, g.labels, tuple(cfg.split_fractions or NODE_FRACTIONS), cfg.split_seed)
    return g


def _read_wordnet(cfg) -> TextGraph:
    if cfg.root:
        g = read_wordnet(cfg.root)
    else:
        g = load_text_graph_csv(SUBSET_DIR / "nodes.csv", SUBSET_DIR / "edges.csv", "random",
                                seed=cfg.split_seed, name="wordnet")
        g.split = None
    return _with_split(g, cfg)


def _wordnet_fingerprint(cfg) -> str:
    folder = wordnet_dir(cfg.root) if cfg.root else SUBSET_DIR
    files = sorted(folder.glob("data.*")) if cfg.root else [SUBSET_DIR / "nodes.csv", SUBSET_DIR / "edges.csv"]
    return stable_hash([file_digest(f) for f in files])


def _wordnet_check(cfg) -> list[str]:
    if cfg.kind or cfg.nodes or cfg.edges:
        return ["wordnet reads WordNet itself; 'kind', 'nodes' and 'edges' do not apply"]
    if cfg.root:
        try:
            wordnet_dir(cfg.root)
        except TextGraphError as e:
            return [str(e)]
    return []


def _csv_read(cfg) -> TextGraph:
    g = load_text_graph_csv(cfg.nodes, cfg.edges, cfg.split or "random", seed=cfg.split_seed, name=cfg.name)
    return _with_split(g, cfg)


def _csv_check(cfg) -> list[str]:
    missing = [k for k in ("nodes", "edges") if not getattr(cfg, k)]
    if missing:
        return [f"kind text_graph_csv needs {' and '.join(missing)}"]
    try:
        g = _csv_read(cfg)  # small files: read and checked in full before any work
    except TextGraphError as e:
        return [str(e)]
    counts = {s: g.split.count(s) for s in ("train", "valid", "test")}
    empty = [s for s, c in counts.items() if c == 0]
    return [f"{cfg.nodes}: the split leaves no {', no '.join(empty)} nodes"] if empty else []


def _csv_fingerprint(cfg) -> str:
    return stable_hash([file_digest(Path(cfg.nodes)), file_digest(Path(cfg.edges))])


def _arxiv_read(cfg) -> TextGraph:
    from workloads.textgraphs.ogbn_arxiv import read_arxiv

    g = read_arxiv(cfg.root)  # the official time split; split_fractions does not apply
    return g


def _arxiv_fingerprint(cfg) -> str:
    from workloads.textgraphs.ogbn_arxiv import _folder, text_file

    folder = _folder(cfg.root)
    files = sorted(p for p in folder.rglob("*.csv.gz")) + [text_file(folder)]
    return stable_hash([file_digest(f) for f in files])


def _arxiv_check(cfg) -> list[str]:
    from workloads.textgraphs.ogbn_arxiv import check

    if cfg.kind or cfg.nodes or cfg.edges:
        return ["ogbn-arxiv reads OGB's files; 'kind', 'nodes' and 'edges' do not apply"]
    return check(cfg.root)


SOURCES_TEXT = [
    TextGraphSource(
        "wordnet", "WordNet 3.0 synsets (lemmas + gloss), typed pointers as edges, 45 lexicographer classes; "
        "the shipped 4,272-synset subset unless 'root' names a WordNet dict folder",
        _read_wordnet, _wordnet_fingerprint, _wordnet_check),
    TextGraphSource(
        "text_graph_csv", "your own text-attributed graph: nodes.csv (id,text,label) and edges.csv (src,dst)",
        _csv_read, _csv_fingerprint, _csv_check, is_kind=True),
    TextGraphSource(
        "ogbn-arxiv", "OGB ogbn-arxiv: 169k arXiv CS papers (title + abstract), citations, 40 categories, "
        "official time split; read from OGB's on-disk format and titleabs.tsv (nothing downloads)",
        _arxiv_read, _arxiv_fingerprint, _arxiv_check),
]
