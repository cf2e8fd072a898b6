"""Early stopping (MO-ASHA): the rung rule against brute force on fixed vectors, the
spec's checks, and a real sweep in which trials are stopped at a rung."""
from __future__ import annotations

import io
import itertools
import math

import numpy as np
import optuna
import pytest
from rich.console import Console

from orchestrator.executor import InProcessExecutor
from orchestrator.spec import SpecError, parse_spec
from orchestrator.stopping import crowding_distance, goes_on, non_dominated_fronts, ranking, rung_epochs, tolerances
from orchestrator.sweep import Sweep
from tests.conftest import tiny_spec


def _dominates(a, b, dirs) -> bool:
    s = [-1 if d == "maximize" else 1 for d in dirs]
    a, b = [x * k for x, k in zip(a, s)], [x * k for x, k in zip(b, s)]
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def _brute_fronts(pts, dirs):
    """Front of each point: 0 if nothing dominates it, else 1 + the largest front of those that do."""
    front = {}
    for _ in range(len(pts)):
        for i, p in enumerate(pts):
            doms = [j for j, q in enumerate(pts) if _dominates(q, p, dirs)]
            if all(j in front for j in doms):
                front[i] = 1 + max((front[j] for j in doms), default=-1)
    return front


@pytest.mark.parametrize("seed", range(12))
def test_fronts_and_ranking_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(2, 14)), int(rng.integers(2, 4))
    pts = rng.integers(0, 5, size=(n, m)).astype(float)  # small integers: ties and duplicates happen
    dirs = ["maximize"] + ["minimize"] * (m - 1)
    brute = _brute_fronts(pts.tolist(), dirs)
    fronts = non_dominated_fronts(pts, dirs)
    assert {i: k for k, f in enumerate(fronts) for i in f} == brute
    order = ranking(pts, dirs)
    assert sorted(order) == list(range(n))
    ranks = [brute[i] for i in order]
    assert ranks == sorted(ranks)  # every front before the next
    mins = pts * np.array([-1.0] + [1.0] * (m - 1))  # every objective minimised
    for f in fronts:  # within a front: larger crowding distance first, then the objectives in order, then arrival
        cd = dict(zip(f, crowding_distance(mins[f])))
        inside = [i for i in order if i in cd]
        assert inside == sorted(f, key=lambda i: (-cd[i], tuple(mins[i]), i))


def test_crowding_distance_by_hand():
    pts = np.array([[0.0, 4.0], [1.0, 2.0], [2.0, 1.0], [4.0, 0.0]])
    cd = crowding_distance(pts)
    assert math.isinf(cd[0]) and math.isinf(cd[3])
    assert cd[1] == pytest.approx(2 / 4 + 3 / 4) and cd[2] == pytest.approx(3 / 4 + 2 / 4)


def test_the_rung_rule():
    dirs = ["maximize", "minimize"]
    # fewer than eta trials at the rung: everyone goes on
    assert goes_on({"a": [0.1, 9.0]}, "a", dirs, eta=3)
    assert goes_on({"a": [0.9, 1.0], "b": [0.1, 9.0]}, "b", dirs, eta=3)
    # n = 3, eta = 3: only the first of the ranking goes on (ceil(3/3) = 1)
    rung = {"a": [0.5, 5.0], "b": [0.9, 1.0], "c": [0.1, 9.0]}  # b dominates both
    assert [goes_on(rung, k, dirs, 3) for k in rung] == [False, True, False]
    # n = 4, eta = 3: two go on (ceil(4/3) = 2); a and d trade off on the first front
    rung = {"a": [0.9, 5.0], "b": [0.5, 6.0], "c": [0.2, 9.0], "d": [0.6, 1.0]}
    assert [k for k in rung if goes_on(rung, k, dirs, 3)] == ["a", "d"]
    # brute force on every 5-subset of fixed vectors: exactly ceil(n/eta) go on, and never a dominated
    # trial while one that dominates it stops
    vecs = {i: [v, c] for i, (v, c) in enumerate([(0.9, 3), (0.8, 1), (0.7, 2), (0.5, 5), (0.4, 0.5), (0.3, 9)])}
    for keys in itertools.combinations(vecs, 5):
        rung = {k: vecs[k] for k in keys}
        kept = [k for k in keys if goes_on(rung, k, dirs, 2)]
        assert len(kept) == 3
        for k in keys:
            if k not in kept:
                assert not any(_dominates(rung[k], rung[j], dirs) for j in kept)


