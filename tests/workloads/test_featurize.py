import numpy as np
import torch
from ogb.utils import smiles2graph

from workloads.datasets.featurize import shortest_path_lengths, smiles_to_data


def test_matches_ogb_featurizer_and_adds_shortest_paths():
    d = smiles_to_data("CCO", 1.5)
    g = smiles2graph("CCO")
    assert torch.equal(d.x, torch.from_numpy(g["node_feat"]))
    assert torch.equal(d.edge_index, torch.from_numpy(g["edge_index"]))
    assert d.x.shape == (3, 9) and d.edge_attr.shape == (4, 3)
    # C-C-O is a path: distances 0/1/2
    assert d.spd.view(3, 3).tolist() == [[0, 1, 2], [1, 0, 1], [2, 1, 0]]
    assert d.y.item() == 1.5


def test_disconnected_fragments_are_unreachable():
    d = smiles_to_data("[Na+].[Cl-]")
    assert d.spd.view(2, 2).tolist() == [[0, -1], [-1, 0]]
    assert shortest_path_lengths(np.zeros((2, 0), dtype=np.int64), 3).diagonal().tolist() == [0, 0, 0]


def test_unparsable_smiles_give_none():
    assert smiles_to_data("not-a-molecule") is None
    assert smiles_to_data("") is None


def test_conformer_distances_are_3d_bond_lengths_in_angstrom():
    from rdkit import Chem

    from workloads.datasets.featurize import conformer_distances

    mol = Chem.MolFromSmiles("CCO")
    d = conformer_distances(mol)
    assert d.shape == (3, 3) and np.allclose(d, d.T) and np.allclose(np.diag(d), 0)
    assert 1.4 < d[0, 1] < 1.6 and 1.35 < d[1, 2] < 1.5  # C-C and C-O single bonds (Å)
    assert 2.2 < d[0, 2] < 2.6  # 1-3 distance across a tetrahedral carbon
    assert np.array_equal(d, conformer_distances(mol))  # seeded: the same conformer every time
    benzene = conformer_distances(Chem.MolFromSmiles("c1ccccc1"))
    assert np.allclose(benzene[0, 3], 2.8, atol=0.1)  # para carbons across the ring


def test_failed_embeddings_fall_back_to_2d_and_are_counted(monkeypatch):
    from workloads.datasets import featurize

    graphs = [smiles_to_data(s) for s in ("CCO", "c1ccccc1", "CC(=O)O")]
    for g, s in zip(graphs, ("CCO", "c1ccccc1", "CC(=O)O")):
        g.smiles = s
    real = featurize.conformer_distances
    monkeypatch.setattr(featurize, "conformer_distances",
                        lambda mol, seed=0: None if mol.GetNumAtoms() == 6 else real(mol, seed))
    out, fallback = featurize.with_conformer_distances(graphs)
    assert fallback == 1
    assert torch.equal(out[1].dist, graphs[1].dist)  # benzene kept its depiction distances
    assert not torch.allclose(out[0].dist, graphs[0].dist)  # the others hold 3D distances now
    assert torch.equal(out[0].x, graphs[0].x) and graphs[0].dist.numel() == 9  # the inputs are unchanged
