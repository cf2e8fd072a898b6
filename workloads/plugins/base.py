"""The contract every training plug-in fulfils, and the registry that holds them.

A PEFT method decides which parameters train; a plug-in adds a loss term, tokens
or anchors on top of any method (Bregman proximal point, GIST). A plug-in lives in
its own package ``workloads/plugins/<name>/`` with a pydantic config (a help text
per field) and ``apply(model, cfg, task) -> TrainHooks``. It is applied after the
method, so the parameters it adds are trainable whatever the method froze, and its
hooks combine with the method's and with other plug-ins' (``TrainHooks.combine``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from runfolder.strict import StrictModel
from workloads.peft.base import TrainHooks
from workloads.registry import Registry


class PluginConfig(StrictModel):
    """The base of every plug-in's config."""


@dataclass(frozen=True)
class TaskInfo:
    """What a plug-in needs to know of the task it trains for."""

    kind: Literal["classification", "regression", "multiclass"]
    loss: Callable[[Tensor, Tensor], Tensor]  # (prediction, raw label) -> scalar task loss


@dataclass(frozen=True)
class Plugin:
    name: str
    config_cls: type[PluginConfig]
    apply: Callable[[nn.Module, PluginConfig, TaskInfo], TrainHooks]
    backbones: tuple[str, ...] = ("graph_transformer",)  # backbone kinds (BackboneSpec.kind) it applies to

    def parse(self, params: dict) -> PluginConfig:
        return self.config_cls(**params)


def symmetric_divergence(a: Tensor, b: Tensor, kind: str) -> Tensor:
    """Batch mean of D(a, b) for predictions a, b of shape [B, C]: squared error (regression),
    a sum of Bernoulli divergences over the C binary tasks (classification), the categorical
    divergence (multiclass)."""
    if kind == "regression":
        return (a - b).pow(2).sum(-1).mean()
    if kind == "classification":  # Bernoulli per task: KL(p||q) + KL(q||p) = (p - q)(logit p - logit q)
        return ((torch.sigmoid(a) - torch.sigmoid(b)) * (a - b)).sum(-1).mean()
    la, lb = F.log_softmax(a, -1), F.log_softmax(b, -1)
    return ((la.exp() - lb.exp()) * (la - lb)).sum(-1).mean()


PLUGINS: Registry[Plugin] = Registry("training plug-in")


def register_plugin(name: str, config_cls: type[PluginConfig]):
    if name in ("method", "train"):  # a searched key's explicit sides (method.<field>, train.<field>)
        raise ValueError(f"'{name}' cannot name a plug-in: it names the side of a searched key")

    def deco(fn: Callable[[nn.Module, PluginConfig, TaskInfo], TrainHooks]):
        PLUGINS.add(name, Plugin(name, config_cls, fn))
        return fn

    return deco
