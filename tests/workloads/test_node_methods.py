"""Node classification on the shipped WordNet subset: one matrix for every node-level
method, ENGINE's ladder and early exit (exited nodes really skip LM blocks), the LM
state cache against the LM run on text, and a decoder-only LM."""
import numpy as np
import pytest
import torch

from workloads.backbones import BACKBONES, LMConfig, NodeModel
from workloads.datasets.config import DatasetConfig
from workloads.peft import METHODS, count_parameters
from workloads.tasks import task_of

# One row per node-level method configuration (small subgraphs keep the LM runs short).
CASES = {
    "gnn": dict(params={"subgraph_size": 4, "hidden": 16}, trains=lambda n: n.startswith("body.")),
    "gnn[gcn,rwr]": dict(method="gnn", params={"gnn": "gcn", "sampler": "rwr", "subgraph_size": 4, "hidden": 16},
                         trains=lambda n: n.startswith("body.")),
    "engine": dict(params={"subgraph_size": 4, "r": 8}, trains=lambda n: n.startswith("body.")),
    "lm_lora": dict(params={"r": 2}, trains=lambda n: n.startswith("body.") or ".lora_" in n),
    "lm_full": dict(params={}, trains=lambda n: True),
}


@pytest.fixture(scope="module")
def wordnet(cache_dir):
    cfg = DatasetConfig(name="wordnet", max_train_nodes=120)
    return task_of(cfg).load(cfg, cache_dir)


@pytest.fixture(scope="module")
def lm_cfg():
    return LMConfig(max_length=24)


def adapted(name, lm_cfg, data, seed=0, lm_path=None):
    torch.manual_seed(seed)
    lm = BACKBONES.get("lm").build(lm_cfg if lm_path is None else LMConfig(path=lm_path, max_length=24))
    model = NodeModel(lm, data.num_classes)
    method = METHODS.get(CASES[name].get("method", name))
    hooks = method.apply(model, method.parse(CASES[name]["params"]))
    return model, hooks


def test_every_node_method_has_a_row():
    assert {m for m in METHODS.names() if "language_model" in METHODS.get(m).backbones} == \
        {c.get("method", k) for k, c in CASES.items()}


def test_wordnet_subset_loads_offline_with_a_stratified_split(wordnet):
    s = wordnet.summary()
    assert s["num_nodes"] == 4272 and s["num_classes"] == 45 and s["num_edges"] > 8000
    assert s["num_train"] == 120 and s["train_subsampled_from"] > 2000
    assert 0.18 < s["num_valid"] / s["num_nodes"] < 0.22 and abs(s["num_valid"] - s["num_test"]) < 50
    assert not set(wordnet.train) & set(wordnet.valid) and not set(wordnet.valid) & set(wordnet.test)


@pytest.mark.parametrize("name", sorted(CASES))
def test_only_its_parameters_train_and_a_step_changes_them(name, wordnet, lm_cfg):
    model, hooks = adapted(name, lm_cfg, wordnet)
    case = CASES[name]
    for n, p in model.named_parameters():
        assert p.requires_grad == case["trains"](n), n
    trainable, total = count_parameters(model)
    assert 0 < trainable <= total and (trainable == total) == (name == "lm_full")
    task = task_of(DatasetConfig(name="wordnet"))
    batch = next(iter(task.train_loader(wordnet, 8, model=model)))
    # methods whose LM does not train read cached states; LM fine-tuning reads tokens
    assert (batch.states is not None) == model.reads.cacheable
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    for m in hooks.eval_modules:
        m.eval()
    out = model(batch, with_slots=True)
    assert out["pred"].shape == (8, wordnet.num_classes) and torch.isfinite(out["pred"]).all()
    loss = task.loss(wordnet, out["pred"], batch.y) + sum(f(model, batch, out) for f in hooks.extra_loss)
    loss.backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(case["trains"](n) for n in changed)
    # inference from text gives a prediction per target node too
    model.eval()
    lat_batch, units = task.latency_batch(wordnet, 4, torch.device("cpu"), model=model)
    assert units == 4 and lat_batch.states is None and model(lat_batch).shape == (4, wordnet.num_classes)


def test_engine_sums_every_exit_loss(wordnet, lm_cfg):
    model, hooks = adapted("engine", lm_cfg, wordnet)
    task = task_of(DatasetConfig(name="wordnet"))
    batch = next(iter(task.train_loader(wordnet, 8, model=model)))
    model.train()
    out = model(batch, with_slots=True)
    exits = out["slots"]["exits"]
    assert len(exits) == len(model.body.reads.layers) == 4  # MiniLM's 6 blocks: layers 0, 2, 4, 6
    total = task.loss(wordnet, out["pred"], batch.y) + hooks.extra_loss[0](model, batch, out)
    expected = sum(torch.nn.functional.cross_entropy(e, batch.y) for e in exits)
    assert torch.allclose(total, expected)


