"""A user's own text-attributed graph: ``nodes.csv`` (id, text, label) and
``edges.csv`` (src, dst), checked before any work starts.

Rows that cannot be used are counted by reason and skipped (an empty text, a
missing id or label, a duplicate edge, an edge to an unknown id); structural
problems are errors naming the file: a repeated node id, fewer than two classes,
no usable node, a missing column, or a split column with values other than
train/valid/test.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from runfolder.io import file_digest, stable_hash
from workloads.datasets.entry import BaseDatasetConfig
from workloads.textgraphs.base import TextGraph, TextGraphError, TextGraphSource, random_split, with_split

SPLIT_VALUES = {"train", "valid", "test"}


class TextGraphCsvConfig(BaseDatasetConfig):
    """An entry of kind ``text_graph_csv``: ``{name: mine, kind: text_graph_csv, nodes: ...,
    edges: ..., split: random|column:<name>}``."""

    kind: Literal["text_graph_csv"] = Field(default="text_graph_csv",
                                            description="text_graph_csv: your own text-attributed graph")
    nodes: str | None = Field(default=None, description="CSV with columns id,text,label")
    edges: str | None = Field(default=None, description="CSV with columns src,dst (node ids)")
    split: str | None = Field(
        default=None, description="'random' (stratified, the default) or 'column:<name>' (train/valid/test in "
        "that column of the nodes file)")
    max_train_nodes: int | None = Field(
        default=None, ge=10, description="a deterministic stratified subsample of the training nodes (every "
        "method sees the same); null: all")


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise TextGraphError(f"{path}: no such file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise TextGraphError(f"{path}: not a readable CSV file ({e})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise TextGraphError(f"{path}: missing column(s) {', '.join(missing)}; has {', '.join(df.columns)}")
    return df


def load_text_graph_csv(nodes: str | Path, edges: str | Path, split: str = "random", *, seed: int = 0,
                        name: str = "csv_graph", undirected: bool = True) -> TextGraph:
    """Read and check a graph from two CSV files.

    Args:
        nodes: CSV with columns ``id``, ``text``, ``label`` (and the split column, if any).
        edges: CSV with columns ``src``, ``dst`` (node ids).
        split: ``random`` (stratified 60/20/20 with ``seed``) or ``column:<name>`` (values
            train/valid/test in that column of ``nodes``).
        undirected: add each edge's reverse too (default True).
    """
    nodes, edges = Path(nodes), Path(edges)
    split_col = None
    if split.startswith("column:"):
        split_col = split.removeprefix("column:")
    elif split != "random":
        raise TextGraphError(f"split: '{split}' is neither 'random' nor 'column:<name>'")
    nd = _read(nodes, ["id", "text", "label"] + ([split_col] if split_col else []))
    dropped: dict[str, int] = {}

    def drop(reason: str, count: int) -> None:
        if count:
            dropped[reason] = dropped.get(reason, 0) + int(count)

    nd = nd.assign(id=nd["id"].str.strip(), label=nd["label"].str.strip(), text=nd["text"].str.strip())
    empty = (nd["id"] == "") | (nd["label"] == "") | (nd["text"] == "")
    drop("node rows with an empty id, text or label", empty.sum())
    nd = nd[~empty]
    dup = nd["id"][nd["id"].duplicated()].unique()
    if len(dup):
        raise TextGraphError(f"{nodes}: node id(s) repeated: {', '.join(map(str, dup[:5]))}"
                             + (f" and {len(dup) - 5} more" if len(dup) > 5 else ""))
    if nd.empty:
        raise TextGraphError(f"{nodes}: no usable node rows")
    classes = sorted(nd["label"].unique())
    if len(classes) < 2:
        raise TextGraphError(f"{nodes}: needs at least two classes, found {classes}")
    index = {k: i for i, k in enumerate(nd["id"])}
    ed = _read(edges, ["src", "dst"])
    src, dst = ed["src"].str.strip().map(index), ed["dst"].str.strip().map(index)
    unknown = src.isna() | dst.isna()
    drop("edge rows naming an unknown node id", unknown.sum())
    pairs = np.stack([src[~unknown].to_numpy(np.int64), dst[~unknown].to_numpy(np.int64)])
    if pairs.size:
        given = pairs.shape[1]
        pairs = np.unique(pairs, axis=1)
        drop("duplicate edge rows", given - pairs.shape[1])
        if undirected:
            pairs = np.unique(np.concatenate([pairs, pairs[::-1]], axis=1), axis=1)
    labels = nd["label"].map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
    if split_col:
        values = nd[split_col].str.strip()
        bad = sorted(set(values) - SPLIT_VALUES)
        if bad:
            raise TextGraphError(f"{nodes}: column '{split_col}' has values other than train/valid/test: "
                                 f"{', '.join(bad[:5])}")
        split_list = values.tolist()
    else:
        split_list = random_split(len(nd), labels, seed=seed)
    return TextGraph(name, nd["id"].tolist(), nd["text"].tolist(), labels, classes,
                     pairs if pairs.size else np.zeros((2, 0), np.int64), split_list, dropped)


def _csv_read(cfg: TextGraphCsvConfig) -> TextGraph:
    g = load_text_graph_csv(cfg.nodes, cfg.edges, cfg.split or "random", seed=cfg.split_seed, name=cfg.name)
    return with_split(g, cfg, cfg.split or "random")


def _csv_check(cfg: TextGraphCsvConfig) -> list[str]:
    missing = [k for k, v in (("nodes", cfg.nodes), ("edges", cfg.edges)) if not v]
    if missing:
        return [f"kind text_graph_csv needs {' and '.join(missing)}"]
    try:
        g = _csv_read(cfg)  # small files: read and checked in full before any work
    except TextGraphError as e:
        return [str(e)]
    counts = {s: g.split.count(s) for s in ("train", "valid", "test")}
    empty = [s for s, c in counts.items() if c == 0]
    return [f"{cfg.nodes}: the split leaves no {', no '.join(empty)} nodes"] if empty else []


def _csv_fingerprint(cfg: TextGraphCsvConfig) -> str:
    return stable_hash([file_digest(Path(cfg.nodes)), file_digest(Path(cfg.edges))])


TEXT_GRAPH_CSV = TextGraphSource(
    "text_graph_csv", "your own text-attributed graph: nodes.csv (id,text,label) and edges.csv (src,dst)",
    _csv_read, _csv_fingerprint, _csv_check, config_cls=TextGraphCsvConfig, is_kind=True)
