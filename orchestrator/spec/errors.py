"""How a spec's problems are told: :class:`SpecError`, and pydantic's errors as one
``path: message`` each, the path written as in the YAML (``backbones[0].params.width``)."""
from __future__ import annotations

from pydantic import ValidationError

from orchestrator.spec.secrets import mask_secrets


class SpecError(ValueError):
    """A sweep spec that cannot be used; the message lists each problem with its path.

    The password of any URL in the message is masked here, wherever the text came from
    (a spec, an ``--override``, a driver's error)."""

    def __init__(self, message: str) -> None:
        super().__init__(mask_secrets(message))


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _msg(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    return err["msg"].removeprefix("Value error, ")


def _pydantic_errors(e: ValidationError, prefix: str = "") -> list[str]:
    out = []
    for err in e.errors():
        # discriminated unions put the tag in the location; drop it for readability
        loc = tuple(p for p in err["loc"] if p not in ("float", "int", "categorical"))
        path = _loc(loc)
        out.append(f"{prefix + '.' if prefix and loc else prefix}{path if loc else ''}: {_msg(err)}")
    return out


def _invalid(source: str, errors: list[str]) -> str:
    """One line: the file, then each error naming its YAML path."""
    if len(errors) == 1:
        return f"{source}: invalid sweep spec: {errors[0]}"
    return f"{source}: invalid sweep spec ({len(errors)} errors): " + "; ".join(errors)
