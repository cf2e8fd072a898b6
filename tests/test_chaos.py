"""Chaos: SIGKILL a running sweep (driver, Ray and the trial) and resume it."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from optuna.trial import TrialState

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
    recs = {json.loads(open(f).read())["optuna_trial"]: json.loads(open(f).read()) for f in glob.glob(trials)}
    assert all(recs[t.number]["interrupted"] for t in cut)
    assert all(t.state != TrialState.RUNNING for t in study.trials)
    assert (tmp_path / "runs" / "chaos" / "report.html").exists()
