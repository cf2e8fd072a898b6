"""The one runner of reference baselines fitted outside the training loop.

A fitted reference (``ReferenceKind.fit``) gets the task, the data and a seed, and
returns :class:`Fitted`: its predictions per split and one inference call for timing.
It enters ``measure`` around its training, so its memory is the peak that
``tracemalloc`` saw there (Python and NumPy allocations; memory a C extension takes with
``malloc`` directly is not seen, said on the point); its latency is timed as every
trial's (:func:`workloads.profiling.measure_latency`, the same warm-up and repeats), on
inputs already featurized, as the graph models' batches are.
"""
from __future__ import annotations

import contextlib
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from runfolder.record import Latency, Memory
from workloads import profiling

MEMORY_BY_TRACEMALLOC = "tracemalloc peak while fitting (Python and NumPy allocations)"
MEMORY_BY_ALLOCATOR = "the torch allocator, as every trial's"  # a reference trained in the loop


@dataclass
class Fitted:
    """A fitted reference: ``predict(split) -> [n, T]`` in the task's label layout and units,
    ``latency_call()`` predicting ``latency_units`` test examples, and the numbers it fitted."""

    predict: Callable[[str], np.ndarray]
    latency_call: Callable[[], object]
    latency_units: int
    fitted_values: int
    notes: dict = field(default_factory=dict)


class _Window:
    """The tracemalloc window a reference enters around its training."""

    def __init__(self) -> None:
        self.peak = 0
        self.seconds = 0.0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        was = tracemalloc.is_tracing()
        if not was:
            tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - t0
            self.peak = max(self.peak, tracemalloc.get_traced_memory()[1] - base)
            if not was:
                tracemalloc.stop()


def run_fitted_seed(cfg, task, data, seed: int, fit: Callable) -> dict:
    """One seed of a fitted reference, as :func:`workloads.train.train_seed` returns a seed."""
    window = _Window()
    fitted: Fitted = fit(cfg, task, data, seed, window)
    val = task.score_predictions(data, "valid", fitted.predict("valid"))
    test = task.score_predictions(data, "test", fitted.predict("test"))
    timing = profiling.measure_latency(fitted.latency_call, batch_size=fitted.latency_units,
                                       device=torch.device("cpu"), warmup=cfg.profile.latency_warmup,
                                       repeats=cfg.profile.latency_repeats, unit=task.unit)
    latency = Latency(**timing.model_dump() | {"method": "median wall time of one prediction call over timed "
                                                "repeats after warm-up (inputs featurized beforehand)"})
    memory = Memory(device="cpu", method=MEMORY_BY_TRACEMALLOC, peak_train_bytes=int(window.peak),
                    peak_train_mb=window.peak / 2**20)
    return {"seed": seed, "val_score": val, "test_score": test, "best_epoch": 0, "history": [],
            "memory": memory.model_dump(), "latency": latency.model_dump(), "train_s": window.seconds,
            "trainable_params": fitted.fitted_values, "total_params": fitted.fitted_values,
            "pretrained": {"checkpoint": None}, "rungs": [], "stopped": False, "notes": fitted.notes}
