"""Several trials per GPU: ``resources.gpus_per_worker = 1/k`` packs ``k`` slots on one GPU.

Ray's fractional GPUs are bookkeeping only. A worker asking for ``{"GPU": 0.5}`` is
scheduled beside one other such worker and both see the same ``CUDA_VISIBLE_DEVICES``;
Ray enforces nothing on the device, so one trial could take the whole GPU's memory and
make its neighbour fail. Hence the cap: each trial process limits its own caching
allocator with ``torch.cuda.set_per_process_memory_fraction`` to its part of what is left
once every neighbour's CUDA context and a margin are set aside (:func:`share_cap`). A
trial past its cap gets ``torch.OutOfMemoryError`` from its own allocator, which the
executor records as infeasible with cause ``share``: the configuration does not fit a
1/k share, whatever its neighbours do.

Latency on a shared GPU is timed under an inter-process lock per GPU
(:func:`timing_lock`), so packed neighbours never time at once. The lock does not pause
a neighbour's training: its steps still share the GPU's compute while another times.
Memory stays each process's own allocator peak.

Nothing here imports torch at import time: the spec checks and the driver use the
arithmetic (:func:`shares_of`, :func:`share_problems`, :func:`share_cap`) without it.
"""
from __future__ import annotations

import contextlib
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Iterator

from runfolder.io import file_lock
from runfolder.record import GpuShare

class ShareUnusable(Exception):
    """A slot's 1/k GPU share cannot be set: k CUDA contexts and the margin leave nothing of
    the device, or the fraction is not 1/k. Every slot of the sweep would meet it, so the
    sweep stops, saying why. (A CUDA error while measuring, which may pass, is not this: it
    propagates, and the slot restarts.) Deliberately not a RuntimeError, whose "out of
    memory" text would read as a trial's OOM."""


FRACTION_ENV = "GRAPH_PEFT_GPU_FRACTION"  # the slot's worker tells its trial processes their fraction here
MARGIN_BYTES = 256 * 2**20  # left free on the device: CUDA contexts grow as kernels load (lazy loading)
FALLBACK_CONTEXT_BYTES = 2**29  # 0.5 GiB: a CUDA context's typical size, when it cannot be measured
MAX_SHARES = 64  # at most 64 trials per GPU
TOLERANCE = 2e-3  # 0.3333 is 1/3: a fraction within 0.2% of 1/k is 1/k
LOCK_DIR = Path(tempfile.gettempdir()) / "graph-peft-gpu-locks"


def shares_of(fraction: float) -> int | None:
    """``k`` when ``fraction`` is 1/k (within :data:`TOLERANCE`, 1 ≤ k ≤ :data:`MAX_SHARES`), else None."""
    if not fraction > 0:
        return None
    k = round(1.0 / fraction)
    return k if 1 <= k <= MAX_SHARES and abs(fraction * k - 1.0) <= TOLERANCE else None


def share_problems(fraction: float, use_gpu: bool, num_workers: int) -> list[str]:
    """What is wrong with a trial worker's GPU fraction (empty when nothing): it must be 1/k
    for a whole k (a worker takes a whole GPU or an equal share of one; several GPUs per
    worker are not supported: use ``num_workers``), means nothing without ``use_gpu``, and a
    share is for one-worker trials (the workers of one trial on one GPU: NCCL refuses)."""
    if shares_of(fraction) is None:
        return [(f"{fraction:g} is not 1/k for a whole k from 1 to {MAX_SHARES} (1, 0.5, 0.3333, 0.25, ...): "
                 "k trials share one GPU equally; more than one GPU per worker is not supported (use num_workers)")]
    if fraction < 1 and not use_gpu:
        return [(f"{fraction:g} with use_gpu: false: a GPU share without a GPU would be silently ignored; "
                 "set use_gpu: true or remove gpus_per_worker")]
    if fraction < 1 and num_workers > 1:
        return [(f"{fraction:g} with num_workers: {num_workers}: one trial's workers could land on the same GPU, "
                 "which NCCL refuses ('Duplicate GPU detected', ray-project/ray#48012); use a whole GPU per "
                 "worker with several workers")]
    return []


def share_cap(total_bytes: int, k: int, context_bytes: int, margin_bytes: int = MARGIN_BYTES) -> float:
    """The fraction of the device's memory one of ``k`` processes may allocate:
    ``(total − k·context − margin) / (k·total)``, so that k caps plus k contexts plus the
    margin make the whole device. Raises ValueError when the contexts and margin leave nothing."""
    if k < 1:
        raise ValueError(f"k = {k}: a GPU is shared by at least one process")
    left = total_bytes - k * context_bytes - margin_bytes
    if left <= 0:
        raise ValueError(f"{k} CUDA contexts of {context_bytes / 2**30:.2f} GiB and a {margin_bytes / 2**20:.0f} MiB "
                         f"margin leave nothing of {total_bytes / 2**30:.2f} GiB")
    return left / (k * total_bytes)


def told_fraction() -> float:
    """The GPU fraction this process was told by its slot (1: a whole GPU, or none told)."""
    return float(os.environ.get(FRACTION_ENV) or 1.0)


