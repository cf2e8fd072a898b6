import pytest

from reports.summary import summarize as _summarize
from runfolder import TrialRecord

# what the driver writes into families.json: no method or task name is known to the reports
FAMILIES = {"molecules": {"title": "Molecules, by property", "full_reference": ["full"]}}


def summarize(records, families=FAMILIES, **kw):
    return _summarize(records, families, **kw)


def rec(ds, method, score, mem, lat, n, direction="maximize", status="ok", backbone="g", metrics=None, **more):
    """A trial record as the driver completes it (``metrics``: more of its metrics)."""
    if status != "ok":
        return TrialRecord(status=status, dataset_name=ds, backbone_name=backbone, method=method, error="boom",
                           optuna_trial=n, **more)
    return TrialRecord.model_validate({
        "status": "ok", "task": "molecules", "dataset_name": ds, "backbone_name": backbone, "method": method,
        "base_method": method, "optuna_trial": n, "params": {}, "cell": f"{ds}__{backbone}__{method}",
        "trainable_params": 10, "total_params": 100,
        "metrics": {"metric": "roc_auc" if direction == "maximize" else "rmse", "direction": direction,
                    "val_score": score, **(metrics or {})},
        "objectives": {"score": score, "train_memory_mb": mem, "latency_ms_per_graph": lat}, **more,
    })


def seed_result(seed, peak_mb, ms):
    timing = {"device": "cpu", "method": "x", "batch_size": 8, "median_s": ms / 1e3, "p90_s": ms / 1e3, "repeats": 3,
              "warmup": 1, "num_threads": 1, "ms_per_unit": ms}
    return {"seed": seed, "val_score": 0.8, "test_score": 0.7, "best_epoch": 0, "history": [], "train_s": 1.0,
            "trainable_params": 10, "total_params": 100, "latency": timing,
            "memory": {"device": "cpu", "method": "x", "peak_train_bytes": int(peak_mb * 2**20), "peak_train_mb": peak_mb}}


def test_fronts_best_trials_and_failures_per_dataset():
    records = [
        rec("a", "full", 0.90, 100, 1.0, 0),
        rec("a", "full", 0.80, 120, 0.5, 1),      # dominated on memory, best on latency
        rec("a", "lora", 0.85, 50, 2.0, 0),
        rec("a", "probe", 0.70, 1, 3.0, 0),
        rec("a", "probe", 0.60, 2, 3.0, 1),       # dominated everywhere
        rec("a", "lora", 0, 0, 0, 1, status="failed"),
        rec("a", "lora", 0, 0, 0, 2, status="interrupted"),
        rec("b", "full", 2.0, 10, 1.0, 0, direction="minimize"),
        rec("b", "probe", 3.0, 1, 1.0, 0, direction="minimize"),
    ]
    s = summarize(records)
    a = s["a / g"]
    assert len(a["trials"]) == 5 and len(a["failed"]) == 1 and a["interrupted"] == 1
    assert a["planes"]["train_memory_mb"]["pareto_mask"] == [True, False, True, True, False]
    assert a["planes"]["latency_ms_per_graph"]["pareto_mask"] == [True, True, False, False, False]
    assert [a["trials"][i].objectives["train_memory_mb"] for i in a["planes"]["train_memory_mb"]["front"]] == [1, 50, 100]
    best = {r.method: r.score for r in a["best"]}
    assert best == {"full": 0.90, "lora": 0.85, "probe": 0.70}
    hv = a["planes"]["train_memory_mb"]["hypervolume"]
    assert set(hv) == {"full", "lora", "probe"} and all(v > 0 for v in hv.values())
    # probe: (1, 0.7) against the reference (120 * 1.1, 0.6 - 0.1 * 0.3)
    assert hv["probe"] == pytest.approx((120 * 1.1 + 1e-9 - 1) * (0.7 - 0.57), rel=1e-6)
    b = s["b / g"]
    assert b["direction"] == "minimize"
    assert {r.method: r.score for r in b["best"]} == {"full": 2.0, "probe": 3.0}
    assert b["planes"]["train_memory_mb"]["pareto_mask"] == [True, True]


