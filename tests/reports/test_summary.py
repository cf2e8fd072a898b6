import pytest

from reports.summary import summarize


def rec(ds, method, score, mem, lat, n, direction="maximize", status="ok"):
    if status != "ok":
        return {"status": status, "dataset_name": ds, "method": method, "error": "boom", "optuna_trial": n}
    return {
        "status": "ok", "dataset_name": ds, "method": method, "optuna_trial": n, "params": {},
        "trainable_params": 10, "total_params": 100,
        "metrics": {"metric": "roc_auc" if direction == "maximize" else "rmse", "direction": direction},
        "objectives": {"score": score, "train_memory_mb": mem, "latency_ms_per_graph": lat},
    }


def test_fronts_best_trials_and_failures_per_dataset():
    records = [
        rec("a", "full", 0.90, 100, 1.0, 0),
        rec("a", "full", 0.80, 120, 0.5, 1),      # dominated on memory, best on latency
        rec("a", "lora", 0.85, 50, 2.0, 0),
        rec("a", "probe", 0.70, 1, 3.0, 0),
        rec("a", "probe", 0.60, 2, 3.0, 1),       # dominated everywhere
        rec("a", "lora", 0, 0, 0, 1, status="failed"),
        dict(rec("a", "lora", 0, 0, 0, 2, status="failed"), interrupted=True),
        rec("b", "full", 2.0, 10, 1.0, 0, direction="minimize"),
        rec("b", "probe", 3.0, 1, 1.0, 0, direction="minimize"),
    ]
    s = summarize(records)
    a = s["a"]
    assert len(a["trials"]) == 5 and len(a["failed"]) == 1 and a["interrupted"] == 1
    assert a["planes"]["train_memory_mb"]["pareto_mask"] == [True, False, True, True, False]
    assert a["planes"]["latency_ms_per_graph"]["pareto_mask"] == [True, True, False, False, False]
    assert [a["trials"][i]["objectives"]["train_memory_mb"] for i in a["planes"]["train_memory_mb"]["front"]] == [1, 50, 100]
    best = {r["method"]: r["objectives"]["score"] for r in a["best"]}
    assert best == {"full": 0.90, "lora": 0.85, "probe": 0.70}
    hv = a["planes"]["train_memory_mb"]["hypervolume"]
    assert set(hv) == {"full", "lora", "probe"} and all(v > 0 for v in hv.values())
    # probe: (1, 0.7) against the reference (120 * 1.1, 0.6 - 0.1 * 0.3)
    assert hv["probe"] == pytest.approx((120 * 1.1 + 1e-9 - 1) * (0.7 - 0.57), rel=1e-6)
    b = s["b"]
    assert b["direction"] == "minimize"
    assert {r["method"]: r["objectives"]["score"] for r in b["best"]} == {"full": 2.0, "probe": 3.0}
    assert b["planes"]["train_memory_mb"]["pareto_mask"] == [True, True]


def test_hypervolume_ranks_a_dominating_method_higher():
    records = [rec("a", "good", 0.9, 10, 1.0, 0), rec("a", "bad", 0.7, 20, 2.0, 0)]
    hv = summarize(records)["a"]["planes"]["train_memory_mb"]["hypervolume"]
    assert hv["good"] > hv["bad"] > 0
    assert hv["good"] == pytest.approx((20 * 1.1 - 10) * (0.9 - (0.7 - 0.02)), rel=1e-6)


def test_best_configuration_is_chosen_on_validation_not_test():
    """Validation prefers trial 0, test prefers trial 1: the report picks trial 0 and
    shows its test figure."""
    from reports.summary import seed_stats

    a = rec("a", "lora", 0.80, 10, 1.0, 0)
    a["metrics"].update(val_score=0.80, val_std=0.01, test_score=0.60, test_std=0.02,
                        val_scores=[0.79, 0.81], test_scores=[0.58, 0.62])
    b = rec("a", "lora", 0.70, 10, 1.0, 1)
    b["metrics"].update(val_score=0.70, val_std=0.01, test_score=0.90, test_std=0.0,
                        val_scores=[0.70, 0.70], test_scores=[0.90, 0.90])
    (best,) = summarize([a, b])["a"]["best"]
    assert best["optuna_trial"] == 0
    st = seed_stats(best)
    assert (st["val"], st["test"], st["seeds"]) == (0.80, 0.60, 2)


def test_report_page_says_how_it_selects(tmp_path):
    from reports.html import render

    a = rec("a", "lora", 0.80, 10, 1.0, 0)
    a.update(memory={"method": "cpu_allocator_events_peak(x)", "device": "cpu"})
    a["metrics"].update(val_score=0.80, val_std=0.01, test_score=0.60, test_std=0.02,
                        val_scores=[0.79, 0.81], test_scores=[0.58, 0.62])
    page = render(summarize([a]), "t", None)
    assert "Selection is on validation only" in page
    assert "0.8000 ± 0.0100" in page and "0.6000 ± 0.0200" in page


def test_fronts_are_per_dataset_and_backbone_when_a_dataset_has_two():
    records = [dict(rec("a", "full", 0.9, 100, 1.0, 0), backbone_name="graphormer"),
               dict(rec("a", "full", 0.8, 90, 1.0, 0), backbone_name="mat"),
               dict(rec("a", "lora", 0.7, 50, 1.0, 0), backbone_name="mat"),
               dict(rec("b", "full", 0.5, 10, 1.0, 0), backbone_name="graphormer")]
    s = summarize(records)
    assert sorted(s) == ["a / graphormer", "a / mat", "b"]
    assert len(s["a / mat"]["trials"]) == 2 and len(s["a / graphormer"]["trials"]) == 1
