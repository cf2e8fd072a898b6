"""The contract of a graph-level backbone, written down (as Optuna writes its storage
and sampler contracts): what methods, plug-ins, the task head and pretraining may
rely on. Every backbone registered with kind ``graph_transformer`` fulfils it, and
the test matrix runs every method on every such backbone.
"""
from __future__ import annotations

from typing import ClassVar, NamedTuple, Protocol, runtime_checkable

from torch import Tensor, nn


class Encoded(NamedTuple):
    """What a backbone's forward returns.

    ``graph``: [B, D] the graph token's final state (what a graph-level head reads);
    ``nodes``: [B, N_max, D] node states; ``mask``: [B, N_max] which node slots are real;
    ``slots``: name -> [B, P, D] final states of extra tokens added through
    ``add_token_slot`` (empty when there are none).
    """

    graph: Tensor
    nodes: Tensor
    mask: Tensor
    slots: dict


@runtime_checkable
class GraphBackbone(Protocol):
    """A graph transformer over molecules (PyG batches from ``workloads.datasets``)."""

    #: per-molecule attributes its forward reads beyond OGB's ``x``/``edge_index``/``edge_attr``
    #: (``spd``: shortest-path lengths; ``dist``: inter-atomic distances), made by the featurizer.
    #: A config field ``coordinates`` ("2d" | "3d") says which distances ``dist`` holds
    #: (:func:`coordinates_of`); datasets and the pretraining corpus follow it.
    featurization: ClassVar[tuple[str, ...]]
    #: names of its ``nn.Linear`` modules that LoRA adapts by default (attention projections).
    lora_targets: ClassVar[tuple[str, ...]]

    @property
    def out_dim(self) -> int:
        """Width D of every state it returns."""

    def forward(self, batch, node_mask: Tensor | None = None) -> Encoded:
        """Encode a batch; ``node_mask`` [N] marks atoms whose input is replaced by the
        learned mask embedding (masked-atom pretraining)."""

    def adapter_sites(self, placement: str = "pfeiffer") -> list[tuple[nn.Module, str, int]]:
        """Where bottleneck adapters go, as (parent module, attribute, width): ``pfeiffer``
        after each feed-forward block, ``houlsby`` after attention and feed-forward."""

    def add_token_slot(self, name: str, module: nn.Module, *, first: bool = False, visible: bool = True) -> None:
        """Insert extra tokens after the graph token (``module(B) -> [B, P, D]``), returned in
        ``Encoded.slots[name]``; ``visible=False`` makes them one-way (nothing reads them)."""

    def add_input_prompt(self, module: nn.Module) -> None:
        """Transform each node's input features right after the atom encoder (``[N, D] -> [N, D]``)."""

    @property
    def graph_context(self):
        """The structure of the latest forward's batch aligned with its token sequence
        (``norm_adj(link_graph_token)``: [B, T, T]), for structure-aware modules inside."""


def coordinates_of(arch) -> str:
    """The coordinates a backbone config's ``dist`` comes from: "2d" unless it says "3d"."""
    return getattr(arch, "coordinates", "2d")
