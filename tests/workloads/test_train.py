import math

import pytest
import torch

from tests.conftest import TINY_ARCH, TINY_PRETRAIN
from workloads import run_trial
from workloads.config import TrialConfig


def cfg(cache_dir, dataset, method, seeds=1, **train):
    return TrialConfig.model_validate({
        "seeds": seeds,
        "trial_id": "t",
        "dataset": {"name": dataset, "max_molecules": 200 if dataset == "freesolv" else 400},
        "backbone": {"name": "graphormer", "params": TINY_ARCH, "pretrain": TINY_PRETRAIN},
        "method": {"name": method, "params": {"r": 2} if method == "lora" else {}},
        "train": {"epochs": 2, "batch_size": 32, **train},
        "profile": {"latency_batch_size": 16, "latency_warmup": 1, "latency_repeats": 3},
        "cache_dir": str(cache_dir),
        "num_threads": 1,
    })


def test_classification_trial_record(cache_dir):
    from workloads.tasks import task_of

    c = cfg(cache_dir, "b3db", "lora")
    r = run_trial(c)
    m = r.metrics
    assert m.metric == "roc_auc" and m.direction == "maximize"
    assert r.task == "graph_property"
    # every objective of the task, in its order (the driver assigns the cell's objective_names)
    assert list(task_of(c.dataset).objectives) == ["score", "train_memory_mb", "latency_ms_per_graph"] == list(r.objectives)
    assert 0.0 <= m.test_score <= 1.0 and 0 <= m.best_epoch < 2 and len(m.history) == 2
    o = r.objectives
    assert m.selection == "validation" and o["score"] == m.val_score != m.test_score
    assert o["train_memory_mb"] > 0 and o["latency_ms_per_graph"] > 0
    assert r.memory.method.startswith("cpu_allocator_events_peak") and r.memory.device == "cpu"
    assert r.latency.deployed and r.latency.as_trained.ms_per_unit > 0  # LoRA: merged and not
    assert r.latency.deploy_max_abs_diff < 1e-4
    assert r.latency.batch_size == 16 and r.latency.num_threads == 1
    assert 0 < r.trainable_params < r.total_params
    assert r.pretrained["checkpoint"].endswith(".pt")
    assert r.config["method"] == {"name": "lora", "params": {"r": 2}, "plugins": {}, "variant": None,
                                  "random_init": False}


def test_regression_rmse_is_in_label_units(cache_dir, freesolv):
    r = run_trial(cfg(cache_dir, "freesolv", "linear_probe", lr=0.01))
    rmse = r.metrics.test_score
    assert r.metrics.direction == "minimize"
    # FreeSolv labels span roughly -25..+4 kcal/mol; a sane model is within a few std of them
    assert 0 < rmse < 4 * freesolv.y_std and math.isfinite(rmse)


def test_same_seed_same_record(cache_dir):
    a = run_trial(cfg(cache_dir, "freesolv", "adapter"))
    b = run_trial(cfg(cache_dir, "freesolv", "adapter"))
    assert a.metrics == b.metrics
    assert a.objectives["train_memory_mb"] == b.objectives["train_memory_mb"]


def test_selection_reads_validation_only(cache_dir, monkeypatch):
    """Validation and test disagree on the best epoch: the epoch validation chose is
    the one tested, and the objective is the validation figure."""
    from workloads.tasks.graph_property import GraphPropertyTask

    val_by_epoch = iter([5.0, 2.0, 4.0])  # RMSE: epoch 1 is best on validation
    test_by_state = {}
    real = GraphPropertyTask.evaluate

    def scripted(self, model, data, split, batch_size, device):
        if split == "valid":
            real(self, model, data, split, batch_size, device)
            score = next(val_by_epoch)
            # remember the weights validation saw, to check which ones are tested
            test_by_state[score] = model.head.weight.detach().clone()
            return score
        # "test" prefers the last epoch's weights: best test would be epoch 2
        return 1.0 if torch.equal(model.head.weight, test_by_state[2.0]) else 0.5

    monkeypatch.setattr(GraphPropertyTask, "evaluate", scripted)
    r = run_trial(cfg(cache_dir, "freesolv", "linear_probe", epochs=3, lr=0.05))
    m = r.metrics
    assert m.best_epoch == 1 and m.val_score == 2.0 and r.objectives["score"] == 2.0
    assert m.test_score == 1.0  # the test figure of validation's epoch, not the better 0.5 of another epoch
    assert [h.val_score for h in m.history] == [5.0, 2.0, 4.0]


