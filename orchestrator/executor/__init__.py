"""Executors: the seam between the sweep driver and what runs trials (see ``base``).

``InProcessExecutor`` imports no Ray; ``RaySlotExecutor`` is imported only when asked for.
"""
from orchestrator.executor.base import (TRIAL_FN, Executor, failed, resource_problems, root_cause, run_one,
                                        trials_that_fit)
from orchestrator.executor.inprocess import InProcessExecutor


def overhead_breakdown(t: dict) -> dict:
    """Where a trial's wall time went outside the workload, from the timestamps the
    executor and the worker add to ``record['timings']`` (seconds). Across hosts the
    differences include their clock offset."""
    out = {}
    if "submitted_unix" in t and "worker_start_unix" in t:
        out["submit_to_worker_s"] = t["worker_start_unix"] - t["submitted_unix"]  # mailbox; slot start on its first trial
    if "worker_start_unix" in t and "worker_done_unix" in t:
        # config validation, result assembly: the worker's time outside run_trial
        out["worker_glue_s"] = t["worker_done_unix"] - t["worker_start_unix"] - t.get("total_s", 0.0)
    if "worker_done_unix" in t and "driver_received_unix" in t:
        out["worker_to_driver_s"] = t["driver_received_unix"] - t["worker_done_unix"]
    return out


__all__ = ["TRIAL_FN", "Executor", "InProcessExecutor", "failed", "overhead_breakdown", "resource_problems",
           "root_cause", "run_one", "trials_that_fit"]
