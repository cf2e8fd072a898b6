"""The contract every PEFT method fulfils, and the one registry that holds them.

A method lives in its own package ``workloads/peft/<name>/`` with a pydantic
config (a help text per field) and ``apply(model, cfg) -> TrainHooks``. ``apply``
changes the model in place: it adds the method's parameters and leaves
``requires_grad`` set on exactly the parameters that train. The training loop
is shared; methods plug in through :class:`TrainHooks`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from workloads.registry import Registry


class MethodConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class TrainHooks:
    """Ways a method changes the shared training loop (all optional)."""

    # Called right before the training forward pass: (model, batch) -> None.
    before_forward: Optional[Callable[[nn.Module, object], None]] = None
    # Extra loss term added to the task loss: (model, batch, prediction) -> scalar.
    extra_loss: Optional[Callable[[nn.Module, object, Tensor], Tensor]] = None
    # Called once after each optimizer step (e.g. to refresh a proximal anchor).
    after_step: Optional[Callable[[nn.Module], None]] = None
    notes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PeftMethod:
    name: str
    config_cls: type[MethodConfig]
    apply: Callable[[nn.Module, MethodConfig], TrainHooks]
    summary: str

    def parse(self, params: dict) -> MethodConfig:
        return self.config_cls(**params)


METHODS: Registry[PeftMethod] = Registry("PEFT method")


def register_method(name: str, config_cls: type[MethodConfig], summary: str):
    def deco(fn: Callable[[nn.Module, MethodConfig], TrainHooks]):
        METHODS.add(name, PeftMethod(name, config_cls, fn, summary))
        return fn

    return deco


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def unfreeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(True)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
