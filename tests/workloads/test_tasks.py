"""The task seam: a task family supplies data, head and loss, metric and direction,
and the latency unit; its objective names flow unchanged to the spec, Optuna, the
records and the report. A second (test-only) family runs through the same loop
and the same sweep as the molecular one."""
import dataclasses
import html

import optuna
import pytest

from runfolder import load_record

from tests.conftest import tiny_spec
from workloads.datasets.sources import SOURCES
from workloads.tasks import TASKS, metric_direction, task_of
from workloads.tasks.graph_property import GraphPropertyTask


class PerAtomTask(GraphPropertyTask):
    """Test-only family: the molecular task timed per atom, so its latency objective
    has another name (``latency_ms_per_atom``)."""

    name = "test_per_atom"
    unit = "atom"

    def latency_batch(self, data, n, device, *, model=None):
        batch, _ = super().latency_batch(data, n, device, model=model)
        return batch, int(batch.num_nodes)


@pytest.fixture(scope="module")
def second_family():
    if "test_per_atom" not in TASKS:
        TASKS.add("test_per_atom", PerAtomTask())
        SOURCES.add("freesolv_atoms", dataclasses.replace(SOURCES.get("freesolv"), name="freesolv_atoms",
                                                          family="test_per_atom"))
    return TASKS.get("test_per_atom")


def test_every_dataset_has_a_task_and_its_metric_a_direction():
    for name in SOURCES.names():
        if SOURCES.get(name).is_kind:  # a kind's task comes with each entry
            continue
        task = task_of(name)
        assert task.direction(name) in ("maximize", "minimize")
    assert task_of("b3db").direction("b3db") == "maximize" and task_of("freesolv").direction("freesolv") == "minimize"
    assert metric_direction("accuracy") == "maximize" and metric_direction("mae") == "minimize"
    with pytest.raises(ValueError, match="metric 'speed' has no known direction"):
        metric_direction("speed")
    assert task_of("b3db").objectives == ("score", "train_memory_mb", "latency_ms_per_graph")


def test_two_families_in_one_sweep_keep_their_own_objectives(tmp_path, cache_dir, second_family):
    from orchestrator.executor import InProcessExecutor
    from orchestrator.spec import SpecError, parse_spec
    from orchestrator.sweep import Sweep
    from reports.html import build_report

    d = tiny_spec(tmp_path, cache_dir, {"linear_probe": {}}, name="two",
                  datasets=[{"name": "freesolv", "max_molecules": 120}, {"name": "freesolv_atoms", "max_molecules": 120}],
                  train={"epochs": 1, "batch_size": 32}, budget={"trials_per_cell": 1})
    spec = parse_spec(d)
    by_ds = {c.dataset: spec.cell_objectives(c) for c in spec.cells()}
    assert by_ds == {"freesolv": ["score", "train_memory_mb", "latency_ms_per_graph"],
                     "freesolv_atoms": ["score", "train_memory_mb", "latency_ms_per_atom"]}
    run = Sweep(spec).execute(executor=InProcessExecutor())
    recs = {r.dataset_name: r for r in run.trial_records()}
    assert recs["freesolv_atoms"].task == "test_per_atom"
    assert recs["freesolv_atoms"].objective_names == by_ds["freesolv_atoms"]
    assert set(recs["freesolv_atoms"].objectives) == set(by_ds["freesolv_atoms"])  # (JSON sorts keys)
    assert recs["freesolv_atoms"].latency.unit == "atom"
    # per atom is cheaper than per graph for the same forward: molecules have several atoms
    assert recs["freesolv_atoms"].objectives["latency_ms_per_atom"] < recs["freesolv"].objectives["latency_ms_per_graph"]
    for ds, names in by_ds.items():
        study = optuna.load_study(study_name=f"{ds}__graphormer__linear_probe", storage=run.sqlite_url())
        assert study.user_attrs["objectives"] == names and len(study.directions) == 3
        assert list(study.trials[0].values) == [recs[ds].objectives[k] for k in names]
    page = build_report(run.path).read_text()
    assert "inference latency (ms / atom)" in page and "inference latency (ms / graph)" in page
    # the knee's re-run command, as the page prints it, trains exactly that trial's configuration
    import shlex

    from orchestrator.cli import main
    from reports.summary import rerun_command, summarize

    entry = summarize(run.trial_records(), run.read_families())["freesolv / graphormer"]
    knee = entry["trials"][entry["planes"]["train_memory_mb"]["knee"]]
    cmd = rerun_command(knee, str(run.spec_file))
    assert html.escape(cmd) in page
    out = tmp_path / "rerun.json"
    assert main(shlex.split(cmd)[1:] + ["--out", str(out)]) == 0
    again = load_record(out.read_text(), str(out))
    drop = lambda c: {k: v for k, v in c.items() if k != "trial_id"}  # noqa: E731
    assert drop(again.config) == drop(knee.config)
    assert again.score == pytest.approx(knee.score)  # same seeds, same numbers
    # one objective list for both families must fit both
    d["objectives"] = ["score", "latency_ms_per_graph"]
    with pytest.raises(SpecError, match=r"objectives\[1\]: 'latency_ms_per_graph' is not an objective of dataset "
                                        r"'freesolv_atoms' \(task test_per_atom"):
        parse_spec(d)
    d["objectives"] = ["score", "train_memory_mb"]  # shared by both: accepted
    assert all(parse_spec(d).cell_objectives(c) == ["score", "train_memory_mb"] for c in parse_spec(d).cells())
