"""Trials in long-lived Ray Train worker groups, one per concurrent slot.

Starting a Ray Train run costs seconds (a controller, a worker group, the
workers' imports of torch/PyG/RDKit), far more than many trials' work. So each
slot is one ``TorchTrainer`` run that lives for the whole sweep: its workers
loop, pulling the next trial from the slot's :class:`Mailbox`, running it, and
posting the record back. Datasets and checkpoints stay loaded in the worker
processes between trials (``workloads`` keeps them per process), and imports
happen once per worker.

Trials with ``num_workers > 1`` run the same way: rank 0 takes the trial from
the mailbox and broadcasts it to the other ranks over the worker group's
``torch.distributed`` process group, which Ray Train set up once for the slot,
so every trial of the slot trains with DDP without a new worker group.

Failures: a trial that raises comes back as a failed record and its slot goes
on. A worker process that dies (a crash, the OOM killer) ends its slot's
Train run (``max_failures=0``): the trial in flight is recorded as failed and a
fresh slot starts. A trial that runs longer than ``timeout_s`` from the moment
its worker took it (a slot's worker group starting does not count) is cut: its slot's Train
run is cancelled (its controller and workers are owned by the slot's task and
die with it) and a fresh slot starts. A slot whose GPU share cannot be set
(:class:`workloads.gpu_share.ShareUnusable`) stops the sweep with the reason: every
slot would meet it, and restarting would only repeat it.

Early stopping: when the driver sets ``rung_decider``, rank 0 reports each rung to
the slot's mailbox and waits for the answer; the driver waits on the mailbox's next
rung report together with results and dead slots, decides, and answers.

Several trials per GPU: with ``gpus_per_worker = 1/k`` each slot's worker asks Ray for
1/k of a GPU, so k slots are placed on one GPU. Ray's fractional GPUs are bookkeeping only
(it counts, it does not isolate), so each worker caps its own CUDA allocator to its share
before its first trial and records it (:mod:`workloads.gpu_share`); a trial over its cap is
infeasible with cause ``share``.

The worker side (the mailbox actor, the slots' loop) is :mod:`orchestrator.executor.ray_worker`.
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import ray

from orchestrator.executor.base import TRIAL_FN, Executor, failed, resource_problems
from orchestrator.executor.ray_worker import TRAIN_ENV, Mailbox, run_slot
from runfolder import Rung, TrialRecord
from workloads.gpu_share import share_problems

log = logging.getLogger(__name__)

def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    if ray.is_initialized():
        return
    runtime_env = {"env_vars": TRAIN_ENV}
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)


def check_resources(resources: dict, strict: bool) -> None:
    """Fail fast (locally) or warn (on a cluster, which may scale up) when one
    trial's worker group cannot fit: Ray would otherwise wait for it forever."""
    have = ray.cluster_resources()
    problems = resource_problems(resources, have.get("CPU", 0), have.get("GPU", 0))
    if problems:
        msg = "resources: " + "; ".join(problems)
        if strict:
            raise RuntimeError(msg)
        warnings.warn(msg + " (waiting for the cluster to scale up)", stacklevel=2)


@dataclass
class _Slot:
    index: int
    generation: int
    mailbox: object
    run_ref: object
    key: str | None = None  # the trial in flight
    result_ref: object = None
    deadline: float = float("inf")
    submitted_unix: float = 0.0
    rung_ref: object = None  # the mailbox's next rung report (kept across trials: reports come in order)


