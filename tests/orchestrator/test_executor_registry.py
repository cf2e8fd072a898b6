"""Executors are registered by name: the CLI's --executor choices and default, and
whether one runs in the driver's process, come from the registry. A test registers its
own executor (one class, one registry row), runs a real sweep through it from the
command line, and takes it back."""
from __future__ import annotations

from collections import deque

import pytest
import yaml

from orchestrator.cli import build_parser, main
from orchestrator.executor import DEFAULT_EXECUTOR, EXECUTORS, Executor, ExecutorKind, run_one
from orchestrator.executor.base import TRIAL_FN, resolve
from runfolder import ExecutorInfo, RunDir
from tests.conftest import tiny_spec


class TwoAtATime(Executor):
    """Two slots, run in this process in the order submitted (last in, first out, so the
    driver sees trials end out of order)."""

    in_process = True

    def __init__(self) -> None:
        self.queue: deque = deque()
        self.fn = None

    def start(self) -> None:
        self.fn = resolve(TRIAL_FN)

    def free_slots(self) -> int:
        return 2 - len(self.queue)

    def submit(self, key: str, trial: dict) -> str:
        self.queue.append((key, trial))
        return key

    def wait(self, timeout=None):
        key, trial = self.queue.pop()
        return [(key, run_one(self.fn, trial).ran_on(ExecutorInfo(kind="two_at_a_time")))]

    def close(self) -> None:
        self.queue.clear()


@pytest.fixture
def registered():
    EXECUTORS.add("two_at_a_time", ExecutorKind("a test's own executor", True, lambda ctx: TwoAtATime()))
    yield
    EXECUTORS.remove("two_at_a_time")


def test_the_cli_offers_what_is_registered():
    action = next(a for a in build_parser()._subparsers._group_actions[0].choices["sweep"]._actions
                  if a.dest == "executor")
    assert action.default == DEFAULT_EXECUTOR == "ray" and set(action.choices) == {"ray", "inprocess"}
    assert EXECUTORS.get("inprocess").in_process and not EXECUTORS.get("ray").in_process
    with pytest.raises(ValueError, match="already registered"):
        EXECUTORS.add("ray", EXECUTORS.get("ray"))


def test_a_registered_executor_runs_a_sweep_from_the_cli(registered, tmp_path, cache_dir, capsys):
    spec = tiny_spec(tmp_path, cache_dir, {"linear_probe": {"search": {"lr": {"type": "float", "low": 0.001,
                                                                            "high": 0.01}}}},
                     train={"epochs": 1, "batch_size": 32}, budget={"trials_per_cell": 3, "n_startup_trials": 1},
                     resources={"max_concurrent_trials": 2})
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(spec))
    assert main(["sweep", str(f), "--executor", "two_at_a_time"]) == 0
    run = RunDir(tmp_path / "runs" / "tiny")
    records = run.trial_records()
    assert sorted(r.optuna_trial for r in records) == [0, 1, 2]
    assert all(r.status == "ok" and r.executor.kind == "two_at_a_time" for r in records)
    assert {r.method for r in records} == {"linear_probe"}
    EXECUTORS.remove("two_at_a_time")
    with pytest.raises(SystemExit):  # gone from the choices once taken back
        main(["sweep", str(f), "--executor", "two_at_a_time"])
    EXECUTORS.add("two_at_a_time", ExecutorKind("again", True, lambda ctx: TwoAtATime()))  # for the fixture
    assert "invalid choice" in capsys.readouterr().err
