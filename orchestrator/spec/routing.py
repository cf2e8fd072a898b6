"""The one rule that sends a searched (or ``--set``) key where it belongs:

* ``<plugin>.<field>``: a field of one of the entry's plug-ins;
* a field of the entry's PEFT method (``method.<field>`` says so explicitly);
* a field of training (``lr``, ``weight_decay``, ...; ``train.<field>`` explicitly).

A bare key that is both a method and a training field (ENGINE's exit ``patience``
and training's ``patience``) is ambiguous, and refused with the two explicit
spellings; ``method`` and ``train`` are therefore never plug-in names. Spec
validation, ``trial_config`` and ``orchestrator run --set`` all route through
:func:`route`, so what the spec accepts is what a trial receives.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal


class RouteError(ValueError):
    """A key that goes nowhere; ``reason`` says why (``str()``: ``<key>: <reason>``)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


@dataclass(frozen=True)
class Route:
    """Where one key goes: ``target`` ('method', 'plugin' or 'train'), the ``field`` it
    sets there, and for a plug-in its name."""

    target: Literal["method", "plugin", "train"]
    field: str
    plugin: str | None = None


def route(key: str, method: str, plugins: Iterable[str]) -> Route:
    """Where ``key`` goes for a variant of the registered PEFT ``method`` carrying
    ``plugins`` (their names, in order). Raises :class:`RouteError` with the reason."""
    from workloads.config import TrainConfig
    from workloads.peft import METHODS

    return _route(key, set(METHODS.get(method).config_cls.model_fields), set(TrainConfig.model_fields), plugins)


def routable(method: str, plugins: Iterable[str]) -> list[str]:
    """Every key :func:`route` sends somewhere for this variant, sorted."""
    from workloads.config import TrainConfig
    from workloads.peft import METHODS
    from workloads.plugins import PLUGINS

    method_fields, train_fields = set(METHODS.get(method).config_cls.model_fields), set(TrainConfig.model_fields)
    keys = method_fields ^ train_fields
    keys |= {f"{side}.{k}" for k in method_fields & train_fields for side in EXPLICIT}
    keys |= {f"{p}.{f}" for p in plugins if p in PLUGINS for f in PLUGINS.get(p).config_cls.model_fields}
    return sorted(keys)


EXPLICIT = ("method", "train")  # prefixes that name the side of a key, never a plug-in


def _route(key: str, method_fields: set, train_fields: set, plugins: Iterable[str]) -> Route:
    from workloads.plugins import PLUGINS

    plugins = list(plugins)
    side, _, field = key.partition(".")
    if side in EXPLICIT and field:
        fields = method_fields if side == "method" else train_fields
        if field not in fields:
            raise RouteError(key, f"not a parameter of {'the method' if side == 'method' else 'training'}; known: "
                             + ", ".join(sorted(fields)))
        return Route(side, field)
    if "." in key:
        pname, field = key.split(".", 1)
        if pname not in plugins:
            raise RouteError(key, f"plug-in '{pname}' is not in this entry's plugins ({', '.join(plugins) or 'none'})")
        if pname in PLUGINS and field not in PLUGINS.get(pname).config_cls.model_fields:
            known = ", ".join(sorted(PLUGINS.get(pname).config_cls.model_fields))
            raise RouteError(key, f"not a parameter of plug-in '{pname}'; known: {known}")
        return Route("plugin", field, pname)
    if key in method_fields and key in train_fields:
        raise RouteError(key, f"ambiguous (a method and a training parameter): write method.{key} or train.{key}")
    if key in method_fields:
        return Route("method", key)
    if key in train_fields:
        return Route("train", key)
    raise RouteError(key, "not a parameter of the method or of training; known: "
                     + ", ".join(sorted(method_fields | train_fields)))
