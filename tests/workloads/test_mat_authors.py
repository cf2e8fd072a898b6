"""The project's ``mat_authors`` backbone against the MAT authors' own code.

The fixtures (tests/fixtures/mat_authors/) were made by the authors' code (github.com/ardigen/MAT,
``src/``, commit 1c7af06) in a throwaway virtual environment by scripts/make_mat_fixtures.py:
small random ``make_model`` checkpoints (d_atom 28 as published, 2 layers, every weight perturbed)
saved as their ``pretrained_weights.pt`` is, their featurization of 60 molecules (one atom, salts,
charges, isotopes, stereo, six neighbours, 30-atom chains, one that ETKDG cannot embed) under a
fixed conformer seed patched into their unseeded ``EmbedMolecule``, and their outputs in batches
that mix sizes, and each alone. Their code is not needed here: only the committed files are read."""
import json
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import rdkit
import torch
from torch_geometric.data import Batch

from workloads.backbones import BACKBONES
from workloads.backbones.mat_authors import MATAuthors, MATAuthorsConfig, authors_atom_features
from workloads.checkpoints import CheckpointError, format_of, load_checkpoint
from workloads.checkpoints.mat_authors import PRETRAINED, ours_name, save_mat_checkpoint, their_name
from workloads.config import BackboneConfig
from workloads.embed import featurize

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mat_authors"
CONFIGS = sorted(p.name for p in FIXTURES.iterdir() if (p / "config.json").is_file())
SMILES = (FIXTURES / "molecules.smi").read_text().split()
FEAT = np.load(FIXTURES / "featurization.npz")
EMBED_FAILS = "C1#CC1"  # their code featurizes it with its hydrogens (see mat_authors' deviations)
REFS = {c: json.loads((FIXTURES / c / "reference.json").read_text()) for c in CONFIGS}
SAME_RDKIT = all(r["versions"]["rdkit"] == rdkit.__version__ for r in REFS.values())


def test_the_fixtures_cover_the_issue():
    params = [r["make_model"] for r in REFS.values()]
    assert all(p["d_atom"] == 28 for p in params) and all(p["N"] == 2 for p in params)
    assert {p["distance_matrix_kernel"] for p in params} == {"exp", "softmax"}
    assert {p["aggregation_type"] for p in params} == {"mean", "sum", "dummy_node"}
    assert {p["N_dense"] for p in params} == {0, 1, 2}
    assert {p["dense_output_nonlinearity"] for p in params} == {"relu", "tanh", "none"}
    assert any({k: v for k, v in p.items() if k not in ("d_model", "N", "h")} ==
               {k: v for k, v in PRETRAINED.items() if k not in ("d_model", "N", "h")} for p in params)
    for r in REFS.values():
        assert r["checks"]["dummy_in_mask"]  # their mask (sum |features| != 0) keeps the dummy node
        assert r["checks"]["pooled_is_aggregate_of_encoder_output"] < 1e-4
        assert min(r["attention_terms_first_layer"].values()) > 0.005  # each of the three terms matters
        assert r["embedding_failed"] == [EMBED_FAILS] and r["conformer_seed"] == int(FEAT["conformer_seed"])
        assert set(r["state_dict_keys"]) >= {"generator.proj.weight", "src_embed.lut.weight"}
    assert len(SMILES) >= 40 and {"[Na+].[Cl-]", "C", "C" * 30, "F[C@@H](Cl)Br"} <= set(SMILES)


def checkpoint(name: str, **options) -> BackboneConfig:
    return BackboneConfig(name="mat", checkpoint={"format": "mat_authors", "path": str(FIXTURES / name), **options})


_MODELS: dict = {}


@lru_cache(maxsize=None)
def our_graphs(seed: int = 0) -> tuple:
    """Our featurization of the fixtures' molecules (conformers take seconds: made once)."""
    return tuple(featurize(SMILES, checkpoint("pretrained_like", conformer_seed=seed).arch()))


