import pytest
import torch
from torch_geometric.data import Batch

from tests.conftest import tiny_model
from workloads.datasets.featurize import smiles_to_data


def _out(model, smiles):
    model.eval()
    with torch.no_grad():
        return model(Batch.from_data_list([smiles_to_data(s) for s in smiles]))


@pytest.mark.parametrize("backbone", ["graphormer", "mat"])
def test_atom_order_does_not_change_the_prediction(backbone):
    m = tiny_model(0, backbone)
    a = _out(m, ["OCC(=O)N"])
    b = _out(m, ["NC(=O)CO"])  # same molecule, other atom order
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("backbone", ["graphormer", "mat"])
def test_padding_does_not_leak_between_graphs(backbone):
    m = tiny_model(0, backbone)
    alone = _out(m, ["CCO"])
    batched = _out(m, ["CCO", "c1ccccc1CCCCCCN"])
    assert torch.allclose(alone, batched[:1], atol=1e-5)


@pytest.mark.parametrize("backbone", ["graphormer", "mat"])
def test_structure_changes_the_prediction(backbone):
    m = tiny_model(0, backbone)
    out = _out(m, ["CCCCO", "CC(C)CO"])  # same atoms, different bonds
    assert not torch.allclose(out[0], out[1])


def test_attention_bias_values(batch):
    m = tiny_model()
    bb = m.backbone
    with torch.no_grad():
        bb.spatial_bias.weight.normal_()
        bb.token_bias.normal_()
    n_max = int((batch.ptr[1:] - batch.ptr[:-1]).max())
    bias = bb.attention_bias(batch, n_max)
    assert bias.shape == (batch.num_graphs, 4, n_max + 1, n_max + 1)
    # the graph token's row and column carry its own bias
    tb = bb.token_bias.view(1, -1, 1).expand(batch.num_graphs, -1, n_max + 1)
    assert torch.equal(bias[:, :, 0, :], tb) and torch.equal(bias[:, :, 1:, 0], tb[..., 1:])
    # graph 0: a bonded pair = distance-1 bias + its bond's bias; a self pair = distance-0 bias
    g0 = batch.get_example(0)
    (i, j), e = g0.edge_index[:, 0].tolist(), 0
    expect = bb.spatial_bias.weight[1] + bb.edge_bias(g0.edge_attr[e : e + 1])[0]
    assert torch.allclose(bias[0, :, 1 + i, 1 + j], expect, atol=1e-6)
    assert torch.allclose(bias[0, :, 1 + i, 1 + i], bb.spatial_bias.weight[0])


def test_mat_attention_mixes_attention_distance_and_adjacency(batch):
    """Each head's weights: λa·softmax + λd·softmax(-D) + λg·row-normalised (A + I), every
    row of the three stochastic over the molecule's atoms; the graph token gets no
    structure term."""
    m = tiny_model(0, "mat")
    bb = m.backbone
    n_max = int((batch.ptr[1:] - batch.ptr[:-1]).max())
    bb.attention_bias(batch, n_max)
    kernel, adj = bb.context_holder.mat
    g0 = batch.get_example(0)
    n = g0.num_nodes
    d = g0.dist.view(n, n)
    assert torch.allclose(kernel[0, 0, 1:1 + n, 1:1 + n], torch.softmax(-d, -1), atol=1e-6)
    a = torch.eye(n)
    a[g0.edge_index[0], g0.edge_index[1]] = 1.0
    assert torch.allclose(adj[0, 0, 1:1 + n, 1:1 + n], a / a.sum(-1, keepdim=True), atol=1e-5)
    assert kernel[:, :, 0].abs().sum() == 0 and adj[:, :, 0].abs().sum() == 0  # the graph token
    assert kernel[:, :, :, 0].abs().sum() == 0 and adj[:, :, :, 0].abs().sum() == 0
    # distances matter: moving the atoms apart changes the prediction, bonds unchanged
    m.eval()
    with torch.no_grad():
        before = m(batch)
        far = batch.clone()
        far.dist = far.dist * 3
        assert not torch.allclose(before, m(far))


@pytest.mark.parametrize("backbone", ["graphormer", "mat"])
def test_graph_backbones_keep_the_written_contract(backbone, freesolv):
    """Each graph backbone is a GraphBackbone; its declared LoRA targets are what LoRA
    adapts by default; its declared featurization is what the task checks the data for."""
    import copy

    from workloads.backbones.base import GraphBackbone
    from workloads.peft import METHODS
    from workloads.tasks.graph_property import GraphPropertyTask

    m = tiny_model(0, backbone)
    bb = m.backbone
    assert isinstance(bb, GraphBackbone)
    assert set(type(bb).featurization) <= {"spd", "dist"} and type(bb).featurization
    lora = METHODS.get("lora")
    lora.apply(m, lora.parse({"r": 2}))
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, p in m.named_parameters() if p.requires_grad and ".lora_A" in n}
    assert adapted == set(type(bb).lora_targets)

    task = GraphPropertyTask()
    task.make_model(tiny_model(0, backbone).backbone, freesolv)  # the data carries what it reads
    stripped = copy.copy(freesolv)
    stripped.train = [copy.copy(g) for g in freesolv.train[:4]]
    for g in stripped.train:
        for f in type(bb).featurization:
            delattr(g, f)
    with pytest.raises(ValueError, match=f"reads {type(bb).featurization[0]}"):
        task.make_model(tiny_model(0, backbone).backbone, stripped)
