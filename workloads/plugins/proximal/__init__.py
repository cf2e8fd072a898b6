"""Bregman proximal point training, for any method.

Jiang et al., "SMART: Robust and Efficient Fine-Tuning for Pre-trained Natural
Language Models through Principled Regularized Optimization" (ACL 2020),
https://arxiv.org/abs/1911.03437, Section 3.2, as G-Adapter uses it (Gui et al.,
AAAI 2024, https://arxiv.org/abs/2305.10329, Eq. 7):

.. math::
    \\mathcal L(\\theta) = \\mathcal L_{task}(\\theta)
        + \\mu \\, \\mathbb E_x\\, D\\big(f(x;\\theta), f(x;\\tilde\\theta)\\big), \\qquad
    \\tilde\\theta \\leftarrow \\beta\\,\\tilde\\theta + (1-\\beta)\\,\\theta \\text{ after each step.}

:math:`D` is the symmetric KL divergence of the predicted distributions for
classification (Bernoulli for a one-logit head, where it has the closed form
:math:`(\\sigma(a)-\\sigma(b))(a-b)`; categorical otherwise) and the squared error
of the (standardised) predictions for regression.

The anchor :math:`\\tilde\\theta` holds only the trainable parameters (frozen ones
are shared with the model) and is taken at the first training forward, so it
lives on their device. Its forward replays the random state of the training
forward: both see the same dropout masks, and the term measures only the drift
of the parameters (it is exactly zero while :math:`\\theta = \\tilde\\theta`). The
anchor's forward runs without gradients, as in SMART. Written by hand: HF
``peft`` has no proximal training.

Args:
    weight (float): :math:`\\mu` (default 0.1); 0 leaves training exactly as without the plug-in.
    momentum (float): :math:`\\beta` (default 0.99).
"""
from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.func import functional_call

from workloads.peft.base import TrainHooks
from workloads.plugins.base import PluginConfig, TaskInfo, register_plugin, symmetric_divergence


class ProximalConfig(PluginConfig):
    weight: float = Field(default=0.1, ge=0, description="mu: weight of the Bregman divergence term (0: off)")
    momentum: float = Field(
        default=0.99, ge=0, lt=1, description="beta: how slowly the anchor follows the iterates"
    )


class BregmanProximal:
    """The proximal term's state: the anchor and the random state to replay."""

    def __init__(self, weight: float, momentum: float, kind: str) -> None:
        self.weight, self.momentum, self.kind = weight, momentum, kind
        self.anchor: dict[str, Tensor] | None = None
        self._rng: tuple | None = None

    @staticmethod
    def _cuda_devices() -> list[int]:
        return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []

    def before_forward(self, model: nn.Module, batch) -> None:
        if self.anchor is None:
            self.anchor = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        cuda = [torch.cuda.get_rng_state(d) for d in self._cuda_devices()]
        self._rng = (torch.get_rng_state(), cuda)

    def extra_loss(self, model: nn.Module, batch, out: dict) -> Tensor:
        # fork_rng restores the global random state afterwards: the anchor's forward
        # leaves the training run's random stream exactly as it found it.
        with torch.no_grad(), torch.random.fork_rng(devices=self._cuda_devices()):
            if self._rng is not None:
                torch.set_rng_state(self._rng[0])
                for d, state in enumerate(self._rng[1]):
                    torch.cuda.set_rng_state(state, d)
            ref = functional_call(model, self.anchor, (batch,))
        return self.weight * symmetric_divergence(out["pred"], ref, self.kind)

    def after_step(self, model: nn.Module) -> None:
        if self.anchor is None:
            return
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in self.anchor:
                    self.anchor[n].lerp_(p, 1.0 - self.momentum)


@register_plugin("proximal", ProximalConfig)
def apply(model: nn.Module, cfg: ProximalConfig, task: TaskInfo) -> TrainHooks:
    prox = BregmanProximal(cfg.weight, cfg.momentum, task.kind)
    return TrainHooks(before_forward=[prox.before_forward], extra_loss=[prox.extra_loss],
                      after_step=[prox.after_step], notes={"proximal": cfg.model_dump()})