def theirs_distances(graphs):
    """``graphs`` with their distances (the fixture's) in ``mat_dist``: the model is compared on
    their inputs whatever RDKit this is (test_conformers_are_theirs compares the conformers)."""
    out = []
    for i, g in enumerate(graphs):
        c = g.clone()
        n = g.num_nodes
        if n == FEAT["num_nodes"][i]:
            d = FEAT["distances"][FEAT["pair_offsets"][i]:FEAT["pair_offsets"][i + 1]].reshape(n + 1, n + 1)
            c.mat_dist = torch.from_numpy(np.ascontiguousarray(d[1:, 1:]).reshape(-1))
        out.append(c)
    return out


def loaded(name: str):
    if name not in _MODELS:
        cfg = checkpoint(name)
        assert cfg.checkpoint_problem() is None
        arch = cfg.arch()
        model = BACKBONES.get("mat").build(arch)
        assert isinstance(model, MATAuthors)
        load_checkpoint(model, cfg.checkpoint)
        _MODELS[name] = (model.eval(), theirs_distances(our_graphs(arch.conformer_seed)),
                         np.load(FIXTURES / name / "outputs.npz"))
    return _MODELS[name]


def close(got, ref, what, scale=None):
    """Relative 1e-5: elementwise, against the scale of their output."""
    scale = float(np.abs(ref).max()) if scale is None else scale
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * scale, err_msg=what)


@torch.no_grad()
def run(model, graphs):
    """(graph representation [B, D], each molecule's final states [1 + n, D]: dummy node, atoms)."""
    seen = {}
    hook = model.final_ln.register_forward_hook(lambda m, i, o: seen.__setitem__("x", o))
    try:
        enc = model(Batch.from_data_list(graphs))
    finally:
        hook.remove()
    x = seen["x"]
    k = x.shape[1] - enc.nodes.shape[1]
    full = torch.cat([x[:, :1], x[:, k:]], 1)
    return enc.graph.numpy(), [full[b, :1 + g.num_nodes].numpy() for b, g in enumerate(graphs)]


def comparable(idx):
    """Molecules whose atoms are the same in both featurizations (all but the one ETKDG cannot embed)."""
    return [int(i) for i in idx if SMILES[i] != EMBED_FAILS]


@pytest.mark.parametrize("name", CONFIGS)
def test_outputs_match_the_authors_in_their_batches(name):
    model, graphs, o = loaded(name)
    members, offsets, hoff = o["batch_members"], o["batch_offsets"], o["hidden_offsets"]
    head = torch.load(FIXTURES / name / "pretrained_weights.pt", weights_only=True)
    w, b = head["generator.proj.weight"].numpy(), head["generator.proj.bias"].numpy()
    worst = 0.0
    for k in range(len(offsets) - 1):
        idx = comparable(members[offsets[k]:offsets[k + 1]])
        rep, hidden = run(model, [graphs[i] for i in idx])
        close(rep, o["graph_rep"][idx], f"{name}: graph representation, batch {k}", np.abs(o["graph_rep"]).max())
        # their generator's projection of our representation is their output
        close(rep @ w.T + b, o["output"][idx], f"{name}: output, batch {k}", np.abs(o["output"]).max())
        for i, h in zip(idx, hidden):
            close(h, o["hidden_flat"][hoff[i]:hoff[i + 1]], f"{name}: molecule {i} ({SMILES[i]})",
                  np.abs(o["hidden_flat"]).max())
        worst = max(worst, float(np.abs(rep - o["graph_rep"][idx]).max() / np.abs(o["graph_rep"]).max()))
    print(f"{name}: max relative difference of the graph representation {worst:.2e}")


