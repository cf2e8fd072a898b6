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

Bregman proximal point optimisation (as in SMART, Jiang et al., ACL 2020,
https://arxiv.org/abs/1911.03437) keeps each update close to an anchor
:math:`\\tilde\\theta`: the loss becomes
:math:`\\mathcal L(\\theta) + \\lambda\\, D(f(x;\\theta), f(x;\\tilde\\theta))` with the
squared-Euclidean Bregman divergence on the model outputs, and after every
optimizer step the anchor follows the iterates with momentum,
:math:`\\tilde\\theta \\leftarrow \\beta\\tilde\\theta + (1-\\beta)\\theta`.
:math:`\\lambda` is ``proximal_weight`` (0 turns it off), :math:`\\beta` is
``anchor_momentum``. Both parts are written by hand: HF ``peft`` has neither.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch.func import functional_call

from workloads.peft.adapter import Adapted, Bottleneck
from workloads.peft.base import MethodConfig, TrainHooks, freeze, register_method, unfreeze


class GAdapterConfig(MethodConfig):
    bottleneck: int = Field(default=16, ge=1, description="inner width b of each adapter")
    scale: float = Field(default=1.0, gt=0, description="multiplier on the adapter output")
    proximal_weight: float = Field(
        default=0.1, ge=0, description="lambda of the Bregman proximal term (0: plain training)"
    )
    anchor_momentum: float = Field(
        default=0.99, ge=0, lt=1, description="beta: how slowly the proximal anchor follows the iterates"
    )


class GraphBottleneck(Bottleneck):
    """The bottleneck adapter with the graph convolution between its projections.

    Args: dim (d), bottleneck (b), scale, context (the backbone's ``context_holder``,
    whose ``.graph`` is the current forward's graph context). Shapes: [B, T, d] -> [B, T, d].
    """

    def __init__(self, dim: int, bottleneck: int, scale: float, context) -> None:
        super().__init__(dim, bottleneck, scale)
        self.context = context  # shared with the backbone (a plain object: copies and pickles keep the sharing)

    def forward(self, h: Tensor) -> Tensor:
        z = torch.bmm(self.context.graph.norm_adj, self.down(h))
        return h + self.scale * self.up(F.gelu(z))


class BregmanProximal:
    """λ · ||f(x; θ) − f(x; θ̃)||² averaged over the batch, θ̃ a momentum anchor.

    The anchor is taken from the parameters at the first training forward (so it
    lives on their device) and moves by ``θ̃ ← β θ̃ + (1 − β) θ`` after each step.
    Its forward replays the random state of the training forward, so both see the
    same dropout masks and the term is exactly zero while θ = θ̃.
    """

    def __init__(self, weight: float, momentum: float) -> None:
        self.weight, self.momentum = weight, momentum
        self.anchor: dict[str, Tensor] | None = None
        self._rng: tuple | None = None

    def before_forward(self, model: nn.Module, batch) -> None:
        if self.anchor is None:
            self.anchor = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
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
        if self.anchor is None:
            return
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in self.anchor:
                    self.anchor[n].lerp_(p, 1.0 - self.momentum)


@register_method("g_adapter", GAdapterConfig,
                 "graph-convolution adapters after each FFN block, Bregman proximal training, plus head")
def apply(model: nn.Module, cfg: GAdapterConfig) -> TrainHooks:
    freeze(model)
    backbone = model.backbone
    for parent, attr, dim in backbone.adapter_sites():
        adapter = GraphBottleneck(dim, cfg.bottleneck, cfg.scale, backbone.context_holder)
        setattr(parent, attr, Adapted(getattr(parent, attr), adapter))
    unfreeze(model.head)
    if cfg.proximal_weight == 0:
        return TrainHooks()
    prox = BregmanProximal(cfg.proximal_weight, cfg.anchor_momentum)
    return TrainHooks(before_forward=prox.before_forward, extra_loss=prox.extra_loss, after_step=prox.after_step,
                      notes={"proximal_weight": cfg.proximal_weight})
