"""Executors by name: what ``orchestrator sweep --executor`` offers, its default, and
whether an executor runs trials in the driver's process (then the machine is checked
for GPUs only: it runs threads, not Ray's CPU slots).

An executor is registered with a factory that builds it for a sweep; registering one
is one row (see ``tests/orchestrator/test_executors.py``, which registers its own).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from workloads.registry import Registry

if TYPE_CHECKING:
    from orchestrator.executor.base import Executor


@dataclass(frozen=True)
class ExecutorKind:
    """A registered executor.

    Args:
        description: one line for ``--help``.
        in_process: runs trials in the driver's process (no Ray).
        create: ``(context) -> Executor`` where ``context`` is an :class:`ExecutorContext`.
    """

    description: str
    in_process: bool
    create: Callable[["ExecutorContext"], "Executor"]


@dataclass(frozen=True)
class ExecutorContext:
    """What a factory may use: the sweep's resources (``Resources`` of the spec, as a dict),
    its name, its run folder's Ray folder, and where Ray runs."""

    resources: dict
    name: str
    ray_dir: str
    address: str | None = None
    num_cpus: int | None = None
    slots: int = 1  # trials at once, already capped to what fits on this machine
    timeout_s: float | None = None


EXECUTORS: Registry[ExecutorKind] = Registry("executor")
DEFAULT_EXECUTOR = "ray"


def _ray(ctx: ExecutorContext) -> "Executor":
    from orchestrator.executor.ray_slots import RaySlotExecutor  # imported only when asked for

    r = ctx.resources
    keep = {k: r[k] for k in ("num_workers", "cpus_per_worker", "use_gpu", "gpus_per_worker") if k in r}
    return RaySlotExecutor(keep, ctx.slots, ctx.ray_dir, address=ctx.address, num_cpus=ctx.num_cpus,
                           timeout_s=ctx.timeout_s, name=ctx.name)


def _inprocess(ctx: ExecutorContext) -> "Executor":
    from orchestrator.executor.inprocess import InProcessExecutor

    return InProcessExecutor()


EXECUTORS.add("ray", ExecutorKind("long-lived Ray Train worker groups (default)", False, _ray))
EXECUTORS.add("inprocess", ExecutorKind("one trial at a time in this process, no Ray (debugging, small machines)",
                                        True, _inprocess))