def test_hypervolume_ranks_a_dominating_method_higher():
    records = [rec("a", "good", 0.9, 10, 1.0, 0), rec("a", "bad", 0.7, 20, 2.0, 0)]
    hv = summarize(records)["a / g"]["planes"]["train_memory_mb"]["hypervolume"]
    assert hv["good"] > hv["bad"] > 0
    assert hv["good"] == pytest.approx((20 * 1.1 - 10) * (0.9 - (0.7 - 0.02)), rel=1e-6)


def test_best_configuration_is_chosen_on_validation_not_test():
    """Validation prefers trial 0, test prefers trial 1: the report picks trial 0 and
    shows its test figure."""
    from reports.summary import seed_stats

    a = rec("a", "lora", 0.80, 10, 1.0, 0, metrics=dict(val_std=0.01, test_score=0.60, test_std=0.02,
                                                          val_scores=[0.79, 0.81], test_scores=[0.58, 0.62]))
    b = rec("a", "lora", 0.70, 10, 1.0, 1, metrics=dict(val_std=0.01, test_score=0.90, test_std=0.0,
                                                          val_scores=[0.70, 0.70], test_scores=[0.90, 0.90]))
    (best,) = summarize([a, b])["a / g"]["best"]
    assert best.optuna_trial == 0
    st = seed_stats(best)
    assert (st["val"], st["test"], st["seeds"]) == (0.80, 0.60, 2)


def test_report_page_says_how_it_selects(tmp_path):
    from reports.html import render

    a = rec("a", "lora", 0.80, 10, 1.0, 0, metrics=dict(val_std=0.01, test_score=0.60, test_std=0.02,
                                                          val_scores=[0.79, 0.81], test_scores=[0.58, 0.62]))
    page = render([a], "t", None, families=FAMILIES)
    assert "Selection is on validation only" in page
    # mean and 95% Student t interval over the 2 seeds: t_{1, 0.975} · s / √2
    from scipy import stats

    hw = lambda xs: stats.t.ppf(0.975, len(xs) - 1) * stats.tstd(xs) / len(xs) ** 0.5  # noqa: E731
    assert f"0.8000 ± {hw([0.79, 0.81]):.4f} (95% t, n=2)" in page
    assert f"0.6000 ± {hw([0.58, 0.62]):.4f} (95% t, n=2)" in page
    one = rec("a", "lora", 0.80, 10, 1.0, 0, metrics=dict(test_score=0.6, val_scores=[0.8], test_scores=[0.6]))
    assert "0.6000 (n=1, no interval)" in render([one], "t", None, families=FAMILIES)


def test_fronts_are_per_dataset_and_backbone():
    records = [rec("a", "full", 0.9, 100, 1.0, 0, backbone="graphormer"),
               rec("a", "full", 0.8, 90, 1.0, 0, backbone="mat"),
               rec("a", "lora", 0.7, 50, 1.0, 0, backbone="mat"),
               rec("b", "full", 0.5, 10, 1.0, 0, backbone="graphormer")]
    s = summarize(records)
    assert sorted(s) == ["a / graphormer", "a / mat", "b / graphormer"]
    assert len(s["a / mat"]["trials"]) == 2 and len(s["a / graphormer"]["trials"]) == 1


def test_trainable_parameters_plane_knee_and_full_reference():
    records = [rec("a", "full", 0.90, 100, 1.0, 0, trainable_params=1000),
               rec("a", "lora", 0.88, 40, 1.1, 0, trainable_params=50),
               rec("a", "probe", 0.60, 5, 0.9, 0, trainable_params=2)]
    a = summarize(records)["a / g"]
    assert list(a["plane_labels"]) == ["train_memory_mb", "latency_ms_per_graph", "trainable_params"]
    assert a["planes"]["trainable_params"]["front"] == [2, 1, 0]
    # lora: nearly full's score for far less memory: the bend of the memory front
    assert a["planes"]["train_memory_mb"]["knee"] == 1
    assert a["full_reference"].method == "full"
    # each variant's own front over score and every searched cost (not trainable parameters)
    assert a["method_fronts"] == {"full": [0], "lora": [1], "probe": [2]}


