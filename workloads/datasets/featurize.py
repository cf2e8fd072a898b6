"""Molecule → graph featurization with OGB's own ``smiles2graph``.

Using OGB's featurizer (9 atom features, 3 bond features) keeps every model
trained here compatible with the ``ogbg-mol*`` datasets and OGB's
``AtomEncoder``/``BondEncoder``. On top of it we store what the backbones'
attention needs (their ``featurization``): the all-pairs shortest path lengths
(Graphormer; written by hand: OGB and PyG do not precompute them) and the
inter-atomic distances of RDKit's 2D depiction coordinates (MAT; in Å-like
depiction units, bond length 1.5).
"""
from __future__ import annotations

import numpy as np
import torch
from ogb.utils import smiles2graph
from rdkit import Chem, RDLogger
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path
from torch_geometric.data import Data

# Bump when the stored graph format changes: it is part of every cache key.
FEATURIZER_VERSION = "ogb-smiles2graph+spd+dist2d-v2"

RDLogger.DisableLog("rdApp.*")


def shortest_path_lengths(edge_index: np.ndarray, num_nodes: int) -> np.ndarray:
    """Hop distances between all node pairs; -1 where no path exists (salts, mixtures)."""
    if edge_index.shape[1] == 0:
        d = np.full((num_nodes, num_nodes), -1, dtype=np.int64)
        np.fill_diagonal(d, 0)
        return d
    adj = csr_matrix(
        (np.ones(edge_index.shape[1]), (edge_index[0], edge_index[1])), shape=(num_nodes, num_nodes)
    )
    d = shortest_path(adj, directed=False, unweighted=True)
    d[np.isinf(d)] = -1
    return d.astype(np.int64)


def depiction_distances(mol) -> np.ndarray:
    """[n, n] Euclidean distances between the atoms' RDKit 2D depiction coordinates."""
    from rdkit.Chem import rdDepictor

    mol = Chem.Mol(mol)
    rdDepictor.Compute2DCoords(mol)
    xyz = mol.GetConformer().GetPositions()[:, :2]
    return np.sqrt(((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(-1)).astype(np.float32)


def smiles_to_data(smiles: str, y=None) -> Data | None:
    """One molecule as a PyG ``Data``; ``None`` if RDKit cannot parse it or it has no atoms.

    Attributes: ``x`` [N, 9] long, ``edge_index`` [2, E], ``edge_attr`` [E, 3] long,
    ``spd`` [N*N] long (row-major shortest-path lengths), ``dist`` [N*N] float (2D
    depiction distances), ``y`` [1, T] float (T tasks; NaN:
    missing label) from a number or a sequence of T numbers.
    """
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    g = smiles2graph(smiles)
    n = int(g["num_nodes"])
    data = Data(
        x=torch.from_numpy(g["node_feat"]).long(),
        edge_index=torch.from_numpy(g["edge_index"]).long(),
        edge_attr=torch.from_numpy(g["edge_feat"]).long(),
        spd=torch.from_numpy(shortest_path_lengths(g["edge_index"], n).reshape(-1)),
        dist=torch.from_numpy(depiction_distances(mol).reshape(-1)),
        num_nodes=n,
    )
    if y is not None:
        data.y = torch.as_tensor(np.asarray(y, dtype=np.float32).reshape(1, -1))
    return data
