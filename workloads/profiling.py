"""Measuring what a trial costs: peak training memory and inference latency.

Training memory (``train_memory_mb`` = the record's ``memory.peak_train_bytes``) is a
measured peak of live tensor bytes during training steps, never a sum of parts:

* **CUDA**: the caching allocator's peak (``torch.cuda.max_memory_allocated``),
  reset right before the training steps of each epoch and read right after them,
  so validation is kept out of it (its own peak is recorded apart, as
  ``eval_peak_bytes``).
* **CPU**: PyTorch keeps no allocator statistics on the CPU, so
  :class:`CpuPeakMeter` records the allocator's own allocation and free events
  with the PyTorch profiler (``profile_memory=True``) over the measured steps, and
  the peak is the highest running total of live bytes, added to the bytes of the
  tensors already live when measuring started (parameters, buffers, gradients and
  optimizer state: the loop starts measuring at the first step, before any
  gradient or optimizer state exists).

The parts (parameters, gradients, optimizer state, tensors saved for backward)
are kept beside the peak as a breakdown, labelled as such: they are not a peak
(temporaries and the forward's working memory are not among them).

Latency
    Median wall time of an inference call over timed repeats after warm-up,
    with ``torch`` threads pinned to the trial's CPU count and CUDA
    synchronised around each call; on a GPU shared by several slots, under the
    GPU's timing lock, so packed neighbours never time at once.
"""
from __future__ import annotations

import contextlib
import gc
import math
import resource
import statistics
import sys
import time
from typing import Callable, Iterable, Iterator

import psutil
import torch
from torch import nn

from runfolder.record import Memory, Timing
from workloads.gpu_share import timing_lock


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _storage(t: torch.Tensor) -> tuple[int, int]:
    """(identity, bytes) of the storage behind ``t``: views of one storage share it."""
    try:
        st = t.untyped_storage()
        return st.data_ptr(), st.nbytes()
    except (RuntimeError, NotImplementedError):  # e.g. sparse or meta tensors
        return id(t), _nbytes(t)


def live_tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors`` (views counted once)."""
    return sum(dict(_storage(t) for t in tensors if t is not None and torch.is_tensor(t)).values())


def model_state_tensors(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> list[torch.Tensor]:
    """Parameters, buffers, gradients and optimizer state: what lives across steps."""
    out = list(model.parameters()) + list(model.buffers())
    out += [p.grad for p in model.parameters() if p.grad is not None]
    if optimizer is not None:
        for state in optimizer.state.values():
            out += [v for v in state.values() if torch.is_tensor(v)]
    return out


class CpuPeakMeter:
    """Peak of live CPU tensor bytes from the allocator's own events.

    Usage::

        meter = CpuPeakMeter(baseline_bytes=live_tensor_bytes(...))
        with meter.measure():
            ...  # training steps
        meter.peak_bytes

    Each ``measure()`` window is profiled apart and the running total carries over
    between windows, so several windows (the steps of an epoch, say) form one
    timeline. The events come from ``torch.profiler.profile(profile_memory=True)``;
    reading them as a timeline is written here because the profiler only offers them
    aggregated per operator (``prof.events()``) or in a trace file. The raw events are
    read from ``profiler.kineto_results`` (a public attribute of the profiler, with
    no underscore; there is no other public way to get allocation events in order).
    """

    EVENT = "[memory]"

    def __init__(self, baseline_bytes: int = 0) -> None:
        self.baseline_bytes = int(baseline_bytes)
        self.level = 0  # live bytes allocated (net) since measuring began
        self.peak_delta = 0
        self.events = 0

    @property
    def peak_bytes(self) -> int:
        return self.baseline_bytes + self.peak_delta

    @contextlib.contextmanager
    def measure(self) -> Iterator["CpuPeakMeter"]:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=False) as prof:
            yield self
        events = [e for e in prof.profiler.kineto_results.events()
                  if e.name() == self.EVENT and str(e.device_type()).endswith("CPU")]
        events.sort(key=lambda e: e.start_ns())
        for e in events:
            self.level += e.nbytes()
            if self.level > self.peak_delta:
                self.peak_delta = self.level
        self.events += len(events)


class CudaPeakWindow:
    """Allocator peak over chosen windows: reset before, read after, keep the max."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes = 0

    @contextlib.contextmanager
    def measure(self) -> Iterator["CudaPeakWindow"]:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        yield self
        torch.cuda.synchronize(self.device)
        self.peak_bytes = max(self.peak_bytes, int(torch.cuda.max_memory_allocated(self.device)))


