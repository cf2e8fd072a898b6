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

from torch import Tensor, nn

from runfolder.strict import StrictModel
from workloads.registry import Registry


class MethodConfig(StrictModel):
    """The base of every method's config."""


@dataclass
class TrainHooks:
    """Ways a method or a training plug-in changes the shared training loop.

    Every field is a list, so the hooks of a method and of any number of plug-ins
    combine by concatenation (:meth:`combine`); the loop calls each entry in order.
    """

    # Called right before each training forward pass: (model, batch) -> None.
    before_forward: list[Callable[[nn.Module, object], None]] = field(default_factory=list)
    # Extra loss terms added to the task loss: (model, batch, output) -> scalar, where
    # output is the model's ``with_slots=True`` dict {"pred", "slots"}.
    extra_loss: list[Callable[[nn.Module, object, dict], Tensor]] = field(default_factory=list)
    # Called once after each optimizer step (e.g. to move a proximal anchor).
    after_step: list[Callable[[nn.Module], None]] = field(default_factory=list)
    # Modules kept in eval mode while training (a frozen backbone whose dropout must stay off).
    eval_modules: list[nn.Module] = field(default_factory=list)
    # The deployable model for inference timing: (model) -> a model with the same
    # predictions (e.g. LoRA merged into its base weights); None: the model as trained.
    deploy: Optional[Callable[[nn.Module], nn.Module]] = None
    notes: dict = field(default_factory=dict)

    def combine(self, *others: "TrainHooks") -> "TrainHooks":
        out = TrainHooks(list(self.before_forward), list(self.extra_loss), list(self.after_step),
                         list(self.eval_modules), self.deploy, dict(self.notes))
        for o in others:
            out.before_forward += o.before_forward
            out.extra_loss += o.extra_loss
            out.after_step += o.after_step
            out.eval_modules += o.eval_modules
            if o.deploy is not None:
                if out.deploy is not None:
                    raise ValueError("two hooks each define how to deploy the model")
                out.deploy = o.deploy
            out.notes.update(o.notes)
        return out

    @property
    def needs_slots(self) -> bool:
        """Whether the training forward must return the extra tokens' states."""
        return bool(self.extra_loss)


@dataclass(frozen=True)
class ReferenceKind:
    """What makes a registered method a reference baseline (``workloads/references/``).

    ``memory_by`` says how its memory is measured. ``fit``: ``(cfg, task, data, seed, measure)
    -> workloads.references.Fitted`` for a baseline fitted outside the training loop (no
    backbone, no pretraining: the constant predictor, fingerprints + forest), entering the
    ``measure()`` context around its training; None for one that trains in the loop like any
    method (``text_mlp``)."""

    memory_by: str
    fit: Callable | None = None


@dataclass(frozen=True)
class PeftMethod:
    name: str
    config_cls: type[MethodConfig]
    apply: Callable[[nn.Module, MethodConfig], TrainHooks]
    backbones: tuple[str, ...] = ("graph_transformer",)  # backbone kinds (BackboneSpec.kind) it applies to
    reference: ReferenceKind | None = None  # set on a reference baseline

    def parse(self, params: dict) -> MethodConfig:
        return self.config_cls(**params)


METHODS: Registry[PeftMethod] = Registry("PEFT method")


def register_method(name: str, config_cls: type[MethodConfig], backbones: tuple[str, ...] = ("graph_transformer",),
                    reference: ReferenceKind | None = None):
    def deco(fn: Callable[[nn.Module, MethodConfig], TrainHooks]):
        METHODS.add(name, PeftMethod(name, config_cls, fn, tuple(backbones), reference))
        return fn

    return deco


def method_names(backbone_kind: str | None = None, *, references: bool | None = False) -> list[str]:
    """Registered methods (for one backbone kind), in registration order: the PEFT methods
    (``references=False``), the reference baselines (True), or both (None)."""
    return [n for n in METHODS.names()
            if (backbone_kind is None or backbone_kind in METHODS.get(n).backbones)
            and (references is None or (METHODS.get(n).reference is not None) == references)]


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
