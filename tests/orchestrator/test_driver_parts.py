"""The driver's parts on their own, without training anything: the shared budget, the
tell and retry policies, recovery of written-but-untold and stale trials, and the
record's completion by the driver."""
from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from orchestrator import policy
from orchestrator.budget import SharedBudget
from orchestrator.recovery import Recovery, interrupted
from orchestrator.spec import parse_spec
from orchestrator.storage import RunDir
from orchestrator.studies import Studies
from runfolder import Rung, TrialRecord
from tests.conftest import tiny_spec


def _parts(tmp_path, budget=3, methods=("linear_probe",)):
    spec = parse_spec(tiny_spec(tmp_path, tmp_path / "cache", {m: {} for m in methods},
                                budget={"trials_per_cell": budget}))
    run = RunDir(spec.run_dir())
    run.path.mkdir(parents=True)
    studies = Studies(spec, run)
    studies.open()
    return spec, run, studies, SharedBudget(run, studies, budget)


def _ok(cell, number, score=1.0) -> TrialRecord:
    r = TrialRecord(objectives={"score": score, "train_memory_mb": 2.0, "latency_ms_per_graph": 0.1})
    r.assign(cell=cell.id, dataset=cell.dataset, backbone=cell.backbone, method=cell.method, number=number,
             params={}, objective_names=["score", "train_memory_mb", "latency_ms_per_graph"])
    r.settle()
    return r


def test_the_budget_counts_ended_and_running_trials_not_interrupted_ones(tmp_path):
    spec, run, studies, budget = _parts(tmp_path, budget=3)
    [cell] = studies.cells
    study = studies.by_cell[cell.id]
    t0, t1, t2 = study.ask(), study.ask(), study.ask()
    assert budget.used(cell) == 3 and budget.remaining(cell) == 0  # three running
    run.write_trial(cell.id, 0, _ok(cell, 0))
    study.tell(t0, [1.0, 2.0, 0.1])
    run.write_trial(cell.id, 1, interrupted(cell, 1, {}, "interrupted: test"))
    study.tell(t1, state=TrialState.FAIL)
    assert budget.counted(cell) == {0} and budget.used(cell) == 2 and budget.remaining(cell) == 1
    # a fourth trial asked while trial 2 runs: 0 counts and 2 runs before it, one place is left
    t3 = study.ask()
    assert budget.admits(cell, t3.number)
    t4 = study.ask()  # 0, 2 and 3 precede it: the budget of 3 is taken
    assert not budget.admits(cell, t4.number)
    assert budget.next_cell() is None  # the cell is marked full until the next refresh
    study.tell(t4, state=TrialState.FAIL)
    study.tell(t2, state=TrialState.FAIL)
    run.write_trial(cell.id, 2, interrupted(cell, 2, {}, "interrupted: test"))
    budget.refresh()
    assert budget.next_cell() is cell  # trial 2 was cut short: its place is free again


def test_stopped_and_infeasible_trials_use_budget(tmp_path):
    spec, run, studies, budget = _parts(tmp_path, budget=2)
    [cell] = studies.cells
    stopped = _ok(cell, 0)
    stopped.status = "stopped"
    infeasible = _ok(cell, 1).mark_infeasible("limit", "over", objective="train_memory_mb", limit=1.0, measured=2.0)
    run.write_trial(cell.id, 0, stopped)
    run.write_trial(cell.id, 1, infeasible)
    assert budget.counted(cell) == {0, 1} and budget.remaining(cell) == 0
    assert run.read_trial(cell.id, 1).infeasible.measured == 2.0


def test_an_epoch_budget_counts_work_as_it_happens(tmp_path):
    """Ended trials spend what their records say (stopped and failed ones included, at least
    one epoch), running ones what they are committed to (up to their next rung, or their whole
    training past the last); a trial is admitted while the trials numbered before it leave
    epochs, so two drivers decide alike."""
    spec = parse_spec(tiny_spec(tmp_path, tmp_path / "cache", {"lora": {"search": {"r": {
        "type": "categorical", "choices": [2, 4]}}}}, train={"epochs": 4, "batch_size": 32},
        budget={"epochs_per_cell": 10, "stopping": {"type": "mo_asha", "min_epochs": 1, "reduction_factor": 2}}))
    run = RunDir(spec.run_dir())
    run.path.mkdir(parents=True)
    studies = Studies(spec, run)
    studies.open()
    budget = SharedBudget(run, studies, spec.budget_of, spec.epochs_of, spec.committed_epochs)
    [cell] = studies.cells
    assert spec.budget_of(cell) is None and spec.epochs_of(cell) == 10
    assert [spec.committed_epochs(cell, r) for r in (0, 1, 2)] == [1, 2, 4]  # rungs at epochs 1 and 2 of 4
    study = studies.by_cell[cell.id]
    t0, t1, t2 = study.ask(), study.ask(), study.ask()
    assert budget.epochs_used(cell) == 3 and budget.admits(cell, t2.number)  # each committed to its first rung
    done = _ok(cell, 0)
    done.epochs_trained = 4
    run.write_trial(cell.id, 0, done)
    study.tell(t0, [1.0, 2.0, 0.1])
    stopped = _ok(cell, 1)
    stopped.status, stopped.epochs_trained = "stopped", 1
    run.write_trial(cell.id, 1, stopped)
    study.tell(t1, state=TrialState.PRUNED)
    t2.set_user_attr("rung:2", [0.5, 2.0, 0.1])  # it went on past its last rung: committed to all 4 epochs
    assert budget.epochs_used(cell) == 4 + 1 + 4 and budget.remaining(cell) == 1
    assert not budget.exhausted(cell)  # 5 epochs ended of 10
    t3 = study.ask()
    assert budget.admits(cell, t3.number)  # 9 before it
    failed = TrialRecord(status="failed", error="boom")
    failed.assign(cell=cell.id, dataset=cell.dataset, backbone=cell.backbone, method=cell.method, number=3,
                  params={}, objective_names=["score", "train_memory_mb", "latency_ms_per_graph"])
    run.write_trial(cell.id, 3, failed)
    study.tell(t3, state=TrialState.FAIL)
    assert run.read_trial(cell.id, 3).epochs_spent == 1  # a failure costs a start
    t4 = study.ask()
    assert budget.epochs_used(cell, below=t4.number) == 10 and not budget.admits(cell, t4.number)
    study.tell(t4, state=TrialState.FAIL)
    done2 = _ok(cell, 2)
    done2.epochs_trained = 4
    run.write_trial(cell.id, 2, done2)
    study.tell(t2, [1.0, 2.0, 0.1])
    assert budget.exhausted(cell)  # 4 + 1 + 4 + 1 ended
    # a record written before epochs_trained existed: its seeds' histories, at least one
    assert _ok(cell, 9).epochs_spent == 1


