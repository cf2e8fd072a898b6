"""Every sampler a spec can name (TPE with and without constant liar, NSGA-II, random)
keeps proposing valid configurations in a study that holds what the driver tells it:
finished trials, trials stopped early (PRUNED, their rung values beside them), trials over a
limit or out of memory (COMPLETE with a positive constraint), failed ones, and trials
still running. NSGA-II runs past its first generation, so its constrained elite
selection reads them all."""
import random

import optuna
import pytest

from orchestrator import policy
from orchestrator.resolve import make_sampler
from orchestrator.search import distributions
from orchestrator.spec import parse_spec
from runfolder import Rung, TrialRecord
from tests.conftest import tiny_spec

NAMES = ["score", "train_memory_mb", "latency_ms_per_graph"]
DIRS = ["minimize", "minimize", "minimize"]  # FreeSolv: RMSE
SEARCH = {"lora": {"search": {"r": {"type": "categorical", "choices": [2, 4, 8]},
                              "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}}}


def _record(kind: str, rng: random.Random, params: dict) -> TrialRecord:
    score = 1.0 + abs(params["lr"] - 3e-3) * 100 + rng.random()
    mem = 10.0 * params["r"] + rng.random()
    lat = 0.2 + rng.random() * 0.05
    vals = {"score": score, "train_memory_mb": mem, "latency_ms_per_graph": lat}
    if kind == "ok":
        r = TrialRecord(objectives=vals, objective_names=NAMES)
    elif kind == "stopped":
        r = TrialRecord(status="stopped", objectives={}, objective_names=NAMES,
                        rungs=[Rung(epoch=1, values={k: v * 1.5 for k, v in vals.items()})])
    elif kind == "limit":
        r = TrialRecord(objectives={"train_memory_mb": mem}, objective_names=NAMES).mark_infeasible(
            "limit", "over", objective="train_memory_mb", limit=15.0, measured=mem)  # mem is 20 or more
    elif kind == "oom":
        r = TrialRecord(objective_names=NAMES).mark_infeasible("oom", "out of memory")
    else:
        r = TrialRecord.failure("ValueError: no")
        r.objective_names = NAMES
    r.settle()
    return r


@pytest.mark.parametrize("sampler, slots", [("tpe", 1), ("tpe", 2), ("nsga2", 1), ("random", 1)],
                         ids=["tpe", "tpe-constant-liar", "nsga2", "random"])
def test_every_sampler_with_stopped_and_infeasible_trials(tmp_path, sampler, slots):
    spec = parse_spec(tiny_spec(tmp_path, tmp_path / "cache", SEARCH,
                                budget={"sampler": sampler, "n_startup_trials": 4},
                                resources={"max_concurrent_trials": slots}))
    s = make_sampler(spec, 0)
    if sampler == "tpe":
        assert s._constant_liar is (slots > 1)
    study = optuna.create_study(directions=DIRS, sampler=s)
    dists = distributions(spec.methods["lora"].search)
    rng = random.Random(0)
    kinds = ["ok", "stopped", "stopped", "limit", "ok", "oom", "failed", "stopped"]
    running = []
    n = 110 if sampler == "nsga2" else 40  # NSGA-II: past its first generation of 50
    for i in range(n):
        trial = study.ask(dists)
        assert trial.params["r"] in (2, 4, 8) and 1e-4 <= trial.params["lr"] <= 1e-2
        if slots > 1 and i % 5 == 0:
            running.append(trial)  # in flight while the next ones are proposed
            continue
        rec = _record(kinds[i % len(kinds)], rng, trial.params)
        policy.annotate(trial, rec)
        assert policy.tell(study, trial, rec, DIRS)
    for trial in running:  # they end later
        assert policy.tell(study, trial, _record("ok", rng, trial.params), DIRS)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) > 0 and optuna.trial.TrialState.RUNNING not in states
    infeasible = [t for t in study.trials if any(v > 0 for v in t.constraints.values())]
    assert infeasible and all(t.state == optuna.trial.TrialState.COMPLETE for t in infeasible)
    assert any(t.user_attrs.get("stopped_at") == 1 for t in study.trials)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(t.user_attrs.get("stopped_at") == 1 and t.values is None for t in pruned)
    assert study.best_trials and not any(t.state == optuna.trial.TrialState.PRUNED for t in study.best_trials)
