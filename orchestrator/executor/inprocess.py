"""Trials in the calling process, one at a time (``orchestrator run``, tests). No Ray."""
from __future__ import annotations

from collections import deque

from orchestrator.executor.base import TRIAL_FN, Executor, resolve, run_one


class InProcessExecutor(Executor):
    """Runs each submitted trial when :meth:`wait` is called, in this process.

    Args:
        trial_fn: ``"module:function"`` taking ``(TrialConfig, rank=, world_size=)``
            and returning the record (default ``workloads:run_trial``).
    """

    in_process = True

    def __init__(self, trial_fn: str = TRIAL_FN) -> None:
        self.trial_fn = trial_fn
        self._fn = None
        self._queue: deque[tuple[str, dict]] = deque()

    def start(self) -> None:
        self._fn = resolve(self.trial_fn)

    def free_slots(self) -> int:
        return 0 if self._queue else 1

    def submit(self, key: str, trial: dict) -> str:
        self._queue.append((key, trial))
        return key

    def wait(self, timeout: float | None = None) -> list[tuple[str, dict]]:
        if not self._queue:
            return []
        key, trial = self._queue.popleft()
        decide = self.rung_decider
        return [(key, run_one(self._fn, trial, rung=(lambda r: decide(key, r)) if decide else None))]

    def close(self) -> None:
        self._queue.clear()