@pytest.mark.parametrize("name", CONFIGS)
def test_a_molecule_does_not_change_with_its_batch(name):
    model, graphs, o = loaded(name)
    idx = comparable(range(len(graphs)))
    alone = np.concatenate([run(model, [graphs[i]])[0] for i in idx])
    close(alone, o["alone_graph_rep"][idx], f"{name}: each molecule alone", np.abs(o["alone_graph_rep"]).max())
    order = sorted(idx, key=lambda i: graphs[i].num_nodes)  # one batch, a one-atom molecule first
    together, _ = run(model, [graphs[i] for i in order])
    assert graphs[order[0]].num_nodes == 1
    close(together, o["alone_graph_rep"][order], f"{name}: all in one batch", np.abs(o["alone_graph_rep"]).max())


def authors_inputs(g):
    """Our graph as their node-feature matrix [n+1, 28] and adjacency [n+1, n+1] (node 0: dummy)."""
    n = g.num_nodes
    x = np.zeros((n + 1, 28), np.uint8)
    x[0, 0] = 1
    x[1:, 1:] = authors_atom_features(g.x, g.edge_index).numpy()
    a = np.zeros((n + 1, n + 1), np.uint8)
    a[1 + g.edge_index[0].numpy(), 1 + g.edge_index[1].numpy()] = 1
    a[np.arange(1, n + 1), np.arange(1, n + 1)] = 1
    return x, a


def test_node_features_and_adjacency_are_the_authors():
    """Exactly their get_atom_features (one-hot formal charge) and adjacency, for every molecule
    but the one whose embedding fails (theirs then carries its hydrogens as atoms: the deviation)."""
    for i, g in enumerate(our_graphs()):
        x, a = authors_inputs(g)
        n = int(FEAT["num_nodes"][i])
        theirs_x = FEAT["node_features"][FEAT["node_offsets"][i]:FEAT["node_offsets"][i + 1]]
        theirs_a = FEAT["adjacency"][FEAT["pair_offsets"][i]:FEAT["pair_offsets"][i + 1]].reshape(n + 1, n + 1)
        if SMILES[i] == EMBED_FAILS:
            assert FEAT["embed_status"][i] == -1 and n == g.num_nodes + 2  # + its two hydrogens
            continue
        assert FEAT["embed_status"][i] == 0 and n == g.num_nodes, SMILES[i]
        np.testing.assert_array_equal(x, theirs_x, err_msg=SMILES[i])
        np.testing.assert_array_equal(a, theirs_a, err_msg=SMILES[i])
    # the model's own matrices: row-normalised adjacency with their eps, the dummy node's distance 1e6
    model, graphs, _ = loaded("pretrained_like")
    i = SMILES.index("CC(=O)[O-].[Na+]")
    model.attention_bias(Batch.from_data_list([graphs[i]]), graphs[i].num_nodes)
    kernel, adj = model.context_holder.mat
    _, a = authors_inputs(graphs[i])
    a = a.astype(np.float64)
    np.testing.assert_allclose(adj[0, 0].numpy(), a / (a.sum(-1, keepdims=True) + 1e-6), rtol=1e-6)
    assert kernel[0, 0, 0].abs().max() == 0 and kernel[0, 0, :, 0].abs().max() == 0  # exp(-1e6)


@pytest.mark.skipif(not SAME_RDKIT, reason="conformers depend on RDKit's ETKDG: the fixtures were made with "
                    f"RDKit {next(iter(REFS.values()))['versions']['rdkit']}, this is {rdkit.__version__}")
