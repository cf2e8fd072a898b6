"""Reading a spec: strict YAML (no repeated key, no anchor or alias, no Python tags),
then the models, then the semantic checks; nothing is created until all passed."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.spec.errors import SpecError, _invalid, _loc, _pydantic_errors
from orchestrator.spec.schema import SweepSpec
from orchestrator.spec.validate import semantic_errors


class AliasRefused(yaml.YAMLError):
    """A YAML anchor or alias: a spec is plain data, written out (nested aliases would
    expand to a tree of billions of nodes before any check could run)."""

    def __init__(self, event: yaml.Event) -> None:
        mark = event.start_mark
        what = f"an alias '*{event.anchor}'" if isinstance(event, yaml.AliasEvent) else f"an anchor '&{event.anchor}'"
        super().__init__(f"YAML anchors and aliases are not allowed in a sweep spec ({what} at line "
                         f"{mark.line + 1}, column {mark.column + 1})")


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key repeated in one mapping is an error
    (PyYAML keeps the last one silently), and so is any anchor or alias: refused while
    the document is composed, before anything is built from it, so it costs nothing."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise AliasRefused(event)
        return super().compose_node(parent, index)


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a plain value, not {type(key).__name__} {key!r}",
                key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' appears twice in one mapping (first at line "
                f"{seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def read_yaml(text: str) -> Any:
    """``text`` read as YAML, strictly (see :class:`_StrictLoader`); raises yaml.YAMLError
    (:class:`AliasRefused` for an anchor or alias)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader


def _non_finite(data: Any, path: tuple = ()) -> list[str]:
    """Paths of every NaN or infinite number (YAML's .nan / .inf) in the loaded spec."""
    if isinstance(data, float) and not math.isfinite(data):
        return [f"{_loc(path)}: {data} is not a finite number"]
    if isinstance(data, dict):
        return [e for k, v in data.items() for e in _non_finite(v, path + (k,))]
    if isinstance(data, list):
        return [e for i, v in enumerate(data) for e in _non_finite(v, path + (i,))]
    return []


def parse_spec(data: Any, source: str = "<spec>") -> SweepSpec:
    if not isinstance(data, dict):
        raise SpecError(f"{source}: the spec must be a mapping at the top level")
    bad = _non_finite(data)
    if bad:
        raise SpecError(_invalid(source, bad))
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(_invalid(source, _pydantic_errors(e))) from None
    errors = semantic_errors(spec)
    if errors:
        raise SpecError(_invalid(source, errors))
    return spec


def load_spec(path: str | Path, overrides: list[str] | tuple = ()) -> SweepSpec:
    """Read, override (``KEY.PATH=VALUE`` items, see :func:`apply_overrides`) and validate a spec."""
    from orchestrator.spec.overrides import apply_overrides

    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        data = read_yaml(path.read_text())
    except AliasRefused as e:
        raise SpecError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {_yaml_error(e)}") from None
    source = str(path)
    if overrides:
        data = apply_overrides(data, overrides, source)
        source += " with --override " + " ".join(overrides)
    return parse_spec(data, source)


def _yaml_error(e: yaml.YAMLError) -> str:
    """PyYAML's message on one line, with where it happened."""
    mark = getattr(e, "problem_mark", None)
    what = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x) or str(e)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(what.split()) + where
