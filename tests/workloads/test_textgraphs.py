"""Text-attributed graphs: WordNet's database format, the shipped subset, and a
user's CSV graph with its checks."""
import numpy as np
import pytest

from workloads.textgraphs import (
    LEXNAMES, TextGraphError, load_text_graph_csv, load_wordnet_subset, read_wordnet, wordnet_dir,
)
from workloads.textgraphs.wordnet import parse_data_line

# Two real lines of WordNet 3.0's data files (format: man wndb).
NOUN = ("00001930 03 n 01 physical_entity 0 007 @ 00001740 n 0000 ~ 00002452 n 0000 ~ 00002684 n 0000 "
        "~ 00007347 n 0000 ~ 00020827 n 0000 ~ 00029677 n 0000 ~ 14580597 n 0000 | an entity that has "
        "physical existence  ")
VERB = ("00001740 29 v 04 breathe 0 take_a_breath 0 respire 0 suspire 3 021 * 00005041 v 0000 * 00004227 v 0000 "
        "+ 03110323 a 0301 + 00831191 n 0303 + 04080833 n 0301 + 04250850 n 0105 + 00831191 n 0101 ^ 00004227 v 0103 "
        "^ 00005041 v 0103 $ 00002325 v 0000 $ 00002573 v 0000 ~ 00002573 v 0000 ~ 00002724 v 0000 ~ 00002942 v 0000 "
        "~ 00003826 v 0000 ~ 00004032 v 0000 ~ 00004227 v 0000 ~ 00005041 v 0000 ~ 00006697 v 0000 ~ 00007328 v 0000 "
        "~ 00017031 v 0000 02 + 02 00 + 08 00 | draw air into, and expel out of, the lungs")


def test_parses_wordnet_data_lines():
    sid, lexfile, lemmas, ptrs, gloss = parse_data_line(NOUN)
    assert (sid, LEXNAMES[lexfile], lemmas) == ("n00001930", "noun.Tops", ["physical entity"])
    assert ptrs[0] == ("@", "n00001740") and len(ptrs) == 7 and gloss == "an entity that has physical existence"
    sid, lexfile, lemmas, ptrs, gloss = parse_data_line(VERB)
    assert sid == "v00001740" and LEXNAMES[lexfile] == "verb.body"
    assert lemmas == ["breathe", "take a breath", "respire", "suspire"]  # w_cnt is hexadecimal
    assert len(ptrs) == 21 and ("+", "a03110323") in ptrs and gloss.startswith("draw air into")
    assert len(LEXNAMES) == 45


def test_reads_database_files_from_a_folder(tmp_path):
    (tmp_path / "data.noun").write_text("  1 This software and database is being provided ...\n" + NOUN + "\n"
                                        + NOUN.replace("00001930", "00001740", 1).replace("@ 00001740", "~ 00001930") + "\n")
    for name in ("verb", "adj", "adv"):
        (tmp_path / f"data.{name}").write_text("")
    g = read_wordnet(tmp_path)
    assert g.ids == ["n00001930", "n00001740"] and g.classes[g.labels[0]] == "noun.Tops"
    assert sorted(map(tuple, g.edges.T.tolist())) == [(0, 1), (1, 0)]  # pointers to synsets not read are dropped
    assert g.texts[0] == "physical entity: an entity that has physical existence"


def test_missing_wordnet_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "nltk"))
    monkeypatch.setattr("pathlib.Path.home", lambda: tmp_path)
    try:
        found = wordnet_dir(tmp_path / "nowhere")
    except TextGraphError as e:
        msg = str(e)
        assert str(tmp_path / "nowhere") in msg and "wordnet-base" in msg and "corpora/wordnet" in msg
    else:  # this machine has Debian's wordnet-base: the fallback found it
        assert (found / "data.noun").is_file()


def test_the_shipped_subset_loads_offline_and_is_stratified():
    g = load_wordnet_subset(seed=0)
    s = g.summary()
    assert s["num_nodes"] > 3000 and s["num_classes"] == 45 and s["smallest_class"] >= 30
    assert s["num_edges"] > s["num_nodes"]  # the subset keeps WordNet's links
    assert set(g.classes) == set(LEXNAMES)
    for c in range(45):  # every class in every split
        members = [g.split[i] for i in np.flatnonzero(g.labels == c)]
        assert {"train", "valid", "test"} <= set(members)
    assert load_wordnet_subset(seed=0).split == g.split and load_wordnet_subset(seed=1).split != g.split


def test_the_subset_is_what_the_script_makes(tmp_path):
    try:
        wordnet_dir()
    except TextGraphError:
        pytest.skip("no WordNet database files on this machine (Debian wordnet-base)")
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "scripts" / "make_wordnet_subset.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    for f in ("nodes.csv", "edges.csv"):
        assert (tmp_path / f).read_text() == (root / "data" / "wordnet" / f).read_text()


def write(tmp_path, nodes: str, edges: str):
    (tmp_path / "nodes.csv").write_text(nodes)
    (tmp_path / "edges.csv").write_text(edges)
    return tmp_path / "nodes.csv", tmp_path / "edges.csv"


def test_csv_graph_counts_bad_rows_and_splits(tmp_path):
    n, e = write(tmp_path,
                 "id,text,label,part\na,alpha,x,train\nb,beta,y,valid\nc,gamma,x,test\nd,,y,train\ne2,delta,y,train\n",
                 "src,dst\na,b\na,b\nb,c\nc,zzz\n")
    g = load_text_graph_csv(n, e, "column:part")
    assert g.ids == ["a", "b", "c", "e2"] and g.classes == ["x", "y"] and g.labels.tolist() == [0, 1, 0, 1]
    assert g.split == ["train", "valid", "test", "train"]
    assert sorted(map(tuple, g.edges.T.tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert g.dropped == {"node rows with an empty id, text or label": 1, "edge rows naming an unknown node id": 1,
                         "duplicate edge rows": 1}
    r = load_text_graph_csv(n, e, "random", seed=3)
    assert len(r.split) == 4 and set(r.split) <= {"train", "valid", "test"}


@pytest.mark.parametrize("nodes, edges, split, expected", [
    ("id,text,label\na,t,x\na,u,y\n", "src,dst\n", "random", "node id(s) repeated: a"),
    ("id,text,label\na,t,x\nb,u,x\n", "src,dst\n", "random", "needs at least two classes"),
    ("id,text\na,t\n", "src,dst\n", "random", "missing column(s) label"),
    ("id,text,label\na,t,x\nb,u,y\n", "from,to\n", "random", "edges.csv: missing column(s) src, dst"),
    ("id,text,label,p\na,t,x,train\nb,u,y,dev\n", "src,dst\n", "column:p", "values other than train/valid/test: dev"),
    ("id,text,label\na,t,x\nb,u,y\n", "src,dst\n", "scaffold", "split: 'scaffold' is neither"),
])
def test_csv_graph_errors_name_the_file_and_problem(tmp_path, nodes, edges, split, expected):
    n, e = write(tmp_path, nodes, edges)
    with pytest.raises(TextGraphError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_text_graph_csv(n, e, split)
