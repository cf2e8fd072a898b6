"""Prompt tokens: learnable tokens enter the frozen transformer's sequence next to
the graph token; only they and the head train.

Lester et al., "The Power of Scale for Parameter-Efficient Prompt Tuning"
(EMNLP 2021), https://arxiv.org/abs/2104.08691, applied to a graph transformer:
the input sequence becomes ``[graph token, p_1 … p_P, atoms]``. The tokens carry no
positional or structural encoding (zero bias with atoms; the graph token's bias
with the graph token). This is token prompt tuning, not the graph-prompt feature
baselines GPF / GPF-plus (the ``gpf`` and ``gpf_plus`` methods). Written by hand:
HF ``peft``'s prompt tuning works on token-embedding language models, not on this
backbone. The backbone inserts the tokens through ``add_token_slot``.

Args:
    num_tokens (int): P (default 4).
    init_std (float): std of the tokens' normal initialisation (default 0.02).
"""
from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from workloads.peft.base import MethodConfig, TrainHooks, freeze, register_method, unfreeze


class PromptTokensConfig(MethodConfig):
    num_tokens: int = Field(default=4, ge=1, description="number of learnable prompt tokens P")
    init_std: float = Field(default=0.02, gt=0, description="std of the tokens' normal initialisation")


class PromptTokens(nn.Module):
    """P learnable tokens shared by every graph. Shapes: batch size B -> [B, P, D]."""

    def __init__(self, num_tokens: int, dim: int, init_std: float) -> None:
        super().__init__()
        self.tokens = nn.Parameter(torch.randn(num_tokens, dim) * init_std)

    def forward(self, batch_size: int) -> Tensor:
        return self.tokens.unsqueeze(0).expand(batch_size, -1, -1)


@register_method("prompt_tokens", PromptTokensConfig)
def apply(model: nn.Module, cfg: PromptTokensConfig) -> TrainHooks:
    freeze(model)
    model.backbone.add_token_slot("prompt", PromptTokens(cfg.num_tokens, model.backbone.out_dim, cfg.init_std))
    unfreeze(model.head)
    return TrainHooks()
