"""ogbn-arxiv, tested through OGB's on-disk format: a real slice of text graph (the
shipped WordNet subset's first nodes, their texts and links) is written as OGB ships
ogbn-arxiv, with a titleabs.tsv beside it, then read back by OGB's raw reader
through ours."""
import gzip

import numpy as np
import pandas as pd
import pytest

from orchestrator.spec import SpecError, parse_spec
from workloads.datasets.config import DatasetConfig
from workloads.tasks import task_of
from workloads.textgraphs import load_wordnet_subset

N = 80


def write_arxiv(root, drop_text_of=None):
    g = load_wordnet_subset()
    keep = np.arange(N)
    e = g.edges[:, (g.edges[0] < N) & (g.edges[1] < N)]
    e = e[:, e[0] < e[1]]  # one direction per link, as citations are
    classes = sorted(set(g.labels[keep].tolist()))
    label = np.array([classes.index(c) for c in g.labels[keep]])
    d = root / "ogbn_arxiv"
    for sub in ("raw", "split/time", "mapping"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    csv = lambda arr, f: pd.DataFrame(arr).to_csv(f, header=False, index=False, compression="gzip")  # noqa: E731
    csv(e.T, d / "raw" / "edge.csv.gz")
    csv(np.zeros((N, 4), np.float32), d / "raw" / "node-feat.csv.gz")
    csv(label.reshape(-1, 1), d / "raw" / "node-label.csv.gz")
    csv(np.full((N, 1), 2020), d / "raw" / "node_year.csv.gz")
    csv(np.array([N]), d / "raw" / "num-node-list.csv.gz")
    csv(np.array([e.shape[1]]), d / "raw" / "num-edge-list.csv.gz")
    for part, idx in zip(("train", "valid", "test"), np.split(np.arange(N), [50, 65])):
        csv(idx, d / "split" / "time" / f"{part}.csv.gz")
    pids = [str(1000 + 7 * i) for i in range(N)]
    pd.DataFrame({"node idx": range(N), "paper id": pids}).to_csv(d / "mapping" / "nodeidx2paperid.csv.gz",
                                                                   index=False, compression="gzip")
    pd.DataFrame({"label idx": range(len(classes)), "arxiv category": [g.classes[c] for c in classes]}).to_csv(
        d / "mapping" / "labelidx2arxivcategeory.csv.gz", index=False, compression="gzip")
    (d / "RELEASE_v1.txt").write_text("# Release note: version 1\n")
    lines = ["paper id\ttitle\tabstract"]
    for i in range(N):
        if i != drop_text_of:
            title, _, gloss = g.texts[i].partition(": ")
            lines.append(f"{pids[i]}\t{title}\t{gloss}")
    with gzip.open(d / "titleabs.tsv.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return g, classes


def test_reads_ogb_format_with_paper_texts(tmp_path, cache_dir):
    g, classes = write_arxiv(tmp_path, drop_text_of=3)
    cfg = DatasetConfig(name="ogbn-arxiv", root=str(tmp_path))
    data = task_of(cfg).load(cfg, cache_dir)
    s = data.summary()
    assert (s["num_train"], s["num_valid"], s["num_test"]) == (50, 15, 15)  # OGB's split files, not ours
    assert s["num_nodes"] == N and s["num_classes"] == len(classes) and s["metric"] == "accuracy"
    assert s["dropped_rows"] == {"papers without a title or abstract (empty text)": 1}
    t = data.graph.texts
    assert t[0].startswith(g.texts[0].partition(": ")[0] + ". ") and t[3] == ""
    assert data.graph.classes[data.graph.labels[10]] == g.classes[g.labels[10]]
    # OGB's reader read the citations: node 0's neighbours are the WordNet links among the first N
    nbrs = set(data.indices[data.indptr[0]:data.indptr[1]].tolist())
    expected = {int(b) for a, b in g.edges.T if a == 0 and b < N} | {int(a) for a, b in g.edges.T if b == 0 and a < N}
    assert nbrs == expected - {0}


def test_missing_files_are_named_before_any_work(tmp_path):
    write_arxiv(tmp_path)
    (tmp_path / "ogbn_arxiv" / "titleabs.tsv.gz").unlink()
    (tmp_path / "ogbn_arxiv" / "split" / "time" / "valid.csv.gz").unlink()
    d = {"name": "s", "datasets": [{"name": "ogbn-arxiv", "root": str(tmp_path)}],
         "backbones": [{"name": "lm"}], "methods": {"gnn": {}}, "storage": {"root": str(tmp_path / "runs")}}
    with pytest.raises(SpecError) as e:
        parse_spec(d)
    msg = str(e.value)
    assert "datasets[0]: ogbn-arxiv: files missing" in msg and "split/time/valid.csv.gz" in msg
    assert "titleabs.tsv" in msg and "Nothing is downloaded" in msg
    assert not (tmp_path / "runs").exists()
