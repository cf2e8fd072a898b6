"""The in-memory form of a text-attributed graph (no torch: plain lists and arrays), and
what a text-graph source is (a ``TextGraphDataSource``, see
:mod:`workloads.datasets.contract`) with the config model of registered graphs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from pydantic import Field

from workloads.datasets.base import no_problems
from workloads.datasets.entry import BaseDatasetConfig

NODE_FRACTIONS = (0.6, 0.2, 0.2)


class TextGraphError(ValueError):
    """A text graph that cannot be used; the message names the file and what is wrong."""


@dataclass
class TextGraph:
    """Nodes with text and a class, and directed edges between node indices.

    ``ids[i]``, ``texts[i]`` and ``labels[i]`` describe node i; ``classes[labels[i]]`` is
    its class name; ``edges`` is [2, E] of node indices; ``split`` maps each node to
    "train", "valid" or "test" (None until a split is chosen); ``dropped`` counts rows
    that were skipped, by reason.
    """

    name: str
    ids: list[str]
    texts: list[str]
    labels: np.ndarray  # [N] int64 class indices
    classes: list[str]
    edges: np.ndarray  # [2, E] int64 node indices
    split: list[str] | None = None
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return len(self.ids)

    def summary(self) -> dict:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        out = {"name": self.name, "num_nodes": self.num_nodes, "num_edges": int(self.edges.shape[1]),
               "num_classes": len(self.classes), "smallest_class": int(counts.min()),
               "largest_class": int(counts.max()), "dropped": dict(self.dropped)}
        if self.split is not None:
            out.update({f"num_{s}": self.split.count(s) for s in ("train", "valid", "test")})
        return out


def random_split(n: int, labels: np.ndarray, fractions=(0.6, 0.2, 0.2), seed: int = 0) -> list[str]:
    """A split stratified by class: each class is divided by ``fractions`` (train gets the rest)."""
    rng = np.random.default_rng(seed)
    split = ["train"] * n
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_va, n_te = int(round(fractions[1] * len(idx))), int(round(fractions[2] * len(idx)))
        for i in idx[:n_va]:
            split[i] = "valid"
        for i in idx[n_va:n_va + n_te]:
            split[i] = "test"
    return split


class TextGraphConfig(BaseDatasetConfig):
    """An entry naming a registered text graph (``{name: wordnet, max_train_nodes: 500}``)."""

    kind: None = Field(default=None, description="null: 'name' is a registered dataset")
    max_train_nodes: int | None = Field(
        default=None, ge=10, description="a deterministic stratified subsample of the training nodes (every "
        "method sees the same); null: all")
    root: str | None = Field(
        default=None, description="folder of on-disk data (wordnet: WordNet's dict folder for all of WordNet "
        "instead of the shipped subset; ogbn-arxiv: OGB's folder, default $OGB_ROOT or data/ogb)")


@dataclass(frozen=True)
class TextGraphSource:
    """A text-attributed graph with one class per node (a ``TextGraphDataSource``; see
    :mod:`workloads.datasets.contract` for what each member means)."""

    name: str
    description: str
    read: Callable[[BaseDatasetConfig], TextGraph]  # entry -> graph (split assigned)
    fingerprint: Callable[[BaseDatasetConfig], str]  # content digest of what it reads
    check: Callable[[BaseDatasetConfig], list[str]] = no_problems  # entry -> problems, before any work
    config_cls: type[BaseDatasetConfig] = TextGraphConfig
    family: str = "node_classification"
    task: str = "multiclass"
    metric: str = "accuracy"
    is_kind: bool = False  # read from the user's files named in the dataset entry

    def for_config(self, cfg: BaseDatasetConfig) -> TextGraphSource:
        return self


def with_split(g: TextGraph, cfg: BaseDatasetConfig, split: str = "random") -> TextGraph:
    """``g`` with a split: its own (a split column, OGB's), else stratified at random with
    ``cfg.split_fractions`` (default 0.6/0.2/0.2) and ``cfg.split_seed``; fractions given
    with a random split redraw it."""
    if g.split is None or (split == "random" and cfg.split_fractions is not None):
        g.split = random_split(g.num_nodes, g.labels, tuple(cfg.split_fractions or NODE_FRACTIONS), cfg.split_seed)
    return g
