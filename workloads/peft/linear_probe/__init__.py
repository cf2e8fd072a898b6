"""Linear probe: the pretrained backbone is frozen and runs in eval mode (no
dropout) while the prediction head trains on its graph token.

The standard linear-evaluation protocol (e.g. Hu et al., "Strategies for
Pre-training Graph Neural Networks", ICLR 2020, and the probes in the G-Adapter
paper's comparison): the backbone is a fixed feature extractor, so its dropout
stays off in training as well as in evaluation.
"""
from torch import nn

from workloads.peft.base import MethodConfig, TrainHooks, freeze, register_method, unfreeze


class LinearProbeConfig(MethodConfig):
    """Linear probing has no method parameters."""


@register_method("linear_probe", LinearProbeConfig)
def apply(model: nn.Module, cfg: LinearProbeConfig) -> TrainHooks:
    freeze(model)
    unfreeze(model.head)
    return TrainHooks(eval_modules=[model.backbone])
