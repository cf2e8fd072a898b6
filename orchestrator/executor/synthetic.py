"""Synthetic trial functions of known cost, for the executor tests and the
orchestration benchmark. They take the arguments of ``workloads.run_trial`` and
return a record of the same shape, so the whole sweep path runs them unchanged.

Behaviour comes from the trial id's last part, after ``@``: ``ok`` (the default),
``raise``, ``die`` (the worker process exits at once), ``sleep=S``.
"""
from __future__ import annotations

import os
import time

from workloads.util import LOAD_COUNTS


def _record(cfg, work_s: float, value: float) -> dict:
    return {
        "trial_id": cfg.trial_id, "rank": 0, "world_size": 1, "method": cfg.method.label,
        "trainable_params": 1, "total_params": 1,
        "metrics": {"metric": "synthetic", "direction": "minimize", "selection": "validation",
                    "val_score": value, "val_std": 0.0, "test_score": value, "test_std": 0.0,
                    "val_scores": [value], "test_scores": [value]},
        "objectives": {"score": value, "train_memory_mb": 1.0 + value, "latency_ms_per_graph": 1.0},
        "timings": {"total_s": work_s},
        "memory": {"method": "synthetic(not measured)", "device": "cpu", "peak_train_mb": 1.0 + value},
        "process": {"pid": os.getpid(), **LOAD_COUNTS},
    }


def _value(cfg) -> float:
    return float(sum(map(ord, cfg.model_dump_json())) % 1000) / 1000.0


def noop_trial(cfg, rank: int = 0, world_size: int = 1) -> dict:
    """Does nothing, except what the trial id asks for (see the module docstring)."""
    t0 = time.perf_counter()
    what = cfg.trial_id.rpartition("@")[2] if "@" in cfg.trial_id else "ok"
    if what == "raise":
        raise ValueError("synthetic failure")
    if what == "die":
        os._exit(3)
    if what.startswith("sleep="):
        time.sleep(float(what.split("=", 1)[1]))
    return _record(cfg, time.perf_counter() - t0, _value(cfg))


def busy_trial(cfg, rank: int = 0, world_size: int = 1) -> dict:
    """A real small training loop (an MLP on random data) for ``cfg.train.epochs`` × 0.1 s
    of wall time on the CPU, so its cost is known whatever the machine."""
    import torch

    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(256, 64), torch.randn(256, 1)
    budget = 0.1 * cfg.train.epochs
    loss = torch.zeros(())
    while time.perf_counter() - t0 < budget:
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return _record(cfg, time.perf_counter() - t0, float(loss.detach()))
