"""Checkpoint formats: a backbone built from someone else's pretrained weights.

A format is one module with three parts (see :class:`CheckpointFormat`): the config
mapping (the checkpoint's own config to the backbone's architecture model), the weight
mapping (its tensors to the backbone's parameter names), and the input encoding the
weights expect (the backbone variant the mapped config builds). Its proof is an
equivalence test against outputs of the reference code, made in a throwaway
environment by a committed script (``scripts/make_hf_graphormer_fixtures.py``,
``scripts/make_mat_fixtures.py``).

A checkpoint's tensors are read once per process and kept under the weight file's
content hash (:func:`load_checkpoint`), as the project's own pretrained checkpoints are.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import torch
from pydantic import BaseModel
from torch import nn

from workloads.registry import Registry
from workloads.util import LOAD_COUNTS, file_digest


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with why (one line)."""


class CheckpointFormat(Protocol):
    #: the format's name in a spec (``checkpoint.format``)
    name: str
    #: registered backbone names this format builds
    backbones: tuple[str, ...]

    def read_config(self, folder: Path, options) -> BaseModel:
        """The backbone architecture the checkpoint's own config describes (CheckpointError if
        it is missing, of another model, or uses what the backbone cannot compute)."""

    def read_weights(self, folder: Path) -> dict[str, torch.Tensor]:
        """The checkpoint's tensors under the backbone's parameter names (its own task head left out)."""

    def weight_shapes(self, folder: Path) -> dict[str, tuple[int, ...]]:
        """The shapes :meth:`read_weights` would return, read without loading the tensors where
        the file format allows."""

    def weights_file(self, folder: Path) -> Path:
        """The file holding the tensors (its content hash keys the in-process cache)."""


FORMATS: Registry[CheckpointFormat] = Registry("checkpoint format")


def format_of(name: str) -> CheckpointFormat:
    if name not in FORMATS:
        _register_builtin()
    return FORMATS.get(name)


def _register_builtin() -> None:
    from workloads.checkpoints import hf_graphormer, mat_authors  # noqa: F401  (each registers itself)


def known_formats() -> list[str]:
    _register_builtin()
    return FORMATS.names()


# Only a backbone's own bookkeeping may be absent from a checkpoint: the masked-atom
# embedding of the project's pretraining, and what methods add later.
OWN_ONLY = ("mask_embedding",)


def shape_problem(model: nn.Module, shapes: dict[str, tuple[int, ...]]) -> str | None:
    """The first weight that is missing, unexpected or mis-shaped against ``model``, as one line."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if k not in OWN_ONLY}
    for k, s in expected.items():
        if k not in shapes:
            return f"weight '{k}' (shape {list(s)}) is missing from the checkpoint"
    for k, s in shapes.items():
        if k not in expected:
            return f"unexpected weight '{k}' (shape {list(s)}) in the checkpoint"
        if tuple(s) != expected[k]:
            return f"weight '{k}' has shape {list(s)} in the checkpoint, the model expects {list(expected[k])}"
    return None


@lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    return file_digest(Path(path))


def content_hash(path: Path) -> str:
    """The weight file's content hash (computed once per file version in a process)."""
    st = os.stat(path)
    return _digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


# Checkpoints this process has read, by content hash: a long-lived worker reads each once.
_READ: dict[str, dict[str, torch.Tensor]] = {}


def load_checkpoint(backbone: nn.Module, checkpoint) -> dict:
    """Load ``checkpoint`` (a :class:`~workloads.config.CheckpointConfig`) into ``backbone``;
    returns what the record keeps of it."""
    fmt = format_of(checkpoint.format)
    folder = checkpoint.folder
    wfile = fmt.weights_file(folder)
    key = content_hash(wfile)
    if key in _READ:
        LOAD_COUNTS["checkpoint_reuses"] += 1
    else:
        _READ[key] = fmt.read_weights(folder)
        LOAD_COUNTS["checkpoint_reads"] += 1
    state = _READ[key]
    problem = shape_problem(backbone, {k: tuple(v.shape) for k, v in state.items()})
    if problem:
        raise CheckpointError(f"{folder}: {problem}")
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    assert not unexpected and all(m in OWN_ONLY or m.startswith(("slots.", "input_prompt.")) for m in missing), \
        (missing, unexpected)
    return {"checkpoint": str(folder), "format": fmt.name, "weights": wfile.name, "sha256": key}
