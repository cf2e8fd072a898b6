"""Confirmation runs (``budget.confirm_seeds``): when a cell's search is over, its
Pareto-optimal configurations train again on fresh seeds; the records are the ledger,
so a lost confirmation runs again with the same result; the reports' statistics use them."""
import io

import pytest
from rich.console import Console

from orchestrator.confirm import selected
from orchestrator.executor import InProcessExecutor
from orchestrator.spec import parse_spec
from orchestrator.sweep import Sweep
from reports.summary import summarize
from runfolder import TrialRecord
from tests.conftest import tiny_spec

METHODS = {"linear_probe": {"search": {"lr": {"type": "float", "low": 1e-3, "high": 0.05, "log": True}}},
           "constant": {}}


def _rec(n, values, status="ok"):
    return TrialRecord(status=status, optuna_trial=n, values=values,
                       objective_names=["score", "train_memory_mb", "latency_ms_per_graph"])


def test_selected_is_the_first_front_best_score_first_at_most_k():
    recs = [_rec(0, [2.0, 10, 1.0]), _rec(1, [1.5, 20, 1.0]), _rec(2, [2.5, 5, 1.0]),
            _rec(3, [3.0, 30, 2.0]),  # dominated by every other
            _rec(4, [1.0, 1, 0.1], status="stopped"), _rec(5, None, status="failed")]
    dirs = ["minimize", "minimize", "minimize"]  # an RMSE
    assert [r.optuna_trial for r in selected(recs, dirs, 5)] == [1, 0, 2]
    assert [r.optuna_trial for r in selected(recs, dirs, 2)] == [1, 0]
    # maximised, trial 2 (2.5, 5, 1.0) dominates trials 0 and 1; trial 3 has the best score
    assert [r.optuna_trial for r in selected(recs, ["maximize", "minimize", "minimize"], 5)] == [3, 2]


def test_a_sweep_confirms_its_selected_configurations_on_fresh_seeds(tmp_path, cache_dir):
    d = tiny_spec(tmp_path, cache_dir, METHODS,
                  budget={"trials_per_cell": 3, "seeds": 1, "confirm_seeds": 3, "confirm_max": 2})
    spec = parse_spec(d)
    out = io.StringIO()
    run = Sweep(spec, console=Console(file=out, width=200)).execute(executor=InProcessExecutor())
    search = run.trial_records()
    conf = run.confirmation_records()
    assert len(search) == 3 + 1  # the probe's budget and the constant's one trial
    probe = [r for r in search if r.method == "linear_probe"]
    want = {r.optuna_trial for r in selected(probe, ["minimize"] * 3, 2)}
    assert {r.confirms for r in conf if r.method == "linear_probe"} == want
    assert [r.confirms for r in conf if r.method == "constant"] == [0]
    for r in conf:
        src = next(s for s in search if s.method == r.method and s.optuna_trial == r.confirms)
        assert r.status == "ok" and r.params == src.params and r.optuna_trial == r.confirms
        assert [s.seed for s in r.seeds] == [1, 2, 3]  # fresh: the search trained seed 0
        assert r.config["train"] == src.config["train"] and r.config["method"] == src.config["method"]
        assert r.rungs == [] and r.config["limits"] == {}
    assert "[confirm]" in out.getvalue()
    # the statistics use the confirmation runs: n = 3 fresh seeds per variant
    g = summarize(search + conf, {})["freesolv / graphormer"]
    rows = {c.variant: c for c in g["verdicts"]["rows"]}
    assert rows["linear_probe"].n == 3 and g["verdicts"]["chosen"]["linear_probe"].confirms in want
    assert g["verdicts"]["chosen"]["constant"].confirms == 0
    # fronts and hypervolumes stay the search's
    assert len(g["trials"]) == 3

    # a lost confirmation is due again; running the sweep again re-creates it with the same figures
    victim = sorted(want)[0]
    before = run.confirm_file("freesolv__graphormer__linear_probe", victim).read_text()
    run.confirm_file("freesolv__graphormer__linear_probe", victim).unlink()
    Sweep(spec, console=Console(file=io.StringIO())).execute(executor=InProcessExecutor())
    again = TrialRecord.model_validate_json(
        run.confirm_file("freesolv__graphormer__linear_probe", victim).read_text())
    old = TrialRecord.model_validate_json(before)
    assert again.metrics.test_scores == old.metrics.test_scores and again.metrics.val_scores == old.metrics.val_scores
    assert len(run.trial_records()) == 4 and len(run.confirmation_records()) == len(conf)  # nothing else ran


def test_confirm_seeds_off_runs_no_confirmation(tmp_path, cache_dir):
    d = tiny_spec(tmp_path, cache_dir, {"constant": {}}, budget={"trials_per_cell": 2})
    run = Sweep(parse_spec(d), console=Console(file=io.StringIO())).execute(executor=InProcessExecutor())
    assert len(run.trial_records()) == 1 and run.confirmation_records() == []
    with pytest.raises(Exception, match="confirm_seeds"):
        parse_spec(tiny_spec(tmp_path, cache_dir, {"constant": {}}, budget={"confirm_seeds": -1}))
