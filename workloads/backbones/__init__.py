"""Backbone registry: name → (config model, constructor)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pydantic import BaseModel
from torch import nn

from workloads.backbones.base import Encoded, GraphBackbone
from workloads.backbones.graphormer import Graphormer, GraphormerConfig
from workloads.backbones.hf_graphormer import HFGraphormer, HFGraphormerConfig
from workloads.backbones.lm import LanguageModel, LMConfig
from workloads.backbones.mat import MAT, MATConfig
from workloads.backbones.mat_authors import MATAuthors, MATAuthorsConfig
from workloads.backbones.node import NodeInputs, NodeModel
from workloads.registry import Registry


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    config_cls: type[BaseModel]
    build: Callable[[BaseModel], nn.Module]
    kind: str = "graph_transformer"  # what tasks (Task.backbone_kind), methods and plug-ins pair it with
    pretrainable: bool = True  # pretrained by the project (``orchestrator pretrain``); else loaded as is


BACKBONES: Registry[BackboneSpec] = Registry("backbone")


def _graphormer(cfg: BaseModel) -> nn.Module:
    """The project's Graphormer, or Hugging Face's variant for a checkpoint's config."""
    return HFGraphormer(cfg) if isinstance(cfg, HFGraphormerConfig) else Graphormer(cfg)


def _mat(cfg: BaseModel) -> nn.Module:
    """The project's MAT, or the MAT authors' variant for a checkpoint's config."""
    return MATAuthors(cfg) if isinstance(cfg, MATAuthorsConfig) else MAT(cfg)


BACKBONES.add("graphormer", BackboneSpec("graphormer", GraphormerConfig, _graphormer))
BACKBONES.add("mat", BackboneSpec("mat", MATConfig, _mat))
BACKBONES.add("lm", BackboneSpec("lm", LMConfig, LanguageModel, kind="language_model", pretrainable=False))


class GraphModel(nn.Module):
    """Backbone plus a linear prediction head on the graph-level representation.

    Shapes: input a PyG ``Batch`` with B graphs; output [B, out_dim]. With
    ``with_slots=True`` the output is a dict ``{"pred": [B, out_dim], "slots": {name:
    [B, P, D]}}`` holding the extra tokens' states too (what training plug-ins such as
    GIST read); DDP accepts a dict output.
    """

    def __init__(self, backbone: nn.Module, out_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.out_dim, out_dim)

    def forward(self, batch, with_slots: bool = False):
        enc = self.backbone(batch)
        pred = self.head(enc.graph)
        return {"pred": pred, "slots": enc.slots} if with_slots else pred


__all__ = ["BACKBONES", "BackboneSpec", "Encoded", "GraphBackbone", "GraphModel", "Graphormer", "GraphormerConfig",
           "LMConfig", "MAT", "MATConfig",
           "LanguageModel", "NodeInputs", "NodeModel"]
