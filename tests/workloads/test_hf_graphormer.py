"""The project's HF Graphormer against Hugging Face's own outputs.

The fixtures (tests/fixtures/hf_graphormer/) were made by transformers 4.40.2 in a throwaway
virtual environment by scripts/make_hf_graphormer_fixtures.py: small random
GraphormerForGraphClassification / GraphormerModel checkpoints with every weight perturbed
(padding rows kept at zero), and HF's outputs on 55 molecules (one atom, two atoms, salts,
charges, isotopes, stereo, 30-atom chains) in batches that mix sizes, and each alone. No
transformers 4.x is needed here: only the committed files are read."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from workloads.backbones import BACKBONES
from workloads.backbones.hf_graphormer import FEATURE_OFFSET, HFGraphormer, path_edges
from workloads.checkpoints import load_checkpoint
from workloads.config import BackboneConfig
from workloads.embed import featurize

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hf_graphormer"
CONFIGS = sorted(p.name for p in FIXTURES.iterdir() if (p / "config.json").is_file())
SMILES = (FIXTURES / "molecules.smi").read_text().split()


def test_the_fixtures_cover_the_issue():
    refs = {c: json.loads((FIXTURES / c / "reference.json").read_text()) for c in CONFIGS}
    assert all(r["versions"]["transformers"] == "4.40.2" for r in refs.values())
    assert {r["pre_layernorm"] for r in refs.values()} == {True, False}
    assert {r["edge_type"] for r in refs.values()} >= {"multi_hop", "single_hop"}
    assert min(r["collator_spatial_pos_max"] for r in refs.values()) <= 6  # far pairs masked
    assert {r["model_class"] for r in refs.values()} == {"GraphormerForGraphClassification", "GraphormerModel"}
    assert {Path(r["weights_file"]).name for r in refs.values()} == {"model.safetensors", "pytorch_model.bin"}
    assert len(SMILES) >= 40 and {"[Na+].[Cl-]", "C"} <= set(SMILES)


def checkpoint(name: str) -> BackboneConfig:
    o = np.load(FIXTURES / name / "outputs.npz")
    return BackboneConfig(name="graphormer", checkpoint={"format": "hf_graphormer", "path": str(FIXTURES / name),
                                                          "spatial_pos_max": int(o["spatial_pos_max"])})


_MODELS: dict = {}


def loaded(name: str):
    if name not in _MODELS:
        cfg = checkpoint(name)
        assert cfg.checkpoint_problem() is None
        arch = cfg.arch()
        model = BACKBONES.get("graphormer").build(arch)
        assert isinstance(model, HFGraphormer)
        load_checkpoint(model, cfg.checkpoint)
        _MODELS[name] = (model.eval(), featurize(SMILES, arch), np.load(FIXTURES / name / "outputs.npz"))
    return _MODELS[name]


def close(got, ref, what):
    """Relative 1e-5: elementwise, against the scale of HF's output."""
    scale = float(np.abs(ref).max())
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * scale, err_msg=what)


@torch.no_grad()
def run(model, graphs):
    enc = model(Batch.from_data_list(graphs))
    full = torch.cat([enc.graph.unsqueeze(1), enc.nodes], 1)  # HF's last_hidden_state: graph token, then atoms
    return enc.graph.numpy(), [full[b, :1 + g.num_nodes].numpy() for b, g in enumerate(graphs)]


@pytest.mark.parametrize("name", CONFIGS)
def test_outputs_match_hf_in_hfs_batches(name):
    model, graphs, o = loaded(name)
    members, offsets = o["batch_members"], o["batch_offsets"]
    hidden_off = o["hidden_offsets"]
    for b in range(len(offsets) - 1):
        idx = members[offsets[b]:offsets[b + 1]]
        rep, hidden = run(model, [graphs[i] for i in idx])
        close(rep, o["graph_rep"][idx], f"{name}: graph representation, batch {b}")
        for i, h in zip(idx, hidden):
            close(h, o["hidden_flat"][hidden_off[i]:hidden_off[i + 1]], f"{name}: molecule {i} ({SMILES[i]})")


