"""What this machine can give the trials, checked before anything is written or computed.
(On a cluster the executor checks instead, warning, since the cluster may scale.)"""
from __future__ import annotations

import math
import os

from orchestrator.executor import resource_problems
from orchestrator.spec import SpecError, SweepSpec


def local_capacity(spec: SweepSpec, num_cpus: int | None) -> tuple[float, int]:
    """CPUs (``num_cpus``, else the machine's) and GPUs (counted only if asked for) here."""
    gpus = 0
    if spec.resources.use_gpu:
        import torch

        gpus = torch.cuda.device_count()
    return num_cpus or os.cpu_count() or 1, gpus


def check_local_resources(spec: SweepSpec, num_cpus: int | None, gpus_only: bool = False) -> None:
    """Can this machine give one trial what it asks for? ``gpus_only``: an in-process
    executor runs threads, not Ray's CPU slots."""
    cpus, gpus = local_capacity(spec, num_cpus)
    problems = resource_problems(spec.resources.model_dump(), math.inf if gpus_only else cpus, gpus)
    if problems:
        raise SpecError("resources: " + "; ".join(problems))
