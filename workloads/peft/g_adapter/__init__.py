"""G-Adapter: structure-aware adapters trained with a Bregman proximal point term.

Gui et al., "G-Adapter: Towards Structure-Aware Parameter-Efficient Transfer
Learning for Graph Transformer Networks" (AAAI 2024), https://arxiv.org/abs/2305.10329.

Adapter (after each FFN block), with the graph convolution inside it:

.. math::
    h \\leftarrow h + s \\, W_{up}\\, \\sigma(\\hat A \\, W_{down} h), \\qquad
    \\hat A = D^{-1/2}(A + I) D^{-1/2},

where :math:`\\hat A` is the molecule's normalised adjacency aligned with the
token sequence (the graph token only sees itself). :math:`W_{up}` starts at
zero, so the adapted model starts equal to the pretrained one.

Bregman proximal point optimisation keeps each step close to the previous
iterate :math:`\\theta_t`: the loss becomes
:math:`\\mathcal L(\\theta) + \\lambda\\, D(f(x;\\theta), f(x;\\theta_t))` with the
squared-Euclidean Bregman divergence on the model outputs; the anchor is
refreshed after every optimizer step. :math:`\\lambda` is ``proximal_weight``
(0 turns it off). Both parts are written by hand: HF ``peft`` has neither.
"""
from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch.func import functional_call

from workloads.peft.adapter import Adapted
from workloads.peft.base import MethodConfig, TrainHooks, freeze, register_method, unfreeze


class GAdapterConfig(MethodConfig):
    bottleneck: int = Field(default=16, ge=1, description="inner width b of each adapter")
    scale: float = Field(default=1.0, gt=0, description="multiplier on the adapter output")
    proximal_weight: float = Field(
        default=0.1, ge=0, description="lambda of the Bregman proximal term (0: plain training)"
    )


class GraphBottleneck(nn.Module):
    """Args: dim (d), bottleneck (b), scale, backbone (for the current graph context).
    Shapes: [B, T, d] -> [B, T, d]."""

    def __init__(self, dim: int, bottleneck: int, scale: float, backbone: nn.Module) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.scale = scale
        self._backbone = weakref.ref(backbone)  # not a submodule: the backbone owns this adapter

    def forward(self, h: Tensor) -> Tensor:
        ctx = self._backbone().graph_context
        z = torch.bmm(ctx.norm_adj, self.down(h))
        return h + self.scale * self.up(F.gelu(z))


class BregmanProximal:
    """λ · ||f(x; θ) − f(x; θ_t)||² averaged over the batch; θ_t refreshed after each step.

    The anchor's forward replays the random state of the training forward, so both
    see the same dropout masks and the term is exactly zero while θ = θ_t.
    """

    def __init__(self, model: nn.Module, weight: float) -> None:
        self.weight = weight
        self.anchor = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        self._rng: tuple | None = None

    def before_forward(self, model: nn.Module, batch) -> None:
        cuda = [torch.cuda.get_rng_state(d) for d in range(torch.cuda.device_count())] \
            if torch.cuda.is_available() else []
        self._rng = (torch.get_rng_state(), cuda)

    def extra_loss(self, model: nn.Module, batch, pred: Tensor) -> Tensor:
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            if self._rng is not None:
                torch.set_rng_state(self._rng[0])
                for d, state in enumerate(self._rng[1]):
                    torch.cuda.set_rng_state(state, d)
            ref = functional_call(model, self.anchor, (batch,))
        return self.weight * (pred - ref).pow(2).sum(-1).mean()

    def after_step(self, model: nn.Module) -> None:
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in self.anchor:
                    self.anchor[n].copy_(p)


@register_method("g_adapter", GAdapterConfig,
                 "graph-convolution adapters after each FFN block, Bregman proximal training, plus head")
def apply(model: nn.Module, cfg: GAdapterConfig) -> TrainHooks:
    freeze(model)
    backbone = model.backbone
    for parent, attr, dim in backbone.adapter_sites():
        setattr(parent, attr, Adapted(getattr(parent, attr), GraphBottleneck(dim, cfg.bottleneck, cfg.scale, backbone)))
    unfreeze(model.head)
    if cfg.proximal_weight == 0:
        return TrainHooks()
    prox = BregmanProximal(model, cfg.proximal_weight)
    return TrainHooks(before_forward=prox.before_forward, extra_loss=prox.extra_loss, after_step=prox.after_step,
                      notes={"proximal_weight": cfg.proximal_weight})
