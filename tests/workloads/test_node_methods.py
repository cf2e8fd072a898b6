"""Node classification on the shipped WordNet subset: one matrix for every node-level
method, ENGINE's ladder and early exit (exited nodes really skip LM blocks), the LM
state cache against the LM run on text, and a decoder-only LM."""
import numpy as np
import pytest
import torch

from workloads.backbones import BACKBONES, LMConfig, NodeModel
from workloads.datasets.config import DatasetConfig
from workloads.peft import METHODS, count_parameters, method_names
from workloads.tasks import task_of

# One row per node-level method configuration (small subgraphs keep the LM runs short).
CASES = {
    "gnn": dict(params={"subgraph_size": 4, "hidden": 16}, trains=lambda n: n.startswith("body.")),
    "gnn[gcn,rwr]": dict(method="gnn", params={"gnn": "gcn", "sampler": "rwr", "subgraph_size": 4, "hidden": 16},
                         trains=lambda n: n.startswith("body.")),
    "engine": dict(params={"subgraph_size": 4, "r": 8}, trains=lambda n: n.startswith("body.")),
    "lm_lora": dict(params={"r": 2}, trains=lambda n: n.startswith("body.") or ".lora_" in n),
    "lm_full": dict(params={}, trains=lambda n: True),
    # the reference baselines that train in the loop (the fitted ones: tests/workloads/test_references.py)
    "text_mlp": dict(params={"hidden": 16}, trains=lambda n: n.startswith("body.")),
    "gnn[layer0]": dict(method="gnn", params={"layer": 0, "subgraph_size": 4, "hidden": 16},
                        trains=lambda n: n.startswith("body.")),
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
    in_loop = {m for m in method_names("language_model", references=None) if
               METHODS.get(m).reference is None or METHODS.get(m).reference.fit is None}
    assert in_loop == {c.get("method", k) for k, c in CASES.items()}


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
                                                     "patience": None, "min_exit_rung": 1}, trains=None)
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


# --- ENGINE against the authors' code (github.com/ZhuYun97/ENGINE, commit 46dde57) ---

def _small_ladder(**params):
    """Our rung stack on its own (no LM): 3 rungs of k = 8, 2 SAGE layers each, fixed random
    weights and gates, and a batch of 3 random subgraphs (4, 3 and 5 nodes) with cached states."""
    from types import SimpleNamespace

    from workloads.peft.engine import EngineConfig, Ladder
    from workloads.tasks.node_classification import NodeBatch

    torch.manual_seed(0)
    ladder = Ladder(16, 5, [0, 1, 2], EngineConfig(r=2, depth=2, dropout=0.3, **params))
    with torch.no_grad():
        ladder.alpha.copy_(torch.tensor([0.0, 0.07, -0.05]))  # gates away from 1/2
    sizes, sub, edges, off = [4, 3, 5], [], [], 0
    for b, n in enumerate(sizes):
        sub += [b] * n
        src, dst = torch.randint(0, n, (2, 2 * n))
        keep = src != dst
        edges.append(torch.stack([torch.cat([src[keep], dst[keep]]), torch.cat([dst[keep], src[keep]])]) + off)
        off += n
    batch = NodeBatch(rows=torch.arange(off), sub=torch.tensor(sub), target_pos=torch.tensor([0, 4, 7]),
                      edge_index=torch.cat(edges, 1), y=torch.zeros(3, dtype=torch.long),
                      states=torch.randn(3, off, 16))
    return ladder, batch, SimpleNamespace(lm_states=lambda b, layers: b.states)