@pytest.mark.parametrize("status, state", [("ok", TrialState.COMPLETE), ("infeasible", TrialState.COMPLETE),
                                           ("failed", TrialState.FAIL), ("stopped", TrialState.PRUNED)])
def test_the_tell_policy(status, state):
    study = optuna.create_study(directions=["minimize", "maximize"])
    trial = study.ask()
    r = TrialRecord(status=status, objectives={"score": 1.0, "m": 2.0}, objective_names=["score", "m"],
                    rungs=[Rung(epoch=1, values={"score": 3.0, "m": 4.0})] if status == "stopped" else [])
    if status == "infeasible":  # stopped over a limit on m before a score existed
        r = TrialRecord(objectives={"m": 0.5}, objective_names=["score", "m"]).mark_infeasible(
            "limit", "under", objective="m", limit=1.0, measured=0.5)
    r.settle()
    assert policy.tell(study, trial, r, ["minimize", "maximize"])
    t = study.trials[0]
    assert t.state == state
    if status == "ok":
        assert t.values == [1.0, 2.0]
    if status == "stopped":  # pruned: no values in Optuna's view; the record keeps its rung values
        assert t.values is None and r.values == [3.0, 4.0]
    if status == "infeasible":  # what it measured, the worst value for the rest, and how far past its limit
        assert t.values == [policy.PENALTY, 0.5] and t.constraints == {"m": 0.5}
    assert not policy.tell(study, trial, r, ["minimize", "maximize"])  # told once; a second tell is refused


def test_a_non_finite_objective_fails_the_trial():
    r = TrialRecord(objectives={"score": float("nan")}, objective_names=["score"])
    assert r.settle() is None and r.status == "failed" and "non-finite" in r.error


def test_the_retry_policy():
    lost = TrialRecord.failure("worker group died", worker_lost=True)
    raised = TrialRecord.failure("ValueError: no")
    assert policy.should_retry(lost, 0, 1) and not policy.should_retry(lost, 1, 1)
    assert not policy.should_retry(raised, 0, 5)


def test_the_driver_completes_a_record_through_named_steps():
    r = TrialRecord(objectives={"score": 0.5, "mem": 3.0}).ran_in_worker(100.0, 110.0)
    r.timings = r.timings.model_copy(update={"total_s": 9.5})
    r.received(submitted_unix=99.0, received_unix=110.5, wall_s=11.5, retried_after=["lost once"])
    o = r.timings.overhead
    assert o.submit_to_worker_s == pytest.approx(1.0) and o.worker_glue_s == pytest.approx(0.5)
    assert o.worker_to_driver_s == pytest.approx(0.5) and r.retried_after == ["lost once"]


def test_recovery_tells_a_written_record_and_leaves_its_own_trials(tmp_path):
    spec, run, studies, budget = _parts(tmp_path)
    [cell] = studies.cells
    study = studies.by_cell[cell.id]
    mine, orphan = study.ask(), study.ask()
    run.write_trial(cell.id, orphan.number, _ok(cell, orphan.number, score=0.25))
    run.write_trial(cell.id, mine.number, _ok(cell, mine.number))
    said = []
    Recovery(spec, run, studies, said.append).settle({cell.id: {mine.number}})
    states = {t.number: t for t in study.get_trials(deepcopy=False)}
    assert states[orphan.number].state == TrialState.COMPLETE and states[orphan.number].values[0] == 0.25
    assert states[mine.number].state == TrialState.RUNNING  # its driver tells it
    assert said and "had ended (ok)" in said[0]


def test_recovery_keeps_where_a_written_stopped_trial_stopped_and_a_failed_ones_error(tmp_path):
    """A driver killed between writing a record and annotating its trial: the next driver
    annotates as it tells, so the storage says what the record says."""
    spec, run, studies, budget = _parts(tmp_path)
    [cell] = studies.cells
    study = studies.by_cell[cell.id]
    stopped, failed = study.ask(), study.ask()
    r = _ok(cell, stopped.number)
    r.status, r.rungs = "stopped", [Rung(epoch=2, values=dict(r.objectives))]
    run.write_trial(cell.id, stopped.number, r)
    run.write_trial(cell.id, failed.number, TrialRecord.failure("ValueError: no"))
    Recovery(spec, run, studies, [].append).settle({})
    t = {t.number: t for t in study.get_trials(deepcopy=False)}
    assert t[stopped.number].state == TrialState.PRUNED and t[stopped.number].user_attrs["stopped_at"] == 2
    assert t[failed.number].state == TrialState.FAIL and t[failed.number].user_attrs["error"] == "ValueError: no"
