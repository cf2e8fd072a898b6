import math

import pytest

from tests.conftest import TINY_ARCH, TINY_PRETRAIN
from workloads import run_trial
from workloads.config import TrialConfig


def cfg(cache_dir, dataset, method, **train):
    return TrialConfig.model_validate({
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
    r = run_trial(cfg(cache_dir, "b3db", "lora"))
    m = r["metrics"]
    assert m["metric"] == "roc_auc" and m["direction"] == "maximize"
    assert 0.0 <= m["test_score"] <= 1.0 and 0 <= m["best_epoch"] < 2 and len(m["history"]) == 2
    o = r["objectives"]
    assert o["score"] == m["test_score"]
    assert o["train_memory_mb"] > 0 and o["latency_ms_per_graph"] > 0
    assert r["memory"]["method"].startswith("tensor_accounting") and r["memory"]["device"] == "cpu"
    assert r["latency"]["batch_size"] == 16 and r["latency"]["num_threads"] == 1
    assert 0 < r["trainable_params"] < r["total_params"]
    assert r["pretrained"]["checkpoint"].endswith(".pt")
    assert r["config"]["method"] == {"name": "lora", "params": {"r": 2}}


def test_regression_rmse_is_in_label_units(cache_dir, freesolv):
    r = run_trial(cfg(cache_dir, "freesolv", "linear_probe", lr=0.01))
    rmse = r["metrics"]["test_score"]
    assert r["metrics"]["direction"] == "minimize"
    # FreeSolv labels span roughly -25..+4 kcal/mol; a sane model is within a few std of them
    assert 0 < rmse < 4 * freesolv.y_std and math.isfinite(rmse)


def test_proximal_method_trains_through_the_hooks(cache_dir):
    c = cfg(cache_dir, "freesolv", "g_adapter")
    c = c.model_copy(update={"method": c.method.model_copy(update={"params": {"proximal_weight": 1.0}})})
    r = run_trial(c)
    assert r["method"] == "g_adapter" and math.isfinite(r["metrics"]["test_score"])
    losses = [h["train_loss"] for h in r["metrics"]["history"]]
    assert all(math.isfinite(x) and x > 0 for x in losses)


def test_same_seed_same_score(cache_dir):
    a = run_trial(cfg(cache_dir, "freesolv", "adapter"))
    b = run_trial(cfg(cache_dir, "freesolv", "adapter"))
    assert a["metrics"]["test_score"] == pytest.approx(b["metrics"]["test_score"], rel=1e-6)
    assert a["objectives"]["train_memory_mb"] == b["objectives"]["train_memory_mb"]