def test_hypervolume_over_trials_grows_and_ends_at_the_variant_total():
    records = [rec("a", "lora", 0.70, 50, 1.0, 0), rec("a", "lora", 0.60, 60, 1.0, 1),
               rec("a", "lora", 0.90, 40, 1.0, 2), rec("a", "full", 0.80, 100, 1.0, 0)]
    plane = summarize(records)["a / g"]["planes"]["train_memory_mb"]
    tr = plane["hv_over_trials"]["lora"]
    assert tr["trial"] == [0, 1, 2]
    h = tr["hypervolume"]
    assert h[0] > 0 and h[1] == h[0] and h[2] > h[1]  # a dominated trial adds nothing
    assert h[-1] == pytest.approx(plane["hypervolume"]["lora"])


def test_importance_finds_what_drives_each_objective():
    import numpy as np

    rng = np.random.default_rng(0)
    records = []
    for n in range(24):
        r_, lr = int(rng.choice([2, 4, 8, 16])), float(10 ** rng.uniform(-4, -2))
        # score follows lr, memory follows r
        records.append(rec("a", "lora", 0.5 + 10 * lr, 10.0 + 3 * r_, 1.0, n, params={"r": r_, "lr": lr, "fixed": 1}))
    imp = summarize(records)["a / g"]["importance"]["lora"]
    assert set(imp) == {"r", "lr"}  # a parameter that never varied has no importance
    assert imp["r"]["train_memory_mb"]["importance"] > 0.9 and imp["r"]["train_memory_mb"]["rho"] > 0.99
    assert imp["lr"]["score"]["importance"] > 0.9 and imp["lr"]["score"]["rho"] > 0.99
    assert summarize(records[:3])["a / g"]["importance"]["lora"] is None  # too few trials


def test_rerun_command_writes_every_value_in_full():
    import shlex

    from reports.summary import rerun_command

    r = rec("a", "g_adapter_proximal", 0.9, 10, 1.0, 0, metrics={"val_scores": [0.9, 0.9, 0.9]},
            params={"bottleneck": 8, "lr": 0.0012345678901234567, "proximal.weight": 0.1})
    cmd = shlex.split(rerun_command(r, "runs/x y/spec.resolved.yaml"))
    assert cmd[:3] == ["orchestrator", "run", "runs/x y/spec.resolved.yaml"]
    assert cmd[cmd.index("--set") + 1:cmd.index("--seeds")] == ["bottleneck=8", "lr=0.0012345678901234567",
                                                                "proximal.weight=0.1"]
    assert cmd[-2:] == ["--seeds", "3"] and cmd[cmd.index("--backbone") + 1] == "g"


def test_the_page_escapes_names_params_and_errors_from_specs_and_data():
    from reports.html import render

    evil = "<script>alert(1)</script>"
    a = rec(evil, evil, 0.8, 10, 1.0, 0, params={evil: evil}, task=evil)
    bad = rec(evil, evil, 0, 0, 0, 1, status="failed")
    bad.error = evil
    page = render([a, bad], evil, {"host": evil, "packages": {}}, families={evil: {"title": evil}})
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_overview_counts_per_cell_and_overhead():
    from reports.summary import overview

    a = rec("a", "lora", 0.8, 10, 1.0, 0, wall_s=11.0, device={"type": "cpu", "host": "n1", "name": "cpu"},
            timings={"total_s": 10.0, "submitted_unix": 100.0, "driver_received_unix": 111.0})
    b = rec("a", "lora", 0, 0, 0, 1, status="failed", cell="a__g__lora")
    c = rec("a", "lora", 0, 0, 0, 2, status="infeasible", cell="a__g__lora")
    ov = overview([a, b, c], None, "# resolved sweep spec; content hash abc123")
    assert ov["cells"] == {"a__g__lora": {"ok": 1, "failed": 1, "infeasible": 1}}
    assert ov["spec_hash"] == "abc123" and ov["compute_s"] == 10.0 and ov["overhead_s"] == pytest.approx(1.0)
    assert ov["hosts"] == {"n1": 1}
    assert overview([a, b, c], budget=3)["cells_below_budget"] == 0  # failed and infeasible trials use budget
    assert overview([a, b, c], budget=4)["cells_below_budget"] == 1
    assert overview([a, b, c], budget=3, n_cells=3)["cells_below_budget"] == 2  # two cells not started yet
    interrupted = rec("a", "lora", 0, 0, 0, 3, status="interrupted", cell="a__g__lora")
    assert overview([a, b, c, interrupted], budget=4)["cells_below_budget"] == 1  # a crash's trial does not
    s = summarize([a, b, c])["a / g"]
    assert len(s["infeasible"]) == 1 and len(s["failed"]) == 1


