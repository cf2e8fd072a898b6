"""GIST: a trainable gist token and a bidirectional KL term, for any method.

Ruan et al., "GIST: Improving Parameter Efficient Fine Tuning via Knowledge
Interaction" (2023), https://arxiv.org/abs/2312.07255, as the authors wrote it in
JCruan519/GIST: one trainable gist token (width = hidden size) enters the sequence
right after the graph token (their ``GIST.forward`` inserts it after CLS, after the
position embeddings, so it has no position of its own), with dropout on the token
(``prompt_dropout``, 0.1) and U(-0.5, 0.5) initialisation. It is an ordinary token:
it attends to every token and every token attends to it (they pass no mask). The
same head reads the graph token and the gist token, and (their ``train.py``)

.. math::
    \\mathcal L = \\mathcal L_{task}(h_{graph}) + \\lambda_g\\,\\mathcal L_{task}(h_{gist})
        + \\lambda_{kl}\\,\\big[KL(P_{graph}\\,\\|\\,P_{gist}) + KL(P_{gist}\\,\\|\\,P_{graph})\\big],
    \\qquad P = \\mathrm{softmax}(z / T)

with their :math:`\\lambda_g = 0.5`, :math:`\\lambda_{kl} = 0.75`, :math:`T = 3`, the KL
terms in ``batchmean`` and not scaled by :math:`T^2`, gradients through both sides.
A one-logit (binary) head uses the Bernoulli form :math:`\\sigma(z/T)`, where the
symmetric KL is :math:`(\\sigma(a/T)-\\sigma(b/T))(a-b)/T`, summed over binary tasks.
Evaluation reads the graph token only (their validation loop scores ``output``, not
``gist``); the token stays in the sequence at inference, as theirs does. The token
adds exactly ``hidden_dim`` trainable parameters.

Deviations, said plainly:

* For regression there is no distribution to compare: the KL term is replaced by
  the squared distance between the two (standardised) predictions, and :math:`T`
  plays no part. The authors' code is for classification only.
* ``visible: false`` is our own variant, not the paper's: a *one-way* token that
  attends to the whole sequence while no other token attends to it (its key is
  masked), so the graph token's prediction starts exactly equal to the plain
  method's and the gist token influences it only through the shared trainable
  parameters and the KL term (auxiliary-head distillation). Use it only as a
  labelled ablation.

Args:
    gist_weight (float): :math:`\\lambda_g` (default 0.5, the authors').
    kl_weight (float): :math:`\\lambda_{kl}` (default 0.75, the authors').
    temperature (float): :math:`T` (default 3.0, the authors').
    init_range (float): the token is drawn from U(-a, a) (default 0.5, the authors').
    dropout (float): dropout on the token while training (default 0.1, the authors').
    visible (bool): whether other tokens attend to the gist token (default True, the
        paper's; False is our one-way variant above).

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
    gist_weight: float = Field(default=0.5, ge=0, description="lambda_g: weight of the task loss on the gist token "
                               "(the authors' 0.5)")
    kl_weight: float = Field(default=0.75, ge=0, description="lambda_kl: weight of the bidirectional KL term "
                             "(the authors' 0.75)")
    temperature: float = Field(default=3.0, gt=0, description="T: softmax temperature of the KL term (the authors' 3)")
    init_range: float = Field(default=0.5, gt=0, description="the token is drawn from U(-a, a) (the authors' 0.5)")
    dropout: float = Field(default=0.1, ge=0, lt=1, description="dropout on the token while training "
                           "(the authors' 0.1)")
    visible: bool = Field(default=True, description="other tokens attend to the gist token (the paper's); "
                          "false: our one-way variant, which nothing attends to")


class GistToken(nn.Module):
    """One learned token shared by every graph, with dropout while training.
    Shapes: batch size B -> [B, 1, D]."""

    def __init__(self, dim: int, init_range: float, dropout: float) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.empty(1, dim).uniform_(-init_range, init_range))
        self.dropout = nn.Dropout(dropout)

    def forward(self, batch_size: int) -> Tensor:
        # their order: expand to the batch, then dropout (a mask drawn per graph)
        return self.dropout(self.token.unsqueeze(0).expand(batch_size, -1, -1))


def bidirectional_kl(a: Tensor, b: Tensor, temperature: float, kind: str) -> Tensor:
    """Batch mean of KL(P_a||P_b) + KL(P_b||P_a) for logits [B, C] at temperature T
    (the squared distance for regression, where T plays no part)."""
    if kind == "regression":
        return symmetric_divergence(a, b, kind)
    return symmetric_divergence(a / temperature, b / temperature, kind)


@register_plugin("gist", GistConfig)
def apply(model: nn.Module, cfg: GistConfig, task: TaskInfo) -> TrainHooks:
    token = GistToken(model.backbone.out_dim, cfg.init_range, cfg.dropout)
    model.backbone.add_token_slot(SLOT, token, first=True, visible=cfg.visible)

    def extra_loss(m: nn.Module, batch, out: dict) -> Tensor:
        gist_pred = m.head(out["slots"][SLOT][:, 0])
        loss = cfg.gist_weight * task.loss(gist_pred, batch.y)
        return loss + cfg.kl_weight * bidirectional_kl(out["pred"], gist_pred, cfg.temperature, task.kind)

    return TrainHooks(extra_loss=[extra_loss], notes={"gist": cfg.model_dump()})
