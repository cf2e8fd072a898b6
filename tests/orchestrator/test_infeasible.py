"""A configuration that does not fit in memory is infeasible, not a crash: a real
allocation failure (an adapter whose bottleneck needs terabytes) is recorded as
"infeasible at this memory", told to Optuna as a penalised value with a positive constraint
(Trial.set_constraint) the sampler learns from, counted apart in progress and report, and the sweep goes on."""
import io

import optuna
from rich.console import Console

from orchestrator.executor import InProcessExecutor
from orchestrator.executor.base import out_of_memory
from orchestrator.spec import parse_spec
from orchestrator.sweep import PENALTY, Sweep
from reports.html import build_report
from reports.summary import summarize
from tests.conftest import tiny_spec


def test_out_of_memory_is_recognised_through_the_chain():
    import torch

    try:
        torch.empty(2**50, dtype=torch.uint8)  # a petabyte: the CPU allocator refuses
    except RuntimeError as e:
        assert out_of_memory(e)
    assert out_of_memory(MemoryError()) and not out_of_memory(ValueError("out of range"))
    try:
        try:
            raise MemoryError
        except MemoryError as inner:
            raise RuntimeError("trial failed") from inner
    except RuntimeError as outer:
        assert out_of_memory(outer)


def test_a_trial_out_of_memory_is_infeasible_and_the_sweep_goes_on(tmp_path, cache_dir):
    spec = parse_spec(tiny_spec(tmp_path, cache_dir, {
        "adapter": {"search": {"bottleneck": {"type": "categorical", "choices": [4]}}},
        "adapter_huge": {"method": "adapter", "params": {"bottleneck": 2**34}},  # 32 × 2^34 floats per layer
    }, name="oom", train={"epochs": 1, "batch_size": 32}, budget={"trials_per_cell": 2}))
    out = io.StringIO()
    run = Sweep(spec, console=Console(file=out, width=200)).execute(executor=InProcessExecutor())
    recs = {(r.method, r.optuna_trial): r for r in run.trial_records()}
    assert [recs[("adapter", i)].status for i in range(2)] == ["ok", "ok"]
    huge = [recs[("adapter_huge", i)] for i in range(2)]
    assert all(r.status == "infeasible" and r.infeasible.cause == "oom" for r in huge)
    assert all(r.error.startswith("infeasible at this memory: RuntimeError") and "allocate" in r.error
               for r in huge)
    study = optuna.load_study(study_name="freesolv__graphormer__adapter_huge", storage=run.sqlite_url())
    for t in study.trials:  # complete with the penalty in every objective: the sampler sees a bad trial
        assert t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs["infeasible"]
        assert t.values == [PENALTY, PENALTY, PENALTY]  # rmse, memory and latency are all minimised
        assert t.constraints == {"oom": 1.0}  # infeasible for the samplers too, as a trial over a limit is
    assert "infeasible: infeasible at this memory" in out.getvalue()
    group = summarize(run.trial_records(), run.read_families())["freesolv / graphormer"]
    assert len(group["infeasible"]) == 2 and {r.method for r in group["trials"]} == {"adapter"}
    page = build_report(run.path).read_text()
    assert "infeasible at this memory" in page and "2 infeasible" in page


LIMITED = r"""
import io, json, resource, sys
from rich.console import Console
from orchestrator.executor import InProcessExecutor
from orchestrator.spec import parse_spec
from orchestrator.sweep import Sweep
import torch  # noqa: F401  (mapped before the limit is measured)

# the test's own memory limit: what this process maps now, plus 4 GB (thread stacks and
# allocator arenas take address space too); one bottleneck matrix of 2^26 × 32 floats is 8 GB
vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize"))
resource.setrlimit(resource.RLIMIT_AS, (vm + 4 * 2**30, resource.RLIM_INFINITY))
spec = parse_spec(json.loads(sys.argv[1]))
Sweep(spec, console=Console(file=io.StringIO())).execute(executor=InProcessExecutor())
"""


def test_a_memory_limit_the_test_imposes_makes_large_configurations_infeasible(tmp_path, cache_dir):
    """Under an address-space limit (RLIMIT_AS) set in the sweep's own process, an adapter
    whose bottleneck needs 8 GB per matrix cannot allocate: recorded infeasible, told
    to the sampler as the penalty; the small bottleneck trains. The sampler learns from
    the penalty: after its random start, TPE keeps away from the bottleneck that failed."""
    import json
    import subprocess
    import sys

    from runfolder.layout import RunDir

    spec = tiny_spec(tmp_path, cache_dir, {
        "adapter": {"search": {"bottleneck": {"type": "categorical", "choices": [4, 2**26]}}},
    }, name="limited", train={"epochs": 1, "batch_size": 32},
        budget={"trials_per_cell": 8, "n_startup_trials": 3, "sampler": "tpe"})
    out = subprocess.run([sys.executable, "-c", LIMITED, json.dumps(spec)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    recs = sorted(RunDir(tmp_path / "runs" / "limited").trial_records(), key=lambda r: r.optuna_trial)
    assert len(recs) == 8
    for r in recs:
        big = r.params["bottleneck"] == 2**26
        assert r.status == ("infeasible" if big else "ok"), (r.params, r.status, r.error)
    assert any(r.status == "infeasible" for r in recs)
    study = optuna.load_study(study_name="freesolv__graphormer__adapter",
                              storage=RunDir(tmp_path / "runs" / "limited").sqlite_url())
    told = {t.number: t for t in study.trials}
    assert all(told[r.optuna_trial].values == [PENALTY] * 3 for r in recs if r.status == "infeasible")
    after_start = [r for r in recs if r.optuna_trial >= 3]
    assert sum(r.status == "infeasible" for r in after_start) <= 1, [r.params for r in recs]