def test_exports_one_row_per_trial_with_every_seed(tmp_path):
    import pandas as pd

    from reports.export import write_exports

    a = rec("a", "lora", 0.8, 10, 1.0, 0, params={"r": 4, "lr": 0.01},
            metrics=dict(val_std=0.01, test_score=0.7, test_std=0.02, val_scores=[0.79, 0.81], test_scores=[0.68, 0.72]),
            seeds=[seed_result(0, 10.0, 1.5), seed_result(1, 9.5, 0.5)])
    b = rec("a", "lora", 0, 0, 0, 1, status="failed", params={"r": "8", "lr": 0.1})  # mixed types survive parquet
    csv, parquet = write_exports([a, b], tmp_path, FAMILIES)
    for df in (pd.read_csv(csv), pd.read_parquet(parquet)):
        assert len(df) == 2 and list(df["status"]) == ["ok", "failed"]
        assert df.loc[0, "val_seed1"] == 0.81 and df.loc[0, "test_seed0"] == 0.68
        assert df.loc[0, "peak_train_mb_seed1"] == 9.5 and df.loc[0, "latency_ms_seed0"] == 1.5
        assert df.loc[0, "objective.train_memory_mb"] == 10 and df.loc[1, "error"] == "boom"
    assert pd.read_csv(csv)["param.lr"].tolist() == [0.01, 0.1]


def test_families_name_the_headings_and_the_full_fine_tuning_reference():
    """Which method is a family's full fine-tuning and what its heading says come from
    families.json, never from names the reports know: without it, no reference line and
    the family's own name as its heading."""
    from reports.html import render

    records = [rec("a", "full", 0.90, 100, 1.0, 0), rec("a", "everything", 0.95, 200, 1.0, 0),
               rec("a", "lora", 0.85, 50, 1.0, 0, plugins=["proximal"])]
    records[2].base_method = "everything"  # a plug-in on the reference method is no longer the reference
    assert summarize(records)["a / g"]["full_reference"].method == "full"
    ref = summarize(records, {"molecules": {"title": "M", "full_reference": ["everything"]}})["a / g"]
    assert ref["full_reference"].method == "everything"
    assert summarize(records, {})["a / g"]["full_reference"] is None
    assert summarize(records, {"other": {"title": "O", "full_reference": ["full"]}})["a / g"]["full_reference"] is None
    page = render(records, "t", None, families=FAMILIES)
    assert "Molecules, by property" in page and "full fine-tuning (full, best)" in page
    page = render(records, "t", None, families={})
    assert "<h2 class='family' id='family-molecules'>molecules</h2>" in page and "full fine-tuning (" not in page


def test_a_group_of_failed_trials_takes_its_family_from_its_dataset_or_the_only_family():
    ok, bad = rec("a", "lora", 0.8, 10, 1.0, 0), rec("a", "lora", 0, 0, 0, 1, status="failed", backbone="h")
    assert summarize([ok, bad])["a / h"]["family"] == "molecules"  # the dataset's other trials say
    assert summarize([bad])["a / h"]["family"] == "molecules"  # the sweep has one family
    assert summarize([bad], {})["a / h"]["family"] == "?"


def test_stopped_trials_are_counted_never_on_a_front():
    """A trial stopped early at a rung used budget, but its score is not final."""
    import pandas as pd

    from reports.export import rows
    from reports.html import render
    from reports.summary import overview

    records = [rec("a", "lora", 0.8, 10, 1.0, 0), rec("a", "lora", 0.7, 20, 1.0, 1),
               rec("a", "lora", 0.99, 1, 0.1, 2, status="stopped", cell="a__g__lora")]
    a = summarize(records)["a / g"]
    assert len(a["trials"]) == 2 and len(a["stopped"]) == 1 and not a["failed"]
    assert all(r.status == "ok" for r in a["best"]) and len(a["planes"]["train_memory_mb"]["pareto_mask"]) == 2
    ov = overview(records, budget=3)
    assert ov["cells"] == {"a__g__lora": {"ok": 2, "stopped": 1}} and ov["cells_below_budget"] == 0
    page = render(records, "t", None, families=FAMILIES)
    assert "1 stopped early" in page and "<th>stopped early</th>" in page
    assert "<th>stopped early</th>" not in render(records[:2], "t", None, families=FAMILIES)
    df = rows(records)
    assert list(df["status"]) == ["ok", "ok", "stopped"] and pd.isna(df.loc[2, "val_mean"])


