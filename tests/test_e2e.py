"""A tiny sweep through Ray and Optuna on a slice of real data: storage, trial
records, report, resume after a crash, and a failing trial that the sweep survives."""
import json

import optuna
import pytest
import ray
from optuna.trial import TrialState

from orchestrator.spec import SpecError, parse_spec
from orchestrator.sweep import Sweep
from reports.html import build_report
from tests.conftest import tiny_spec

pytestmark = pytest.mark.e2e


def spec_dict(tmp_path, cache_dir, **over):
    methods = {
        "lora": {"search": {"r": {"type": "categorical", "choices": [2, 4]},
                            "lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}},
        "linear_probe": {},
    }
    over = {
        "budget": {"trials_per_cell": 2, "n_startup_trials": 1, "seeds": 2},
        "resources": {"num_workers": 1, "cpus_per_worker": 1, "max_concurrent_trials": 2},
        "storage": {"root": str(tmp_path / "runs"), "cache_dir": str(cache_dir), "heartbeat_s": 1},
        **over,
    }
    return tiny_spec(tmp_path, cache_dir, over.pop("methods", methods), **over)


@pytest.fixture(scope="module")
def local_ray():
    yield
    if ray.is_initialized():
        ray.shutdown()


def run(d, console_file):
    from rich.console import Console

    return Sweep(parse_spec(d), console=Console(file=console_file, width=200)).execute(num_cpus=2)


def test_sweep_end_to_end_and_resume(tmp_path, cache_dir, local_ray):
    log = open(tmp_path / "log.txt", "w")
    d = spec_dict(tmp_path, cache_dir)
    rd = run(d, log)
    assert rd.path == (tmp_path / "runs" / "tiny").resolve()

    # Optuna storage: one multi-objective study per cell, every trial complete
    storage = rd.sqlite_url()
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    assert names == ["freesolv__graphormer__linear_probe", "freesolv__graphormer__lora"]
    lora = optuna.load_study(study_name="freesolv__graphormer__lora", storage=storage)
    assert [t.state for t in lora.trials] == [TrialState.COMPLETE] * 2
    assert len(lora.directions) == 3 and all(t.params["r"] in (2, 4) for t in lora.trials)

    # per-trial records
    records = rd.trial_records()
    assert len(records) == 4 and all(r.status == "ok" for r in records)
    for r in records:
        assert r.values == [r.objectives[k] for k in ("score", "train_memory_mb", "latency_ms_per_graph")]
        assert r.memory.device == "cpu" and r.latency.num_threads == 1
        assert r.trainable_params > 0 and r.executor.ray_run
        # Optuna is told the mean validation score over the two seeds; test is only recorded
        m = r.metrics
        assert len(m.val_scores) == len(m.test_scores) == 2 and [s.seed for s in r.seeds] == [0, 1]
        assert r.values[0] == m.val_score == pytest.approx(sum(m.val_scores) / 2)
        assert m.test_score != m.val_score
    by_trial = {(r.cell, r.optuna_trial): r for r in records}
    for t in lora.trials:
        assert list(t.values) == by_trial[("freesolv__graphormer__lora", t.number)].values
    probe = [r for r in records if r.method == "linear_probe"]
    lr = [r for r in records if r.method == "lora"]
    assert max(p.trainable_params for p in probe) < min(x.trainable_params for x in lr)

    # resolved spec, env, report
    assert "content hash" in rd.spec_file.read_text().splitlines()[0]
    env = json.loads(rd.env_file.read_text())
    assert env["device"] == "cpu" and env["packages"]["ray"] and env["packages"]["optuna"]
    page = rd.report_file.read_text() if rd.report_file.exists() else build_report(rd.path).read_text()
    assert "freesolv" in page and "lora" in page and "linear_probe" in page and "Pareto front" in page
    assert "Selection is on validation only" in page and "test rmse: mean, 95% t interval" in page
    # opens offline: plotly.js is inlined once, and nothing else loads from anywhere
    from plotly.offline import get_plotlyjs

    assert page.count(get_plotlyjs()) == 1
    rest = page.replace(get_plotlyjs(), "")
    assert "<script src" not in rest and "<link" not in rest and "cdn" not in rest

    # A crash: a lora trial was running (no record yet, its heartbeat stops) and a probe
    # trial had written its record but not been told. The resumed sweep tells the one,
    # fails the other once its heartbeat is stale, and runs the rest.
    cut = lora.ask()
    st = optuna.storages.RDBStorage(storage, heartbeat_interval=1)
    st.record_heartbeat(st.get_trial_id_from_study_id_trial_number(st.get_study_id_from_name(lora.study_name),
                                                                   cut.number))
    probe_study = optuna.load_study(study_name="freesolv__graphormer__linear_probe", storage=storage)
    t = probe_study.ask()
    done = by_trial[("freesolv__graphormer__linear_probe", 0)].model_copy(update={"optuna_trial": t.number})
    rd.write_trial("freesolv__graphormer__linear_probe", t.number, done)
    first = rd.trial_file("freesolv__graphormer__lora", 0).stat().st_mtime_ns
    d2 = spec_dict(tmp_path, cache_dir, budget={"trials_per_cell": 4, "n_startup_trials": 1, "seeds": 2})
    run(d2, log)
    lora = optuna.load_study(study_name="freesolv__graphormer__lora", storage=storage)
    C, F = TrialState.COMPLETE, TrialState.FAIL
    assert [t.state for t in lora.trials] == [C, C, F, C, C]  # the interrupted one is re-run
    probe_study = optuna.load_study(study_name="freesolv__graphormer__linear_probe", storage=storage)
    assert [t.state for t in probe_study.trials] == [C, C, C, C]
    assert list(probe_study.trials[2].values) == done.values
    assert rd.trial_file("freesolv__graphormer__lora", 0).stat().st_mtime_ns == first
    assert len(rd.trial_records()) == 9  # the interrupted trial is recorded too
    assert rd.read_trial("freesolv__graphormer__lora", 2).status == "interrupted"
    assert "no heartbeat" in rd.read_trial("freesolv__graphormer__lora", 2).error
    assert "1 trial(s) were cut short by a crash of the driver" in build_report(rd.path).read_text()

    # the spec may not change under a run (budget aside)
    d3 = spec_dict(tmp_path, cache_dir, train={"epochs": 3, "batch_size": 32})
    with pytest.raises(SpecError, match="started from a different spec"):
        run(d3, log)


def test_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path, cache_dir, local_ray):
    d = spec_dict(
        tmp_path, cache_dir, name="broken",
        methods={"lora": {"params": {"target_modules": ["no_such_layer"]}}, "linear_probe": {}},
        budget={"trials_per_cell": 1},
    )
    rd = run(d, open(tmp_path / "log.txt", "w"))
    recs = {r.method: r for r in rd.trial_records()}
    assert recs["linear_probe"].status == "ok"
    assert recs["lora"].status == "failed" and "no_such_layer" in recs["lora"].error
    assert recs["lora"].values is None and "Traceback" in recs["lora"].traceback
    study = optuna.load_study(study_name="freesolv__graphormer__lora", storage=rd.sqlite_url())
    assert study.trials[0].state == TrialState.FAIL
    assert "no_such_layer" in study.trials[0].user_attrs["error"]
    page = build_report(rd.path).read_text()
    assert "Failed and infeasible trials" in page and "no_such_layer" in page


def test_two_worker_trial_trains_with_ddp(tmp_path, cache_dir, local_ray):
    d = spec_dict(
        tmp_path, cache_dir, name="ddp", methods={"lora": {}}, budget={"trials_per_cell": 1},
        train={"epochs": 2, "batch_size": 16},
        resources={"num_workers": 2, "cpus_per_worker": 1, "max_concurrent_trials": 1},
    )
    rd = run(d, open(tmp_path / "log.txt", "w"))
    (r,) = rd.trial_records()
    assert r.status == "ok", r.error
    assert r.world_size == 2 and r.rank == 0
    losses = [h.train_loss for h in r.metrics.history]
    assert len(losses) == 2 and all(l > 0 for l in losses)


def test_one_sweep_trains_molecule_and_text_graph_cells_through_one_loop(tmp_path, cache_dir, local_ray):
    """The task seam: a graph-level and a node-level cell in one sweep, in the same Ray
    workers and the same training loop, each with its task's objectives."""
    d = spec_dict(
        tmp_path, cache_dir, name="families",
        datasets=[{"name": "freesolv", "max_molecules": 120}, {"name": "wordnet", "max_train_nodes": 90}],
        backbones=[tiny_spec(tmp_path, cache_dir, {})["backbones"][0],
                   {"name": "lm", "params": {"max_length": 16}}],
        methods={"linear_probe": {}, "engine": {"params": {"subgraph_size": 4, "r": 8, "patience": 1}}},
        budget={"trials_per_cell": 1, "seeds": 1},
        resources={"num_workers": 1, "cpus_per_worker": 1, "max_concurrent_trials": 1},
    )
    with open(tmp_path / "log.txt", "w") as fh:
        rd = run(d, fh)
    recs = {r.cell: r for r in rd.trial_records()}
    assert sorted(recs) == ["freesolv__graphormer__linear_probe", "wordnet__lm__engine"]
    node, graph = recs["wordnet__lm__engine"], recs["freesolv__graphormer__linear_probe"]
    assert node.status == graph.status == "ok"
    assert node.task == "node_classification" and graph.task == "graph_property"
    assert node.metrics.metric == "accuracy" and 0.1 < node.metrics.test_score <= 1
    assert node.values == [node.objectives[k] for k in ("score", "train_memory_mb", "latency_ms_per_node")]
    assert "latency_ms_per_graph" in graph.objectives
    assert node.process.pid == graph.process.pid  # one long-lived worker ran both
    assert node.dataset["num_train"] == 90 and node.notes["engine_layers"] == [0, 2, 4, 6]
    study = optuna.load_study(study_name="wordnet__lm__engine", storage=rd.sqlite_url())
    D = optuna.study.StudyDirection
    assert study.directions == [D.MAXIMIZE, D.MINIMIZE, D.MINIMIZE]
    page = build_report(rd.path).read_text()
    assert "wordnet" in page and "inference latency (ms / node)" in page and "inference latency (ms / graph)" in page
    # the LM cache said its progress (counts, rate), built in the driver on this one machine, where Ray
    # Data actors would only share its cores (featurizing's progress: tests/test_cli.py, whose cache is
    # its own; this session's cache may hold the set already)
    log = (tmp_path / "log.txt").read_text()
    lm_line = [line for line in log.splitlines() if line.startswith("LM states of wordnet")][-1]
    assert "nodes (100%)" in lm_line and "nodes/s" in lm_line and "one machine" in lm_line, lm_line