def test_ties_do_not_go_against_the_newest_and_nan_is_worst():
    dirs = ["maximize", "minimize", "minimize"]
    # memory equal for all (one variant): c has the best score and is on the first front
    assert goes_on({"a": [0.5, 10, 1.0], "b": [0.4, 10, 0.9], "c": [0.9, 10, 1.1]}, "c", dirs, 3)
    # a non-finite score counts as the worst, whoever came first
    rung = {"a": [float("nan"), 1.0, 1.0], "b": [0.9, 1.0, 1.0]}
    assert ranking(np.array(list(rung.values())), dirs) == [1, 0]
    assert not goes_on(rung, "a", dirs, 2) and goes_on(rung, "b", dirs, 2)


def test_rung_epochs():
    assert rung_epochs(1, 3, 10) == [1, 3, 9]
    assert rung_epochs(1, 3, 9) == [1, 3]
    assert rung_epochs(2, 2, 9) == [2, 4, 8]


def _spec(tmp_path, cache_dir, **stopping):
    return tiny_spec(tmp_path, cache_dir, {"linear_probe": {"search": {"lr": {"type": "float", "low": 1e-4,
                                                                            "high": 0.05, "log": True}}}},
                     train={"epochs": 4, "batch_size": 32},
                     budget={"trials_per_cell": 6, "n_startup_trials": 6, "sampler": "random",
                             "stopping": {"type": "mo_asha", "min_epochs": 1, "reduction_factor": 2, **stopping}})


@pytest.mark.parametrize("change, words", [
    (lambda d: d["budget"]["stopping"].update(min_epochs=4), "budget.stopping.min_epochs: 4 is not below train.epochs"),
    (lambda d: d["budget"]["stopping"].update(reduction_factor=1), "budget.stopping.reduction_factor"),
    (lambda d: d["budget"]["stopping"].update(scope="everything"), "budget.stopping.scope"),
    (lambda d: d["budget"]["stopping"].update(type="hyperband"), "budget.stopping.type"),
])
def test_bad_stopping_is_refused_with_its_path(tmp_path, change, words):
    d = _spec(tmp_path, tmp_path / "cache")
    change(d)
    with pytest.raises(SpecError, match=words.replace("(", r"\(")):
        parse_spec(d, "s.yaml")


def test_a_sweep_stops_low_ranked_trials_at_their_rungs(tmp_path, cache_dir):
    spec = parse_spec(_spec(tmp_path, cache_dir))
    out = io.StringIO()
    run = Sweep(spec, console=Console(file=out, width=200)).execute(executor=InProcessExecutor())
    records = {r.optuna_trial: r for r in run.trial_records()}
    assert len(records) == 6  # stopped trials use budget like any ended trial
    stopped = [r for r in records.values() if r.status == "stopped"]
    done = [r for r in records.values() if r.status == "ok"]
    assert stopped and done, out.getvalue()
    for r in stopped:
        assert r.stopped_at in (1, 2) and len(r.metrics.history) == r.stopped_at < 4
        assert [g.epoch for g in r.rungs] == [1, 2][:len(r.rungs)]
        assert set(r.rungs[-1].values) == {"score", "train_memory_mb", "latency_ms_per_graph"}
        assert r.values == [r.rungs[-1].values[o] for o in r.objective_names]
        assert f"#{r.optuna_trial}: stopped at rung epoch {r.stopped_at}" in out.getvalue()
    for r in done:
        assert len(r.metrics.history) == 4 and [g.epoch for g in r.rungs] == [1, 2]
        # a linear probe's work per call does not change as it trains: its latency is timed at the first rung only
        assert r.rungs[0].values["latency_ms_per_graph"] == r.rungs[1].values["latency_ms_per_graph"]
    # the decisions are in the storage; stopped trials are PRUNED, so Optuna's own view (best_trials,
    # the dashboard's front) never shows a rung value as a finished one
    study = optuna.load_study(study_name=spec.cells()[0].id, storage=run.sqlite_url())
    for t in study.trials:
        r = records[t.number]
        want = optuna.trial.TrialState.PRUNED if r.status == "stopped" else optuna.trial.TrialState.COMPLETE
        assert t.state == want and (t.values is None) == (r.status == "stopped")
        for g in r.rungs:
            assert t.user_attrs[f"rung:{g.epoch}"] == [g.values[o] for o in r.objective_names]
        assert t.user_attrs[f"rung:{r.rungs[-1].epoch}:go"] is (r.status == "ok")
        assert t.user_attrs.get("stopped_at") == r.stopped_at
    assert study.best_trials and all(records[t.number].status == "ok" for t in study.best_trials)
    # the first trial to reach a rung always goes on (n < eta)
    assert records[0].status == "ok"
    # results.csv: stopped rows with the epoch reached and their rung values
    import pandas as pd

    from reports.export import rows

    df = rows(list(records.values())).set_index("trial")
    for r in stopped:
        assert df.loc[r.optuna_trial, "status"] == "stopped"
        assert df.loc[r.optuna_trial, "stopped_at_epoch"] == r.stopped_at
        assert df.loc[r.optuna_trial, "rung.score"] == pytest.approx(r.rungs[-1].values["score"])
    assert pd.isna(df.loc[done[0].optuna_trial, "stopped_at_epoch"])


