"""Bottleneck adapters (written by hand: HF ``peft`` has no bottleneck adapter for
a custom backbone).

Houlsby et al., "Parameter-Efficient Transfer Learning for NLP" (ICML 2019),
https://arxiv.org/abs/1902.00751:  :math:`h \\leftarrow h + s\\,W_{up}\\,\\sigma(W_{down} h)`,
with :math:`W_{down} \\in \\mathbb{R}^{b \\times d}` and :math:`W_{up}` initialised to zero
so the adapted model starts equal to the pretrained one.

Placement (``placement``):

* ``houlsby`` (default, the papers' "Adapter" row): an adapter after each layer's
  attention block and after its feed-forward block, before the residual sums, and
  every LayerNorm of the backbone trains (Houlsby et al., Section 2.1).
* ``pfeiffer``: one adapter after each feed-forward block, LayerNorms frozen
  (Pfeiffer et al., "AdapterFusion", EACL 2021, https://arxiv.org/abs/2005.00247).

Deviation: the non-linearity is GELU (the backbone's own) rather than the paper's
unspecified choice. The backbone names its insertion points through
``adapter_sites(placement)``. The head trains.

Args:
    bottleneck (int): inner width b (default 16).
    scale (float): s, multiplier on the adapter output (default 1.0).
    placement (str): ``houlsby`` or ``pfeiffer`` (default ``houlsby``).
"""
from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from workloads.peft.base import MethodConfig, TrainHooks, freeze, register_method, unfreeze


class AdapterConfig(MethodConfig):
    bottleneck: int = Field(default=16, ge=1, description="inner width b of each adapter")
    scale: float = Field(default=1.0, gt=0, description="multiplier on the adapter output")
    placement: Literal["houlsby", "pfeiffer"] = Field(
        default="houlsby",
        description="houlsby: after attention and FFN, LayerNorms trainable; pfeiffer: after FFN only",
    )


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

    def __init__(self, block: nn.Module, adapter: nn.Module) -> None:
        super().__init__()
        self.block = block
        self.adapter = adapter

    def forward(self, *args, **kwargs):
        return self.adapter(self.block(*args, **kwargs))


def insert_adapters(model: nn.Module, placement: str, make: "callable") -> None:
    """Freeze the model, wrap every adapter site with ``make(dim)``, and train the
    head (and, for Houlsby placement, every LayerNorm of the backbone)."""
    freeze(model)
    for parent, attr, dim in model.backbone.adapter_sites(placement):
        setattr(parent, attr, Adapted(getattr(parent, attr), make(dim)))
    if placement == "houlsby":
        for m in model.backbone.modules():
            if isinstance(m, nn.LayerNorm):
                unfreeze(m)
    unfreeze(model.head)


@register_method("adapter", AdapterConfig)
def apply(model: nn.Module, cfg: AdapterConfig) -> TrainHooks:
    insert_adapters(model, cfg.placement, lambda dim: Bottleneck(dim, cfg.bottleneck, cfg.scale))
    return TrainHooks()