@pytest.mark.parametrize("name", CONFIGS)
def test_a_molecule_does_not_change_with_its_batch(name):
    model, graphs, o = loaded(name)
    alone = np.concatenate([run(model, [g])[0] for g in graphs])
    close(alone, o["alone_graph_rep"], f"{name}: each molecule alone")
    order = sorted(range(len(graphs)), key=lambda i: graphs[i].num_nodes)  # one batch, a one-atom molecule first
    together, _ = run(model, [graphs[i] for i in order])
    assert graphs[order[0]].num_nodes == 1
    np.testing.assert_allclose(together, alone[order], rtol=1e-5, atol=1e-5 * float(np.abs(alone).max()))


def test_hfs_collator_fails_where_ours_does_not():
    ref = json.loads((FIXTURES / "prenorm_multihop" / "reference.json").read_text())
    assert ref["one_atom_first_error"].startswith("IndexError")
    model, graphs, o = loaded("prenorm_multihop")
    one = SMILES.index("C")
    rep, _ = run(model, [graphs[one]] + graphs[:5])
    close(rep[:1], o["graph_rep"][[one]], "a batch that starts with a one-atom molecule")


def test_both_model_classes_and_weight_files_load_the_same_tensors():
    a, b = loaded("prenorm_multihop")[0], loaded("prenorm_multihop_model")[0]
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    c, d = loaded("postnorm_multihop")[0], loaded("postnorm_multihop_bin")[0]
    assert all(torch.equal(x, y) for x, y in zip(c.state_dict().values(), d.state_dict().values()))


def test_input_encoding_is_hfs():
    """Per molecule: atom indices, degrees, spatial positions, bonds and multi-hop bond indices
    (first 8 hops) as HF's preprocess_item wrote them, and the collated -inf mask."""
    s = np.load(FIXTURES / "inputs_sample.npz")
    hops = int(s["input_edges_hops_kept"])
    graphs = featurize([str(x) for x in s["smiles"]], checkpoint("prenorm_multihop").arch())
    for j, g in enumerate(graphs):
        n = g.num_nodes
        x, ea = g.x.numpy(), g.edge_attr.numpy()
        assert (x == s[f"m{j}_node_feat"]).all()
        assert (x + np.arange(9) * FEATURE_OFFSET + 3 == s[f"m{j}_input_nodes"]).all()
        deg = np.bincount(g.edge_index[0].numpy(), minlength=n)
        assert (deg + 1 == s[f"m{j}_in_degree"]).all()
        spd = g.spd.numpy().reshape(n, n)
        assert (np.where(spd < 0, 511, spd + 1) == s[f"m{j}_spatial_pos"]).all()
        bonds = np.zeros((n, n, 3), dtype=np.int64)
        bonds[g.edge_index[0].numpy(), g.edge_index[1].numpy()] = ea + np.arange(3) * FEATURE_OFFSET + 2
        assert (bonds == s[f"m{j}_attn_edge_type"]).all()
        ids = path_edges(g.edge_index.numpy(), n, hops).reshape(n, n, hops)
        padded = np.vstack([ea + np.arange(3) * FEATURE_OFFSET + 3, np.zeros((1, 3), dtype=ea.dtype)])
        ours = padded[ids]  # id -1: the zero row, HF's padding
        theirs = np.zeros((n, n, hops, 3), dtype=np.int64)
        h = s[f"m{j}_input_edges"]
        theirs[:, :, :h.shape[2]] = h[:, :, :hops]
        assert (ours == theirs).all(), s["smiles"][j]
    masked = np.isinf(s["batch_attn_bias"][:, 1:, 1:])
    pos = s["batch_spatial_pos"]
    assert (masked == (pos >= int(s["spatial_pos_max"]))).all()


def test_a_home_relative_checkpoint_path_is_expanded_where_the_spec_is_read(monkeypatch):
    monkeypatch.setenv("HOME", str(FIXTURES))
    cfg = BackboneConfig(name="graphormer", checkpoint={"format": "hf_graphormer", "path": "~/prenorm_single"})
    assert cfg.checkpoint.path == str(FIXTURES / "prenorm_single") and cfg.checkpoint_problem() is None
    model = BACKBONES.get("graphormer").build(cfg.arch())
    assert load_checkpoint(model, cfg.checkpoint)["checkpoint"] == str(FIXTURES / "prenorm_single")
