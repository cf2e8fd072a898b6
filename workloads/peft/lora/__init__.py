"""LoRA through HF ``peft``: low-rank updates on the backbone's linear layers.

Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (ICLR 2022),
https://arxiv.org/abs/2106.09685.  For a frozen weight :math:`W_0`,
:math:`h = W_0 x + \\frac{\\alpha}{r} B A x` with :math:`A \\in \\mathbb{R}^{r\\times d}`,
:math:`B \\in \\mathbb{R}^{k\\times r}` (B starts at zero).

The layers are injected with ``peft.inject_adapter_in_model`` (no wrapper model,
so the graph batch passes straight through); the head trains alongside.

Latency is timed on the deployable model: a copy with every update merged into its
base weight (:math:`W = W_0 + \frac{\alpha}{r}BA`, peft's ``LoraLayer.merge``) and the
LoRA wrappers replaced by their base layers, so inference costs what the
pretrained model costs. The unmerged figure is recorded beside it.
"""
from __future__ import annotations

import copy

from pydantic import Field
from torch import nn

from workloads.peft.base import MethodConfig, TrainHooks, freeze, register_method, unfreeze


class LoraConfig(MethodConfig):
    r: int = Field(default=8, ge=1, description="rank of the low-rank update")
    alpha: float = Field(default=16.0, gt=0, description="scaling numerator; the update is scaled by alpha/r")
    dropout: float = Field(default=0.0, ge=0, lt=1, description="dropout on the LoRA input")
    target_modules: tuple[str, ...] | None = Field(
        default=None,
        description="names of nn.Linear modules in the backbone that receive LoRA; null: the ones the "
        "backbone declares (its lora_targets: the attention projections)",
    )


@register_method("lora", LoraConfig)
def apply(model: nn.Module, cfg: LoraConfig) -> TrainHooks:
    # peft (and transformers under it) load here, not when the registry or a config is read
    from peft import LoraConfig as HFLoraConfig
    from peft import inject_adapter_in_model

    freeze(model)
    hf = HFLoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(type(model.backbone).lora_targets if cfg.target_modules is None else cfg.target_modules),
        bias="none",
    )
    inject_adapter_in_model(hf, model.backbone)
    for name, p in model.backbone.named_parameters():
        p.requires_grad_("lora_" in name)
    unfreeze(model.head)
    return TrainHooks(deploy=merged_copy)


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with each LoRA update merged and its wrapper removed."""
    from peft.tuners.lora import LoraLayer

    out = copy.deepcopy(model)
    names = [n for n, m in out.named_modules() if isinstance(m, LoraLayer)]
    for name in names:
        layer = out.get_submodule(name)
        layer.merge(safe_merge=True)
        parent, _, attr = name.rpartition(".")
        setattr(out.get_submodule(parent) if parent else out, attr, layer.get_base_layer())
    return out
