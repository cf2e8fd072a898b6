"""ogbn-arxiv with titles and abstracts: OGB's on-disk format plus the paper-text file.

The graph (citations), the labels (40 arXiv CS categories) and the official time
split come from OGB's files, read with OGB's own raw reader
(``ogb.io.read_graph_raw.read_csv_graph_raw``); the node texts come from OGB's
``titleabs.tsv`` (paper id, title, abstract), joined through
``mapping/nodeidx2paperid.csv.gz``. Nothing is downloaded at run time: fetch both
once where a network is reachable (``ogb.nodeproppred.NodePropPredDataset('ogbn-arxiv')``
and https://snap.stanford.edu/ogb/data/misc/ogbn_arxiv/titleabs.tsv.gz) and point
``root`` (or ``$OGB_ROOT``) at the folder holding ``ogbn_arxiv/``; put
``titleabs.tsv[.gz]`` in ``ogbn_arxiv/`` or beside it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from workloads.textgraphs.base import TextGraph, TextGraphError
from workloads.util import ogb_root

NAME = "ogbn-arxiv"
RAW = ("edge.csv.gz", "node-feat.csv.gz", "node-label.csv.gz", "node_year.csv.gz", "num-node-list.csv.gz",
       "num-edge-list.csv.gz")
SPLIT = ("train.csv.gz", "valid.csv.gz", "test.csv.gz")
MAPPING = ("nodeidx2paperid.csv.gz", "labelidx2arxivcategeory.csv.gz")  # OGB's own spelling


def _folder(root: str | None) -> Path:
    return ogb_root(root) / "ogbn_arxiv"


def text_file(folder: Path) -> Path | None:
    for where in (folder, folder.parent):
        for name in ("titleabs.tsv", "titleabs.tsv.gz"):
            if (where / name).is_file():
                return where / name
    return None


def missing_files(root: str | None) -> list[str]:
    folder = _folder(root)
    files = [folder / "RELEASE_v1.txt"] + [folder / "raw" / f for f in RAW] + \
        [folder / "split" / "time" / f for f in SPLIT] + [folder / "mapping" / f for f in MAPPING]
    out = [str(f.relative_to(folder)) for f in files if not f.is_file()]
    if text_file(folder) is None:
        out.append("titleabs.tsv (or .gz), in the folder or beside it")
    return out


def check(root: str | None) -> list[str]:
    missing = missing_files(root)
    if missing:
        return [f"{NAME}: files missing under {_folder(root)}: {', '.join(missing)}. Nothing is downloaded at "
                "run time: fetch OGB's folder and titleabs.tsv.gz where a network is reachable, then set 'root' "
                "(or $OGB_ROOT)"]
    return []


def read_arxiv(root: str | None) -> TextGraph:
    """The whole graph: 169,343 papers, 40 classes, the official time split."""
    from ogb.io.read_graph_raw import read_csv_graph_raw

    problems = check(root)
    if problems:
        raise TextGraphError(problems[0])
    folder = _folder(root)
    graph = read_csv_graph_raw(str(folder / "raw"), add_inverse_edge=False, additional_node_files=["node_year"])[0]
    n = int(graph["num_nodes"])
    labels = pd.read_csv(folder / "raw" / "node-label.csv.gz", header=None).to_numpy().reshape(-1).astype(np.int64)
    classes_df = pd.read_csv(folder / "mapping" / "labelidx2arxivcategeory.csv.gz")
    classes = [str(c) for c in classes_df.sort_values(classes_df.columns[0])[classes_df.columns[1]]]
    paper = pd.read_csv(folder / "mapping" / "nodeidx2paperid.csv.gz")
    paper_ids = paper.sort_values(paper.columns[0])[paper.columns[1]].astype(str).tolist()
    tf = text_file(folder)
    text = pd.read_csv(tf, sep="\t", header=None, names=["pid", "title", "abstract"], dtype=str,
                       keep_default_na=False, quoting=3)
    text = text[text["pid"].str.strip().str.isdigit()]  # the file may start with a header line
    by_id = dict(zip(text["pid"].str.strip(), (text["title"].str.strip() + ". " + text["abstract"].str.strip())))
    texts = [by_id.get(p, "") for p in paper_ids]
    no_text = sum(1 for t in texts if not t)
    split = ["train"] * n
    for part, name in (("valid", "valid.csv.gz"), ("test", "test.csv.gz")):
        for i in pd.read_csv(folder / "split" / "time" / name, header=None)[0]:
            split[int(i)] = part
    if len(labels) != n or len(paper_ids) != n:
        raise TextGraphError(f"{folder}: {n} nodes but {len(labels)} labels and {len(paper_ids)} paper ids")
    return TextGraph(NAME, paper_ids, texts, labels, classes, np.asarray(graph["edge_index"], np.int64), split,
                     {"papers without a title or abstract (empty text)": no_text} if no_text else {})