def test_records_written_by_older_code_report_as_before(tmp_path):
    """The records of the code at 420bab7 (upgraded on reading) give the same report and
    the same export columns."""
    from pathlib import Path

    from reports.export import rows
    from reports.html import build_report
    from runfolder import RunDir, load_record

    golden = sorted((Path(__file__).parents[1] / "golden").glob("record-420bab7-*.json"))
    records = [load_record(f.read_text(), str(f)) for f in golden]
    df = rows(records)
    assert list(df["status"]) == ["failed", "infeasible", "interrupted", "ok"]  # by file name
    assert list(df.columns) == [
        "cell", "family", "dataset", "backbone", "method", "base_method", "plugins", "trial", "status", "error",
        "infeasible_cause", "limit_objective", "limit", "measured",  # added since: an infeasible trial's cause
        "param.lr", "metric", "direction", "seeds", "val_mean", "val_std", "test_mean", "test_std",
        "val_seed0", "test_seed0", "peak_train_mb_seed0", "latency_ms_seed0", "val_seed1", "test_seed1",
        "peak_train_mb_seed1", "latency_ms_seed1", "objective.latency_ms_per_graph", "objective.score",
        "objective.train_memory_mb", "trainable_params", "total_params", "device", "host", "train_s", "trial_s",
        "wall_s",
        # added since: the 95% t intervals over seeds, references, and the chosen configurations' verdicts
        "val_ci95_low", "val_ci95_high", "test_ci95_low", "test_ci95_high", "ci_n", "ci_method", "reference",
        "memory_by", "chosen", "vs_best", "vs_best_p_holm", "vs_full", "vs_full_p_holm", "group_no_signal"]
    assert set(df["family"].dropna()) == {"graph_property"}
    g = summarize(records, {})["freesolv / graphormer"]
    assert (len(g["trials"]), len(g["failed"]), len(g["infeasible"]), g["interrupted"]) == (1, 1, 1, 1)
    run = RunDir(tmp_path / "run")
    for r in records:
        run.write_trial(r.cell, r.optuna_trial, r)
    page = build_report(run.path).read_text()  # no families.json: the family's name as its heading
    assert ">graph_property</h2>" in page and "1 trial(s) were cut short" in page
    run.write_families({"graph_property": {"title": "Graph-level", "full_reference": ["lora"]}})
    page = build_report(run.path).read_text()
    assert ">Graph-level</h2>" in page and "full fine-tuning (lora, best)" in page


def _ref(ds, kind, scores, mem=0.001, lat=0.0001, direction="minimize"):
    import statistics

    return rec(ds, kind, statistics.fmean(scores), mem, lat, 0, direction=direction,
               reference={"kind": kind, "memory_by": "tracemalloc peak while fitting"},
               metrics=dict(test_score=statistics.fmean(scores), val_scores=list(scores), test_scores=list(scores)))


def _trial(ds, method, n, tests, mem, direction="minimize"):
    import statistics

    return rec(ds, method, statistics.fmean(tests), mem, 1.0, n, direction=direction,
               metrics=dict(test_score=statistics.fmean(tests), val_scores=list(tests), test_scores=list(tests)))


