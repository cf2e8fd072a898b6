"""Frozen LM embeddings + a GNN: the text-graph baseline.

Each node's text is encoded once by the frozen language model (the masked mean of
its last layer, or of ``layer``: 0 reads the embeddings alone, so comparing the two
shows what the LM's depth is worth; read from the LM-state cache); a GraphSAGE (Hamilton et al., NeurIPS
2017, https://arxiv.org/abs/1706.02216) or GCN (Kipf & Welling, ICLR 2017,
https://arxiv.org/abs/1609.02907) stack from ``torch_geometric`` runs on the
subgraph sampled around each target node, read out as [target, subgraph mean] →
linear head, the same readout ENGINE uses. Only the GNN and the head train.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import Tensor, nn
from torch_geometric.nn import GCNConv, SAGEConv

from workloads.backbones.node import NodeInputs, lm_layer, target_and_mean
from workloads.peft.base import MethodConfig, TrainHooks, freeze, register_method

CONVS = {"sage": SAGEConv, "gcn": GCNConv}


class GNNStack(nn.Module):
    """``depth`` convolutions, each followed by ReLU and dropout (the last one too, as ENGINE's encoder).

    Shapes: x [N, in_dim], edge_index [2, E] -> [N, out_dim]."""

    def __init__(self, in_dim: int, out_dim: int, depth: int, kind: str, dropout: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(CONVS[kind](in_dim if i == 0 else out_dim, out_dim) for i in range(depth))
        self.act, self.drop = nn.ReLU(), nn.Dropout(dropout)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        for conv in self.convs:
            x = self.drop(self.act(conv(x, edge_index)))
        return x


class GnnConfig(MethodConfig):
    gnn: Literal["sage", "gcn"] = Field(default="sage", description="GNN layer type (torch_geometric)")
    depth: int = Field(default=2, ge=1, le=4, description="GNN layers")
    hidden: int = Field(default=128, ge=4, description="GNN width")
    dropout: float = Field(default=0.2, ge=0, lt=1, description="dropout after each GNN layer")
    sampler: Literal["one_hop", "rwr"] = Field(default="one_hop", description="subgraph around each node")
    subgraph_size: int = Field(default=8, ge=1, le=64, description="nodes per subgraph, the target included")
    walk_steps: int = Field(default=32, ge=1, description="rwr: steps of the walk")
    restart: float = Field(default=0.5, ge=0, lt=1, description="rwr: probability of returning to the start")
    layer: int = Field(default=-1, ge=-1, description="LM layer whose states the GNN reads (0 = the embeddings, "
                       "-1 = the last)")


class SubgraphGNN(nn.Module):
    def __init__(self, lm_hidden: int, num_layers: int, num_classes: int, cfg: GnnConfig) -> None:
        super().__init__()
        layer = lm_layer(cfg.layer, num_layers)
        self.reads = NodeInputs(layers=(layer,), cacheable=True, sampler=cfg.sampler, size=cfg.subgraph_size,
                                walk_steps=cfg.walk_steps, restart=cfg.restart)
        self.gnn = GNNStack(lm_hidden, cfg.hidden, cfg.depth, cfg.gnn, cfg.dropout)
        self.head = nn.Linear(2 * cfg.hidden, num_classes)

    def forward(self, model, batch):
        x = model.lm_states(batch, list(self.reads.layers))[0]
        return self.head(target_and_mean(self.gnn(x, batch.edge_index), batch)), {}


@register_method("gnn", GnnConfig, backbones=("language_model",))
def apply(model: nn.Module, cfg: GnnConfig) -> TrainHooks:
    freeze(model)
    model.body = SubgraphGNN(model.lm.hidden, model.lm.num_layers, model.num_classes, cfg)
    return TrainHooks(eval_modules=[model.lm])
