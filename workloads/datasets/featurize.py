"""Molecule → graph featurization with OGB's own ``smiles2graph``.

Using OGB's featurizer (9 atom features, 3 bond features) keeps every model
trained here compatible with the ``ogbg-mol*`` datasets and OGB's
``AtomEncoder``/``BondEncoder``. On top of it we store what the backbones'
attention needs (their ``featurization``): the all-pairs shortest path lengths
(Graphormer; written by hand: OGB and PyG do not precompute them) and the
inter-atomic distances of RDKit's 2D depiction coordinates (MAT; in Å-like
depiction units, bond length 1.5). A backbone configured for 3D coordinates gets
``dist`` replaced by the distances of one ETKDG conformer (:func:`with_conformer_distances`).
"""
from __future__ import annotations

import copy

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


def conformer_distances(mol, seed: int = 0) -> np.ndarray | None:
    """[n, n] distances (Å) between the heavy atoms of one RDKit ETKDGv3 conformer,
    embedded with explicit hydrogens and a fixed seed (no force-field refinement);
    ``None`` when embedding fails."""
    from rdkit.Chem import AllChem

    n = mol.GetNumAtoms()
    mh = Chem.AddHs(mol)  # hydrogens are appended after the heavy atoms, whose order is kept
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mh, params) != 0:
        return None
    xyz = mh.GetConformer().GetPositions()[:n]
    return np.sqrt(((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(-1)).astype(np.float32)


def authors_conformer_distances(mol, seed: int = 0) -> np.ndarray | None:
    """[n, n] float32 distances between the heavy atoms of the conformer the MAT authors'
    ``load_data_from_smiles`` makes (github.com/ardigen/MAT, ``src/featurization/data_utils.py``):
    hydrogens added, ``AllChem.EmbedMolecule(mol, maxAttempts=5000)`` (RDKit's default ETKDG),
    ``AllChem.UFFOptimizeMolecule``, hydrogens removed, scikit-learn's ``pairwise_distances`` of
    the positions. Theirs is unseeded; here ``randomSeed=seed``. ``None`` where embedding fails
    (their code then featurizes the molecule with its hydrogens and 2D coordinates; see
    :mod:`workloads.backbones.mat_authors`) or the atoms do not come back as they were."""
    from rdkit.Chem import AllChem
    from sklearn.metrics import pairwise_distances

    mh = Chem.AddHs(mol)
    try:
        if AllChem.EmbedMolecule(mh, maxAttempts=5000, randomSeed=seed) != 0:
            return None
        AllChem.UFFOptimizeMolecule(mh)
    except Exception:  # noqa: BLE001  (theirs is a bare except around these two calls)
        return None
    heavy = Chem.RemoveHs(mh)
    if heavy.GetNumAtoms() != mol.GetNumAtoms():
        return None
    return pairwise_distances(heavy.GetConformer().GetPositions()).astype(np.float32)


def with_authors_conformer_distances(graphs: list[Data], seed: int = 0) -> tuple[list[Data], int]:
    """Copies of ``graphs`` with ``mat_dist`` [n*n] (:func:`authors_conformer_distances`), and how
    many took their 2D ``dist`` instead (embedding failed, no SMILES, or RDKit's atoms do not match
    the graph's)."""
    from workloads.progress import Progress

    out, fallback = [], 0
    progress = Progress("MAT conformers (ETKDG + UFF)", len(graphs), unit="molecules")
    for g in graphs:
        progress.advance(1)
        smiles = getattr(g, "smiles", None)
        mol = Chem.MolFromSmiles(smiles) if smiles else None
        dist = authors_conformer_distances(mol, seed) if mol is not None and mol.GetNumAtoms() == g.num_nodes \
            else None
        c = copy.copy(g)  # a shallow copy: the other attributes stay shared
        if dist is None:
            fallback += 1
            c.mat_dist = g.dist
        else:
            c.mat_dist = torch.from_numpy(dist.reshape(-1))
        out.append(c)
    progress.close(note=f"{fallback} fell back to 2D")
    return out, fallback


def with_conformer_distances(graphs: list[Data], seed: int = 0) -> tuple[list[Data], int]:
    """Copies of ``graphs`` whose ``dist`` holds 3D conformer distances, and how many
    kept their 2D depiction distances because embedding failed (or no SMILES was
    stored, or RDKit's atoms do not match the graph's)."""
    from workloads.progress import Progress

    out, fallback = [], 0
    progress = Progress("3D conformers", len(graphs), unit="molecules")
    for g in graphs:
        progress.advance(1)
        smiles = getattr(g, "smiles", None)
        mol = Chem.MolFromSmiles(smiles) if smiles else None
        dist = conformer_distances(mol, seed) if mol is not None and mol.GetNumAtoms() == g.num_nodes else None
        c = copy.copy(g)  # a shallow copy: the other attributes stay shared
        if dist is None:
            fallback += 1
        else:
            c.dist = torch.from_numpy(dist.reshape(-1))
        out.append(c)
    progress.close(note=f"{fallback} fell back to 2D")
    return out, fallback


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