def test_references_are_lines_and_rows_never_points_on_a_front():
    """A constant predictor with almost no memory would dominate every cheap trial if it
    were a point: it is kept off fronts and hypervolumes, and shows in the comparisons."""
    from reports.html import render

    trials = [_trial("a", "full", 0, [1.0, 1.1, 0.9, 1.05, 0.95], 100),
              _trial("a", "lora", 0, [1.5, 1.6, 1.4, 1.55, 1.45], 10)]
    const = _ref("a", "constant", [3.0] * 5)
    g = summarize(trials + [const], {"molecules": {"full_reference": ["full"]}})["a / g"]
    assert [r.method for r in g["trials"]] == ["full", "lora"] and [r.method for r in g["references"]] == ["constant"]
    plane = g["planes"]["train_memory_mb"]
    assert plane["pareto_mask"] == [True, True] and set(plane["hypervolume"]) == {"full", "lora"}
    rows = {c.variant: c for c in g["verdicts"]["rows"]}
    assert g["verdicts"]["rows"][0].variant == "full"  # the best test mean (RMSE, lower is better)
    assert rows["lora"].vs_best.verdict == "worse" and rows["constant"].vs_best.verdict == "worse"
    assert rows["lora"].vs_reference.verdict == "worse" and g["verdicts"]["no_signal"] is False
    page = render(trials + [const], "t", None, families={"molecules": {"full_reference": ["full"]}})
    assert "constant (reference)" in page and "reference (constant; memory: tracemalloc" in page
    assert "Signal: at least one searched variant beats the constant predictor" in page


def test_a_group_where_nothing_beats_the_constant_says_no_signal():
    from reports.html import render

    trials = [_trial("a", "full", 0, [3.1, 2.8, 3.3, 2.9, 3.05], 100),
              _trial("a", "lora", 0, [3.2, 2.9, 3.0, 3.1, 2.95], 10)]
    records = trials + [_ref("a", "constant", [3.0] * 5)]
    g = summarize(records, {})["a / g"]
    assert g["verdicts"]["no_signal"] is True
    assert "<b>No signal</b>" in render(records, "t", None, families={})
    # with one seed nothing can be tested: the verdict says so instead of guessing
    one = [_trial("a", "full", 0, [1.0], 100), _trial("a", "lora", 0, [2.0], 10), _ref("a", "constant", [3.0])]
    rows = summarize(one, {})["a / g"]["verdicts"]["rows"]
    assert all(c.vs_best.p_holm is None for c in rows[1:])


def test_a_reference_cell_of_one_trial_is_not_below_its_budget():
    from reports.summary import overview

    records = [_trial("a", "full", n, [1.0], 100) for n in range(2)] + [_ref("a", "constant", [3.0])]
    ov = overview(records, budget=2, n_cells=2)
    assert ov["cells_below_budget"] == 0
    assert overview(records[:1] + records[2:], budget=2, n_cells=2)["cells_below_budget"] == 1


def test_results_csv_carries_intervals_and_verdicts():
    from scipy import stats

    from reports.export import rows

    full = _trial("a", "full", 0, [1.0, 1.1, 0.9, 1.05, 0.95], 100)
    lora = _trial("a", "lora", 0, [1.5, 1.6, 1.4, 1.55, 1.45], 10)
    lora_other = _trial("a", "lora", 1, [1.9, 2.0, 1.8, 1.95, 1.85], 5)  # not chosen: worse on validation
    const = _ref("a", "constant", [3.0] * 5)
    df = rows([full, lora, lora_other, const], {"molecules": {"full_reference": ["full"]}}).set_index(["method", "trial"])
    lo, hi = stats.ttest_1samp([1.5, 1.6, 1.4, 1.55, 1.45], 0).confidence_interval(0.95)
    assert df.loc[("lora", 0), "test_ci95_low"] == pytest.approx(lo) and df.loc[("lora", 0), "test_ci95_high"] == pytest.approx(hi)
    assert df.loc[("lora", 0), "ci_n"] == 5 and df.loc[("lora", 0), "vs_best"] == "worse"
    best = [1.0, 1.1, 0.9, 1.05, 0.95]
    p_lora = stats.ttest_rel([1.5, 1.6, 1.4, 1.55, 1.45], best).pvalue
    p_const = stats.ttest_rel([3.0] * 5, best).pvalue
    # Holm over the 2 tests against the best (lora's and the constant's), by hand
    lo_p, hi_p = sorted([p_lora, p_const])
    holm = {lo_p: min(1.0, 2 * lo_p), hi_p: min(1.0, max(2 * lo_p, hi_p))}
    assert df.loc[("lora", 0), "vs_best_p_holm"] == pytest.approx(holm[p_lora], rel=1e-9)
    assert df.loc[("full", 0), "vs_best"] == "best" and df.loc[("full", 0), "vs_full"] == "reference"
    assert df.loc[("constant", 0), "reference"] == "constant" and df.loc[("constant", 0), "memory_by"].startswith("tracemalloc")
    assert bool(df.loc[("lora", 0), "group_no_signal"]) is False
    assert "vs_best" not in df.columns or df.loc[("lora", 1), "vs_best"] is None or str(df.loc[("lora", 1), "vs_best"]) == "<NA>"


