"""Small shared helpers: atomic writes, content hashes, seeding."""
from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runfolder.io import (  # noqa: F401  (re-exported: the workloads' one place for them)
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    file_digest,
    stable_hash,
)


# What this process has loaded, for the counters in every trial record: with
# long-lived workers, datasets and checkpoints must be read once per process.
LOAD_COUNTS: dict[str, int] = {"dataset_builds": 0, "dataset_reads": 0, "dataset_reuses": 0,
                               "checkpoint_reads": 0, "checkpoint_reuses": 0,
                               "lm_cache_builds": 0, "lm_cache_reads": 0}


def atomic_torch_save(path: Path, obj: Any) -> Path:
    return atomic_write(path, lambda p: torch.save(obj, p))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def seeded(seed: int):
    """Run the block from ``seed`` (Python, NumPy, torch CPU and CUDA), then put every
    global random state back as it was: no helper reseeds its caller's streams."""
    py, npy = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            seed_everything(seed)
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


def default_cache_dir() -> Path:
    """Cache for featurized datasets and pretrained checkpoints.

    ``GRAPH_PEFT_CACHE`` overrides it; on a multi-node cluster point it at shared storage.
    """
    env = os.environ.get("GRAPH_PEFT_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "graph-peft-sweep"


def ogb_root(root: str | None) -> Path:
    if root:
        return Path(root).expanduser()
    env = os.environ.get("OGB_ROOT")
    if env:
        return Path(env).expanduser()
    return Path("data") / "ogb"
