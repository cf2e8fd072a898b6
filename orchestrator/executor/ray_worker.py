"""The worker side of the Ray slots (:mod:`orchestrator.executor.ray_slots`): each slot's
mailbox actor, and the loop its Ray Train workers run for the whole sweep.

The mailbox is written by hand: ``ray.util.queue.Queue`` offers the driver no object
reference to wait on together with the slots' own references, which the driver needs
to notice a dead slot, a result or a rung report, whichever comes first.
"""
from __future__ import annotations

import asyncio
import os
import time
import traceback
from pathlib import Path

import ray

from orchestrator.executor.base import error_chain, gpu_fraction, resolve, root_cause, run_one
from runfolder import ExecutorInfo
from workloads.gpu_share import ShareUnusable, take_share

# Ray Train's controller polls its workers every 2 s by default; a dead worker is
# noticed sooner with 0.25 s.
TRAIN_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25"}


@ray.remote(num_cpus=0)
class Mailbox:
    """One slot's queues: trials in (driver -> rank 0), records out (rank 0 -> driver),
    and rung reports (rank 0 -> driver) with their answers (driver -> rank 0)."""

    def __init__(self) -> None:
        self.trials: asyncio.Queue = asyncio.Queue()
        self.results: asyncio.Queue = asyncio.Queue()
        self.rungs: asyncio.Queue = asyncio.Queue()
        self.answers: asyncio.Queue = asyncio.Queue()
        self.taken_unix: float | None = None  # when rank 0 took the trial in flight

    async def report_rung(self, rung: dict) -> bool:
        """A running trial's rung report; returns the driver's answer (go on?)."""
        await self.rungs.put(rung)
        return await self.answers.get()

    async def next_rung(self) -> dict:
        return await self.rungs.get()

    async def answer(self, go_on: bool) -> None:
        await self.answers.put(go_on)

    async def put_trial(self, msg) -> None:
        self.taken_unix = None
        await self.trials.put(msg)

    async def next_trial(self):
        msg = await self.trials.get()
        self.taken_unix = time.time()
        return msg

    async def taken(self) -> float | None:
        return self.taken_unix

    async def put_result(self, msg) -> None:
        await self.results.put(msg)

    async def next_result(self):
        return await self.results.get()


def _follow(rung) -> bool:  # ranks but 0 never report: the train loop broadcasts rank 0's answer
    return True


def slot_loop(config: dict) -> None:
    """Runs in every Ray Train worker of a slot, for the whole sweep."""
    t_enter = time.time()
    import ray.train

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    mailbox = config["mailbox"]
    fn = resolve(config["trial_fn"])
    # several slots on one GPU: cap this process first (None for a whole GPU); ShareUnusable
    # ends the slot, and the driver the sweep
    share = take_share(config.get("gpu_fraction", 1.0))
    t_ready = time.time()
    served = 0
    while True:
        msg = ray.get(mailbox.next_trial.remote()) if rank == 0 else None
        if world > 1:
            import torch.distributed as dist

            box = [msg]
            dist.broadcast_object_list(box, src=0)
            msg = box[0]
        if msg is None:  # the driver closes the slot
            return
        key, trial, asks = msg
        # rank 0 asks the driver at each rung; the train loop shares its answer with the other ranks
        ask = None
        if asks:
            ask = (lambda r: ray.get(mailbox.report_rung.remote(r.model_dump()))) if rank == 0 else _follow
        record = run_one(fn, trial, rank, world, rung=ask, share=share)
        served += 1
        record.timings = record.timings.model_copy(
            update={"worker_process_start_unix": t_enter, "worker_ready_unix": t_ready})
        record.ran_on(ExecutorInfo(kind="ray_slots", slot=config["slot"], worker_pid=os.getpid(),
                                   trials_served_by_worker=served, world_size=world,
                                   # which Ray node ran it: several nodes may share one host name
                                   node_id=ray.get_runtime_context().get_node_id(),
                                   node_ip=ray.util.get_node_ip_address(), ray_run=config.get("ray_run"),
                                   gpu_share=share))
        if rank == 0:
            ray.get(mailbox.put_result.remote((key, record)))


@ray.remote(num_cpus=0)
def run_slot(slot: int, mailbox, trial_fn: str, resources: dict, storage_path: str, run_name: str,
             dist_backend: str | None = None) -> dict:
    """One slot's Train run; returns when the slot is closed or its worker group fails.

    With ``use_gpu`` each worker asks Ray for ``gpus_per_worker`` of a GPU (1, or 1/k: then k
    slots' workers are placed on one GPU; Ray only counts, the worker caps its own memory) and
    is told its fraction in ``train_loop_config``. ``dist_backend``: torch.distributed's backend
    (None: Ray Train's choice, NCCL with GPUs); tests on logical GPUs without CUDA pass gloo."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    fraction = gpu_fraction(resources) if resources["use_gpu"] else 1.0
    per_worker = {"CPU": resources["cpus_per_worker"], **({"GPU": fraction} if resources["use_gpu"] else {})}
    try:
        trainer = TorchTrainer(
            slot_loop,
            train_loop_config={"mailbox": mailbox, "trial_fn": trial_fn, "slot": slot,
                               "ray_run": str(Path(storage_path)), "gpu_fraction": fraction},
            torch_config=TorchConfig(backend=dist_backend) if dist_backend else None,
            scaling_config=ScalingConfig(
                num_workers=resources["num_workers"],
                use_gpu=resources["use_gpu"],
                resources_per_worker=per_worker,
            ),
            run_config=RunConfig(name=run_name, storage_path=storage_path,
                                 failure_config=FailureConfig(max_failures=0)),
        )
        result = trainer.fit()
        if result.error is not None:
            raise result.error
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - reported to the driver, which restarts the slot
        info = {"ok": False, "error": root_cause(exc), "traceback": "".join(traceback.format_exception(exc))}
        unusable = next((e for e in _raised(exc) if isinstance(e, ShareUnusable)), None)
        if unusable is not None:  # every slot would meet it: the driver stops the sweep
            info["share_unusable"] = str(unusable)
        return info


def _raised(exc: BaseException):
    """The error's chain (:func:`error_chain`) and, within it, what Ray wrapped: a task
    error's ``cause`` and what each worker raised (Ray Train's ``WorkerGroupError`` holds the
    workers' own errors in ``worker_failures``, not in its cause chain)."""
    for e in error_chain(exc):
        yield e
        for inner in (getattr(e, "cause", None), *(getattr(e, "worker_failures", None) or {}).values()):
            if isinstance(inner, BaseException) and inner is not e:
                yield from _raised(inner)
