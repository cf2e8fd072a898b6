"""A sweep on PostgreSQL storage, as on a cluster: the URL (with a password) comes from
GRAPH_PEFT_OPTUNA_URL, the studies and trials land in PostgreSQL, two drivers share its
budget, and the password appears nowhere. `.ci/run` starts a local server with
scripts/ci_postgres.sh and sets GRAPH_PEFT_TEST_POSTGRES_URL."""
import json
import os
import subprocess
import sys
import uuid

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.conftest import tiny_spec

URL = os.environ.get("GRAPH_PEFT_TEST_POSTGRES_URL")
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    not URL, reason="no PostgreSQL server: set GRAPH_PEFT_TEST_POSTGRES_URL (.ci/run starts one with "
    "scripts/ci_postgres.sh)")]


def test_two_drivers_on_postgresql_share_the_budget_and_hide_the_password(tmp_path, cache_dir):
    name = f"pg-{uuid.uuid4().hex[:8]}"  # the server outlives the test: a fresh set of studies
    d = tiny_spec(tmp_path, cache_dir, {"linear_probe": {"search": {"lr": {
        "type": "float", "low": 0.001, "high": 0.01, "log": True}}}}, name=name,
        train={"epochs": 3, "batch_size": 32}, budget={"trials_per_cell": 5},
        storage={"root": str(tmp_path / "runs"), "cache_dir": str(cache_dir), "heartbeat_s": 1})
    f = tmp_path / "spec.yaml"
    f.write_text(yaml.safe_dump(d))
    env = dict(os.environ, GRAPH_PEFT_OPTUNA_URL=URL)
    cmd = [sys.executable, "-m", "orchestrator.cli", "sweep", str(f), "--executor", "inprocess"]
    procs = [subprocess.Popen(cmd, env=env, stdout=open(tmp_path / f"d{i}.log", "w"), stderr=subprocess.STDOUT)
             for i in range(2)]
    for i, p in enumerate(procs):
        assert p.wait(600) == 0, (tmp_path / f"d{i}.log").read_text()[-3000:]
    storage = optuna.storages.RDBStorage(URL)
    cell = "freesolv__graphormer__linear_probe"
    # the studies live in PostgreSQL, named after the sweep too: a shared server holds many sweeps
    study = optuna.load_study(study_name=f"{name}.{cell}", storage=storage)
    run = tmp_path / "runs" / name
    assert not (run / "optuna.db").exists()
    recs = {json.loads(p.read_text())["optuna_trial"]: json.loads(p.read_text())
            for p in (run / "trials" / cell).glob("trial-*.json")}
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 5
    for t in study.trials:
        if t.state == TrialState.COMPLETE:
            assert list(t.values) == recs[t.number]["values"]
    secret = URL.split(":")[2].split("@")[0]
    for path in run.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".yaml", ".html", ".csv"):
            assert secret not in path.read_text(errors="ignore"), path
    for i in range(2):
        assert secret not in (tmp_path / f"d{i}.log").read_text()
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "status", str(run)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "5 of 5 trials ended" in out.stdout and secret not in out.stdout
