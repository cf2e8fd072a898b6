"""LM fine-tuning with LoRA (HF ``peft``) and a linear head, on each node's own text.

Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (ICLR 2022),
https://arxiv.org/abs/2106.09685, on the language model's attention query and value
projections (``LanguageModel.lora_targets``: the LoRA paper's choice). The node state
is the masked mean of the last layer; the graph is not used. The LM runs on every
training step, so no state cache applies; on this machine's 2 CPU cores the
spec's ``datasets[].max_train_nodes`` subsamples the training nodes (the same
subsample for every method). Latency is timed with the updates merged (peft's
``LoraLayer.merge``), as for the graph-level LoRA.
"""
from __future__ import annotations

from pydantic import Field
from torch import nn

from workloads.backbones.node import LMClassifier
from workloads.peft.base import MethodConfig, TrainHooks, freeze, register_method
from workloads.peft.lora import merged_copy


class LmLoraConfig(MethodConfig):
    r: int = Field(default=8, ge=1, description="rank of the low-rank update")
    alpha: float = Field(default=16.0, gt=0, description="scaling numerator; the update is scaled by alpha/r")
    dropout: float = Field(default=0.1, ge=0, lt=1, description="dropout on the LoRA input")


@register_method("lm_lora", LmLoraConfig, backbones=("language_model",))
def apply(model: nn.Module, cfg: LmLoraConfig) -> TrainHooks:
    from peft import LoraConfig, inject_adapter_in_model

    freeze(model)
    hf = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                    target_modules=model.lm.lora_targets(), bias="none")
    inject_adapter_in_model(hf, model.lm.model)
    for name, p in model.lm.named_parameters():
        p.requires_grad_("lora_" in name)
    model.body = LMClassifier(model.lm, model.num_classes, cacheable=False)
    return TrainHooks(deploy=merged_copy)
