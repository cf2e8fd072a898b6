"""The executor contract: how the sweep driver hands trials to whatever runs them.

The driver never calls Ray (or any other runner) directly; it talks to an
:class:`Executor`, as Optuna's study talks to a ``BaseStorage``. Implementations:

* :class:`orchestrator.executor.inprocess.InProcessExecutor`: runs each trial in
  the calling process (``orchestrator run``, tests); imports no Ray.
* :class:`orchestrator.executor.ray_slots.RaySlotExecutor`: long-lived Ray Train
  worker groups, one per concurrent slot, that pull trials from a mailbox.

A *trial* is a key (unique in the sweep) and a JSON-ready ``TrialConfig`` dump.
A *result* is the worker's :class:`~runfolder.TrialRecord` with ``status`` ``"ok"``,
``"failed"``, or ``"infeasible"`` when it ran out of memory (cause ``oom``; ``share``
when over its share of a GPU that several slots share), and ``error``, ``traceback``
unless ok. An executor never raises for a trial's failure:
a trial that raises, kills its worker (``worker_lost``), or outlives its timeout
comes back as a failed record, and its slot comes back for the next trial.
"""
from __future__ import annotations

import abc
import importlib
import time
import traceback
from typing import Callable

from runfolder import GpuShare, Rung, TrialRecord
from workloads.gpu_share import device_full, over_share_message, shares_of

TRIAL_FN = "workloads:run_trial"


def resolve(path: str) -> Callable:
    """``"package.module:function"`` -> the function."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def root_cause(exc: BaseException) -> str:
    """The innermost error message in an exception chain (Ray wraps errors in layers)."""
    seen = exc
    while True:
        nxt = getattr(seen, "cause", None) or seen.__cause__
        if nxt is None or nxt is seen:
            break
        seen = nxt
    text = str(seen).strip().splitlines()
    return f"{type(seen).__name__}: {text[-1] if text else ''}"


OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory")


def error_chain(exc: BaseException | None):
    """The error and every error it came from (``__cause__``, else ``__context__`` unless
    suppressed by ``raise ... from None``, as Python's own traceback shows them)."""
    while exc is not None:
        yield exc
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)


def out_of_memory(exc: BaseException) -> bool:
    """Whether an error (anywhere in its chain) is an allocation failure: CUDA's
    ``OutOfMemoryError``, Python's ``MemoryError``, or torch's CPU allocator refusing."""
    return any(isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError"
               or (isinstance(e, RuntimeError) and any(m in str(e).lower() for m in OOM_MARKERS))
               for e in error_chain(exc))


def _release_cached_memory() -> None:
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()  # the long-lived worker serves the next trial with its memory back


def failed(error: str, tb: str = "", worker_lost: bool = False) -> TrialRecord:
    return TrialRecord.failure(error, tb, worker_lost=worker_lost)


def trial_needs(resources: dict) -> tuple[int, float]:
    """CPUs and GPUs of one trial's worker group: ``num_workers`` × ``cpus_per_worker``,
    and ``num_workers`` × ``gpus_per_worker`` (1, or a share 1/k: 0.3333 is taken as 1/3) if ``use_gpu``."""
    return (resources["num_workers"] * resources["cpus_per_worker"],
            resources["num_workers"] * gpu_fraction(resources) if resources["use_gpu"] else 0)


def gpu_fraction(resources: dict) -> float:
    """A worker's GPU: 1, or exactly 1/k for a ``gpus_per_worker`` within tolerance of it."""
    frac = float(resources.get("gpus_per_worker", 1.0))
    k = shares_of(frac)
    return 1.0 / k if k else frac


def _times(have: float, need: float) -> int:
    """How many ``need`` fit in ``have``, forgiving float rounding (three shares of 1/3 make a GPU)."""
    return int(have / need + 1e-6)


