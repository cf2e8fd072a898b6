"""Hard limits (the spec's ``constraints``): a trial whose measured cost passes a limit
stops as soon as it is measured, is recorded infeasible (cause ``limit``) with the limit
and the value, and is told to Optuna COMPLETE with a positive constraint
(``Trial.set_constraint``), as out-of-memory trials are."""
import io
import math

import optuna
import pytest
from rich.console import Console

from orchestrator import policy
from orchestrator.executor import InProcessExecutor
from orchestrator.spec import SpecError, parse_spec
from orchestrator.sweep import PENALTY, Sweep
from reports.html import build_report
from runfolder import TrialRecord
from runfolder.limits import Limit, violations
from tests.conftest import tiny_spec

PROBE = {"linear_probe": {"search": {"lr": {"type": "float", "low": 1e-3, "high": 0.05, "log": True}}}}


def test_violations_and_their_amount():
    lims = {"train_memory_mb": Limit(max=100), "score": Limit(min=0.5, max=0.9)}
    assert violations(lims, {"train_memory_mb": 99.0, "score": 0.7}) == []
    [v] = violations(lims, {"train_memory_mb": 150.0})  # score not measured yet: not checked
    assert (v.objective, v.bound, v.limit, v.measured) == ("train_memory_mb", "max", 100, 150.0)
    assert v.amount == pytest.approx(0.5) and "over its limit (max 100)" in v.message()
    [v] = violations(lims, {"score": 0.25})
    assert v.bound == "min" and v.amount == pytest.approx(0.25)  # absolute for a score (its limit may be 0)
    [v] = violations({"score": Limit(min=0.0)}, {"score": -0.1})
    assert v.amount == pytest.approx(0.1)
    assert violations(lims, {"train_memory_mb": math.nan}) == []  # a non-finite value fails the trial elsewhere
    with pytest.raises(ValueError, match="not below max"):
        Limit(min=2, max=1)


def test_a_limit_on_an_objective_no_cell_optimises_is_refused(tmp_path, cache_dir):
    d = tiny_spec(tmp_path, cache_dir, PROBE, objectives=["score", "train_memory_mb"],
                  constraints={"latency_ms_per_graph": {"max": 1.0}})
    with pytest.raises(SpecError, match="constraints.latency_ms_per_graph: no cell has objective"):
        parse_spec(d, "s.yaml")


def _study(run, spec):
    return optuna.load_study(study_name=spec.cells()[0].id, storage=run.sqlite_url())


def test_a_memory_limit_stops_a_trial_inside_its_first_epoch(tmp_path, cache_dir, monkeypatch):
    """Through the CPU meter: the profiler window closes at ``profile.memory_steps`` and
    the peak is read there, before the first epoch ends: of the epoch's 12 batches, each
    trial draws 2."""
    from workloads.tasks.graph_property import GraphPropertyTask

    drawn = []
    real = GraphPropertyTask.train_loader

    def counting(self, *a, **kw):  # every batch a trial's training loop takes
        loader = real(self, *a, **kw)
        drawn.append(0)

        class Counted:
            def __iter__(self):
                for batch in loader:
                    drawn[-1] += 1
                    yield batch
        return Counted()

    monkeypatch.setattr(GraphPropertyTask, "train_loader", counting)
    d = tiny_spec(tmp_path, cache_dir, PROBE, budget={"trials_per_cell": 2}, train={"epochs": 2, "batch_size": 8},
                  profile={"latency_batch_size": 8, "latency_warmup": 1, "latency_repeats": 3, "memory_steps": 2},
                  constraints={"train_memory_mb": {"max": 0.05}})  # 50 kB: far below the model itself
    spec = parse_spec(d)
    out = io.StringIO()
    run = Sweep(spec, console=Console(file=out, width=200)).execute(executor=InProcessExecutor())
    records = run.trial_records()
    assert len(records) == 2 and drawn == [2, 2], drawn
    study = _study(run, spec)
    for r in records:
        assert r.status == "infeasible" and r.infeasible.cause == "limit", (r.status, r.error)
        assert r.infeasible.objective == "train_memory_mb" and r.infeasible.limit == 0.05
        assert r.infeasible.measured > 0.05 and r.objectives == {"train_memory_mb": r.infeasible.measured}
        assert "measured over the first 2 training steps" in r.error and r.metrics is None  # no epoch ended
        t = study.trials[r.optuna_trial]
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert t.constraints == {"train_memory_mb": pytest.approx((r.infeasible.measured - 0.05) / 0.05)}
        # what it measured, the penalty for what it did not (score is RMSE here: minimised)
        assert t.values == [PENALTY, r.infeasible.measured, PENALTY]
    assert "infeasible: over a limit: train_memory_mb" in out.getvalue()
    page = build_report(run.path).read_text()
    assert "over a limit" in page and "train_memory_mb ≤ 0.05" in page
    import pandas as pd

    csv = pd.read_csv(run.path / "results.csv")
    assert list(csv["infeasible_cause"]) == ["limit", "limit"] and (csv["measured"] > csv["limit"]).all()


