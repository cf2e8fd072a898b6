"""Full fine-tuning: every backbone and head parameter trains."""
from torch import nn

from workloads.peft.base import MethodConfig, TrainHooks, register_method, unfreeze


class FullConfig(MethodConfig):
    """Full fine-tuning has no method parameters (learning rate etc. belong to training)."""


@register_method("full", FullConfig)
def apply(model: nn.Module, cfg: FullConfig) -> TrainHooks:
    unfreeze(model)
    return TrainHooks()
