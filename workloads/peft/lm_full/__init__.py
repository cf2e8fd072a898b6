"""Full fine-tuning of the language model with a linear head, on each node's own text.

Every LM parameter trains (as in the ENGINE paper's fine-tuned-LM baseline); the
node state is the masked mean of the last layer; the graph is not used. The LM runs
on every training step, so no state cache applies (see ``lm_lora`` on subsampling).
"""
from __future__ import annotations

from torch import nn

from workloads.backbones.node import LMClassifier
from workloads.peft.base import MethodConfig, TrainHooks, register_method, unfreeze


class LmFullConfig(MethodConfig):
    """Full LM fine-tuning has no method parameters (learning rate etc. belong to training)."""


@register_method("lm_full", LmFullConfig, backbones=("language_model",))
def apply(model: nn.Module, cfg: LmFullConfig) -> TrainHooks:
    model.body = LMClassifier(model.lm, model.num_classes, cacheable=False)
    unfreeze(model)
    return TrainHooks()
