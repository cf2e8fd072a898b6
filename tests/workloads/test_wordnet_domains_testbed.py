"""The ``wordnet_domains`` testbed: it loads by name through the path a sweep uses, and its
files have the properties its README states (counts, homophily, majority vote), computed
here from the CSV files themselves."""
from __future__ import annotations

import csv
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from workloads.datasets import DatasetConfig, TextGraphDataSource, dataset_problems, source_of
from workloads.textgraphs.base import TextGraphError
from workloads.textgraphs.wordnet import wordnet_dir
from workloads.textgraphs.wordnet_domains import DOMAINS_DIR, load_wordnet_domains

ROOT = Path(__file__).resolve().parents[2]


def readme_facts() -> dict[str, float]:
    """The ``| fact | value |`` rows of the README's counts table."""
    text = (DOMAINS_DIR / "README.md").read_text()
    rows = dict(re.findall(r"^\| ([a-z][a-z -]+?) \| ([\d.,]+) \|$", text, flags=re.MULTILINE))
    return {k: float(v.replace(",", "")) for k, v in rows.items()}


def read_files(folder: Path):
    with open(folder / "nodes.csv", encoding="utf-8") as fh:
        nodes = list(csv.DictReader(fh))
    with open(folder / "edges.csv", encoding="utf-8") as fh:
        edges = [(r["src"], r["dst"]) for r in csv.DictReader(fh)]
    return nodes, edges


def file_stats(folder: Path) -> dict[str, float]:
    """Homophily over unique undirected pairs and the neighbour-majority vote (ties: the first
    label in sorted order) over nodes with a neighbour, from the files alone."""
    nodes, edges = read_files(folder)
    label = {r["id"]: r["label"] for r in nodes}
    pairs = {tuple(sorted(e)) for e in edges if e[0] != e[1]}
    nbrs: dict[str, list[str]] = {}
    for a, b in pairs:
        nbrs.setdefault(a, []).append(label[b])
        nbrs.setdefault(b, []).append(label[a])
    right = sum(max(sorted(Counter(ls).items()), key=lambda kv: kv[1])[0] == label[v] for v, ls in nbrs.items())
    return {"homophily": sum(label[a] == label[b] for a, b in pairs) / len(pairs),
            "vote": right / len(nbrs), "isolated": 1 - len(nbrs) / len(nodes), "pairs": len(pairs)}


@pytest.fixture(scope="module")
def cfg():
    return DatasetConfig(name="wordnet_domains", max_train_nodes=600)


def test_it_is_a_registered_text_graph_that_validates_by_name(cfg):
    src = source_of(cfg)
    assert isinstance(src, TextGraphDataSource) and src.name == "wordnet_domains"
    assert (src.family, src.task, src.metric) == ("node_classification", "multiclass", "accuracy")
    assert dataset_problems(cfg) == []
    assert src.fingerprint(cfg) == src.fingerprint(DatasetConfig(name="wordnet_domains"))
    with pytest.raises(Exception, match="root"):  # no WordNet folder to read: the files are shipped
        DatasetConfig(name="wordnet_domains", root="/usr/share/wordnet")


def test_counts_are_the_readme_s_through_the_sweep_s_loader(cfg, tmp_path):
    from workloads.tasks.node_classification import load_node_data

    facts = readme_facts()
    data = load_node_data(cfg, tmp_path)
    s = data.summary()
    assert s["num_nodes"] == facts["nodes"] == 4395
    assert s["num_edges"] == 2 * facts["edges"]  # the loader adds each pair's reverse
    assert s["num_classes"] == facts["classes"] == 45 and s["dropped_rows"] == {}
    nodes, edges = read_files(DOMAINS_DIR)
    assert len(nodes) == facts["nodes"] and len(edges) == facts["edges"]
    assert len(DOMAINS_DIR.joinpath("nodes.csv").read_bytes()) + len(DOMAINS_DIR.joinpath("edges.csv").read_bytes()) \
        < 2_000_000


def test_edges_do_not_give_the_label_away():
    facts = readme_facts()
    ours, shipped = file_stats(DOMAINS_DIR), file_stats(ROOT / "data" / "wordnet")
    assert ours["pairs"] == facts["edges"]  # one row per undirected pair, none repeated, no self-loop
    assert ours["homophily"] == pytest.approx(facts["edge homophily"], abs=5e-4)
    assert ours["vote"] == pytest.approx(facts["neighbour-majority vote"], abs=5e-4)
    assert ours["isolated"] == pytest.approx(facts["isolated share"], abs=5e-4)
    # far below the lexname subset's, where the vote is nearly always right
    assert ours["homophily"] < 0.85 and shipped["homophily"] > 0.95
    assert ours["vote"] < 0.85 and shipped["vote"] > 0.95
    assert ours["homophily"] < shipped["homophily"] - 0.1


def test_labels_and_classes_agree():
    g = load_wordnet_domains()
    nodes, edges = read_files(DOMAINS_DIR)
    assert g.classes == sorted({r["label"] for r in nodes}) and len(g.classes) == 45
    assert [g.classes[i] for i in g.labels] == [r["label"] for r in nodes]
    counts = np.bincount(g.labels, minlength=len(g.classes))
    assert counts.min() >= 30 and counts.sum() == g.num_nodes
    assert {"law", "military", "chemistry", "baseball", "music"} <= set(g.classes)
    ids = {r["id"] for r in nodes}
    assert len(ids) == len(nodes) and all(re.fullmatch(r"[nvar]\d{8}", i) for i in ids)
    assert all(a in ids and b in ids for a, b in edges)
    # the leading "(law)"-style tag that often names the domain is not in the text
    assert not any(re.search(r": \(", r["text"]) for r in nodes)


def test_the_split_is_stratified_60_20_20(cfg, tmp_path):
    from workloads.tasks.node_classification import load_node_data

    g = source_of(cfg).read(cfg)
    split = np.asarray(g.split)
    counts = np.bincount(g.labels)
    want_valid = sum(round(0.2 * n) for n in counts)
    assert (split == "valid").sum() == want_valid and (split == "test").sum() == want_valid
    assert (split == "train").sum() == g.num_nodes - 2 * want_valid
    for c in range(len(g.classes)):  # every class in every part, in its share
        part = Counter(split[g.labels == c])
        assert part["valid"] == part["test"] == round(0.2 * counts[c]) and part["train"] >= 0.5 * counts[c]
    other = source_of(cfg).read(DatasetConfig(name="wordnet_domains", split_seed=1))
    assert other.split != g.split and Counter(other.split) == Counter(g.split)
    data = load_node_data(cfg, tmp_path)  # max_train_nodes: a stratified subsample of the train part
    assert len(data.train) == 600 and set(split[data.train]) == {"train"}
    assert data.train_subsampled_from == (split == "train").sum()
    assert len(data.valid) == len(data.test) == want_valid


def test_the_files_are_what_the_script_makes(tmp_path):
    try:
        wordnet_dir()
    except TextGraphError:
        pytest.skip("no WordNet database files on this machine (Debian wordnet-base)")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_wordnet_domains.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    for f in ("nodes.csv", "edges.csv"):
        assert (tmp_path / f).read_text() == (DOMAINS_DIR / f).read_text()
