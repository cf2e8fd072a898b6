"""Measuring what a trial costs: peak training memory and inference latency.

Training memory
    * CUDA: the caching allocator's peak (``torch.cuda.max_memory_allocated``)
      over the whole training run.
    * CPU: PyTorch has no allocator statistics on the CPU, so we account tensor
      by tensor for real training steps (the training loop keeps the largest
      step of the first epoch): parameter bytes, gradient bytes
      (those the backward pass produced), optimizer state bytes (read from the
      optimizer after its step) and the bytes of every tensor autograd saves
      for backward (``torch.autograd.graph.saved_tensors_hooks``; storages are
      counted once, parameters are not counted again). The process RSS and its
      peak are recorded beside it.

Latency
    Median wall time of an inference call over timed repeats after warm-up,
    with ``torch`` threads pinned to the trial's CPU count and CUDA
    synchronised around each call.
"""
from __future__ import annotations

import contextlib
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import psutil
import torch
from torch import nn


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class SavedActivationMeter:
    """Counts bytes autograd keeps for backward while the context is open."""

    def __init__(self, model: nn.Module) -> None:
        self._param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self._seen: set[int] = set()
        self.bytes = 0

    def reset(self) -> None:
        self._seen.clear()
        self.bytes = 0

    def _pack(self, t: torch.Tensor):
        try:
            ptr = t.untyped_storage().data_ptr()
            size = t.untyped_storage().nbytes()
        except (RuntimeError, NotImplementedError):  # e.g. sparse or meta tensors
            ptr, size = id(t), _nbytes(t)
        if ptr not in self._param_storages and ptr not in self._seen:
            self._seen.add(ptr)
            self.bytes += size
        return t

    @contextlib.contextmanager
    def track(self) -> Iterator["SavedActivationMeter"]:
        with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t):
            yield self


@dataclass
class MemoryReport:
    device: str
    method: str  # how peak_train_bytes was measured
    peak_train_bytes: int
    parameter_bytes: int = 0
    gradient_bytes: int = 0
    optimizer_state_bytes: int = 0
    saved_activation_bytes: int = 0
    rss_bytes: int = 0
    rss_peak_bytes: int = 0
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["peak_train_mb"] = self.peak_train_bytes / 2**20
        return d


def tensor_accounting(model: nn.Module, optimizer: torch.optim.Optimizer, activation_bytes: int) -> dict:
    """Bytes of parameters, gradients and optimizer state as they stand now
    (call after ``optimizer.step()`` and before gradients are cleared)."""
    params = {p.untyped_storage().data_ptr(): _nbytes(p) for p in model.parameters()}
    grads = sum(_nbytes(p.grad) for p in model.parameters() if p.grad is not None)
    opt = 0
    for state in optimizer.state.values():
        for v in state.values():
            if torch.is_tensor(v):
                opt += _nbytes(v)
    return {
        "parameter_bytes": sum(params.values()),
        "gradient_bytes": grads,
        "optimizer_state_bytes": opt,
        "saved_activation_bytes": activation_bytes,
    }


def process_rss() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in bytes."""
    rss = psutil.Process().memory_info().rss
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB
    return rss, max(peak, rss)  # the kernel updates maxrss lazily; the current RSS bounds it below


def cpu_memory_report(parts: dict, device: str = "cpu") -> MemoryReport:
    rss, peak = process_rss()
    return MemoryReport(
        device=device,
        method="tensor_accounting(params+grads+optimizer_state+saved_activations)",
        peak_train_bytes=sum(parts.values()),
        rss_bytes=rss,
        rss_peak_bytes=peak,
        **parts,
    )


def cuda_memory_report(device: torch.device, parts: dict) -> MemoryReport:
    rss, peak = process_rss()
    return MemoryReport(
        device=f"cuda:{torch.cuda.get_device_name(device)}",
        method="cuda_allocator_peak(max_memory_allocated)",
        peak_train_bytes=int(torch.cuda.max_memory_allocated(device)),
        rss_bytes=rss,
        rss_peak_bytes=peak,
        detail={"accounting_for_one_step": parts},
        **parts,
    )


@dataclass
class LatencyReport:
    device: str
    method: str
    batch_size: int
    median_s: float
    p90_s: float
    repeats: int
    warmup: int
    num_threads: int

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ms_per_graph"] = 1000.0 * self.median_s / self.batch_size
        return d


def measure_latency(
    fn: Callable[[], object], *, batch_size: int, device: torch.device, warmup: int = 3, repeats: int = 20
) -> LatencyReport:
    """Median wall time of ``fn()`` after ``warmup`` untimed calls."""
    cuda = device.type == "cuda"
    times = []
    for i in range(warmup + repeats):
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    return LatencyReport(
        device=str(device) if not cuda else f"cuda:{torch.cuda.get_device_name(device)}",
        method="median wall time of a no-grad forward over timed repeats after warm-up",
        batch_size=batch_size,
        median_s=statistics.median(times),
        p90_s=times[min(len(times) - 1, int(0.9 * len(times)))],
        repeats=repeats,
        warmup=warmup,
        num_threads=torch.get_num_threads(),
    )