@pytest.mark.e2e
def test_a_sweep_stops_trials_through_ray_slots(tmp_path, cache_dir):
    """The same rule through long-lived Ray Train slots: rank 0 reports to its mailbox and
    waits; the driver answers while it waits for results."""
    d = _spec(tmp_path, cache_dir, scope="dataset")
    d["resources"] = {"max_concurrent_trials": 2, "cpus_per_worker": 1}
    d["methods"]["bitfit"] = {}
    spec = parse_spec(d)
    out = io.StringIO()
    run = Sweep(spec, console=Console(file=out, width=200)).execute(num_cpus=2)
    records = run.trial_records()
    assert len(records) == 12, [(r.status, r.error) for r in records]
    assert all(r.executor is not None and r.executor.kind == "ray_slots" for r in records), [(r.status, r.error) for r in records]
    stopped = [r for r in records if r.status == "stopped"]
    assert stopped and all(r.status in ("ok", "stopped") for r in records), out.getvalue()
    for r in stopped:
        assert len(r.metrics.history) == r.stopped_at < 4
    # scope dataset: a rung ranks both variants' trials together
    studies = {c.id: optuna.load_study(study_name=c.id, storage=run.sqlite_url()) for c in spec.cells()}
    assert all(any("rung:1" in t.user_attrs for t in s.trials) for s in studies.values())


def test_rung_decisions_are_derived_from_storage_and_stand_after_a_driver_dies(tmp_path):
    """Resume mid-rung, without training: a driver records rung reports and decisions, then
    dies; a new driver (fresh Studies and Rungs on the same storage) keeps every decision
    made (a trial that reports again gets the same answer, its stored values unchanged) and
    ranks the next report against what the storage holds, as the rule says."""
    from orchestrator.resolve import directions
    from orchestrator.stopping import Rungs
    from orchestrator.storage import RunDir
    from orchestrator.studies import Studies
    from runfolder import Rung

    spec = parse_spec(_spec(tmp_path, tmp_path / "cache"))  # scope cell, eta 2, rungs 1 and 2
    run = RunDir(spec.run_dir())
    run.path.mkdir(parents=True)
    names = spec.cell_objectives(spec.cells()[0])

    def rung(score, mem=1.0, lat=0.1):
        return Rung(epoch=1, values=dict(zip(names, (score, mem, lat))))

    first = Studies(spec, run)
    first.open()
    [cell] = first.cells
    study = first.by_cell[cell.id]
    t0, t1, t2 = study.ask(), study.ask(), study.ask()
    rungs = Rungs(spec, first, directions)
    assert rungs.decide(cell, t0, rung(3.0))  # n = 1 < eta: goes on
    assert not rungs.decide(cell, t1, rung(4.0))  # n = 2: rank 2 of 2 > ceil(2/2): RMSE 4 is worse, stops
    # the driver dies here; another opens the same storage
    second = Studies(spec, run)
    second.open()
    again = Rungs(spec, second, directions)
    fresh = {t.number: optuna.trial.Trial(second.by_cell[cell.id], second.trial_id(cell, t.number))
             for t in (t0, t1, t2)}
    assert not again.decide(cell, fresh[1], rung(1.0))  # reported again (retried): the decision made stands
    assert fresh[1].user_attrs["rung:1"] == [4.0, 1.0, 0.1]  # and its first values stay
    go = again.decide(cell, fresh[2], rung(3.5))
    assert go == goes_on({0: [3.0, 1.0, 0.1], 1: [4.0, 1.0, 0.1], 2: [3.5, 1.0, 0.1]}, 2,
                         directions(spec, cell), 2)
    assert fresh[2].user_attrs["rung:1:go"] is go


def test_scope_dataset_keeps_one_trial_of_every_variant_going(tmp_path):
    """Scope dataset: a variant whose trials all rank below another's still has its first
    trial at each rung go on (so it has a finished point on the fronts); its later ones
    are ranked as the rule says."""
    from orchestrator.resolve import directions
    from orchestrator.stopping import Rungs
    from orchestrator.storage import RunDir
    from orchestrator.studies import Studies
    from runfolder import Rung

    d = _spec(tmp_path, tmp_path / "cache", scope="dataset")  # eta 2
    d["methods"]["bitfit"] = {}
    spec = parse_spec(d)
    run = RunDir(spec.run_dir())
    run.path.mkdir(parents=True)
    studies = Studies(spec, run)
    studies.open()
    probe, bitfit = sorted(studies.cells, key=lambda c: c.method != "linear_probe")
    names = spec.cell_objectives(probe)
    rungs = Rungs(spec, studies, directions)

    def report(cell, score):
        t = studies.by_cell[cell.id].ask()
        return rungs.decide(cell, t, Rung(epoch=1, values=dict(zip(names, (score, 1.0, 0.1)))))

    assert report(probe, 1.0) and report(probe, 0.9)  # n < eta, then rank 1 of 2
    assert report(bitfit, 5.0)  # ranks last of 3 (RMSE 5), but is bitfit's first at this rung
    assert not report(bitfit, 6.0)  # ranked: 4th of 4 > ceil(4/2)
    assert not report(probe, 7.0)  # probe has gone on already: ranked, last of 5


