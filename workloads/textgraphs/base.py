"""The in-memory form of a text-attributed graph (no torch: plain lists and arrays)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