def test_conformers_are_theirs_under_the_seed(tmp_path):
    """Our dataset view's distances (ETKDG with hydrogens, UFF, hydrogens removed, seeded) are
    bitwise theirs; the molecule their code cannot embed keeps its 2D distances here."""
    arch = checkpoint("pretrained_like").arch()
    assert arch.conformer_seed == int(FEAT["conformer_seed"]) == 0
    graphs = our_graphs(arch.conformer_seed)
    for i, g in enumerate(graphs):
        n = g.num_nodes
        if SMILES[i] == EMBED_FAILS:
            assert torch.equal(g.mat_dist, g.dist)
            continue
        d = FEAT["distances"][FEAT["pair_offsets"][i]:FEAT["pair_offsets"][i + 1]].reshape(n + 1, n + 1)
        assert (d[0] == 1e6).all() and (d[:, 0] == 1e6).all()
        np.testing.assert_array_equal(g.mat_dist.view(n, n).numpy(), d[1:, 1:], err_msg=SMILES[i])
    # end to end, as `orchestrator embed` runs: our featurization and loading give their representation
    from workloads.embed import embed, load_backbone

    cfg = checkpoint("pretrained_like")
    backbone, source = load_backbone(cfg, tmp_path)
    assert source == f"checkpoint {FIXTURES / 'pretrained_like'} (mat_authors)"
    idx = comparable(range(len(graphs)))
    rep = embed(backbone, [graphs[i] for i in idx], batch_size=16)
    o = np.load(FIXTURES / "pretrained_like" / "outputs.npz")
    close(rep, o["alone_graph_rep"][idx], "our featurization", np.abs(o["alone_graph_rep"]).max())
    # another seed, another conformer
    seeded = checkpoint("pretrained_like", conformer_seed=7).arch()
    assert seeded.conformer_seed == 7
    other, same = featurize(["CCCCO"], seeded)[0], featurize(["CCCCO"], arch)[0]
    assert not torch.equal(other.mat_dist, same.mat_dist)


def test_the_published_architecture_maps_onto_the_backbone():
    """Every tensor of make_model(**the published hyperparameters) but their Generator has a place
    in the backbone the .pt alone builds, with its shape, and nothing is left without one."""
    published = json.loads((FIXTURES / "pretrained_shapes.json").read_text())
    assert published["hyperparameters"] == PRETRAINED
    arch = format_of("mat_authors").read_config(FIXTURES / "nowhere")  # no config.json: the published ones
    assert (arch.hidden_dim, arch.num_layers, arch.num_heads, arch.n_dense) == (1024, 8, 16, 1)
    assert (arch.lambda_attention, arch.lambda_distance, arch.distance_kernel, arch.leaky_relu_slope,
            arch.aggregation, arch.dropout) == (0.33, 0.33, "exp", 0.1, "mean", 0.0)
    with torch.device("meta"):
        model = MATAuthors(arch)
    ours = {k: list(v.shape) for k, v in model.state_dict().items() if k != "mask_embedding"}
    mapped = {ours_name(k): s for k, s in published["state_dict"].items() if not k.startswith("generator.")}
    assert mapped == ours
    assert all(their_name(ours_name(k)) == k for k in published["state_dict"] if not k.startswith("generator."))


