"""Several trials per GPU (``resources.gpus_per_worker = 1/k``), without a GPU: the cap's
arithmetic and its call, an allocation over the share recorded as infeasible (cause
share), the timing lock, the capacity count, and two slots packed on one logical GPU
by Ray (``ray.init(num_gpus=1)`` on a CPU machine, gloo instead of NCCL)."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from orchestrator.executor.base import resource_problems, run_one, trials_that_fit
from runfolder import GpuShare, TrialRecord
from workloads import gpu_share
from workloads.gpu_share import (FALLBACK_CONTEXT_BYTES, FRACTION_ENV, MARGIN_BYTES, share_cap, share_problems,
                                 shares_of)

GiB = 2**30
PROBE = "tests.orchestrator.test_gpu_share:probe_trial"


def trial(tid: str, **more) -> dict:
    return {"trial_id": tid, "dataset": {"name": "freesolv"}, "method": {"name": "full"}, **more}


# -- the arithmetic ------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 4])
def test_share_cap_leaves_k_contexts_and_the_margin(k):
    total, context = 80 * GiB, 600 * 2**20
    cap = share_cap(total, k, context, MARGIN_BYTES)
    assert cap == pytest.approx((total - k * context - MARGIN_BYTES) / (k * total))
    assert k * (cap * total + context) + MARGIN_BYTES == pytest.approx(total)  # the whole device, no more
    assert k * (cap * total + context) <= total
    assert 0 < cap < 1 / k


def test_share_cap_refuses_when_contexts_leave_nothing():
    with pytest.raises(ValueError, match="leave nothing"):
        share_cap(4 * GiB, 8, GiB // 2, MARGIN_BYTES)
    with pytest.raises(ValueError):
        share_cap(80 * GiB, 0, GiB // 2)


@pytest.mark.parametrize("fraction,k", [(1, 1), (1.0, 1), (0.5, 2), (0.25, 4), (0.3333, 3), (1 / 3, 3), (0.333, 3),
                                        (0.3, None), (0.33, None), (0.75, None), (1.5, None), (2, None),
                                        (0.001, None), (0, None)])
def test_a_fraction_is_one_over_k(fraction, k):
    assert shares_of(fraction) == k
    assert bool(share_problems(fraction, True, 1)) == (k is None)


def test_share_problems_name_what_is_wrong():
    assert "not 1/k" in share_problems(1.5, True, 1)[0]
    assert "use_gpu: false" in share_problems(0.5, False, 1)[0]
    assert share_problems(1.0, False, 1) == []  # the default, ignored without a GPU as before
    assert "Duplicate GPU" in share_problems(0.5, True, 2)[0]
    assert share_problems(1.0, True, 4) == []


def test_capacity_counts_k_trials_per_gpu():
    r = {"num_workers": 1, "cpus_per_worker": 1, "use_gpu": True, "gpus_per_worker": 0.25}
    assert trials_that_fit(r, 16, 2) == 8
    assert trials_that_fit(r, 5, 2) == 5  # CPUs permitting
    assert trials_that_fit({**r, "gpus_per_worker": 0.3333}, 16, 1) == 3  # taken as 1/3: three make one GPU
    assert trials_that_fit({**r, "gpus_per_worker": 1 / 3}, 16, 1) == 3
    assert trials_that_fit({**r, "gpus_per_worker": 1.0}, 16, 2) == 2
    assert trials_that_fit({k: v for k, v in r.items() if k != "gpus_per_worker"}, 16, 2) == 2  # default: 1
    assert resource_problems(r, 4, 1) == []
    assert resource_problems(r, 4, 0) == ["a trial needs 0.25 GPUs, there are 0"]


# -- the cap, set from the fraction ------------------------------------------
@pytest.fixture
def fake_gpu(monkeypatch):
    """torch.cuda on a fake 80 GiB device; the calls to set_per_process_memory_fraction."""
    import torch

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (79 * GiB, 80 * GiB))
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction",
                        lambda fraction, device=None: calls.append((fraction, device)))
    return calls


def test_the_cap_is_set_from_the_fraction_with_an_assumed_context(fake_gpu, monkeypatch):
    monkeypatch.setattr(gpu_share, "measure_context_bytes", lambda device: (None, "pynvml is not installed"))
    share = gpu_share.apply_share(0.25)
    expect = (80 * GiB - 4 * FALLBACK_CONTEXT_BYTES - MARGIN_BYTES) / (4 * 80 * GiB)
    [(fraction, device)] = fake_gpu
    assert fraction == pytest.approx(expect) and str(device) == "cuda:0"
    assert share.k == 4 and share.fraction == 0.25 and share.cap == pytest.approx(expect)
    assert share.cap_bytes == int(expect * 80 * GiB) and share.total_bytes == 80 * GiB
    assert not share.context_measured and share.context_bytes == GiB // 2
    assert share.note.startswith("assumed 0.5 GiB: pynvml")


def test_the_cap_uses_a_measured_context(fake_gpu, monkeypatch):
    monkeypatch.setattr(gpu_share, "measure_context_bytes", lambda device: (700 * 2**20, "NVML"))
    share = gpu_share.apply_share(0.5)
    assert fake_gpu[0][0] == pytest.approx((80 * GiB - 2 * 700 * 2**20 - MARGIN_BYTES) / (2 * 80 * GiB))
    assert share.context_measured and share.context_bytes == 700 * 2**20


def test_a_whole_gpu_sets_no_cap(fake_gpu):
    assert gpu_share.apply_share(1.0) is None and fake_gpu == []


def test_without_cuda_the_share_is_recorded_uncapped():
    share = gpu_share.apply_share(0.5)  # this machine: no CUDA
    assert share.k == 2 and share.cap is None and "no CUDA" in share.note


def test_a_share_that_cannot_be_set_says_why_and_is_no_trials_oom(fake_gpu, monkeypatch):
    """k contexts that leave nothing of the GPU: ShareUnusable (never read as a trial's
    out-of-memory), no cap set, no fraction told; two such contexts fit, and are told."""
    from orchestrator.executor.base import out_of_memory, root_cause
    from workloads.gpu_share import ShareUnusable, take_share

    monkeypatch.setenv(FRACTION_ENV, "")  # restored after the test, whatever it asserts
    monkeypatch.delenv(FRACTION_ENV)
    monkeypatch.setattr(gpu_share, "measure_context_bytes", lambda device: (30 * GiB, "NVML"))
    with pytest.raises(ShareUnusable) as err:
        take_share(0.25)
    assert fake_gpu == [] and FRACTION_ENV not in os.environ
    assert root_cause(err.value).startswith("ShareUnusable: a 0.25 share of the GPU could not be set on ")
    assert str(err.value).endswith(": 4 CUDA contexts of 30.00 GiB and a 256 MiB margin leave nothing of 80.00 GiB")
    assert not out_of_memory(err.value)
    assert take_share(1.0) is None and FRACTION_ENV not in os.environ
    assert take_share(0.5).k == 2 and os.environ[FRACTION_ENV] == "0.5"


def test_a_cuda_error_while_taking_a_share_is_not_unusable(fake_gpu, monkeypatch):
    """A device too full for one more context right now (a neighbour's context being torn
    down) may pass: it propagates as itself, and the slot restarts, rather than stopping
    the sweep."""
    import torch

    from workloads.gpu_share import ShareUnusable, take_share

    def full(device=None):
        raise RuntimeError("CUDA error: out of memory")
    monkeypatch.setattr(torch.cuda, "mem_get_info", full)
    with pytest.raises(RuntimeError, match="CUDA error: out of memory") as err:
        take_share(0.25)
    assert not isinstance(err.value, ShareUnusable) and fake_gpu == []


def test_the_driver_stops_the_sweep_when_a_slot_cannot_take_its_share(monkeypatch):
    """A slot's run that ended on ShareUnusable: the other slots' records of the same wait
    come back first, then the sweep stops with the reason; the slot is never restarted
    into the same error, and nothing more is submitted."""
    import ray

    from orchestrator.executor import ray_slots

    ex = ray_slots.RaySlotExecutor({"num_workers": 1, "cpus_per_worker": 1, "use_gpu": True,
                                    "gpus_per_worker": 0.25}, slots=2, storage_path="/tmp")
    bad, good = ray_slots._Slot(0, 0, mailbox=None, run_ref="run0"), ray_slots._Slot(1, 0, mailbox=None, run_ref="run1")
    bad.key, bad.result_ref, good.key, good.result_ref = "t#0", "result0", "t#1", "result1"
    ex.slots = {0: bad, 1: good}
    got = {"run0": {"ok": False, "error": "WorkerGroupError: Training failed due to worker errors:",
                    "share_unusable": "a 0.25 share of the GPU could not be set on n1: why"},
           "result1": ("t#1", TrialRecord(trial_id="t1"))}
    monkeypatch.setattr(ray, "wait", lambda refs, num_returns=1, timeout=None: (["run0", "result1"], []))
    monkeypatch.setattr(ray, "get", lambda ref, timeout=None: got[ref])
    monkeypatch.setattr(ex, "_restart", lambda *a, **k: pytest.fail("restarted into the same error"))
    assert [k for k, _ in ex.wait(timeout=0)] == ["t#1"]  # the healthy slot's record is not lost
    assert ex.free_slots() == 0
    with pytest.raises(RuntimeError, match=r"^resources.gpus_per_worker: slot 0: a 0.25 share .* on n1: why$"):
        ex.wait(timeout=0)


# -- over the share: infeasible, cause share ----------------------------------
def _raise(exc):
    def fn(cfg, rank=0, world_size=1):
        raise exc
    return fn


def test_cuda_out_of_memory_under_a_share_is_infeasible_share():
    import torch

    from orchestrator.policy import constraint

    share = GpuShare(fraction=0.25, k=4, cap=0.24, cap_bytes=int(0.24 * 80 * GiB), total_bytes=80 * GiB)
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 30.00 GiB. 19.20 GiB allowed;")
    rec = run_one(_raise(oom), trial("t"), share=share)
    assert rec.status == "infeasible" and rec.infeasible.cause == "share"
    assert rec.error.startswith("infeasible in a 1/4 share of the GPU: over its share (cap 19.20 GiB of 80.00 GiB)")
    assert "OutOfMemoryError" in rec.error
    assert constraint(rec) == ("share", 1.0)  # told to Optuna as infeasible, as oom is
    # without a share the same error is the device's memory; a host MemoryError is never the GPU share
    assert run_one(_raise(oom), trial("t")).infeasible.cause == "oom"
    assert run_one(_raise(MemoryError()), trial("t"), share=share).infeasible.cause == "oom"
    assert run_one(_raise(ValueError("x")), trial("t"), share=share).status == "failed"


# -- the timing lock -----------------------------------------------------------
def test_timing_on_a_shared_gpu_waits_for_the_lock(monkeypatch, tmp_path):
    import torch

    monkeypatch.setattr(gpu_share, "LOCK_DIR", tmp_path)
    monkeypatch.setattr(gpu_share, "gpu_key", lambda device: "GPU-fake")
    with gpu_share.timing_lock(torch.device("cuda", 0)) as waited:
        assert waited is None  # no fraction told: a whole GPU takes no lock
    monkeypatch.setenv(FRACTION_ENV, "0.5")
    with gpu_share.timing_lock(torch.device("cpu")) as waited:
        assert waited is None
    held = threading.Event()

    def neighbour():
        with gpu_share.timing_lock(torch.device("cuda", 0)):
            held.set()
            time.sleep(0.5)

    t = threading.Thread(target=neighbour)
    t.start()
    held.wait(10)
    with gpu_share.timing_lock(torch.device("cuda", 0)) as waited:
        assert waited >= 0.3  # the neighbour timed first
    t.join()
    assert (tmp_path / "GPU-fake.lock").exists()


def test_cpu_latency_takes_no_lock():
    import torch

    from workloads.profiling import measure_latency

    t = measure_latency(lambda: None, batch_size=1, device=torch.device("cpu"), warmup=0, repeats=2)
    assert t.lock_wait_s is None


# -- slots on one logical GPU ---------------------------------------------------
@pytest.mark.e2e
def test_a_real_slot_that_cannot_take_its_share_stops_the_sweep(tmp_path, monkeypatch):
    """Through Ray Train's own error wrapping (the worker's error is inside its
    WorkerGroupError): a fraction the worker refuses (0.4 is not 1/k; the spec check is
    passed by hand here) stops the sweep with the reason, once, without restarts."""
    import ray

    from orchestrator.executor.ray_slots import RaySlotExecutor

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        ex = RaySlotExecutor({"num_workers": 1, "cpus_per_worker": 1, "use_gpu": True, "gpus_per_worker": 0.5}, 1,
                             tmp_path / "ray", name="unusable", dist_backend="gloo")
        ex.resources["gpus_per_worker"] = 0.4
        with ex:
            ex.submit("a", trial("a"))
            deadline = time.time() + 300
            with pytest.raises(RuntimeError) as err:
                while time.time() < deadline:
                    assert ex.wait(timeout=5) == []
            assert ex.restarts == 0
    finally:
        ray.shutdown()
    assert str(err.value).startswith("resources.gpus_per_worker: slot 0: a 0.4 share of the GPU could not be set on ")
    assert "0.4 is not 1/k" in str(err.value)



def probe_trial(cfg, rank: int = 0, world_size: int = 1, rung=None) -> TrialRecord:
    """Runs in a Ray slot: waits until the other probe runs too (so both are at once, or
    this one times out), sleeps 2 s, and notes when, the fraction it was told, its GPU."""
    import ray

    meet = Path(cfg.cache_dir)
    (meet / f"{cfg.trial_id}.started").touch()
    deadline = time.time() + 120
    while len(list(meet.glob("*.started"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    start = time.time()
    time.sleep(2)
    return TrialRecord(trial_id=cfg.trial_id, notes={
        "start": start, "end": time.time(), "met": len(list(meet.glob("*.started"))),
        "fraction": os.environ.get(FRACTION_ENV), "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
        "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES")})


@pytest.mark.e2e
def test_two_slots_share_one_logical_gpu_at_once(tmp_path, monkeypatch):
    import ray

    from benchmarks.support import worker_pythonpath
    from orchestrator.executor.ray_slots import RaySlotExecutor
    from tests.orchestrator.test_executors import drain

    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.setenv("PYTHONPATH", worker_pythonpath())  # the workers import PROBE from the repository root
    ray.init(num_cpus=4, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        ex = RaySlotExecutor({"num_workers": 1, "cpus_per_worker": 1, "use_gpu": True, "gpus_per_worker": 0.5}, 2,
                             tmp_path / "ray", trial_fn=PROBE, name="share", dist_backend="gloo")
        meet = tmp_path / "meet"
        meet.mkdir()
        with ex:
            ex.submit("a", trial("a", cache_dir=str(meet)))
            ex.submit("b", trial("b", cache_dir=str(meet)))
            recs = drain(ex, 2, timeout=400)
    finally:
        ray.shutdown()
    a, b = recs["a"], recs["b"]
    assert a.status == b.status == "ok", (a.error, b.error)
    assert a.notes["met"] == b.notes["met"] == 2
    assert a.notes["start"] < b.notes["end"] and b.notes["start"] < a.notes["end"]  # at once
    assert a.notes["gpu_ids"] == b.notes["gpu_ids"] and len(a.notes["gpu_ids"]) == 1  # on the one GPU
    assert float(a.notes["fraction"]) == float(b.notes["fraction"]) == 0.5  # each told its share
    assert {a.executor.slot, b.executor.slot} == {0, 1}
    assert a.executor.gpu_share.fraction == 0.5 and a.executor.gpu_share.cap is None  # no CUDA here: no cap
