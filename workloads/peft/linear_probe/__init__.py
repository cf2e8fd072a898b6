"""Linear probe: the pretrained backbone is frozen; only the prediction head trains."""
from torch import nn

from workloads.peft.base import MethodConfig, TrainHooks, freeze, register_method, unfreeze


class LinearProbeConfig(MethodConfig):
    """Linear probing has no method parameters."""


@register_method("linear_probe", LinearProbeConfig, "frozen backbone, trainable linear head")
def apply(model: nn.Module, cfg: LinearProbeConfig) -> TrainHooks:
    freeze(model)
    unfreeze(model.head)
    return TrainHooks()
