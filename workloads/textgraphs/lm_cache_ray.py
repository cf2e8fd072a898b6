"""The LM-state cache built across a Ray cluster with Ray Data, Ray's engine for batch
inference (a :class:`workloads.textgraphs.lm_cache.StateBuilder`).

The texts still to pool, already in token-length order, become a Ray Data dataset of
(node index, text) rows; ``map_batches`` hands contiguous batches of them to a pool of
:class:`Pooler` actors, each of which loads the language model once and writes each
batch's states as one shard file into the cache folder (shared storage on a cluster,
as ``storage.cache_dir`` is already). Only the node counts travel back to the driver,
which advances the progress as they arrive. A build killed midway leaves its shards;
the next one pools only the nodes they lack (:func:`workloads.textgraphs.lm_cache.cached_states`).

Actors run on GPUs (``num_gpus`` each) when the sweep asks for GPUs, on CPUs otherwise,
as many as the cluster has room for unless ``actors`` says. Where actors cannot win, the
build pools in the driver's process instead (:meth:`RayDataBuilder.where`): a CPU-only
cluster of one machine (actors share the driver's cores: 0.95x the in-process rate in
docs/benchmarks/lm_cache.md, after ~15 s of actor start-up), a CPU build too small to pay
that start-up, or no room for one actor. Ray is imported here only, and only a sweep on
Ray passes this builder: ``orchestrator run`` never imports it.

Actors on other machines write into the same folder, so ``storage.cache_dir`` must be
storage every node shares; an actor that cannot see the driver's build marker there fails
at once, saying so, rather than leaving its shards where the driver never looks.
"""
from __future__ import annotations

import math
import os
import uuid
from pathlib import Path

import numpy as np

from workloads.textgraphs.lm_cache import BuildJob, LocalBuilder, pooled_states, write_shard
from workloads.progress import Progress

__all__ = ["Pooler", "RayDataBuilder", "check_marker", "write_marker"]

ACTOR_START_S = 300  # the actor pool's start, at most (a 7B model from shared storage can take minutes)
MARKER = ".build"  # in the shard folder: the driver's token for this build
MIN_CPU_NODES = 8192  # a CPU build below this pools in the driver: ~30 s at the rates measured, about
# twice the actors' start-up (docs/benchmarks/lm_cache.md; make sweep's 4,272 nodes took 37 s on
# two actors and ~18 s in process)


def write_marker(shard_dir: str | Path) -> str:
    """Mark a build in ``shard_dir``; returns the token each actor checks (:func:`check_marker`)."""
    token = uuid.uuid4().hex
    Path(shard_dir).mkdir(parents=True, exist_ok=True)
    (Path(shard_dir) / MARKER).write_text(token)
    return token


def check_marker(shard_dir: str | Path, token: str) -> None:
    """Raise, naming this node, unless ``shard_dir`` holds this build's marker: the folder is
    not the driver's (``storage.cache_dir`` not on storage shared by every node)."""
    f = Path(shard_dir) / MARKER
    try:
        seen = f.read_text()
    except OSError:
        seen = None
    if seen != token:
        import socket

        raise RuntimeError(f"the LM-cache folder {shard_dir} on {socket.gethostname()} is not the driver's "
                           f"({'no build marker' if seen is None else 'another build marker'} there): "
                           "storage.cache_dir must be on storage every Ray node shares")


class Pooler:
    """One Ray Data actor: the language model, loaded once; each call pools one batch of
    rows ({"idx", "text"}) and writes it as a shard; returns the batch's node count."""

    def __init__(self, lm: str, max_length: int, layers: list[int], shard_dir: str, batch_size: int,
                 threads: int, use_gpu: bool, token: str) -> None:
        check_marker(shard_dir, token)  # before loading anything
        import torch

        from workloads.backbones.lm import LanguageModel, LMConfig

        torch.set_num_threads(max(1, threads))
        self.device = "cuda" if use_gpu and torch.cuda.is_available() else "cpu"
        self.lm = LanguageModel(LMConfig(path=lm, max_length=max_length)).to(self.device).eval()
        self.layers, self.shard_dir, self.batch_size = list(layers), shard_dir, batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import ray

        idx = np.asarray(batch["idx"], dtype=np.int64)
        states = pooled_states(self.lm, [str(t) for t in batch["text"]], self.layers, batch_size=self.batch_size)
        write_shard(self.shard_dir, idx, states)
        return {"nodes": np.array([len(idx)], dtype=np.int64),
                "ray_node": np.array([ray.get_runtime_context().get_node_id()])}