def measure_context_bytes(device) -> tuple[int | None, str]:
    """This process's device memory as NVML sees it, read after its CUDA context exists and
    before it allocates anything: the context's size. None (and why) where NVML cannot say
    (``pynvml`` missing, MIG, another PID namespace in a container)."""
    try:
        import pynvml
    except ImportError:
        return None, "pynvml (nvidia-ml-py) is not installed"
    import torch

    try:
        pynvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 - no NVML: fall back
        return None, f"NVML did not start: {e}"
    try:
        uuid = str(torch.cuda.get_device_properties(device).uuid)
        handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
        for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if p.pid == os.getpid() and p.usedGpuMemory:
                return int(p.usedGpuMemory), "NVML's usage of this process after its CUDA context was made"
        return None, "NVML lists no usage for this process (another PID namespace?)"
    except Exception as e:  # noqa: BLE001 - MIG and old drivers give no per-process usage
        return None, f"NVML: {type(e).__name__}: {e}"
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def apply_share(fraction: float, device=None) -> GpuShare | None:
    """Cap this process's CUDA allocator to its 1/k share of ``device`` (default: the current
    one); call before the process allocates on CUDA. None for a whole GPU (k = 1: nothing
    changes); without a visible CUDA device the share is recorded with no cap."""
    k = shares_of(fraction)
    if k is None:
        raise ValueError(share_problems(fraction, True, 1)[0])
    if k == 1:
        return None
    import torch

    if not torch.cuda.is_available():
        return GpuShare(fraction=1.0 / k, k=k, note="no CUDA device visible to this process: no cap set")
    dev = torch.device("cuda", torch.cuda.current_device()) if device is None else torch.device(device)
    _free, total = torch.cuda.mem_get_info(dev)  # makes this process's CUDA context if it had none
    context, how = measure_context_bytes(dev)
    measured = context is not None
    if not measured:
        context, how = FALLBACK_CONTEXT_BYTES, f"assumed {FALLBACK_CONTEXT_BYTES / 2**30:g} GiB: {how}"
    cap = share_cap(int(total), k, int(context), MARGIN_BYTES)
    torch.cuda.set_per_process_memory_fraction(cap, dev)
    return GpuShare(fraction=1.0 / k, k=k, cap=cap, cap_bytes=int(cap * total), total_bytes=int(total),
                    context_bytes=int(context), context_measured=measured, margin_bytes=MARGIN_BYTES, note=how)


def take_share(fraction: float) -> GpuShare | None:
    """A slot worker's share: its allocator capped (:func:`apply_share`) and ``FRACTION_ENV``
    set for its trial processes' timing lock; None for a whole GPU. Raises
    :class:`ShareUnusable` with the reason when the device cannot be shared that way."""
    if fraction >= 1.0:
        return None
    try:
        share = apply_share(fraction)
    except ValueError as exc:  # share_cap's "leave nothing", or not 1/k: the same on every slot
        raise ShareUnusable(f"a {fraction:g} share of the GPU could not be set on {platform.node()}: "
                            f"{str(exc).splitlines()[0]}") from None
    os.environ[FRACTION_ENV] = repr(fraction)  # the trial's own timing lock reads it
    return share


def device_full(reserve: int = 2 * MARGIN_BYTES) -> bool:
    """Whether the GPU itself has (almost) nothing free: then a CUDA out-of-memory under a
    share is the device's (contexts that grew, a process outside the sweep), not the trial's
    cap, and is recorded as ``oom``. False where it cannot be told (no CUDA)."""
    try:
        import torch

        free, _total = torch.cuda.mem_get_info()
        return free < reserve
    except Exception:  # noqa: BLE001 - no CUDA here: the cap is the only limit there was
        return False


def over_share_message(share: GpuShare, error: str) -> str:
    """What a trial that ran out of CUDA memory under a share is told: it passed its own cap."""
    cap = f" (cap {share.cap_bytes / 2**30:.2f} GiB of {share.total_bytes / 2**30:.2f} GiB)" if share.cap_bytes else ""
    return f"infeasible in a 1/{share.k} share of the GPU: over its share{cap}: {error}"


def gpu_key(device) -> str:
    """The GPU's identity across processes: its UUID, else host and physical index."""
    import torch

    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    if uuid is not None:
        return str(uuid)
    index = torch.device(device).index or 0
    visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v]
    return f"{platform.node()}-{visible[index] if index < len(visible) else index}"


@contextlib.contextmanager
def timing_lock(device) -> Iterator[float | None]:
    """Hold this GPU's timing lock while timing on a shared GPU (this process was told a
    fraction below 1); yields the seconds spent waiting for it, None when no lock was taken
    (a CPU, or a whole GPU). The lock is a file under :data:`LOCK_DIR`, one per GPU UUID."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda" or told_fraction() >= 1.0:
        yield None
        return
    t0 = time.perf_counter()
    with file_lock(LOCK_DIR / f"{gpu_key(dev)}.lock"):
        yield time.perf_counter() - t0
