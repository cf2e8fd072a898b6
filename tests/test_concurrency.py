"""Several drivers on one sweep, and drivers killed at random: the budget is shared
exactly, nobody fails another's live trials, and the storage and the records agree.

Drivers run as `orchestrator sweep --executor inprocess` subprocesses (trials in the
driver's own process), so the kills hit the driver and its trial together, and each
restart is quick."""
import glob
import os
import random
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from runfolder import load_record
from tests.conftest import tiny_spec

pytestmark = pytest.mark.e2e
CELL = "freesolv__graphormer__linear_probe"


STOPPING = {"type": "mo_asha", "min_epochs": 1, "reduction_factor": 2}


def _spec(tmp_path, cache_dir, budget, epochs, stopping=None, epochs_budget=None):
    d = tiny_spec(tmp_path, cache_dir, {"linear_probe": {"search": {"lr": {
        "type": "float", "low": 0.001, "high": 0.01, "log": True}}}}, name="shared",
        train={"epochs": epochs, "batch_size": 32},
        budget={**({"epochs_per_cell": epochs_budget} if epochs_budget else {"trials_per_cell": budget}),
                **({"stopping": stopping} if stopping else {})},
        storage={"root": str(tmp_path / "runs"), "cache_dir": str(cache_dir), "heartbeat_s": 1})
    f = tmp_path / "spec.yaml"
    f.write_text(yaml.safe_dump(d))
    return [sys.executable, "-m", "orchestrator.cli", "sweep", str(f), "--executor", "inprocess"]


def _check(tmp_path, budget, epochs_budget=None, concurrency=2, epochs=None):
    """Exactly the budget completed (an epoch budget: spent, and overspent by at most what the
    trials running when it ran out trained), no number twice, every record whole, and
    Optuna's storage and the records agree trial by trial."""
    run = tmp_path / "runs" / "shared"
    files = glob.glob(str(run / "trials" / CELL / "trial-*.json"))
    recs = [load_record(open(f).read(), f) for f in files]  # every record parses (and validates)
    numbers = [r.optuna_trial for r in recs]
    assert len(numbers) == len(set(numbers))
    study = optuna.load_study(study_name=CELL, storage=f"sqlite:///{run / 'optuna.db'}")
    by_number = {r.optuna_trial: r for r in recs}
    assert {t.number for t in study.trials} == set(by_number)
    for t in study.trials:
        r = by_number[t.number]
        assert t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            assert (r.status == "ok" and list(t.values) == r.values) if t.state == TrialState.COMPLETE \
                else (r.status == "stopped" and t.values is None)
            assert all(getattr(r, k) is not None for k in ("metrics", "memory", "config"))
            assert (r.latency is not None and r.objectives) if r.status == "ok" else r.rungs  # stopped: not profiled
            # rung decisions: what the storage holds is what the trial did, whichever driver decided
            for g in r.rungs:
                assert t.user_attrs[f"rung:{g.epoch}"] == [g.values[o] for o in r.objective_names]
                assert t.user_attrs[f"rung:{g.epoch}:go"] is (r.status == "ok" or g.epoch != r.stopped_at)
            assert t.user_attrs.get("stopped_at") == r.stopped_at
        else:
            assert r.status == "interrupted"
    if epochs_budget is None:
        assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials) == budget
    else:
        spent = sum(r.epochs_spent for r in recs)
        assert epochs_budget <= spent <= epochs_budget + concurrency * epochs, (spent, epochs_budget)
        assert all(r.epochs_trained == (len(r.metrics.history)) for r in recs if r.status in ("ok", "stopped"))
    return recs


def test_two_drivers_share_one_epoch_budget_and_stopping_buys_trials(tmp_path, cache_dir):
    """An epoch budget: both drivers count the same epochs; the epochs stopped trials saved
    went to new configurations (more trials than the budget holds whole ones)."""
    cmd = _spec(tmp_path, cache_dir, budget=None, epochs=4, stopping=STOPPING, epochs_budget=24)
    procs = [subprocess.Popen(cmd, stdout=open(tmp_path / f"d{i}.log", "w"), stderr=subprocess.STDOUT)
             for i in range(2)]
    for i, p in enumerate(procs):
        assert p.wait(600) == 0, (tmp_path / f"d{i}.log").read_text()[-3000:]
    recs = _check(tmp_path, None, epochs_budget=24, concurrency=2, epochs=4)
    ended = [r for r in recs if r.counts]
    assert any(r.status == "stopped" for r in ended)
    assert len(ended) > 24 // 4, [(r.status, r.epochs_spent) for r in ended]
    assert len({r.process.pid for r in ended}) == 2