def _trained_engine(wordnet, lm_cfg, **params):
    """An ENGINE model whose exits disagree and are unsure enough that nodes leave at different rungs."""
    CASES["_engine"] = dict(method="engine", params={"subgraph_size": 4, "r": 8, **params}, trains=None)
    try:
        model, _ = adapted("_engine", lm_cfg, wordnet, seed=3)
    finally:
        del CASES["_engine"]
    with torch.no_grad():
        for p in model.body.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def _expected_rows(model, batch, exit_rung):
    """Rows block j must process: the subgraphs of targets that exit at a layer deeper than j."""
    layers = model.body.reads.layers
    sizes = torch.bincount(batch.sub, minlength=batch.num_targets)
    exit_layer = torch.tensor([layers[r] for r in exit_rung])
    rows = [int(sizes[exit_layer > j].sum()) for j in range(max(layers))]
    return rows[:rows.index(0)] if 0 in rows else rows  # the pass ends when no row is left


def _threshold_between(model, cached, q=0.7):
    """Set a confidence threshold between the early rungs' confidences, so that some nodes
    exit early and some do not."""
    with torch.no_grad():
        exits = model(cached, with_slots=True)["slots"]["exits"]
    confs = torch.cat([torch.softmax(e, -1).max(-1).values for e in exits[:-1]])
    model.body.cfg = model.body.cfg.model_copy(update={"threshold": float(torch.quantile(confs, q))})


def test_early_exit_skips_later_lm_blocks_and_matches_the_cached_decisions(wordnet, lm_cfg):
    task = task_of(DatasetConfig(name="wordnet"))
    targets = wordnet.test[:24]
    model = _trained_engine(wordnet, lm_cfg, patience=None, threshold=0.5)
    cached = wordnet.batch(targets, model, use_cache=True)
    text = wordnet.batch(targets, model, use_cache=False)
    _threshold_between(model, cached)
    with torch.no_grad():
        from_cache = model(cached)
        from_text = model(text)
    run = model.body.last_run
    rungs = run["exit_rung"]
    assert 0 < sum(r < 3 for r in rungs) < len(rungs), rungs  # some exit early, some run to the end
    assert run["rows_per_block"] == _expected_rows(model, text, rungs)
    assert text.rows.shape[0] >= run["rows_per_block"][0] and run["rows_per_block"][-1] < run["rows_per_block"][0]
    # the same decisions and logits as the simulation on cached states
    assert torch.equal(from_cache.argmax(-1), from_text.argmax(-1))
    assert torch.allclose(from_cache, from_text, atol=1e-4)
    assert task.batch_units(text) == 24


def test_early_stopping_rungs_retime_latency_only_where_exits_move(wordnet, lm_cfg):
    """A rung reuses the first rung's latency unless the model exits early (its work per
    call then moves with its weights): ENGINE with a threshold says so, the GNN does not."""
    from workloads.train import _exits_early

    engine = _trained_engine(wordnet, lm_cfg, patience=None, threshold=0.5)
    gnn, _ = adapted("gnn", lm_cfg, wordnet)
    text = wordnet.batch(wordnet.test[:8], engine, use_cache=False)
    with torch.no_grad():
        engine(text)
        gnn(wordnet.batch(wordnet.test[:8], gnn, use_cache=False))
    assert _exits_early(engine) and not _exits_early(gnn)


def test_patience_exit_and_no_exit_run_every_rung_block(wordnet, lm_cfg):
    targets = wordnet.test[:16]
    model = _trained_engine(wordnet, lm_cfg, patience=1, threshold=None)
    text = wordnet.batch(targets, model, use_cache=False)
    cached = wordnet.batch(targets, model, use_cache=True)
    with torch.no_grad():
        a, b = model(cached), model(text)
    assert torch.equal(a.argmax(-1), b.argmax(-1))
    assert model.body.last_run["rows_per_block"] == _expected_rows(model, text, model.body.last_run["exit_rung"])
    assert 0 not in model.body.last_run["exit_rung"]  # patience needs a previous rung
    off = _trained_engine(wordnet, lm_cfg, patience=None, threshold=None)
    with torch.no_grad():
        off(text)
    # without early exit every row runs through the last selected layer (6), and no further
    assert off.body.last_run["rows_per_block"] == [text.rows.shape[0]] * 6
    assert set(off.body.last_run["exit_rung"]) == {3}