def test_patience_ends_training_once_validation_stops_improving(cache_dir, monkeypatch):
    """RMSE by epoch 5, 3, 4, 3.5, 2, ...: with patience 2 the best is epoch 1 and epochs 2
    and 3 bring nothing, so training ends after epoch 3 (epoch 4's 2.0 is never seen); the
    trial is ok and tested at epoch 1. Without patience every epoch of the cap runs."""
    from workloads.tasks.graph_property import GraphPropertyTask

    real = GraphPropertyTask.evaluate

    def scripted(scores):
        it = iter(scores)

        def evaluate(self, model, data, split, batch_size, device):
            out = real(self, model, data, split, batch_size, device)
            return next(it) if split == "valid" else out
        return evaluate

    monkeypatch.setattr(GraphPropertyTask, "evaluate", scripted([5.0, 3.0, 4.0, 3.5, 2.0, 1.0]))
    r = run_trial(cfg(cache_dir, "freesolv", "linear_probe", epochs=6, patience=2))
    assert r.status == "ok" and r.stopped_at is None
    assert [h.val_score for h in r.metrics.history] == [5.0, 3.0, 4.0, 3.5]
    assert r.metrics.best_epoch == 1 and r.objectives["score"] == 3.0
    assert r.metrics.test_score is not None and r.latency is not None  # tested and profiled as any finished trial
    monkeypatch.setattr(GraphPropertyTask, "evaluate", scripted([5.0, 3.0, 4.0, 3.5, 2.0, 1.0]))
    full = run_trial(cfg(cache_dir, "freesolv", "linear_probe", epochs=6))
    assert len(full.metrics.history) == 6 and full.metrics.best_epoch == 5


def test_seeds_aggregate(cache_dir):
    import statistics

    r = run_trial(cfg(cache_dir, "freesolv", "lora", seeds=3))
    m, seeds = r.metrics, r.seeds
    assert [s.seed for s in seeds] == [0, 1, 2] and len(set(m.val_scores)) == 3
    assert m.val_scores == [s.val_score for s in seeds]
    assert m.val_score == pytest.approx(statistics.fmean(m.val_scores))
    assert m.val_std == pytest.approx(statistics.stdev(m.val_scores))
    assert m.test_score == pytest.approx(statistics.fmean(m.test_scores))
    assert m.test_std == pytest.approx(statistics.stdev(m.test_scores))
    assert r.objectives["score"] == m.val_score
    assert r.objectives["train_memory_mb"] == max(s.memory.peak_train_mb for s in seeds)
    one = run_trial(cfg(cache_dir, "freesolv", "lora", seeds=1))
    assert one.metrics.val_scores == m.val_scores[:1]  # seed 0 is the same run either way
    assert one.metrics.val_std == 0.0


def test_result_does_not_depend_on_a_cached_checkpoint(tmp_path, cache_dir):
    """First call pretrains (fresh cache), second loads the cached checkpoint: the
    same record; and a trial leaves its caller's random state alone."""
    fresh = cfg(tmp_path / "fresh-cache", "freesolv", "adapter")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = run_trial(fresh)
    assert torch.equal(torch.get_rng_state(), before)
    b = run_trial(fresh)
    assert a.metrics == b.metrics and a.pretrained == b.pretrained


def test_mat_with_3d_conformers_trains_on_them_and_counts_fallbacks(cache_dir):
    c = cfg(cache_dir, "freesolv", "adapter", epochs=1)
    c = c.model_copy(update={"backbone": c.backbone.model_copy(update={
        "name": "mat", "params": {**TINY_ARCH, "coordinates": "3d"}})})
    r = run_trial(c)
    assert r.dataset["coordinates"] == "3d" and 0 <= r.dataset["conformer_fallback_2d"] < 5
    assert math.isfinite(r.metrics.test_score)
    info = torch.load(r.pretrained["checkpoint"], weights_only=False)["info"]
    assert info["arch"]["coordinates"] == "3d" and "conformer_fallback_2d" in info  # pretrained on 3D too

    from workloads.tasks import task_of

    flat = task_of(c.dataset).load(c.dataset, cache_dir)
    deep = task_of(c.dataset).load(c.dataset, cache_dir, c.backbone)
    assert flat.coordinates == "2d" and [g.smiles for g in flat.test] == [g.smiles for g in deep.test]
    multi = [(a, b) for a, b in zip(flat.train, deep.train) if a.num_nodes > 1]  # one atom: distance 0 either way
    changed = sum(not torch.equal(a.dist, b.dist) for a, b in multi)
    assert changed >= len(multi) - deep.conformer_fallback_2d