def test_the_checkpoint_forms_a_user_has(tmp_path):
    """The .pt alone is the published model; config.json beside it gives make_model's arguments;
    the path may name the file; each problem is one line naming the weight and both shapes."""
    src = FIXTURES / "pretrained_like"
    fmt = format_of("mat_authors")
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(src / "pretrained_weights.pt", alone / "pretrained_weights.pt")
    problem = BackboneConfig(name="mat", checkpoint={"format": "mat_authors", "path": str(alone)}).checkpoint_problem()
    assert problem == (f"{alone}: weight 'encoder.layers.0.self_attn.linears.0.weight' has shape [32, 32]; the "
                       "published model's hyperparameters (no config.json beside the weights) implies [1024, 1024]")
    shutil.copy(src / "config.json", alone / "config.json")
    file_cfg = BackboneConfig(name="mat", checkpoint={"format": "mat_authors",
                                                      "path": str(alone / "pretrained_weights.pt")})
    assert file_cfg.checkpoint_problem() is None and file_cfg.arch() == checkpoint("pretrained_like").arch()
    (alone / "pretrained_weights.pt").rename(alone / "mat.pth")  # another name: the only .pt/.pth file
    assert fmt.check(alone) is None and fmt.weights_file(alone).name == "mat.pth"

    def case(config: dict | None = None, state: dict | None = None, extra: str | None = None) -> str | None:
        d = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
        d.mkdir()
        if config is not None:
            (d / "config.json").write_text(json.dumps(config))
        weights = torch.load(src / "pretrained_weights.pt", weights_only=True)
        torch.save(weights if state is None else state(weights), d / "pretrained_weights.pt")
        if extra:
            (d / extra).write_bytes(b"")
        return fmt.check(d)

    base = json.loads((src / "config.json").read_text())
    assert case(base) is None
    assert case({**base, "N": 3}) == "weight 'encoder.layers.2.sublayer.0.norm.a_2' (shape [32]) is missing; " \
        "config.json implies it"
    assert case({**base, "N_dense": 2}).startswith("weight 'encoder.layers.0.feed_forward.linears.1.weight' "
                                                   "(shape [32, 32]) is missing")
    assert case({**base, "h": 5}) == "config.json: hyperparameters: Value error, hidden_dim 32 is not divisible " \
        "by num_heads 5"
    assert case({**base, "trainable_lambda": True}) == ("config.json sets trainable_lambda = True; this backbone "
                                                        "computes only trainable_lambda = False")
    assert "d_atom = 28" in case({**base, "d_atom": 27})
    assert case({k: v for k, v in base.items() if k != "d_atom"}).startswith("config.json: d_atom is missing")
    assert case({**base, "d_modle": 32}).startswith("config.json: 'd_modle' is not an argument of make_model")
    assert case(base, lambda w: {**w, "encoder.layers.0.self_attn.lambdas": torch.zeros(3)}) == (
        "unexpected weight 'encoder.layers.0.self_attn.lambdas' (shape [3]) for config.json")
    assert case(base, lambda w: {**w, "encoder.norm.a_2": torch.ones(31)}) == (
        "weight 'encoder.norm.a_2' has shape [31]; config.json implies [32]")
    assert case(base, lambda w: {k: v for k, v in w.items() if not k.startswith("generator.")}) is None  # head-less
    bad = tmp_path / "corrupt"
    bad.mkdir()
    (bad / "pretrained_weights.pt").write_bytes(b"not a checkpoint")
    assert "cannot read the weights" in fmt.check(bad)
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.pt").write_bytes(b"")
    (two / "b.pt").write_bytes(b"")
    assert fmt.check(two) == "no pretrained_weights.pt and several .pt/.pth files in the checkpoint folder (a.pt, b.pt)"
    assert fmt.check(tmp_path / "missing") == "no such checkpoint folder or file"
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no pretrained_weights.pt"):
        fmt.weights_file(tmp_path / "empty")
    with pytest.raises(ValueError, match="'conformer_seed' is an option of the mat_authors format"):
        BackboneConfig(name="graphormer", checkpoint={"format": "hf_graphormer", "path": "x", "conformer_seed": 1})
    with pytest.raises(ValueError, match="format 'mat_authors' does not hold a 'graphormer' backbone"):
        BackboneConfig(name="graphormer", checkpoint={"format": "mat_authors", "path": str(src)})


def test_saved_checkpoints_are_in_their_names(tmp_path):
    """save_mat_checkpoint writes what their make_model's state_dict holds (but the Generator)
    and loads back to the same backbone."""
    model = loaded("softmax_tanh_sum")[0]
    folder = save_mat_checkpoint(model, tmp_path / "ck")
    saved = torch.load(folder / "pretrained_weights.pt", weights_only=True)
    theirs = {k: v for k, v in REFS["softmax_tanh_sum"]["state_dict_keys"].items() if not k.startswith("generator.")}
    assert {k: list(v.shape) for k, v in saved.items()} == theirs
    assert json.loads((folder / "config.json").read_text())["distance_matrix_kernel"] == "softmax"
    cfg = BackboneConfig(name="mat", checkpoint={"format": "mat_authors", "path": str(folder)})
    again = BACKBONES.get("mat").build(cfg.arch())
    load_checkpoint(again, cfg.checkpoint)
    for (ka, va), (kb, vb) in zip(model.state_dict().items(), again.state_dict().items()):
        assert ka == kb and (ka == "mask_embedding" or torch.equal(va, vb)), ka


