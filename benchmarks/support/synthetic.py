"""Synthetic trial functions of known cost, for the executor tests and the
orchestration benchmark (``trial_fn="benchmarks.support.synthetic:noop_trial"``).
They take the arguments of ``workloads.run_trial`` and return the worker's part of
a real :class:`~runfolder.TrialRecord`, so the whole sweep path runs them unchanged.

Behaviour comes from the trial id's last part, after ``@``: ``ok`` (the default),
``raise``, ``die`` (the worker process exits at once), ``sleep=S``.

Neither touches global random state: ``busy_trial`` draws from its own generator.

Ray workers import this module by name: the driver that starts a local Ray sets
``PYTHONPATH`` to :func:`benchmarks.support.worker_pythonpath` first, which its
workers inherit (the executor tests' fixture and the orchestration benchmark do).
"""
from __future__ import annotations

import os
import platform
import time

from runfolder.record import DeviceInfo, Memory, Metrics, ProcessInfo, Rung, Timings, TrialRecord
from workloads.tasks import MEMORY_OBJECTIVE, task_of
from workloads.util import LOAD_COUNTS


def _record(cfg, work_s: float, value: float, rank: int, world_size: int) -> TrialRecord:
    task = task_of(cfg.dataset)
    peak_mb = 1.0 + value
    return TrialRecord(
        trial_id=cfg.trial_id, rank=rank, world_size=world_size,
        task=task.name, config=cfg.model_dump(mode="json"),
        base_method=cfg.method.name, plugins=sorted(cfg.method.plugins),
        trainable_params=1, total_params=1,
        metrics=Metrics(metric="synthetic", direction="minimize", selection="validation",
                        val_score=value, val_std=0.0, test_score=value, test_std=0.0,
                        val_scores=[value], test_scores=[value]),
        objectives={"score": value, MEMORY_OBJECTIVE: peak_mb, task.latency_objective: 1.0},
        memory=Memory(device="cpu", method="synthetic (not measured)",
                      peak_train_bytes=int(peak_mb * 2**20), peak_train_mb=peak_mb),
        device=DeviceInfo(type="cpu", name="cpu", host=platform.node()),
        timings=Timings(total_s=work_s),
        process=ProcessInfo(pid=os.getpid(), loads=dict(LOAD_COUNTS)),
    )


def _value(cfg) -> float:
    return float(sum(map(ord, cfg.model_dump_json())) % 1000) / 1000.0


def noop_trial(cfg, rank: int = 0, world_size: int = 1, rung=None) -> TrialRecord:
    """Does nothing, except what the trial id asks for (see the module docstring)."""
    t0 = time.perf_counter()
    what = cfg.trial_id.rpartition("@")[2] if "@" in cfg.trial_id else "ok"
    if what == "raise":
        raise ValueError("synthetic failure")
    if what == "die":
        os._exit(3)
    if what.startswith("sleep="):
        time.sleep(float(what.split("=", 1)[1]))
    return _record(cfg, time.perf_counter() - t0, _value(cfg), rank, world_size)


def busy_trial(cfg, rank: int = 0, world_size: int = 1, rung=None) -> TrialRecord:
    """A real small training loop (an MLP on random data) for ``cfg.train.epochs`` × 0.1 s
    of wall time on the CPU, so its cost is known whatever the machine. Its random
    numbers come from a generator of its own, seeded by ``cfg.seed``. With ``rung`` it
    reports at ``cfg.rungs`` as the real trial does (a value fixed by its configuration),
    times each round trip (``notes.rung_round_trip_s``) and stops when told."""
    import torch

    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    # skip_init: the layers' default init would draw from the global generator
    model = torch.nn.Sequential(torch.nn.utils.skip_init(torch.nn.Linear, 64, 128), torch.nn.ReLU(),
                                torch.nn.utils.skip_init(torch.nn.Linear, 128, 1))
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.1, 0.1, generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(256, 64, generator=gen), torch.randn(256, 1, generator=gen)
    loss = torch.zeros(())
    rungs, rtts, stopped = [], [], False
    for epoch in range(cfg.train.epochs):  # an epoch: 0.1 s of training
        end = time.perf_counter() + 0.1
        while time.perf_counter() < end:
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if rung is not None and epoch + 1 in cfg.rungs:  # the real trial's rung report, its round trip timed
            v = _value(cfg)
            task = task_of(cfg.dataset)
            rungs.append(Rung(epoch=epoch + 1, values={"score": v, MEMORY_OBJECTIVE: 1.0 + v,
                                                       task.latency_objective: 1.0}))
            t = time.perf_counter()
            go = rung(rungs[-1])
            rtts.append(time.perf_counter() - t)
            if not go:
                stopped = True
                break
    rec = _record(cfg, time.perf_counter() - t0, float(loss.detach()), rank, world_size)
    rec.rungs, rec.notes = rungs, {"rung_round_trip_s": rtts}
    if stopped:
        rec.status = "stopped"
    return rec
