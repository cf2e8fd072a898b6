"""Small shared helpers: atomic writes, content hashes, seeding."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch


# What this process has loaded, for the counters in every trial record: with
# long-lived workers, datasets and checkpoints must be read once per process.
LOAD_COUNTS: dict[str, int] = {"dataset_builds": 0, "dataset_reads": 0, "dataset_reuses": 0,
                               "checkpoint_reads": 0, "checkpoint_reuses": 0}


def stable_hash(obj: Any, n: int = 12) -> str:
    """Hash of a JSON-serialisable object, independent of key order."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def file_digest(path: Path, n: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Write through a temporary file in the same folder, then rename it into place.

    Readers see either the old file or the complete new one, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; give it the mode an open() would
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def atomic_write_json(path: Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


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