class RaySlotExecutor(Executor):
    """Long-lived Ray Train worker groups, ``slots`` of them, each serving trials in turn.

    Args:
        resources: ``num_workers``, ``cpus_per_worker``, ``use_gpu`` and ``gpus_per_worker``
            (default 1; 1/k: k slots share a GPU, see :mod:`workloads.gpu_share`) of one slot.
        slots: trials at once (``resources.max_concurrent_trials``).
        storage_path: Ray Train's storage folder for the slots' runs.
        address: a Ray cluster to join (None: start Ray here, ``num_cpus`` CPUs).
        timeout_s: a trial running longer is cut and recorded as failed (None: no limit).
        trial_fn: ``"module:function"`` the workers call (default ``workloads:run_trial``).
        name: prefix of the slots' Train run names.
        dist_backend: torch.distributed's backend for the slots' worker groups (None: Ray Train's
            choice, NCCL with GPUs). Only tests set it: ``"gloo"`` with logical GPUs on a CPU machine.
    """

    def __init__(self, resources: dict, slots: int, storage_path: str | Path, *, address: str | None = None,
                 num_cpus: int | None = None, timeout_s: float | None = None, trial_fn: str = TRIAL_FN,
                 name: str = "slot", dist_backend: str | None = None) -> None:
        problems = share_problems(float(resources.get("gpus_per_worker", 1.0)), resources["use_gpu"],
                                  resources["num_workers"])
        if problems:
            raise ValueError(f"gpus_per_worker: {problems[0]}")
        self.resources, self.n_slots, self.dist_backend = dict(resources), slots, dist_backend
        self.storage_path, self.address, self.num_cpus = str(storage_path), address, num_cpus
        self.timeout_s, self.trial_fn, self.name = timeout_s, trial_fn, name
        self.slots: dict[int, _Slot] = {}
        self.restarts = 0
        self.unusable: str | None = None  # why a slot could not take its GPU share (ShareUnusable)

    # -- life cycle ---------------------------------------------------------
    def connect(self) -> None:
        init_ray(self.address, self.num_cpus)
        check_resources(self.resources, strict=self.address is None)

    def state_builder(self):
        """LM-state caches on Ray Data actors across the cluster: one per free GPU when trials
        use GPUs (pooling on CUDA; a whole GPU each, whatever the trials' share: the caches are
        built before any slot starts, and a large LM needs the memory), else one per
        ``cpus_per_worker`` CPUs; in the driver where actors cannot win (``RayDataBuilder.where``)."""
        from workloads.textgraphs.lm_cache_ray import RayDataBuilder

        r = self.resources
        return RayDataBuilder(cpus_per_actor=r["cpus_per_worker"], use_gpu=r["use_gpu"],
                              gpus_per_actor=1.0 if r["use_gpu"] else 0.0, address=self.address)

    def start(self) -> None:
        self.connect()
        for i in range(self.n_slots):
            self._start_slot(i, 0)

    def _start_slot(self, index: int, generation: int) -> None:
        mailbox = Mailbox.remote()
        ref = run_slot.remote(index, mailbox, self.trial_fn, self.resources, self.storage_path,
                              f"{self.name}-{index}-g{generation}-{os.getpid()}-{int(time.time())}", self.dist_backend)
        self.slots[index] = _Slot(index, generation, mailbox, ref)

    def _restart(self, slot: _Slot, kill: bool) -> None:
        if kill:
            ray.cancel(slot.run_ref, force=True)
        ray.kill(slot.mailbox)
        self.restarts += 1
        self._start_slot(slot.index, slot.generation + 1)

    def close(self) -> None:
        for s in self.slots.values():
            s.mailbox.put_trial.remote(None)
        refs = [s.run_ref for s in self.slots.values()]
        if refs:
            _done, pending = ray.wait(refs, num_returns=len(refs), timeout=30)
            for r in pending:
                ray.cancel(r, force=True)
        for s in self.slots.values():
            ray.kill(s.mailbox)
        self.slots.clear()

    # -- trials -------------------------------------------------------------
    def free_slots(self) -> int:
        if self.unusable:  # the sweep stops at the next wait: nothing more to submit
            return 0
        return sum(1 for s in self.slots.values() if s.key is None)

    def submit(self, key: str, trial: dict) -> str:
        slot = next((s for s in self.slots.values() if s.key is None), None)
        if slot is None:
            raise RuntimeError("no free slot: wait for a result before submitting")
        slot.submitted_unix = time.time()
        slot.mailbox.put_trial.remote((key, trial, self.rung_decider is not None))
        if self.rung_decider is not None and slot.rung_ref is None:
            slot.rung_ref = slot.mailbox.next_rung.remote()
        slot.result_ref = slot.mailbox.next_result.remote()
        slot.key = key
        slot.deadline = time.monotonic() + self.timeout_s if self.timeout_s else float("inf")
        return key

    def wait(self, timeout: float | None = None) -> list[tuple[str, TrialRecord]]:
        if self.unusable:  # raised now that the other slots' records of the last wait are written
            raise RuntimeError(self.unusable)
        busy = [s for s in self.slots.values() if s.key is not None]
        if not busy:
            return []
        watch = {s.result_ref: s for s in busy}
        watch.update({s.rung_ref: s for s in busy if s.rung_ref is not None})
        watch.update({s.run_ref: s for s in self.slots.values()})
        limit = min(s.deadline for s in busy) - time.monotonic()
        limit = max(0.0, min(limit, timeout) if timeout is not None else limit)
        ready, _ = ray.wait(list(watch), num_returns=1, timeout=None if limit == float("inf") else limit)
        if ready:  # collect whatever else is ready too
            ready, _ = ray.wait(list(watch), num_returns=len(watch), timeout=0)
        out: list[tuple[str, TrialRecord]] = []
        ready_set = set(ready)
        for s in busy:  # rung reports first: each trial waits for its answer
            if s.rung_ref is not None and s.rung_ref in ready_set:
                try:
                    go = self.rung_decider(s.key, Rung.model_validate(ray.get(s.rung_ref)))
                except Exception:  # noqa: BLE001 - a decision that cannot be made lets the trial go on
                    log.warning("rung decision for %s failed; it goes on", s.key, exc_info=True)
                    go = True
                s.mailbox.answer.remote(bool(go))
                s.rung_ref = s.mailbox.next_rung.remote()
        for s in list(self.slots.values()):
            if s.key is not None and s.result_ref in ready_set:
                key, record = ray.get(s.result_ref)
                record.timings = record.timings.model_copy(
                    update={"driver_received_unix": time.time(), "submitted_unix": s.submitted_unix})
                out.append((key, record))
                s.key, s.result_ref, s.deadline = None, None, float("inf")
        for s in list(self.slots.values()):
            if s.run_ref in ready_set:  # the slot's Train run ended: its worker group failed
                info = ray.get(s.run_ref)
                why = info.get("error") or "the worker group stopped"
                if info.get("share_unusable"):  # every slot would meet it: no trial can run
                    self.unusable = f"resources.gpus_per_worker: slot {s.index}: {info['share_unusable']}"
                    continue  # its trial stays unrecorded (interrupted on resume, no budget used)
                if s.key is not None:
                    # the worker, not the configuration, failed: the driver may run it again
                    out.append((s.key, failed(f"worker group died: {why}", info.get("traceback", ""),
                                              worker_lost=True)))
                self._restart(s, kill=False)
        if self.unusable and not out:
            raise RuntimeError(self.unusable)
        now = time.monotonic()
        for s in list(self.slots.values()):
            if s.key is not None and now >= s.deadline:
                # The clock runs from when the worker took the trial: a slot's worker group
                # starting (or restarting) does not eat into the trial's time.
                try:
                    taken = ray.get(s.mailbox.taken.remote(), timeout=10)
                except Exception:  # noqa: BLE001 - an unreachable mailbox: treat as started at submission
                    taken = s.submitted_unix
                left = (taken + self.timeout_s - time.time()) if taken is not None else self.timeout_s
                if left > 0:
                    s.deadline = now + left
                    continue
                out.append((s.key, failed(f"timed out: the trial ran longer than trial_timeout_s={self.timeout_s:g}")))
                self._restart(s, kill=True)
        return out