class RayDataBuilder:
    """Pools on a pool of Ray Data actors, where they can win (:meth:`where`).

    Args:
        actors: how many (default: as many as the cluster's free CPUs, or GPUs with
            ``use_gpu``, give room for, at most one per ``shard_nodes`` nodes). Given, the
            build always runs on Ray Data (benchmarks, tests), and every one of them must
            start within ``ACTOR_START_S``.
        cpus_per_actor: CPUs (and torch threads) of each actor (default 1).
        use_gpu: ``gpus_per_actor`` of a GPU per actor, pooling on CUDA.
        shard_nodes: nodes per ``map_batches`` batch, hence per shard file.
        min_cpu_nodes: a CPU build of fewer nodes pools in the driver.
        address: the Ray cluster to join when Ray is not started yet (None: a local one).
    """

    name = "ray-data"

    def __init__(self, actors: int | None = None, cpus_per_actor: int = 1, use_gpu: bool = False,
                 gpus_per_actor: float = 1.0, shard_nodes: int = 1024, min_cpu_nodes: int = MIN_CPU_NODES,
                 address: str | None = None) -> None:
        self.actors, self.cpus_per_actor, self.use_gpu = actors, cpus_per_actor, use_gpu
        self.gpus_per_actor, self.shard_nodes, self.address = gpus_per_actor, shard_nodes, address
        self.min_cpu_nodes = min_cpu_nodes

    def pool_size(self, n_nodes: int) -> int:
        """Actors to start: ``actors``, else as many as the free CPUs (and GPUs) hold;
        0 when none fits now (slots or another sweep hold the cluster)."""
        import ray

        if self.actors:
            return self.actors
        free = ray.available_resources()
        size = int(free.get("CPU", 0) // self.cpus_per_actor)
        if self.use_gpu:
            size = min(size, int(free.get("GPU", 0) // self.gpus_per_actor))
        return min(size, math.ceil(n_nodes / self.shard_nodes))

    def where(self, n_nodes: int) -> tuple[int, str]:
        """(actors, why): how many Ray Data actors pool ``n_nodes`` nodes; 0 means the driver's
        process, and ``why`` says why (a progress note)."""
        if self.actors:
            return self.actors, ""
        if not self.use_gpu:
            if _one_machine():
                return 0, "one machine: pooling in this process on its cores, as actors would"
            if n_nodes < self.min_cpu_nodes:
                return 0, f"{n_nodes:,} nodes: pooling in this process, sooner than actors start"
        size = self.pool_size(n_nodes)
        return size, "" if size else "no room for a Ray Data actor: pooling in this process"

    def build(self, job: BuildJob, progress: Progress) -> str | None:
        import logging

        import ray
        import ray.data

        logging.getLogger("ray.data").setLevel(logging.WARNING)  # its plan and stats lines: our progress says it
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        size, why = self.where(len(job.todo))
        if size < 1:  # an actor pool nothing can be placed for would wait forever, too
            progress.advance(0, note=why)
            LocalBuilder().build(job, progress)
            return LocalBuilder.name
        # This build's Ray Data settings, on a copy: the process's own context stays as it was.
        ctx = ray.data.DataContext.get_current().copy()
        ctx.enable_progress_bars = False  # our progress, in the driver's display
        ctx.execution_options.preserve_order = False
        # Every actor up before the first batch, one batch each at a time: a late actor (a model
        # still loading on another node) still gets work, and a pool that cannot start fails
        # instead of waiting forever.
        ctx.wait_for_min_actors_s = ACTOR_START_S
        what = f"{size} Ray Data actor{'s' if size > 1 else ''}{' on GPUs' if self.use_gpu else ''}"
        progress.advance(0, note=what)
        token = write_marker(job.shard_dir)
        ran_on: set[str] = set()
        with ray.data.DataContext.current(ctx):
            # Contiguous runs of the length order, one block per shard: each batch pads to texts like its own.
            rows = ray.data.from_items(
                [{"idx": int(i), "text": job.texts[i]} for i in job.todo],
                override_num_blocks=max(1, math.ceil(len(job.todo) / self.shard_nodes)))
            out = rows.map_batches(
                Pooler, batch_size=self.shard_nodes, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=1),
                num_cpus=self.cpus_per_actor, num_gpus=self.gpus_per_actor if self.use_gpu else 0,
                fn_constructor_kwargs={"lm": job.lm, "max_length": job.max_length, "layers": job.layers,
                                       "shard_dir": os.fspath(job.shard_dir), "batch_size": job.batch_size,
                                       "threads": self.cpus_per_actor, "use_gpu": self.use_gpu, "token": token})
            try:
                for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
                    ran_on.update(str(n) for n in batch["ray_node"])
                    progress.advance(int(batch["nodes"].sum()),
                                     note=f"{what}, on {len(ran_on)} Ray node{'s' if len(ran_on) > 1 else ''}")
            except ray.exceptions.GetTimeoutError as exc:
                raise RuntimeError(f"{size} Ray Data actor(s) of {self.cpus_per_actor} CPU(s)"
                                   f"{f' and {self.gpus_per_actor:g} GPU' if self.use_gpu else ''} did not all start "
                                   f"and load {job.lm} within {ACTOR_START_S} s: the cluster lacks room for them, "
                                   "or the model loads slower than that") from exc
        return None


def _one_machine() -> bool:
    """Whether the Ray cluster's CPUs are all on the driver's machine."""
    import ray

    here = ray.get_runtime_context().get_node_id()
    with_cpus = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
    return with_cpus == [here]
