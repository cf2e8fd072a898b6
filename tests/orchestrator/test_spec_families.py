"""Specs that mix task families: cells pair each dataset with the backbones and method
variants of its family, each cell has its task's objectives, and a user's own text
graph is read and checked before any work."""
import pytest

from orchestrator.spec import SpecError, parse_spec
from orchestrator.sweep import directions
from tests.conftest import TINY_ARCH


def mixed(tmp_path, **over):
    d = {
        "name": "mixed",
        "datasets": [{"name": "freesolv", "max_molecules": 120}, {"name": "wordnet"}],
        "backbones": [{"name": "graphormer", "params": TINY_ARCH}, {"name": "lm", "params": {"max_length": 16}}],
        "methods": {"lora": {}, "lora_gist": {"method": "lora", "plugins": {"gist": {}}},
                    "engine": {"search": {"threshold": {"type": "float", "low": 0.5, "high": 1.0}}}, "gnn": {}},
        "storage": {"root": str(tmp_path / "runs")},
    }
    d.update(over)
    return d


def test_cells_follow_task_families_and_carry_their_objectives(tmp_path):
    spec = parse_spec(mixed(tmp_path))
    cells = {c.id: c for c in spec.cells()}
    assert sorted(cells) == ["freesolv__graphormer__lora", "freesolv__graphormer__lora_gist",
                             "wordnet__lm__engine", "wordnet__lm__gnn"]
    assert spec.cell_objectives(cells["wordnet__lm__engine"]) == ["score", "train_memory_mb", "latency_ms_per_node"]
    assert spec.cell_objectives(cells["freesolv__graphormer__lora"])[2] == "latency_ms_per_graph"
    assert directions(spec, cells["wordnet__lm__gnn"]) == ["maximize", "minimize", "minimize"]  # accuracy
    assert directions(spec, cells["freesolv__graphormer__lora"])[0] == "minimize"  # RMSE
    assert spec.backbones[1].pretrain is None  # a language model is not pretrained by the project


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["datasets"].pop(1), "methods.engine: applies to language_model backbones"),
    (lambda d: d["backbones"].pop(1), "datasets[1]: no backbone and method variant of the spec applies to 'wordnet'"),
    (lambda d: d["methods"].update(gnn_gist={"method": "gnn", "plugins": {"gist": {}}}),
     "methods.gnn_gist: applies to language_model backbones (with its plug-ins)"),
    (lambda d: d["backbones"][1].update(pretrain={"epochs": 1}),
     "backbones[1]: backbone 'lm' is loaded as is, not pretrained by the project"),
    (lambda d: d["backbones"][1]["params"].update(path="/no/such/model"),
     "backbones[1].params: language model '/no/such/model': no such folder"),
    (lambda d: d.update(objectives=["score", "latency_ms_per_graph"]),
     "objectives[1]: 'latency_ms_per_graph' is not an objective of dataset 'wordnet'"),
    (lambda d: d["datasets"].append({"name": "text_graph_csv"}),
     "datasets[2].name: 'text_graph_csv' is a dataset kind: write 'kind: text_graph_csv'"),
    (lambda d: d["datasets"].append({"name": "mine", "kind": "text_graph_csv"}),
     "datasets[2]: kind text_graph_csv needs nodes and edges"),
    (lambda d: d["datasets"].append({"name": "mine", "kind": "csv_graf"}),
     "datasets[2].kind: unknown dataset kind 'csv_graf'; known: csv, text_graph_csv"),
    (lambda d: d["datasets"][0].update(nodes="n.csv"), "datasets[0].nodes: unknown key for dataset 'freesolv' (a field of dataset kind text_graph_csv)"),
])
def test_family_mismatches_are_refused_with_their_path(tmp_path, change, expected):
    d = mixed(tmp_path)
    change(d)
    with pytest.raises(SpecError) as e:
        parse_spec(d, "s.yaml")
    assert expected in str(e.value), str(e.value)


def text_only(tmp_path, datasets):
    d = mixed(tmp_path, datasets=datasets)
    d["backbones"] = d["backbones"][1:]
    d["methods"] = {k: v for k, v in d["methods"].items() if k in ("engine", "gnn")}
    return d


def write_graph(folder, nodes: str, edges: str):
    (folder / "nodes.csv").write_text(nodes)
    (folder / "edges.csv").write_text(edges)
    return {"name": "mine", "kind": "text_graph_csv", "nodes": str(folder / "nodes.csv"),
            "edges": str(folder / "edges.csv")}


def test_own_text_graph_is_checked_when_the_spec_loads(tmp_path):
    rows = "".join(f"n{i},text of node {i},{'ab'[i % 2]},{['train', 'valid', 'test'][i % 3]}\n" for i in range(12))
    good = write_graph(tmp_path, "id,text,label,fold\n" + rows, "src,dst\nn0,n1\nn1,n2\nn2,n99\n")
    spec = parse_spec(text_only(tmp_path, [{**good, "split": "column:fold"}]))
    assert [c.id for c in spec.cells()] == ["mine__lm__engine", "mine__lm__gnn"]
    from workloads.tasks import task_of

    data = task_of(spec.datasets[0]).load(spec.datasets[0], tmp_path / "cache")
    s = data.summary()
    assert (s["num_train"], s["num_valid"], s["num_test"]) == (4, 4, 4)
    assert s["dropped_rows"] == {"edge rows naming an unknown node id": 1}

    bad = write_graph(tmp_path, "id,text,label\nn0,a,x\nn0,b,y\n", "src,dst\n")
    with pytest.raises(SpecError, match=r"datasets\[0\]: .*nodes.csv: node id\(s\) repeated: n0"):
        parse_spec(text_only(tmp_path, [bad]))
    one = write_graph(tmp_path, "id,text,label\nn0,a,x\nn1,b,x\n", "src,dst\n")
    with pytest.raises(SpecError, match="needs at least two classes"):
        parse_spec(text_only(tmp_path, [one]))
    nofold = write_graph(tmp_path, "id,text,label\n" + "".join(f"n{i},t,{'ab'[i % 2]}\n" for i in range(6)),
                         "src,dst\n")
    with pytest.raises(SpecError, match="column 'fold'|missing column"):
        parse_spec(text_only(tmp_path, [{**nofold, "split": "column:fold"}]))
