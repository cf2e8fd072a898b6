"""Reference baselines on real (small) data: the constant predictor's scores equal the
closed forms, the fingerprint forest learns, a random_init variant skips pretraining,
the no-graph MLP and the layer-0 GNN train on the LM-state cache; each record says
it is a reference and how its memory was measured."""
import math

import numpy as np
import pytest

from tests.workloads.test_train import cfg
from workloads import run_trial
from workloads.config import TrialConfig
from workloads.peft import METHODS, method_names
from workloads.tasks import task_of


def test_references_are_registered_apart_from_the_peft_methods():
    refs = set(method_names(references=True))
    assert {"constant", "ecfp_rf", "text_mlp"} <= refs
    assert not refs & set(method_names(references=False))
    assert METHODS.get("constant").reference.fit is not None and METHODS.get("text_mlp").reference.fit is None


def test_constant_scores_are_the_closed_forms(cache_dir):
    c = cfg(cache_dir, "freesolv", "constant", seeds=2)
    task = task_of(c.dataset)
    data = task.load(c.dataset, cache_dir, c.backbone)
    r = run_trial(c)
    assert r.status == "ok" and r.reference.kind == "constant" and "tracemalloc" in r.reference.memory_by
    assert r.pretrained == {"checkpoint": None}  # nothing was pretrained for it
    mean = np.mean([float(g.y) for g in data.train])
    rmse = math.sqrt(np.mean([(float(g.y) - mean) ** 2 for g in data.test]))
    assert r.metrics.test_score == pytest.approx(rmse, rel=1e-6)
    assert r.metrics.test_scores == [r.metrics.test_score] * 2 and r.metrics.test_std == 0.0
    assert r.trainable_params == 1 and r.objectives["train_memory_mb"] >= 0
    assert r.objectives["latency_ms_per_graph"] > 0 and r.latency.repeats == c.profile.latency_repeats
    b = run_trial(cfg(cache_dir, "b3db", "constant"))
    assert b.metrics.test_score == pytest.approx(0.5)  # a constant has no ranking: ROC-AUC 0.5


def test_ecfp_random_forest_learns_and_is_seeded(cache_dir):
    r = run_trial(cfg(cache_dir, "b3db", "ecfp_rf", seeds=2).model_copy(
        update={"method": cfg(cache_dir, "b3db", "ecfp_rf").method.model_copy(update={"params": {"trees": 50}})}))
    assert r.status == "ok" and r.reference.kind == "ecfp_rf" and "not seen" in r.reference.memory_by
    assert all(s > 0.6 for s in r.metrics.test_scores)  # B3DB's permeability is learnable from substructures
    assert r.metrics.test_scores[0] != r.metrics.test_scores[1]  # random_state is the seed
    assert r.objectives["train_memory_mb"] > 0.5  # at least the 2048-bit fingerprints of the training set
    assert r.notes["ecfp_rf"]["tree_nodes"] == r.trainable_params > 0


def test_ecfp_fingerprints_are_rdkit_morgan_radius_2_2048_bits():
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from workloads.references.ecfp_rf import fingerprints

    smiles = ["CCO", "c1ccccc1O"]
    fp = fingerprints(smiles, 2, 2048)
    for s, row in zip(smiles, fp):
        ref = AllChem.GetMorganFingerprintAsBitVect(Chem.MolFromSmiles(s), 2, nBits=2048)
        assert set(np.flatnonzero(row)) == set(ref.GetOnBits())


def test_random_init_skips_pretraining_and_is_a_reference(cache_dir):
    c = cfg(cache_dir, "freesolv", "linear_probe")
    pre = run_trial(c)
    rnd = run_trial(c.model_copy(update={"method": c.method.model_copy(update={"random_init": True})}))
    assert pre.pretrained["checkpoint"] and pre.reference is None
    assert rnd.pretrained["checkpoint"] is None and rnd.reference.kind == "random_init"
    assert rnd.metrics.test_score != pre.metrics.test_score


@pytest.mark.parametrize("method,params", [("text_mlp", {}), ("gnn", {"layer": 0, "subgraph_size": 4}),
                                           ("gnn", {"layer": -1, "subgraph_size": 4})])
def test_node_references_train_on_cached_states(cache_dir, method, params):
    c = TrialConfig.model_validate({
        "trial_id": "t", "dataset": {"name": "wordnet", "max_train_nodes": 200},
        "backbone": {"name": "lm", "params": {"max_length": 24}},
        "method": {"name": method, "params": params}, "train": {"epochs": 2, "batch_size": 32, "lr": 0.005},
        "profile": {"latency_batch_size": 8, "latency_warmup": 1, "latency_repeats": 2},
        "cache_dir": str(cache_dir), "num_threads": 1})
    r = run_trial(c)
    assert r.status == "ok" and 0 <= r.metrics.test_score <= 1
    assert (r.reference is not None) == (method == "text_mlp")
    if method == "text_mlp":
        assert r.reference.memory_by.startswith("the torch allocator")
    const = run_trial(c.model_copy(update={"method": c.method.model_copy(update={"name": "constant", "params": {}})}))
    data = task_of(c.dataset).load(c.dataset, cache_dir)
    labels = data.y.numpy()
    majority = np.bincount(labels[data.train], minlength=data.num_classes).argmax()
    assert const.metrics.test_score == pytest.approx(float((labels[data.test] == majority).mean()))
    assert r.metrics.test_score > const.metrics.test_score  # every learned model clears the floor here


def test_the_layer_a_gnn_reads_is_a_parameter(cache_dir):
    from workloads.backbones import BACKBONES, LMConfig, NodeModel

    lm = BACKBONES.get("lm").build(LMConfig(max_length=24))
    for layer, expect in [(0, 0), (-1, lm.num_layers), (3, 3)]:
        model = NodeModel(lm, 5)
        METHODS.get("gnn").apply(model, METHODS.get("gnn").parse({"layer": layer}))
        assert model.body.reads.layers == (expect,)
    with pytest.raises(ValueError, match="the LM has layers 0..6"):
        METHODS.get("gnn").apply(NodeModel(lm, 5), METHODS.get("gnn").parse({"layer": 7}))

