"""BitFit: only the bias terms of the backbone train, plus the head.

Ben Zaken et al., "BitFit: Simple Parameter-efficient Fine-tuning for
Transformer-based Masked Language-models" (ACL 2022), https://arxiv.org/abs/2106.10199.
Every parameter named ``*.bias`` (linear layers and LayerNorms) stays trainable;
weights and embeddings are frozen. Written by hand: HF ``peft`` has no BitFit.
"""
from torch import nn

from workloads.peft.base import MethodConfig, TrainHooks, freeze, register_method, unfreeze


class BitFitConfig(MethodConfig):
    """BitFit has no method parameters."""


@register_method("bitfit", BitFitConfig)
def apply(model: nn.Module, cfg: BitFitConfig) -> TrainHooks:
    freeze(model)
    for name, p in model.backbone.named_parameters():
        if name.endswith(".bias"):
            p.requires_grad_(True)
    unfreeze(model.head)
    return TrainHooks()
