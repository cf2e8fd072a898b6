import json

import pytest

from orchestrator.storage import RunDir
from runfolder import RecordError, TrialRecord
from workloads.util import atomic_write, atomic_write_json


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path):
    f = tmp_path / "r.json"
    atomic_write_json(f, {"v": 1})

    def half_then_crash(p):
        p.write_text('{"v": 2, "trunc')
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        atomic_write(f, half_then_crash)
    assert json.loads(f.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_run_dir_round_trip_and_corrupt_record_is_named(tmp_path):
    rd = RunDir(tmp_path / "runs" / "x")
    rec = TrialRecord(status="failed", error="n: 3", cell="a__g__lora", optuna_trial=3)
    rd.write_trial("a__g__lora", 3, rec)
    assert rd.read_trial("a__g__lora", 3) == rec
    assert rd.read_trial("a__g__lora", 4) is None
    assert rd.trial_file("a__g__lora", 3).name == "trial-0003.json"
    rd.trial_file("a__g__lora", 5).write_text("{not json")
    with pytest.raises(RecordError, match="trial-0005.json: corrupt trial record"):
        rd.trial_records()
    from orchestrator.storage import environment

    env = rd.write_env(environment())
    assert json.loads(rd.env_file.read_text()) == env and env["packages"]["torch"]


def test_atomic_files_get_the_ordinary_mode(tmp_path):
    import os

    from workloads.util import atomic_write_text

    old = os.umask(0o022)
    try:
        f = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert f.stat().st_mode & 0o777 == 0o644


def test_reports_read_runs_without_torch_or_the_orchestrator():
    """The layers point down: reports -> runfolder, never torch, workloads or orchestrator."""
    import subprocess
    import sys

    code = ("import sys, reports.html, reports.summary, runfolder\n"
            "bad = [m for m in ('torch', 'workloads', 'orchestrator') if m in sys.modules]\n"
            "print('LOADED', bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LOADED []" in out.stdout
