"""GIST: a trainable gist token and a bidirectional KL term, for any method.

Ruan et al., "GIST: Improving Parameter Efficient Fine Tuning via Knowledge
Interaction" (2023), https://arxiv.org/abs/2312.07255. One trainable gist token
(width = hidden size) enters the sequence right after the graph token; the same
head reads the graph token and the gist token, and

.. math::
    \\mathcal L = \\mathcal L_{task}(h_{graph}) + \\lambda_g\\,\\mathcal L_{task}(h_{gist})
        + \\lambda_{kl}\\,\\big[KL(P_{graph}\\,\\|\\,P_{gist}) + KL(P_{gist}\\,\\|\\,P_{graph})\\big],
    \\qquad P = \\mathrm{softmax}(z / T)

(Bernoulli :math:`\\sigma(z/T)` for a one-logit head, where the symmetric KL is
:math:`(\\sigma(a/T)-\\sigma(b/T))(a-b)/T`). Evaluation and deployment read the
graph token only. The token adds exactly ``hidden_dim`` trainable parameters.

Deviations from the paper, said plainly:

* The gist token has no positional or structural encoding of its own, and it is
  *one-way*: it attends to the whole sequence, but no other token attends to it
  (its key is masked). So the graph token's prediction starts exactly equal to the
  plain method's, and the gist token influences it only through the shared
  trainable parameters and the KL term. The paper's ViT lets every token attend to it.
* For regression there is no distribution to compare: the KL term is replaced by
  the squared distance between the two (standardised) predictions.

Args:
    gist_weight (float): :math:`\\lambda_g` (default 1.0).
    kl_weight (float): :math:`\\lambda_{kl}` (default 1.0).
    temperature (float): :math:`T` (default 1.0).
    init_std (float): std of the token's normal initialisation (default 0.02).

Written by hand: HF ``peft`` has no GIST.
"""
from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from workloads.peft.base import TrainHooks
from workloads.plugins.base import PluginConfig, TaskInfo, register_plugin, symmetric_divergence

SLOT = "gist"


class GistConfig(PluginConfig):
    gist_weight: float = Field(default=1.0, ge=0, description="lambda_g: weight of the task loss on the gist token")
    kl_weight: float = Field(default=1.0, ge=0, description="lambda_kl: weight of the bidirectional KL term")
    temperature: float = Field(default=1.0, gt=0, description="T: softmax temperature of the KL term")
    init_std: float = Field(default=0.02, gt=0, description="std of the gist token's normal initialisation")


class GistToken(nn.Module):
    """One learned token shared by every graph. Shapes: batch size B -> [B, 1, D]."""

    def __init__(self, dim: int, init_std: float) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.randn(1, dim) * init_std)

    def forward(self, batch_size: int) -> Tensor:
        return self.token.unsqueeze(0).expand(batch_size, -1, -1)


def bidirectional_kl(a: Tensor, b: Tensor, temperature: float, kind: str) -> Tensor:
    """Batch mean of KL(P_a||P_b) + KL(P_b||P_a) for logits [B, C] at temperature T
    (the squared distance for regression, where T plays no part)."""
    if kind == "regression":
        return symmetric_divergence(a, b, kind)
    return symmetric_divergence(a / temperature, b / temperature, kind)


@register_plugin("gist", GistConfig)
def apply(model: nn.Module, cfg: GistConfig, task: TaskInfo) -> TrainHooks:
    model.backbone.add_token_slot(SLOT, GistToken(model.backbone.out_dim, cfg.init_std), first=True, visible=False)

    def extra_loss(m: nn.Module, batch, out: dict) -> Tensor:
        gist_pred = m.head(out["slots"][SLOT][:, 0])
        loss = cfg.gist_weight * task.loss(gist_pred, batch.y)
        return loss + cfg.kl_weight * bidirectional_kl(out["pred"], gist_pred, cfg.temperature, task.kind)

    return TrainHooks(extra_loss=[extra_loss], notes={"gist": cfg.model_dump()})
