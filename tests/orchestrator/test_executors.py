"""One contract for every executor (as Optuna tests its storages), plus what only
the Ray slots can show: worker reuse, a killed worker, a hung trial."""
import pytest

from orchestrator.executor import InProcessExecutor

SYN = "benchmarks.support.synthetic:noop_trial"


def trial(tid: str) -> dict:
    return {"trial_id": tid, "dataset": {"name": "freesolv"}, "method": {"name": "full"}}


def drain(ex, n: int, timeout: float = 120) -> dict:
    import time

    out, end = {}, time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        out.update(dict(ex.wait(timeout=5)))
    assert len(out) == n, out
    return out


@pytest.fixture(scope="module")
def ray_executor(tmp_path_factory):
    import ray

    from benchmarks.support import worker_pythonpath
    from orchestrator.executor.ray_slots import RaySlotExecutor

    ex = RaySlotExecutor({"num_workers": 1, "cpus_per_worker": 1, "use_gpu": False}, 1,
                         tmp_path_factory.mktemp("ray"), num_cpus=2, timeout_s=20, trial_fn=SYN, name="t")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", worker_pythonpath())  # the Ray workers import SYN from the repository root
        with ex:
            yield ex
    ray.shutdown()


@pytest.fixture(params=["inprocess", "ray"])
def executor(request):
    if request.param == "ray":
        yield request.getfixturevalue("ray_executor")
    else:
        with InProcessExecutor(trial_fn=SYN) as ex:
            yield ex


def test_contract_ok_and_failed_trials(executor):
    assert executor.free_slots() == 1
    executor.submit("a", trial("t@ok"))
    assert executor.free_slots() == 0
    (key, rec), = drain(executor, 1).items()
    assert key == "a" and rec.status == "ok" and rec.objectives["score"] >= 0
    assert rec.timings.worker_done_unix >= rec.timings.worker_start_unix
    assert executor.free_slots() == 1
    executor.submit("b", trial("t@raise"))
    rec = drain(executor, 1)["b"]
    assert rec.status == "failed" and "ValueError: synthetic failure" in rec.error
    assert "Traceback" in rec.traceback
    executor.submit("c", {"trial_id": "bad", "dataset": {"name": "freesolv"}, "method": {"name": "nope"}})
    rec = drain(executor, 1)["c"]
    assert rec.status == "failed" and "unknown PEFT method 'nope'" in rec.error
    assert executor.wait(timeout=0.1) == []  # nothing in flight
    executor.submit("d", trial("t@ok"))
    assert executor.free_slots() == 0  # one slot: it is busy until its result is taken
    assert drain(executor, 1)["d"].status == "ok"


@pytest.mark.e2e
def test_ray_workers_stay_alive_across_trials(ray_executor):
    pids = []
    for i in range(3):
        ray_executor.submit(f"k{i}", trial(f"t{i}@ok"))
        rec = drain(ray_executor, 1)[f"k{i}"]
        assert rec.status == "ok"
        pids.append(rec.executor.worker_pid)
    assert len(set(pids)) == 1  # one long-lived worker served them all


@pytest.mark.e2e
def test_ray_killed_worker_fails_the_trial_and_the_slot_comes_back(ray_executor):
    ray_executor.submit("die", trial("t@die"))
    rec = drain(ray_executor, 1)["die"]
    assert rec.status == "failed" and "worker group died" in rec.error
    restarts = ray_executor.restarts
    assert ray_executor.free_slots() == 1
    ray_executor.submit("after", trial("t@ok"))
    assert drain(ray_executor, 1)["after"].status == "ok"
    assert ray_executor.restarts == restarts


@pytest.mark.e2e
def test_ray_hung_trial_is_cut_at_the_timeout(ray_executor):
    ray_executor.submit("hang", trial("t@sleep=600"))
    rec = drain(ray_executor, 1, timeout=90)["hang"]
    assert rec.status == "failed" and "timed out" in rec.error and "trial_timeout_s=20" in rec.error
    ray_executor.submit("next", trial("t@ok"))
    assert drain(ray_executor, 1, timeout=120)["next"].status == "ok"
