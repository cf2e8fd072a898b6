"""GPF and GPF-plus: graph prompt features added to every node's input.

Fang et al., "Universal Prompt Tuning for Graph Neural Networks" (NeurIPS 2023),
https://arxiv.org/abs/2209.15240, Section 4.2:

* **GPF** (``gpf``): one learned vector :math:`p \\in \\mathbb R^D` added to every
  node, :math:`x_i^* = x_i + p`.
* **GPF-plus** (``gpf_plus``): :math:`k` basis vectors :math:`p_1 … p_k` mixed per
  node by attention, :math:`x_i^* = x_i + \\sum_j \\alpha_{ij} p_j`,
  :math:`\\alpha_{ij} = \\mathrm{softmax}_j(a_j^\\top x_i)`, with learned :math:`a_j`.

The backbone and head are otherwise frozen; the head trains. As in the authors'
code, :math:`p` (and the basis) are Glorot-initialised and the :math:`a_j` are a
linear layer with its default initialisation, so the prompted model does not
start equal to the pretrained one.

Deviation: this backbone's node inputs are embeddings of OGB's categorical atom
features, so the prompt is added to the atom encoder's output (before the degree
encoding) rather than to raw feature vectors. Written by hand: HF ``peft`` has no
graph prompts. The backbone applies it through ``add_input_prompt``.

Args:
    num_basis (int, ``gpf_plus`` only): k (default 4).
"""
from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from workloads.peft.base import MethodConfig, TrainHooks, freeze, register_method, unfreeze


class GPFConfig(MethodConfig):
    """GPF has no method parameters."""


class GPFPlusConfig(MethodConfig):
    num_basis: int = Field(default=4, ge=1, description="k: number of basis prompt vectors")


class GPF(nn.Module):
    """Shapes: [N, D] -> [N, D]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.prompt = nn.Parameter(torch.empty(1, dim))
        nn.init.xavier_uniform_(self.prompt)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.prompt


class GPFPlus(nn.Module):
    """Shapes: [N, D] -> [N, D]."""

    def __init__(self, dim: int, num_basis: int) -> None:
        super().__init__()
        self.basis = nn.Parameter(torch.empty(num_basis, dim))
        nn.init.xavier_uniform_(self.basis)
        self.attn = nn.Linear(dim, num_basis)

    def forward(self, x: Tensor) -> Tensor:
        return x + torch.softmax(self.attn(x), dim=-1) @ self.basis


def _prompt(model: nn.Module, module: nn.Module) -> TrainHooks:
    freeze(model)
    model.backbone.add_input_prompt(module)
    unfreeze(model.head)
    return TrainHooks()


@register_method("gpf", GPFConfig)
def apply_gpf(model: nn.Module, cfg: GPFConfig) -> TrainHooks:
    return _prompt(model, GPF(model.backbone.out_dim))


@register_method("gpf_plus", GPFPlusConfig)
def apply_gpf_plus(model: nn.Module, cfg: GPFPlusConfig) -> TrainHooks:
    return _prompt(model, GPFPlus(model.backbone.out_dim, cfg.num_basis))