def test_random_init_is_make_models():
    """A random_init trial starts from make_model's Glorot initialisation of every matrix."""
    cfg = MATAuthorsConfig(hidden_dim=64, num_layers=1, num_heads=4, ffn_dim=64)
    torch.manual_seed(0)
    w = MATAuthors(cfg).layers[0].attn.q_proj.weight
    bound = (6 / (64 + 64)) ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound  # default nn.Linear init is ~ 1/sqrt(64) = 0.125


class Tokens(torch.nn.Module):
    def __init__(self, p: int, d: int) -> None:
        super().__init__()
        self.t = torch.nn.Parameter(torch.randn(1, p, d))

    def forward(self, b: int):
        return self.t.expand(b, -1, -1)


@torch.no_grad()
def test_the_backbone_contract_on_the_authors_mat():
    """Sites methods rely on: a GraphBackbone; LoRA's targets are its attention projections; an
    adapter per attention and feed-forward sublayer (Houlsby) or per feed-forward (Pfeiffer); token
    slots after the dummy node, left out of the pooling, one-way slots changing nothing; the input
    prompt on the atoms' embeddings; the structure context aligned with the token sequence."""
    import copy

    from workloads.backbones.base import GraphBackbone

    model, graphs, _ = loaded("pretrained_like")
    batch = Batch.from_data_list(list(graphs[30:36]))
    base = model(batch)
    assert isinstance(model, GraphBackbone) and base.graph.shape == (6, 32) and base.nodes.shape[1] == max(
        g.num_nodes for g in graphs[30:36])
    linears = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(model.lora_targets) <= linears and "fc1" in linears
    assert len(model.adapter_sites("houlsby")) == 4 and len(model.adapter_sites("pfeiffer")) == 2
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in model.modules()) == 5  # Houlsby trains their norms

    hidden = copy.deepcopy(model)
    hidden.add_token_slot("h", Tokens(2, 32), visible=False)
    enc = hidden(batch)
    assert enc.slots["h"].shape == (6, 2, 32)
    torch.testing.assert_close(enc.graph, base.graph, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(enc.nodes, base.nodes, atol=1e-6, rtol=1e-6)
    ctx = hidden.graph_context.norm_adj()
    assert ctx.shape == (6, 3 + enc.nodes.shape[1], 3 + enc.nodes.shape[1])
    assert (ctx[:, 0, 3:] > 0).sum() == batch.num_nodes  # the dummy node linked to the atoms
    seen = copy.deepcopy(model)
    seen.add_token_slot("s", Tokens(1, 32))
    assert not torch.allclose(seen(batch).graph, base.graph)

    prompted = copy.deepcopy(model)
    prompted.add_input_prompt(torch.nn.Identity())
    torch.testing.assert_close(prompted(batch).graph, base.graph, atol=0, rtol=0)
    shifted = copy.deepcopy(model)
    shifted.add_input_prompt(torch.nn.Linear(32, 32))
    assert not torch.allclose(shifted(batch).graph, base.graph)


def test_the_conformers_are_a_cached_dataset_view(cache_dir):
    """``mat_dist`` is computed once per molecule and seed, cached beside the dataset, and
    chosen by the backbone's config (graph_property's load), the base graphs untouched."""
    from workloads.datasets import DatasetConfig, load_dataset
    from workloads.datasets.featurize import authors_conformer_distances
    from workloads.tasks.graph_property import GraphPropertyTask
    from workloads.util import LOAD_COUNTS

    ds = DatasetConfig(name="freesolv", max_molecules=40)
    data = GraphPropertyTask().load(ds, cache_dir, checkpoint("pretrained_like"))
    assert data.mat_conformer_seed == 0 and data.summary()["mat_conformer_fallback_2d"] == 0
    base = load_dataset(ds, cache_dir)
    assert not hasattr(base.train[0], "mat_dist") and "mat_conformer_seed" not in base.summary()
    g = data.train[0]
    from rdkit import Chem

    want = authors_conformer_distances(Chem.MolFromSmiles(g.smiles), 0)
    assert torch.equal(g.mat_dist, torch.from_numpy(want.reshape(-1)))
    assert list((cache_dir / "datasets").glob("freesolv-*-matconf0.pt"))
    builds = LOAD_COUNTS["dataset_builds"]
    assert GraphPropertyTask().load(ds, cache_dir, checkpoint("pretrained_like")) is data
    assert LOAD_COUNTS["dataset_builds"] == builds
    seven = GraphPropertyTask().load(ds, cache_dir, checkpoint("pretrained_like", conformer_seed=7))
    assert seven.mat_conformer_seed == 7 and not torch.equal(seven.train[0].mat_dist, g.mat_dist)


# every graph method and plug-in (as tests/test_checkpoint_sweep.py runs them through the driver)
METHODS = {
    "full": {}, "linear_probe": {}, "bitfit": {},
    "lora": {"params": {"r": 2}},
    "adapter": {"params": {"bottleneck": 4, "placement": "houlsby"}},
    "adapter_pfeiffer": {"name": "adapter", "params": {"bottleneck": 4, "placement": "pfeiffer"}},
    "g_adapter": {"params": {"bottleneck": 4}},
    "gpf": {}, "gpf_plus": {"params": {"num_basis": 2}}, "prompt_tokens": {"params": {"num_tokens": 2}},
    "g_adapter_proximal": {"name": "g_adapter", "params": {"bottleneck": 4}, "plugins": {"proximal": {"weight": 0.1}}},
    "lora_gist": {"name": "lora", "params": {"r": 2}, "plugins": {"gist": {}}},
    "prompt_tokens_gist_one_way": {"name": "prompt_tokens", "params": {"num_tokens": 2},
                                   "plugins": {"gist": {"visible": False}, "proximal": {"weight": 0.1}}},
    "full_random_init": {"name": "full", "random_init": True},
}


def test_every_graph_method_and_plugin_trains_on_an_authors_checkpoint(cache_dir):
    """One epoch of each on a FreeSolv slice, in this process: the contract's sites (LoRA targets,
    adapter sites, token slots, input prompt, graph context) exist on the authors' MAT."""
    from workloads import run_trial
    from workloads.config import TrialConfig
    from workloads.peft import method_names
    from workloads.plugins import PLUGINS

    assert {v.get("name", k) for k, v in METHODS.items()} == set(method_names("graph_transformer"))
    assert {p for v in METHODS.values() for p in v.get("plugins", {})} == set(PLUGINS.names())
    path = str(FIXTURES / "pretrained_like")
    records = {}
    for variant, m in METHODS.items():
        cfg = TrialConfig.model_validate({
            "trial_id": variant, "dataset": {"name": "freesolv", "max_molecules": 40},
            "backbone": {"name": "mat", "checkpoint": {"format": "mat_authors", "path": path}},
            "method": {"name": variant, **m}, "train": {"epochs": 1, "batch_size": 16},
            "profile": {"latency_batch_size": 4, "latency_warmup": 0, "latency_repeats": 1},
            "cache_dir": str(cache_dir), "num_threads": 1, "device": "cpu"})
        records[variant] = r = run_trial(cfg)
        assert r.status == "ok", (variant, r.error)
        assert np.isfinite(r.metrics.val_score) and np.isfinite(r.metrics.test_score), variant
    for variant, r in records.items():
        if variant == "full_random_init":
            assert r.pretrained == {"checkpoint": None}
        else:
            assert r.pretrained["format"] == "mat_authors" and r.pretrained["checkpoint"] == path
            assert r.pretrained["weights"] == "pretrained_weights.pt"
        if not variant.startswith("full"):
            assert r.trainable_params < records["full"].trainable_params, variant
    assert records["full"].dataset["mat_conformer_seed"] == 0
    assert records["full"].dataset["mat_conformer_fallback_2d"] < 40