def trials_that_fit(resources: dict, have_cpus: float, have_gpus: float) -> int:
    """How many trials' worker groups fit at once in what is there (k per GPU with a 1/k share)."""
    need_cpu, need_gpu = trial_needs(resources)
    fit = int(have_cpus // need_cpu)
    return min(fit, _times(have_gpus, need_gpu)) if need_gpu else fit


def resource_problems(resources: dict, have_cpus: float, have_gpus: float) -> list[str]:
    """What one trial's worker group needs beyond what is there; empty when it fits."""
    need_cpu, need_gpu = trial_needs(resources)
    problems = []
    if have_cpus < need_cpu:
        problems.append(f"a trial needs {need_cpu} CPUs (num_workers × cpus_per_worker), there are {have_cpus:g}")
    if need_gpu and _times(have_gpus, need_gpu) < 1:
        problems.append(f"a trial needs {need_gpu:.4g} GPUs, there are {have_gpus:g}")
    return problems


def cuda_out_of_memory(exc: BaseException | None) -> bool:
    """Whether a CUDA allocation failed (torch's ``OutOfMemoryError``) anywhere in the chain."""
    return any(type(e).__name__ == "OutOfMemoryError" for e in error_chain(exc))


def run_one(fn: Callable, trial: dict, rank: int = 0, world_size: int = 1,
            rung: Callable[[Rung], bool] | None = None, share: GpuShare | None = None) -> TrialRecord:
    """Validate and run one trial where the caller stands; errors become a failed record.
    ``rung``: the trial's way to ask at its rung epochs whether to go on. ``share``: the
    caller's share of a shared GPU (its allocator capped): running out of CUDA memory
    under it is infeasible with cause ``share``, the configuration over its 1/k share."""
    from workloads.config import TrialConfig

    t0 = time.time()
    try:
        cfg = TrialConfig.model_validate(trial)
        record = fn(cfg, rank=rank, world_size=world_size, **({"rung": rung} if rung is not None else {}))
        if not isinstance(record, TrialRecord):
            raise TypeError(f"{getattr(fn, '__name__', fn)} returned {type(record).__name__}, not a TrialRecord")
    except Exception as exc:  # noqa: BLE001 - a failed trial is data, the sweep goes on
        record = failed(root_cause(exc), "".join(traceback.format_exception(exc)))
        if share is not None and cuda_out_of_memory(exc) and not device_full():  # its own cap, not a neighbour
            record.mark_infeasible("share", over_share_message(share, record.error))
            _release_cached_memory()
        elif out_of_memory(exc):  # the configuration does not fit this device: data too, not a crash
            record.mark_infeasible("oom", f"infeasible at this memory: {record.error}")
            _release_cached_memory()
    return record.ran_in_worker(t0, time.time())


class Executor(abc.ABC):
    """Runs trials; the sweep driver's only way to execute anything.

    Use as a context manager (``with executor: ...``): entering starts what it
    needs (worker processes), leaving stops them, also on error.

    Mid-trial reports (rungs): when the driver sets :attr:`rung_decider`, a running trial
    reports a :class:`~runfolder.Rung` at each of its rung epochs; the executor calls
    ``rung_decider(handle, rung)`` in the driver's thread (from :meth:`wait`) and carries
    its answer back to the trial: True, go on; False, stop (the trial ends at once, its
    record saying ``stopped``, and its slot is free). Without a decider trials never ask.
    """

    in_process: bool = False  # runs trials in the driver's process (no Ray)
    rung_decider: Callable[[str, Rung], bool] | None = None

    def connect(self) -> None:
        """Reach what the trials will run on (a Ray cluster), before :meth:`start` takes
        any of it: the shared caches are built in between (:meth:`state_builder`).
        Idempotent; :meth:`start` calls it too."""

    def state_builder(self):
        """Who builds the LM-state caches on what this executor runs on (a
        :class:`workloads.textgraphs.lm_cache.StateBuilder`); None: in this process."""
        return None

    @abc.abstractmethod
    def start(self) -> None:
        """Acquire workers; raise a clear error if the trials can never fit."""

    @abc.abstractmethod
    def free_slots(self) -> int:
        """How many more trials :meth:`submit` accepts right now."""

    @abc.abstractmethod
    def submit(self, key: str, trial: dict) -> str:
        """Start one trial (``free_slots() > 0``); return its handle (the key)."""

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> list[tuple[str, TrialRecord]]:
        """Block until at least one submitted trial finished (or ``timeout`` seconds
        passed: then possibly none) and return ``(handle, record)`` pairs."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop every worker; trials still running are abandoned."""

    def __enter__(self) -> "Executor":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