class PeakMeter:
    """One interface over both devices: ``with meter.measure(): ...``; ``meter.peak_bytes``."""

    def __init__(self, device: torch.device, baseline_bytes: int = 0) -> None:
        self.device = device
        self.impl = CudaPeakWindow(device) if device.type == "cuda" else CpuPeakMeter(baseline_bytes)

    @property
    def method(self) -> str:
        if self.device.type == "cuda":
            return "cuda_allocator_peak(max_memory_allocated over training steps)"
        return "cpu_allocator_events_peak(torch.profiler profile_memory over training steps)"

    def measure(self):
        return self.impl.measure()

    @property
    def peak_bytes(self) -> int:
        return self.impl.peak_bytes

    def peak_so_far(self) -> int:
        """The peak up to now, readable inside a window on CUDA (the allocator's counter since
        the window's reset); on the CPU the peak of the windows already closed."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return max(self.impl.peak_bytes, int(torch.cuda.max_memory_allocated(self.device)))
        return self.impl.peak_bytes


class SavedActivationMeter:
    """Counts bytes autograd keeps for backward while the context is open (a part
    of the breakdown, not the peak)."""

    def __init__(self, model: nn.Module) -> None:
        self._param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self._seen: set[int] = set()
        self.bytes = 0

    def reset(self) -> None:
        self._seen.clear()
        self.bytes = 0

    def _pack(self, t: torch.Tensor):
        ptr, size = _storage(t)
        if ptr not in self._param_storages and ptr not in self._seen:
            self._seen.add(ptr)
            self.bytes += size
        return t

    @contextlib.contextmanager
    def track(self) -> Iterator["SavedActivationMeter"]:
        with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t):
            yield self


def tensor_accounting(model: nn.Module, optimizer: torch.optim.Optimizer, activation_bytes: int) -> dict:
    """The breakdown: bytes of parameters, gradients and optimizer state as they
    stand now (call after ``optimizer.step()`` and before gradients are cleared),
    and the bytes saved for backward."""
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


def memory_report(meter: PeakMeter, parts: dict, eval_peak: int | None = None, detail: dict | None = None) -> Memory:
    """The trial record's memory part: the measured training peak, validation's own peak
    (CUDA, kept out of the training peak), and a breakdown of parts that is NOT a peak."""
    rss, peak = process_rss()
    dev = meter.device
    name = f"cuda:{torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else "cpu"
    return Memory(
        device=name, method=meter.method, peak_train_bytes=int(meter.peak_bytes),
        peak_train_mb=int(meter.peak_bytes) / 2**20, eval_peak_bytes=eval_peak,
        parts=dict(parts), sum_of_parts_bytes=int(sum(parts.values())), rss_bytes=rss, rss_peak_bytes=peak,
        detail=detail or {},
    )


def process_rss() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in bytes."""
    rss = psutil.Process().memory_info().rss
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB
    return rss, max(peak, rss)  # the kernel updates maxrss lazily; the current RSS bounds it below


def measure_latency(
    fn: Callable[[], object], *, batch_size: int, device: torch.device, warmup: int = 3, repeats: int = 20,
    unit: str = "graph",
) -> Timing:
    """Median wall time of ``fn()`` after ``warmup`` untimed calls (``ms_per_unit``: per
    graph, per node, as ``unit`` says; ``batch_size`` units per call). On a GPU shared by
    several slots, warm-up and timing hold the GPU's timing lock
    (:func:`workloads.gpu_share.timing_lock`); the wait is ``lock_wait_s``."""
    cuda = device.type == "cuda"
    times = []
    gc.collect()
    with timing_lock(device) as lock_wait_s:
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
    median = statistics.median(times)
    # the median's standard error from a robust spread (MAD, scaled to a normal's sigma; the median's
    # efficiency factor 1.253): 0 from a single repeat, where no spread is known
    mad = statistics.median(abs(t - median) for t in times)
    se = 1.253 * 1.4826 * mad / math.sqrt(len(times)) if len(times) > 1 else 0.0
    return Timing(
        device=str(device) if not cuda else f"cuda:{torch.cuda.get_device_name(device)}",
        method="median wall time of a no-grad forward over timed repeats after warm-up",
        batch_size=batch_size,
        median_s=median,
        ms_per_unit=1000.0 * median / batch_size,
        se_ms_per_unit=1000.0 * se / batch_size,
        p90_s=times[min(len(times) - 1, int(0.9 * len(times)))],
        repeats=repeats,
        warmup=warmup,
        num_threads=torch.get_num_threads(),
        unit=unit,
        lock_wait_s=lock_wait_s,
    )