def _authors_ladder(ladder, batch, last_activation):
    """A transcription of the authors' ladder and exits: main.py:133-146 (rung 1 ungated, later
    rungs x = prog(h) * a + last * (1 - a), a = sigmoid(alpha / T); exit head on [root, mean]),
    each rung's GNN their SAGE_Encoder.forward, models/encoder.py:183-192 with norm 'id' and
    activation 'relu':

        x = self.norms[i](self.convs[i](x, edge_index, edge_weight))
        if i == self.layer_num - 1 and not self.last_act: pass
        else: x = self.activation(x)
        x = self.dropout(x)

    ``last_activation[i]`` is rung i's ``last_activation`` argument (main.py:271). The convs,
    projections and heads are ours (the same weights): what is compared is the form."""
    from torch_geometric.nn import global_mean_pool

    T, last, logits = ladder.cfg.temperature, None, []
    drop = torch.nn.Dropout(ladder.cfg.dropout).train(ladder.training)
    for i in range(len(ladder.proj)):
        if i == 0:
            x = ladder.proj[i](batch.states[i])
        else:
            a = torch.sigmoid(ladder.alpha[i] / T)
            x = ladder.proj[i](batch.states[i]) * a + last * (1 - a)
        convs = ladder.gnns[i].convs
        for j in range(len(convs)):
            x = torch.nn.Identity()(convs[j](x, batch.edge_index))
            if j == len(convs) - 1 and not last_activation[i]:
                pass
            else:
                x = torch.relu(x)
            x = drop(x)
        last = x
        logits.append(ladder.exits[i](torch.cat([last[batch.target_pos], global_mean_pool(last, batch.sub)], 1)))
    return logits


@pytest.mark.parametrize("train", [False, True])
def test_engine_last_rung_equals_the_authors_form(train):
    """With last_rung_activation false (the intent of main.py:271: the last rung built with
    last_activation=False) the last rung's last layer has no activation but keeps its dropout
    (models/encoder.py:187-192); every other layer and rung ends in activation and dropout."""
    ladder, batch, model = _small_ladder(last_rung_activation=False)
    ladder.train(train)
    torch.manual_seed(1)
    ours = ladder(model, batch)[1]["exits"]
    torch.manual_seed(1)  # the same dropout masks: both draw them in the same order
    theirs = _authors_ladder(ladder, batch, [True, True, False])
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, atol=1e-6)
    # the comparison can fail: a ReLU put back on the last rung changes its output
    torch.manual_seed(1)
    relu_back = _authors_ladder(ladder, batch, [True, True, True])
    assert not torch.allclose(relu_back[-1], ours[-1], atol=1e-3)
    assert all(torch.equal(a, b) for a, b in zip(relu_back[:-1], theirs[:-1]))


def test_engine_authors_code_as_run_is_an_option():
    """main.py:271 passes last_activation=(l != len(layer_select)-1) with l the rung's LM layer
    id; with every shipped config (layer_select [0,5,10,15,20,25,-1]) that is True for every
    rung, the last included (a flaw: the default follows the line's intent, tested above);
    last_rung_activation: true reproduces their code as run."""
    layer_select = [0, 5, 10, 15, 20, 25, -1]  # configs/*/engine.yaml
    as_run = [(l != len(layer_select) - 1) for l in layer_select]
    assert all(as_run)
    assert _small_ladder()[0].cfg.last_rung_activation is False  # the default: the intended form
    ladder, batch, model = _small_ladder(last_rung_activation=True)
    ladder.eval()
    ours = ladder(model, batch)[1]["exits"]
    theirs = _authors_ladder(ladder, batch, as_run[-3:])
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, atol=1e-6)
    bare = _authors_ladder(ladder, batch, [True, True, False])
    assert not torch.allclose(bare[-1], ours[-1], atol=1e-3)


def _authors_first_exits(exits):
    """The authors' dynamic early exit, main.py:135-154, transcribed: the rung (0-based) at which
    each node is first selected by early_mask, and their final results."""
    B = exits[0].shape[0]
    first = torch.full((B,), -1)
    for i, hid_logits in enumerate(exits):
        if i == 0:
            not_visited = torch.ones(B).bool()
            results = torch.rand(B, exits[0].shape[1])
            last_prediction = torch.ones(B) * -1
        hid_prob = torch.nn.functional.softmax(hid_logits, dim=1)
        current_prediction = hid_prob.argmax(dim=1)
        early_mask = ((current_prediction == last_prediction) == not_visited)
        results[early_mask] = hid_prob[early_mask]
        first[early_mask & (first < 0)] = i
        not_visited[early_mask] = False
        last_prediction = current_prediction
    results[not_visited] = hid_prob[not_visited]
    first[first < 0] = len(exits) - 1
    return first, results