@pytest.mark.parametrize("stopping", [None, STOPPING], ids=["no-stopping", "mo_asha"])
def test_two_drivers_share_one_budget(tmp_path, cache_dir, stopping):
    """With early stopping both drivers rank at the same rungs (the storage holds them)."""
    cmd = _spec(tmp_path, cache_dir, budget=6, epochs=3, stopping=stopping)
    procs = [subprocess.Popen(cmd, stdout=open(tmp_path / f"d{i}.log", "w"), stderr=subprocess.STDOUT)
             for i in range(2)]
    for i, p in enumerate(procs):
        assert p.wait(600) == 0, (tmp_path / f"d{i}.log").read_text()[-3000:]
    recs = _check(tmp_path, 6)
    ran = [r for r in recs if r.status == "ok"]
    assert len({r.process.pid for r in ran}) == 2  # both drivers ran trials
    assert not any("no heartbeat" in (r.error or "") for r in recs)  # nobody failed a live trial
    if stopping:
        assert any(r.status == "stopped" for r in recs), [(r.status, r.process.pid) for r in recs]


@pytest.mark.parametrize("stopping, epochs_budget", [(None, None), (STOPPING, None), (STOPPING, 40)],
                         ids=["no-stopping", "mo_asha", "mo_asha-epochs"])
def test_driver_killed_five_times_at_random_resumes_exactly(tmp_path, cache_dir, stopping, epochs_budget):
    """With early stopping too: a driver killed mid-rung leaves its decisions in the storage,
    where they stand; the trial it was running is interrupted and its budget re-run. With an
    epoch budget, the epochs counted after the kills are those of the trials that ended."""
    rng = random.Random(20261125)  # seeded: a failure replays with the same kill times
    budget = 14
    cmd = _spec(tmp_path, cache_dir, budget=budget, epochs=5, stopping=stopping, epochs_budget=epochs_budget)
    trials = str(tmp_path / "runs" / "shared" / "trials" / "*" / "*.json")
    kills = 0
    for attempt in range(5):
        log = tmp_path / f"run{attempt}.log"
        p = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        before = len(glob.glob(trials))
        deadline = time.time() + 300
        while len(glob.glob(trials)) == before and p.poll() is None and time.time() < deadline:
            time.sleep(0.1)  # trials are being run: kill at a random moment from here
        if p.poll() is not None:
            break
        time.sleep(rng.uniform(0.0, 1.5))
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        kills += 1
    assert kills == 5
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]
    recs = _check(tmp_path, budget, epochs_budget=epochs_budget, concurrency=1, epochs=5)
    assert all(r.values is None or len(r.values) == 3 for r in recs)
    if stopping:
        assert any(r.status == "stopped" for r in recs)


def test_a_trial_left_without_any_heartbeat_goes_stale_and_the_budget_completes(tmp_path, cache_dir):
    """The driver killed between creating a trial and its first heartbeat: Optuna would never
    stale it (no heartbeat row); the next driver beats for it once, so it does."""
    cmd = _spec(tmp_path, cache_dir, budget=2, epochs=1)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]
    run = tmp_path / "runs" / "shared"
    study = optuna.load_study(study_name=CELL, storage=f"sqlite:///{run / 'optuna.db'}")
    orphan = study.ask()  # created, never beaten: what the killed driver left
    spec = yaml.safe_load((tmp_path / "spec.yaml").read_text())
    spec["budget"]["trials_per_cell"] = 3
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:]
    f = run / "trials" / CELL / f"trial-{orphan.number:04d}.json"
    rec = load_record(f.read_text(), str(f))
    assert rec.status == "interrupted" and "no heartbeat" in rec.error
    _check(tmp_path, 3)
