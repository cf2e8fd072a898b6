"""Executors: the seam between the sweep driver and what runs trials (see ``base``),
registered by name in ``registry``.

``InProcessExecutor`` imports no Ray; ``RaySlotExecutor`` is imported only when asked for.
"""
from orchestrator.executor.base import (TRIAL_FN, Executor, failed, resource_problems, root_cause, run_one,
                                        trials_that_fit)
from orchestrator.executor.inprocess import InProcessExecutor
from orchestrator.executor.registry import DEFAULT_EXECUTOR, EXECUTORS, ExecutorContext, ExecutorKind

__all__ = ["DEFAULT_EXECUTOR", "EXECUTORS", "TRIAL_FN", "Executor", "ExecutorContext", "ExecutorKind",
           "InProcessExecutor", "failed", "resource_problems", "root_cause", "run_one", "trials_that_fit"]