def test_timing_noise_picks_no_survivor():
    """One variant: memory constant, latencies that differ only within their noise. Without the
    noise, the fastest-timed trial is an end of the front (infinite crowding distance) and goes
    on whatever its score; with it, latency ties and the best scores go on."""
    dirs = ["maximize", "minimize", "minimize"]
    rung = {0: [0.70, 5.0, 1.00], 1: [0.60, 5.0, 0.97], 2: [0.72, 5.0, 1.02], 3: [0.71, 5.0, 1.01],
            4: [0.50, 5.0, 0.99], 5: [0.69, 5.0, 1.03]}
    se = {k: [float("nan"), 0.0, 0.02] for k in rung}  # a latency median's standard error of 0.02 ms
    survivors = lambda noise: {k for k in rung if goes_on(rung, k, dirs, 3, noise)}  # noqa: E731
    assert 1 in survivors(None)  # the fastest-timed, second-worst score: noise picked it
    assert survivors(se) == {2, 3}  # the two best scores, latency a tie
    # a real latency difference still counts: trial 1 twice as fast is a point of its own on the front
    rung[1][2] = 0.5
    assert 1 in survivors(se)


def test_tolerances_are_twice_the_se_of_the_difference_and_a_relative_floor():
    v = np.array([[0.5, 10.0, 1.0], [0.6, 10.0, 1.1]])
    se = np.array([[np.nan, 0.0, 0.03], [np.nan, 0.0, 0.04]])
    tol = tolerances(v, se, relative=0.0)
    assert tol[0, 1, 2] == pytest.approx(2 * 0.05) and tol[0, 1, 0] == 0.0 and tol[0, 1, 1] == 0.0
    tol = tolerances(v, se, relative=0.05)
    assert tol[0, 1, 1] == pytest.approx(0.5) and tol[0, 1, 2] == pytest.approx(0.1) and tol[0, 1, 0] == 0.0
    # with tolerances, fronts never lose a point, even where dominance is not transitive
    pts = np.array([[0.0, 0.0], [0.05, -0.05], [0.1, -0.1]])
    fronts = non_dominated_fronts(pts, ["minimize", "minimize"], np.full((3, 3, 2), 0.06))
    assert sorted(i for f in fronts for i in f) == [0, 1, 2]


def test_a_rung_reports_the_best_score_so_far_and_the_deployed_latency(tmp_path, cache_dir, monkeypatch):
    """LoRA at a rung is timed merged, as at the end; the score is the best epoch's so far."""
    import workloads.peft.lora as lora
    from workloads import run_trial
    from workloads.config import TrialConfig

    merged = []
    real = lora.merged_copy
    monkeypatch.setattr(lora, "merged_copy", lambda m: merged.append(1) or real(m))
    d = tiny_spec(tmp_path, cache_dir, {"lora": {"params": {"r": 2}}})
    cfg = TrialConfig(dataset=d["datasets"][0], backbone=d["backbones"][0],
                      method={"name": "lora", "params": {"r": 2}}, train={"epochs": 4, "batch_size": 32, "lr": 0.05},
                      profile=d["profile"], cache_dir=str(cache_dir), rungs=[1, 2, 3], device="cpu")
    record = run_trial(cfg, rung=lambda r: True)
    assert merged and len(merged) >= 2  # timed merged at the first rung, and at the end
    scores = [g.values["score"] for g in record.rungs]
    history = [e.val_score for e in record.metrics.history]
    for g in record.rungs:  # RMSE: lower is better
        assert g.values["score"] == pytest.approx(min(history[:g.epoch]))
        assert g.noise["latency_ms_per_graph"] >= 0 and g.noise["train_memory_mb"] == 0
    assert scores == sorted(scores, reverse=True)  # the best so far never gets worse


def test_nan_scores_rank_by_their_costs():
    """A trial whose score is NaN is the worst on its score; among such trials the costs decide
    (equal infinities differ by 0, not NaN)."""
    nan = float("nan")
    assert ranking(np.array([[nan, 3.0], [nan, 1.0], [nan, 2.0]]), ["maximize", "minimize"]) == [1, 2, 0]
