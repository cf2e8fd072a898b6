"""The node-level model: a frozen language model and the trainable body a method installs.

A node-classification method (``workloads/peft/{gnn,engine,lm_lora,lm_full}``) sets
``NodeModel.body`` and declares in ``body.reads`` (:class:`NodeInputs`) what a batch
must carry: pooled LM states of some layers (read from the LM-state cache while
training) or the raw tokens, and around each target node which subgraph.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_mean_pool

from workloads.backbones.lm import LanguageModel


@dataclass(frozen=True)
class NodeInputs:
    """What a node-level body reads.

    ``layers``: LM layers whose pooled states it needs (0 = embeddings); ``cacheable``:
    whether training may read them from the LM-state cache (the LM does not train);
    ``sampler``: the subgraph around each target node ("none": the node alone,
    "one_hop": up to ``size - 1`` random neighbours, "rwr": a random walk with restart of
    ``walk_steps`` steps and restart probability ``restart``, up to ``size`` nodes).
    """

    layers: tuple[int, ...]
    cacheable: bool = True
    sampler: Literal["none", "one_hop", "rwr"] = "none"
    size: int = 1
    walk_steps: int = 32
    restart: float = 0.5

    def subgraph_key(self) -> tuple:
        return (self.sampler, self.size, self.walk_steps, self.restart) if self.sampler != "none" else ("none",)


def lm_layer(layer: int, num_layers: int) -> int:
    """The LM layer a body reads: ``layer`` (0 = embeddings, ..., ``num_layers``), -1 the last."""
    resolved = num_layers if layer == -1 else layer
    if resolved > num_layers:
        raise ValueError(f"layer {layer}: the LM has layers 0..{num_layers}")
    return resolved


def target_and_mean(x: Tensor, batch) -> Tensor:
    """[B, 2D] readout: each target node's state beside the mean over its subgraph (as ENGINE reads out)."""
    return torch.cat([x[batch.target_pos], global_mean_pool(x, batch.sub, size=batch.num_targets)], dim=-1)


class NodeModel(nn.Module):
    """A frozen :class:`LanguageModel` and a trainable ``body`` (set by a method).

    Input: a ``NodeBatch`` of B target nodes (``workloads.tasks.node_classification``);
    output: [B, num_classes] logits, or with ``with_slots=True`` a dict ``{"pred", "slots"}``
    where ``slots`` holds what the body exposes to the loss (ENGINE: every exit's logits).
    """

    def __init__(self, lm: LanguageModel, num_classes: int) -> None:
        super().__init__()
        self.lm = lm
        self.num_classes = num_classes
        self.body: nn.Module | None = None

    @property
    def reads(self) -> NodeInputs:
        if self.body is None:
            raise RuntimeError("no method has installed a body on this NodeModel")
        return self.body.reads

    def lm_states(self, batch, layers: list[int]) -> Tensor:
        """[len(layers), R, H] pooled states of the batch's rows: from the batch (cached) or
        computed now from its tokens (without autograd when the LM does not train)."""
        if batch.states is not None:
            return batch.states
        trains = any(p.requires_grad for p in self.lm.parameters())
        with torch.enable_grad() if trains else torch.no_grad():
            return self.lm.pooled(batch.input_ids, batch.attention_mask, list(layers))

    def reset_inference(self) -> None:
        """Start the body's inference sums afresh (ENGINE's ``since_reset``), when it keeps any."""
        f = getattr(self.body, "reset_inference", None)
        if f:
            f()

    def describe_inference(self) -> dict | None:
        """What the latest inference did, when the body reports it (ENGINE: exits per rung,
        rows per LM block); recorded with the latency figures."""
        f = getattr(self.body, "describe_inference", None)
        return f() if f else None

    def forward(self, batch, with_slots: bool = False):
        pred, slots = self.body(self, batch)
        return {"pred": pred, "slots": slots} if with_slots else pred


class LMClassifier(nn.Module):
    """A linear head on the last layer's pooled state of each target node's own text."""

    def __init__(self, lm: LanguageModel, num_classes: int, cacheable: bool) -> None:
        super().__init__()
        self.reads = NodeInputs(layers=(lm.num_layers,), cacheable=cacheable)
        self.head = nn.Linear(lm.hidden, num_classes)

    def forward(self, model: NodeModel, batch):
        h = model.lm_states(batch, list(self.reads.layers))[0]
        return self.head(h[batch.target_pos]), {}
