"""Bottleneck adapters after each feed-forward block (written by hand: HF ``peft``
has no Houlsby-style bottleneck adapter).

Houlsby et al., "Parameter-Efficient Transfer Learning for NLP" (ICML 2019),
https://arxiv.org/abs/1902.00751:  :math:`h \\leftarrow h + W_{up}\\,\\sigma(W_{down} h)`,
with :math:`W_{down} \\in \\mathbb{R}^{b \\times d}` and :math:`W_{up}` initialised to zero
so the adapted model starts equal to the pretrained one. The backbone names its
insertion points through ``adapter_sites()``.
"""
from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from workloads.peft.base import MethodConfig, TrainHooks, freeze, register_method, unfreeze


class AdapterConfig(MethodConfig):
    bottleneck: int = Field(default=16, ge=1, description="inner width b of each adapter")
    scale: float = Field(default=1.0, gt=0, description="multiplier on the adapter output")


class Bottleneck(nn.Module):
    """Args: dim (d), bottleneck (b), scale. Shapes: [..., d] -> [..., d]."""

    def __init__(self, dim: int, bottleneck: int, scale: float) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.scale = scale

    def forward(self, h: Tensor) -> Tensor:
        return h + self.scale * self.up(F.gelu(self.down(h)))


class Adapted(nn.Module):
    """A frozen block followed by its adapter."""

    def __init__(self, block: nn.Module, adapter: Bottleneck) -> None:
        super().__init__()
        self.block = block
        self.adapter = adapter

    def forward(self, *args, **kwargs):
        return self.adapter(self.block(*args, **kwargs))


@register_method("adapter", AdapterConfig, "bottleneck adapters after each FFN block, plus head")
def apply(model: nn.Module, cfg: AdapterConfig) -> TrainHooks:
    freeze(model)
    for parent, attr, dim in model.backbone.adapter_sites():
        adapter = Bottleneck(dim, cfg.bottleneck, cfg.scale)
        setattr(parent, attr, Adapted(getattr(parent, attr), adapter))
    unfreeze(model.head)
    return TrainHooks()
