"""``--override KEY.PATH=VALUE``: changes to a loaded spec before it is checked."""
from __future__ import annotations

import copy
from typing import Any

import yaml

from orchestrator.spec.errors import SpecError
from orchestrator.spec.loading import AliasRefused, read_yaml


def apply_overrides(data: Any, items: list[str] | tuple, source: str = "<spec>") -> Any:
    """A copy of the loaded spec with each ``dotted.path=value`` item set.

    A path walks mappings by key and lists by index or by an item's ``name``
    (``backbones.mat.pretrain.max_molecules=2000``); a missing last key is added, so
    that the spec's own validation names it if it is not a field. Values are read as
    YAML, strictly (``1``, ``0.5``, ``[2, 4]``, ``{a: 1}``, ``null``; no anchor or alias)."""
    data = copy.deepcopy(data)
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SpecError(f"{source}: --override expects KEY.PATH=VALUE, got '{item}'")
        try:
            value = read_yaml(text)
        except AliasRefused as e:
            raise SpecError(f"{source}: --override {key}: {e}") from None
        except yaml.YAMLError:
            raise SpecError(f"{source}: --override {key}: cannot read value '{text}' as YAML") from None
        _set(data, key, value, source)
    return data


def _set(data: Any, key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts):
        here = ".".join(parts[:depth]) or "the spec"
        last = depth == len(parts) - 1
        if isinstance(node, dict):
            if last:
                node[part] = value
                continue
            if part not in node:
                node[part] = {}
            elif not isinstance(node[part], (dict, list)):
                raise SpecError(f"{source}: --override {key}: {'.'.join(parts[:depth + 1])} is a value, "
                                "not a mapping or list")
            node = node[part]
        elif isinstance(node, list):
            names = [x.get("name") if isinstance(x, dict) else None for x in node]
            idx = int(part) if part.isdigit() and int(part) < len(node) else (
                names.index(part) if part in names else None)
            if idx is None:
                raise SpecError(f"{source}: --override {key}: {here} has no item '{part}' (items: "
                                f"{', '.join(str(n) for n in names if n is not None) or len(node)})")
            if last:
                node[idx] = value
            else:
                node = node[idx]
        else:
            raise SpecError(f"{source}: --override {key}: {here} is a value, not a mapping or list")
