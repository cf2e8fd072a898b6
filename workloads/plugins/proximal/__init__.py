"""Bregman proximal point training, for any method.

Jiang et al., "SMART: Robust and Efficient Fine-Tuning for Pre-trained Natural
Language Models through Principled Regularized Optimization" (ACL 2020),
https://arxiv.org/abs/1911.03437, Section 3.2:

.. math::
    \\mathcal L(\\theta) = \\mathcal L_{task}(\\theta)
        + \\mu \\, \\mathbb E_x\\, D\\big(f(x;\\theta), f(x;\\tilde\\theta)\\big).

G-Adapter (Gui et al., AAAI 2024, https://arxiv.org/abs/2305.10329) trains its
adapters with such a Bregman proximal point term (its abstract). Which anchor
:math:`\\tilde\\theta` it uses is *not* confirmed here: the paper's Section 3 could not
be reached (only its abstract), and the one reachable re-implementation of G-Adapter
(GConv-Adapter's baseline, github.com/PanPapag/GConv-Adapter,
``scripts/finetune_inductive_learning.py:26-74``) trains with the task loss alone.
The anchor is therefore an option (``anchor``):

* ``momentum`` (default; an assumption, kept from before): SMART's momentum
  Bregman proximal point, :math:`\\tilde\\theta \\leftarrow \\beta\\tilde\\theta + (1-\\beta)\\theta`
  after each step (SMART Section 3.2, Algorithm 1), starting at the first iterate.
* ``previous``: the plain Bregman proximal point of SMART Section 3.2,
  :math:`\\theta_{t+1} = \\arg\\min_\\theta \\mathcal L_{task}(\\theta) + \\mu D(\\theta, \\theta_t)` with one
  optimiser step per outer iteration: the anchor of step t is the iterate the
  previous step started from, :math:`\\theta_{t-1}` (``momentum`` is then unused).
  (Anchoring at the current iterate itself would add nothing: the divergence and its
  gradient vanish there, as ``momentum = 0`` shows.)

:math:`D` is the symmetric KL divergence of the predicted distributions for
classification (Bernoulli for a one-logit head, where it has the closed form
:math:`(\\sigma(a)-\\sigma(b))(a-b)`; categorical otherwise) and the squared error
of the (standardised) predictions for regression.

The anchor holds only the trainable parameters (frozen ones are shared with the
model) and is taken at the first training forward, so it lives on their device.

Order and random state: the anchor's forward runs in ``before_forward``, *before*
the training forward, without gradients (as in SMART), and keeps only its
predictions ([B, C]); ``extra_loss`` then compares the training forward's
predictions with them. Running it first means its activations are gone before the
training forward's are made (running it after, inside ``extra_loss``, it ran while
the training forward's activations were held for backward). It runs inside
``torch.random.fork_rng``: it draws from the random state the training forward will
start from, and that state is restored afterwards, so both forwards see the same
dropout masks, the training forward's random stream is exactly as without the
plug-in (``weight`` 0 trains exactly as without it), and the term measures only the
drift of the parameters (it is exactly zero while :math:`\\theta = \\tilde\\theta`). Another
``before_forward`` hook that draws random numbers must therefore run before this
one. Written by hand: HF ``peft`` has no proximal training.

Args:
    weight (float): :math:`\\mu` (default 0.1); 0 leaves training exactly as without the plug-in.
    momentum (float): :math:`\\beta` (default 0.99), for ``anchor: momentum``.
    anchor (str): ``momentum`` (default) or ``previous``.
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.func import functional_call

from workloads.peft.base import TrainHooks
from workloads.plugins.base import PluginConfig, TaskInfo, register_plugin, symmetric_divergence


class ProximalConfig(PluginConfig):
    weight: float = Field(default=0.1, ge=0, description="mu: weight of the Bregman divergence term (0: off)")
    momentum: float = Field(
        default=0.99, ge=0, lt=1, description="beta: how slowly the anchor follows the iterates (anchor: momentum)"
    )
    anchor: Literal["momentum", "previous"] = Field(
        default="momentum",
        description="momentum: SMART's moving average of the iterates; previous: the iterate before the last step",
    )


class BregmanProximal:
    """The proximal term's state: the anchor, and the anchor's predictions on the
    current batch (made in ``before_forward``, used once by ``extra_loss``)."""

    def __init__(self, weight: float, momentum: float, kind: str, anchor: str = "momentum") -> None:
        if anchor not in ("momentum", "previous"):
            raise ValueError(f"unknown proximal anchor '{anchor}'; known: momentum, previous")
        self.weight, self.momentum, self.kind, self.mode = weight, momentum, kind, anchor
        self.anchor: dict[str, Tensor] | None = None
        self.ref: Tensor | None = None  # the anchor's predictions on the current batch
        self._current: dict[str, Tensor] | None = None  # previous: this step's starting iterate

    @staticmethod
    def _cuda_devices() -> list[int]:
        return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []

    def before_forward(self, model: nn.Module, batch) -> None:
        if self.anchor is None:
            self.anchor = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        if self.mode == "previous":  # the iterate this step starts from: the next step's anchor
            with torch.no_grad():
                if self._current is None:
                    self._current = {n: t.clone() for n, t in self.anchor.items()}
                params = dict(model.named_parameters())
                for n, t in self._current.items():
                    t.copy_(params[n])
        # fork_rng restores the random state on exit: the anchor's forward draws from the
        # state the training forward starts from (same dropout masks) and leaves it as found.
        with torch.no_grad(), torch.random.fork_rng(devices=self._cuda_devices()):
            self.ref = functional_call(model, self.anchor, (batch,))

    def extra_loss(self, model: nn.Module, batch, out: dict) -> Tensor:
        ref, self.ref = self.ref, None
        if ref is None:
            raise RuntimeError("proximal: no anchor predictions for this batch (before_forward did not run)")
        return self.weight * symmetric_divergence(out["pred"], ref, self.kind)

    def after_step(self, model: nn.Module) -> None:
        if self.anchor is None:
            return
        if self.mode == "previous":
            if self._current is not None:  # swap: the step's starting iterate becomes the anchor
                self.anchor, self._current = self._current, self.anchor
            return
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in self.anchor:
                    self.anchor[n].lerp_(p, 1.0 - self.momentum)


@register_plugin("proximal", ProximalConfig)
def apply(model: nn.Module, cfg: ProximalConfig, task: TaskInfo) -> TrainHooks:
    prox = BregmanProximal(cfg.weight, cfg.momentum, task.kind, cfg.anchor)
    return TrainHooks(before_forward=[prox.before_forward], extra_loss=[prox.extra_loss],
                      after_step=[prox.after_step], notes={"proximal": cfg.model_dump()})
