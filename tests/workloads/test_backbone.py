import torch
from torch_geometric.data import Batch

from tests.conftest import tiny_model
from workloads.datasets.featurize import smiles_to_data


def _out(model, smiles):
    model.eval()
    with torch.no_grad():
        return model(Batch.from_data_list([smiles_to_data(s) for s in smiles]))


def test_atom_order_does_not_change_the_prediction():
    m = tiny_model()
    a = _out(m, ["OCC(=O)N"])
    b = _out(m, ["NC(=O)CO"])  # same molecule, other atom order
    assert torch.allclose(a, b, atol=1e-5)


def test_padding_does_not_leak_between_graphs():
    m = tiny_model()
    alone = _out(m, ["CCO"])
    batched = _out(m, ["CCO", "c1ccccc1CCCCCCN"])
    assert torch.allclose(alone, batched[:1], atol=1e-5)


def test_structure_changes_the_prediction():
    m = tiny_model()
    out = _out(m, ["CCCCO", "CC(C)CO"])  # same atoms, different bonds
    assert not torch.allclose(out[0], out[1])


def test_attention_bias_shape_and_token(batch):
    m = tiny_model()
    n_max = int((batch.ptr[1:] - batch.ptr[:-1]).max())
    bias = m.backbone.attention_bias(batch, n_max)
    assert bias.shape == (batch.num_graphs, 4, n_max + 1, n_max + 1)
    assert torch.isfinite(bias).all()