def test_engine_default_exit_rule_is_the_authors():
    """Patience 1, no exit at rung 1: a node leaves at the first later rung whose prediction
    equals the previous rung's, however confident it is at rung 1; the last rung takes the rest."""
    from workloads.peft.engine import EngineConfig

    cfg = EngineConfig()
    assert (cfg.patience, cfg.min_exit_rung, cfg.threshold) == (1, 2, None)
    ladder, _, _ = _small_ladder()
    hot = lambda *cls: torch.nn.functional.one_hot(torch.tensor(cls), 3).float() * 50.0
    exits = [hot(0, 0, 0, 1), hot(0, 1, 1, 0), hot(0, 1, 0, 0), hot(2, 1, 1, 1)]
    out, rung = ladder.exit_rungs(exits)
    # node 0 agrees at rung 2, node 1 at rung 3, node 2 never, node 3 at rung 3 (confident at rung 1)
    assert rung.tolist() == [1, 2, 3, 2]
    assert torch.equal(out, torch.stack([exits[1][0], exits[2][1], exits[3][2], exits[2][3]]))
    # against the transcription of their loop, on random logits: the same first exits
    g = torch.Generator().manual_seed(0)
    exits = [torch.randn(300, 3, generator=g) for _ in range(5)]
    theirs, _ = _authors_first_exits(exits)
    ours = ladder.exit_rungs(exits)[1]
    assert torch.equal(ours, theirs) and 0 not in ours.tolist() and len(set(ours.tolist())) == 4
    # the threshold (ours) obeys min_exit_rung: nobody leaves at rung 1 unless it is 1
    ladder.cfg = cfg.model_copy(update={"patience": None, "threshold": 0.01})
    assert set(ladder.exit_rungs(exits)[1].tolist()) == {1}
    ladder.cfg = cfg.model_copy(update={"patience": None, "threshold": 0.01, "min_exit_rung": 1})
    assert set(ladder.exit_rungs(exits)[1].tolist()) == {0}


def test_engine_inference_sums_exits_and_rows_over_batches(wordnet, lm_cfg):
    """describe_inference()['since_reset'] is the sum of every call's exits per rung and rows
    per LM block since reset_inference(): a whole test set in batches, not its last batch."""
    model = _trained_engine(wordnet, lm_cfg)  # the authors' rule
    model.body.reset_inference()
    exits, rows, n = [0] * 4, [], 0
    with torch.no_grad():
        for targets in (wordnet.test[:7], wordnet.test[7:12], wordnet.test[12:21]):
            text = wordnet.batch(targets, model, use_cache=False)
            model(text)
            info = model.describe_inference()
            assert 0 not in model.body.last_run["exit_rung"]
            assert info["rows_per_block"] == _expected_rows(model, text, model.body.last_run["exit_rung"])
            exits = [a + b for a, b in zip(exits, info["exits_per_rung"])]
            rows = [a + b for a, b in zip(rows + [0] * 6, info["rows_per_block"] + [0] * 6)]
            n += len(targets)
    total = model.describe_inference()["since_reset"]
    assert total["calls"] == 3 and total["nodes"] == n == sum(total["exits_per_rung"])
    assert total["exits_per_rung"] == exits and total["exits_per_rung"] != info["exits_per_rung"]
    assert total["rows_per_block"] == [r for r in rows if r]
    model.body.reset_inference()
    assert model.describe_inference()["since_reset"] == {"calls": 0, "nodes": 0, "exits_per_rung": [0] * 4,
                                                         "rows_per_block": []}