def test_exited_nodes_stay_exited(wordnet, lm_cfg):
    """The authors' mask (current == last) == not_visited re-selects an exited node whose
    prediction later changes; here its result is the one of the rung it left at."""
    model = _trained_engine(wordnet, lm_cfg, patience=1, threshold=None)
    e0 = torch.tensor([[5.0, 0.0], [5.0, 0.0]])
    e1 = torch.tensor([[5.0, 0.0], [0.0, 5.0]])  # node 0 agrees: exits here with class 0
    e2 = torch.tensor([[0.0, 5.0], [0.0, 5.0]])  # node 0 changes; it must not be overwritten
    e3 = torch.tensor([[0.0, 9.0], [0.0, 9.0]])
    out = model.body.simulate_exit([e0, e1, e2, e3])
    assert out[0].argmax() == 0 and torch.equal(out[0], e1[0])
    assert torch.equal(out[1], e2[1])  # node 1 agrees at rung 2


def test_cached_states_equal_the_lm_run_on_text(wordnet, lm_cfg):
    model, _ = adapted("gnn", lm_cfg, wordnet)
    targets = wordnet.valid[:6]
    cached = wordnet.batch(targets, model, use_cache=True)
    text = wordnet.batch(targets, model, use_cache=False)
    with torch.no_grad():
        fresh = model.lm_states(text, [model.lm.num_layers])
    assert torch.allclose(cached.states, fresh, atol=1e-5)


def test_decoder_only_lm_runs_engine_with_early_exit(wordnet, tmp_path):
    from tests.workloads.test_lm_cache import tiny_decoder

    folder = tiny_decoder(tmp_path / "llama")
    CASES["_engine"] = dict(method="engine", params={"subgraph_size": 3, "r": 4, "threshold": 0.5,
                                                     "patience": None}, trains=None)
    try:
        model, _ = adapted("_engine", None, wordnet, lm_path=str(folder))
    finally:
        del CASES["_engine"]
    assert model.body.reads.layers == (0, 1, 2) and model.lm.lora_targets() == ["q_proj", "v_proj"]
    model.eval()
    text = wordnet.batch(wordnet.test[:10], model, use_cache=False)
    cached = wordnet.batch(wordnet.test[:10], model, use_cache=True)
    _threshold_between(model, cached, q=0.5)
    with torch.no_grad():
        a, b = model(text), model(cached)
    assert torch.allclose(a, b, atol=1e-4)
    assert min(model.body.last_run["exit_rung"]) < 2
    assert model.body.last_run["rows_per_block"] == _expected_rows(model, text, model.body.last_run["exit_rung"])


def test_lm_lora_latency_is_timed_merged(wordnet, lm_cfg):
    from peft.tuners.lora import LoraLayer

    model, hooks = adapted("lm_lora", lm_cfg, wordnet)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.add_(0.05 * torch.randn_like(p))
    model.eval()
    merged = hooks.deploy(model).eval()
    assert not any(isinstance(m, LoraLayer) for m in merged.modules())
    batch = wordnet.batch(wordnet.test[:4], model, use_cache=False)
    with torch.no_grad():
        assert torch.allclose(merged(batch), model(batch), atol=1e-4)


def test_subgraph_samplers_stay_in_the_neighbourhood(wordnet):
    from workloads.backbones import NodeInputs

    for reads in (NodeInputs(layers=(6,), sampler="one_hop", size=5),
                  NodeInputs(layers=(6,), sampler="rwr", size=6, walk_steps=40, restart=0.3)):
        subs = wordnet.subgraphs(reads)
        assert len(subs) == wordnet.graph.num_nodes
        sizes = np.array([len(n) for n, _ in subs])
        assert sizes.max() <= reads.size and (sizes > 1).mean() > 0.8
        for t in range(0, 4000, 397):
            nodes, edges = subs[t]
            assert nodes[0] == t and len(set(nodes.tolist())) == len(nodes)
            if reads.sampler == "one_hop":  # every other node is a neighbour of the target
                nbrs = set(wordnet.indices[wordnet.indptr[t]:wordnet.indptr[t + 1]].tolist())
                assert set(nodes[1:].tolist()) <= nbrs
            if edges.size:  # local edges are real edges of the graph
                a, b = nodes[edges[0, 0]], nodes[edges[1, 0]]
                assert b in wordnet.indices[wordnet.indptr[a]:wordnet.indptr[a + 1]]
