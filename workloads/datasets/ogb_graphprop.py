"""OGB graph-property datasets (``ogbg-mol*``) read from OGB's on-disk format.

OGB's own ``PygGraphPropPredDataset`` reads the files and gives the official
scaffold split; this module only checks the files are there first (so nothing
is ever downloaded at run time, and OGB's interactive version prompt never
fires) and adds the shortest-path lengths the Graphormer bias needs. Because
our molecules are featurized with the same ``smiles2graph``, models pretrained
here transfer to these sets unchanged.

Get the files once where a network is reachable, e.g.
``python -c "from ogb.graphproppred import PygGraphPropPredDataset as D; D('ogbg-molhiv', root='data/ogb')"``,
then point ``root`` (in the spec) or ``$OGB_ROOT`` at that folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch_geometric.data import Data

from workloads.datasets.base import MoleculeSetConfig
from workloads.datasets.build import label_stats
from rdkit import Chem

from workloads.datasets.featurize import depiction_distances, shortest_path_lengths

LOAD_FALLBACK: dict[str, int] = {}  # molecules whose distances came from hop counts
from workloads.util import ogb_root

# name -> (task, metric as OGB's Evaluator names it here, description). Multi-task sets
# carry NaN for missing labels; the loss is masked and the metric is the mean over tasks.
OGB_MOL = {
    "ogbg-molhiv": ("classification", "roc_auc", "HIV replication inhibition, 41k molecules"),
    "ogbg-molbbbp": ("classification", "roc_auc", "blood-brain barrier penetration, 2k molecules"),
    "ogbg-molbace": ("classification", "roc_auc", "BACE-1 inhibition, 1.5k molecules"),
    "ogbg-molesol": ("regression", "rmse", "aqueous solubility, 1.1k molecules"),
    "ogbg-molfreesolv": ("regression", "rmse", "hydration free energy, 642 molecules"),
    "ogbg-mollipo": ("regression", "rmse", "lipophilicity, 4.2k molecules"),
    "ogbg-moltox21": ("classification", "roc_auc", "12 toxicity assays (multi-task), 7.8k molecules"),
    "ogbg-moltoxcast": ("classification", "roc_auc", "617 toxicity assays (multi-task), 8.6k molecules"),
    "ogbg-molsider": ("classification", "roc_auc", "27 side-effect classes (multi-task), 1.4k molecules"),
    "ogbg-molclintox": ("classification", "roc_auc", "FDA approval and clinical toxicity (2 tasks), 1.5k molecules"),
    "ogbg-molmuv": ("classification", "ap", "17 MUV targets (multi-task), 93k molecules"),
    "ogbg-molpcba": ("classification", "ap", "128 PubChem bioassays (multi-task), 438k molecules"),
}



class OgbMoleculeConfig(MoleculeSetConfig):
    """An entry naming an OGB set: a molecule set read from ``root``."""

    root: str | None = Field(
        default=None, description="folder holding OGB's on-disk datasets (default $OGB_ROOT or data/ogb)")


RAW_FILES = ("edge.csv.gz", "node-feat.csv.gz", "edge-feat.csv.gz", "graph-label.csv.gz",
             "num-node-list.csv.gz", "num-edge-list.csv.gz")
SPLIT_FILES = ("train.csv.gz", "valid.csv.gz", "test.csv.gz")


def on_disk_files(name: str, root: str | None) -> list[Path]:
    """The files OGB's loader reads for ``name``; a clear error if any is missing."""
    from workloads.datasets.base import DataFileMissing

    folder = ogb_root(root) / name.replace("-", "_")
    files = [folder / "RELEASE_v1.txt"] + [folder / "raw" / f for f in RAW_FILES] + [
        folder / "split" / "scaffold" / f for f in SPLIT_FILES
    ]
    missing = [str(f.relative_to(folder)) for f in files if not f.is_file()]
    if missing:
        raise DataFileMissing(
            f"{name}: OGB files missing under {folder}: {', '.join(missing)}. Nothing is downloaded at run "
            f"time: fetch the dataset where a network is reachable and copy its folder there "
            f"(or set 'root' in the spec / $OGB_ROOT)"
        )
    return files


def build_ogb(name: str, root: str | None, max_molecules: int | None, seed: int) -> dict:
    from ogb.graphproppred import PygGraphPropPredDataset

    on_disk_files(name, root)
    task = OGB_MOL[name][0]
    # ogb 1.3.6 reads its processed file with a bare torch.load, which torch >= 2.6
    # makes weights-only; allow the PyG classes that file holds (OGB wrote it itself).
    from torch_geometric.data import Data as _Data
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    with torch.serialization.safe_globals([_Data, DataEdgeAttr, DataTensorAttr, GlobalStorage]):
        ds = PygGraphPropPredDataset(name, root=str(ogb_root(root)))
    split = ds.get_idx_split()
    mapping = ogb_root(root) / name.replace("-", "_") / "mapping" / "mol.csv.gz"
    smiles = pd.read_csv(mapping)["smiles"].tolist() if mapping.is_file() else None
    rng = np.random.default_rng(seed)
    hops = [0]  # molecules given hop-count distances, for the record

    def take(idx: torch.Tensor) -> list[Data]:
        idx = idx.numpy()
        if max_molecules is not None and max_molecules < len(ds):
            keep = max(1, round(len(idx) * max_molecules / len(ds)))
            idx = np.sort(rng.choice(idx, size=min(keep, len(idx)), replace=False))
        out = []
        for i in idx:
            g = ds[int(i)]
            spd = shortest_path_lengths(g.edge_index.numpy(), g.num_nodes)
            mol = Chem.MolFromSmiles(smiles[int(i)]) if smiles is not None else None
            if mol is not None and mol.GetNumAtoms() == g.num_nodes:
                dist = depiction_distances(mol)
            else:  # no SMILES to depict: hop counts scaled to a bond length stand in
                dist = np.where(spd < 0, 10.0, 1.5 * spd).astype(np.float32)
                LOAD_FALLBACK["ogb_dist_from_hops"] = LOAD_FALLBACK.get("ogb_dist_from_hops", 0) + 1
                hops[0] += 1
            d = Data(
                x=g.x.long(), edge_index=g.edge_index.long(), edge_attr=g.edge_attr.long(),
                spd=torch.from_numpy(spd.reshape(-1)), dist=torch.from_numpy(dist.reshape(-1)),
                y=g.y.float().view(1, -1), num_nodes=g.num_nodes,
            )
            if smiles is not None:
                d.smiles = smiles[int(i)]
            out.append(d)
        return out

    train, valid, test = take(split["train"]), take(split["valid"]), take(split["test"])
    mean, std = label_stats(train, task)
    return {"train": train, "valid": valid, "test": test, "y_mean": mean, "y_std": std, "num_invalid": 0,
            "dist_from_hops": hops[0]}