def test_latency_is_checked_at_rungs_and_a_score_limit_only_at_the_end(tmp_path, cache_dir):
    d = tiny_spec(tmp_path, cache_dir, PROBE, train={"epochs": 3, "batch_size": 32},
                  budget={"trials_per_cell": 1, "stopping": {"type": "mo_asha", "min_epochs": 1}},
                  constraints={"latency_ms_per_graph": {"max": 1e-6}})
    spec = parse_spec(d)
    run = Sweep(spec, console=Console(file=io.StringIO())).execute(executor=InProcessExecutor())
    [r] = run.trial_records()
    assert r.status == "infeasible" and r.infeasible.objective == "latency_ms_per_graph"
    assert "at epoch 1" in r.error and r.rungs == []  # over the limit at the first rung: it never asked to go on
    assert set(r.objectives) == {"score", "train_memory_mb", "latency_ms_per_graph"}
    # an unreachable score (RMSE below 1e-6) never stops a trial early, with or without stopping
    d = tiny_spec(tmp_path, cache_dir, PROBE, name="score", train={"epochs": 3, "batch_size": 32},
                  budget={"trials_per_cell": 1}, constraints={"score": {"max": 1e-6}})
    run = Sweep(parse_spec(d), console=Console(file=io.StringIO())).execute(executor=InProcessExecutor())
    [r] = run.trial_records()
    assert r.status == "infeasible" and r.infeasible.objective == "score" and "measured at the end" in r.error
    assert len(r.metrics.history) == 3 and r.infeasible.measured == r.objectives["score"]


def test_recovery_tells_a_written_infeasible_record_with_its_constraint(tmp_path):
    """A driver died after writing an over-limit record and before telling it: the next
    driver's recovery tells it COMPLETE, with its constraint set first."""
    from orchestrator.recovery import Recovery
    from orchestrator.storage import RunDir
    from orchestrator.studies import Studies

    spec = parse_spec(tiny_spec(tmp_path, tmp_path / "cache", PROBE,
                                constraints={"train_memory_mb": {"max": 200}}))
    run = RunDir(spec.run_dir())
    run.path.mkdir(parents=True)
    studies = Studies(spec, run)
    studies.open()
    [cell] = studies.cells
    trial = studies.by_cell[cell.id].ask()
    rec = TrialRecord(objectives={"train_memory_mb": 300.0}).mark_infeasible(
        "limit", "over a limit", objective="train_memory_mb", limit=200.0, measured=300.0)
    rec.assign(cell=cell.id, dataset=cell.dataset, backbone=cell.backbone, method=cell.method,
               number=trial.number, params={}, objective_names=spec.cell_objectives(cell))
    run.write_trial(cell.id, trial.number, rec)
    said = []
    Recovery(spec, run, studies, said.append).settle({})
    [t] = studies.by_cell[cell.id].get_trials()
    assert t.state == optuna.trial.TrialState.COMPLETE and t.constraints == {"train_memory_mb": pytest.approx(0.5)}
    assert t.values == [PENALTY, 300.0, PENALTY] and "had ended (infeasible)" in said[0]


def test_an_infeasible_record_is_told_with_its_constraint_on_recovery(tmp_path):
    """The policy alone, on a trial object built from the storage's id as recovery builds it."""
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"],
                                storage=f"sqlite:///{tmp_path / 'o.db'}", study_name="s")
    trial = study.ask()
    rec = TrialRecord(objective_names=["score", "train_memory_mb", "latency_ms_per_graph"],
                      objectives={"train_memory_mb": 300.0}).mark_infeasible(
        "limit", "infeasible", objective="train_memory_mb", limit=200.0, measured=300.0)
    fresh = optuna.trial.Trial(study, trial._trial_id)  # as recovery builds it from the storage
    assert policy.tell(study, fresh, rec, ["maximize", "minimize", "minimize"])
    t = study.trials[0]
    assert t.constraints == {"train_memory_mb": pytest.approx(0.5)} and t.values == [-PENALTY, 300.0, PENALTY]
    assert not policy.tell(study, fresh, rec, ["maximize", "minimize", "minimize"])  # told once
    oom = optuna.trial.Trial(study, study.ask()._trial_id)
    assert policy.tell(study, oom, TrialRecord().mark_infeasible("oom", "x"), ["maximize", "minimize", "minimize"])
    assert study.trials[1].constraints == {"oom": 1.0}