def test_confirmations_are_used_only_when_every_variant_has_one():
    """A group whose confirmation runs are not all there (a sweep still running, one that
    failed) tests the search's runs for every variant, so every test pairs the same seeds;
    the best is chosen on validation, and the Pareto table's target is the search's best."""
    import statistics

    def conf(method, n, tests):
        r = _trial("a", method, n, tests, 10)
        r.seeds = []
        r.metrics.test_scores = list(tests)
        r.confirms = n
        return r

    full = _trial("a", "full", 0, [1.0, 1.1, 0.9], 100)
    lora = _trial("a", "lora", 0, [1.5, 1.6, 1.4], 10)
    only_full = summarize([full, lora, conf("full", 0, [2.0, 2.1, 1.9, 2.2, 1.8])], {})["a / g"]["verdicts"]
    assert only_full["confirmed"] is False and only_full["chosen"]["full"] is full
    both = summarize([full, lora, conf("full", 0, [2.0, 2.1, 1.9, 2.2, 1.8]),
                      conf("lora", 0, [1.0, 1.1, 0.9, 1.05, 0.95])], {})["a / g"]["verdicts"]
    assert both["confirmed"] is True and {c.variant: c.n for c in both["rows"]} == {"full": 5, "lora": 5}
    assert both["chosen"]["full"].confirms == 0 and both["search_best"] is full
    # lora has the better validation mean among the confirmations: it is the best, the target of the tests
    assert both["rows"][0].variant == "lora" and both["rows"][1].vs_best.verdict == "worse"
    assert statistics.fmean(both["chosen"]["full"].metrics.test_scores) == 2.0


def test_the_report_pools_each_variant_against_full_fine_tuning_across_datasets(tmp_path):
    """Three datasets with confirmation runs, lora better than full on each: pooled, the claim
    'lora beats full' is reproduced; with the search's runs only (no confirmations) nothing
    is pooled; b3db and b3db_regression count as one block."""
    from reports.html import _pooled_html
    from reports.pooled import pooled_versus_full

    def conf(ds, method, tests):
        return _confirmed(_trial(ds, method, 0, tests, 10))

    def _confirmed(r):
        r.seeds, r.confirms = [], 0
        return r

    records = []
    for ds, shift in (("freesolv", 0.0), ("solubility", 0.1), ("b3db_regression", 0.05), ("CHEMBL214_Ki", 0.2)):
        base = [1.0 + shift + 0.02 * k for k in range(5)]
        records += [_trial(ds, "full", 0, base[:3], 100), _trial(ds, "lora", 0, base[:3], 10),
                    _ref(ds, "constant", [3.0] * 5),
                    conf(ds, "full", base), conf(ds, "lora", [x - 0.5 + 0.01 * (k % 2) for k, x in enumerate(base)]),
                    _confirmed(_ref(ds, "constant", [3.0] * 5))]
    families = {"molecules": {"title": "Molecules", "full_reference": ["full"]}}
    pooled = pooled_versus_full(_summarize(records, families))
    [(key, [v])] = pooled.items()
    assert key == "molecules / g" and v.claim.label == "lora beats full" and len(v.claim.blocks) == 4
    assert v.verdict == "reproduced" and v.claim.pooled.effect > 0
    assert "lora beats full" in _pooled_html(pooled) and "reproduced" in _pooled_html(pooled)
    searched_only = [r for r in records if r.confirms is None]
    assert pooled_versus_full(_summarize(searched_only, families)) == {}
    one_block = [r for r in records if r.dataset_name in ("b3db_regression",)]
    assert pooled_versus_full(_summarize(one_block, families)) == {}
