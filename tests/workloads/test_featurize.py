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
