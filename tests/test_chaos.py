"""Chaos: SIGKILL a running sweep (driver, Ray and the trial) and resume it."""
import glob
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from runfolder import RunDir, load_record
from tests.conftest import tiny_spec

pytestmark = pytest.mark.e2e


def test_killed_sweep_resumes_to_its_full_budget(tmp_path, cache_dir):
    spec = tiny_spec(tmp_path, cache_dir, {"linear_probe": {}}, name="chaos",
                     budget={"trials_per_cell": 3}, train={"epochs": 25, "batch_size": 32},
                     resources={"max_concurrent_trials": 1, "cpus_per_worker": 1},
                     storage={"root": str(tmp_path / "runs"), "cache_dir": str(cache_dir), "heartbeat_s": 1})
    f = tmp_path / "spec.yaml"
    f.write_text(yaml.safe_dump(spec))
    cmd = [sys.executable, "-m", "orchestrator.cli", "sweep", str(f), "--num-cpus", "2"]
    trials = str(tmp_path / "runs" / "chaos" / "trials" / "*" / "*.json")

    proc = subprocess.Popen(cmd, stdout=open(tmp_path / "first.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while not glob.glob(trials) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert glob.glob(trials), (tmp_path / "first.log").read_text()[-2000:]
        time.sleep(1.0)  # the next trial is now on its way
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(glob.glob(trials)) < 3

    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    study = optuna.load_study(study_name="freesolv__graphormer__linear_probe",
                              storage=f"sqlite:///{tmp_path / 'runs' / 'chaos' / 'optuna.db'}")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    cut = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(complete) == 3  # the full budget, despite the kill
    recs = {r.optuna_trial: r for r in RunDir(tmp_path / "runs" / "chaos").trial_records()}
    assert all(recs[t.number].status == "interrupted" for t in cut)
    assert all(t.state != TrialState.RUNNING for t in study.trials)
    assert (tmp_path / "runs" / "chaos" / "report.html").exists()


def test_worker_killed_mid_trial_is_retried_and_the_sweep_finishes(tmp_path, cache_dir):
    """SIGKILL the Ray Train worker while it trains: the trial's failure policy
    (resources.max_retries) runs the same configuration again in a fresh worker group."""
    import psutil

    spec = tiny_spec(tmp_path, cache_dir, {"linear_probe": {}}, name="wkill",
                     budget={"trials_per_cell": 2}, train={"epochs": 500, "batch_size": 32},
                     resources={"max_concurrent_trials": 1, "cpus_per_worker": 1, "max_retries": 1})
    f = tmp_path / "spec.yaml"
    f.write_text(yaml.safe_dump(spec))
    cmd = [sys.executable, "-m", "orchestrator.cli", "sweep", str(f), "--num-cpus", "2"]
    proc = subprocess.Popen(cmd, stdout=open(tmp_path / "log.txt", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 300
    first = tmp_path / "runs" / "wkill" / "trials" / "freesolv__graphormer__linear_probe" / "trial-0000.json"
    try:
        # the first trial's record appears: the same warm worker is now training the second
        while not first.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)  # (a trial here: about 10 s of 500 epochs)
        pid = load_record(first.read_text(), str(first)).executor.worker_pid
        victim = psutil.Process(pid)
        victim.send_signal(signal.SIGKILL)
        assert proc.wait(600) == 0, (tmp_path / "log.txt").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    recs = {r.optuna_trial: r for r in RunDir(tmp_path / "runs" / "wkill").trial_records()}
    assert sorted(recs) == [0, 1] and all(r.status == "ok" for r in recs.values())
    assert recs[0].retried_after == [] and len(recs[1].retried_after) == 1
    assert "worker group died" in recs[1].retried_after[0]
    assert recs[1].executor.worker_pid != victim.pid  # it ran again in a fresh worker
    assert "running it again (1 of 1 retries)" in (tmp_path / "log.txt").read_text()
