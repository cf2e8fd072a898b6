"""Hard limits on objectives (the spec's ``constraints``): the user's budget.

A limit bounds one objective from above (``max``), below (``min``) or both. A trial
whose measured value passes a limit is *infeasible* (cause ``limit``): the worker
stops it as soon as that is measured (memory within the first epoch, latency where
it is timed, the score only at the end), and the sampler is told how far over it was
(:func:`violation`, through Optuna's ``Trial.set_constraint``).
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

from pydantic import Field, model_validator

from runfolder.strict import StrictModel


class Limit(StrictModel):
    """``{max: 2000}``, ``{min: 0.7}`` or both: the values an objective may take."""

    min: float | None = Field(default=None, description="the objective may not be below this")
    max: float | None = Field(default=None, description="the objective may not be above this")

    @model_validator(mode="after")
    def _consistent(self) -> "Limit":
        if self.min is None and self.max is None:
            raise ValueError("give 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min {self.min:g} is not below max {self.max:g}: no value is allowed")
        return self


class Violation(NamedTuple):
    """An objective past its limit: which bound, the limit, the value measured."""

    objective: str
    bound: str  # "max" or "min"
    limit: float
    measured: float

    @property
    def amount(self) -> float:
        """How far past the limit (> 0): what the sampler is told. Relative to the limit for a
        cost (positive by the spec's check), so memory and latency compare; absolute for the
        score, whose limit may be 0 or negative (R², a log error)."""
        over = self.measured - self.limit if self.bound == "max" else self.limit - self.measured
        scale = 1.0 if self.objective == "score" else max(abs(self.limit), 1e-12)
        return max(over / scale, 1e-9)

    def message(self) -> str:
        word = "over its limit" if self.bound == "max" else "under its limit"
        return f"{self.objective} {self.measured:.4g} is {word} ({self.bound} {self.limit:g})"


def violations(limits: Mapping[str, Limit], values: Mapping[str, float]) -> list[Violation]:
    """Every limit among ``limits`` that a value in ``values`` passes (objectives not
    measured yet are not checked; a non-finite value passes no limit here: it fails the
    trial elsewhere)."""
    out = []
    for name, lim in limits.items():
        v = values.get(name)
        if v is None or v != v or v in (float("inf"), float("-inf")):
            continue
        if lim.max is not None and v > lim.max:
            out.append(Violation(name, "max", lim.max, float(v)))
        if lim.min is not None and v < lim.min:
            out.append(Violation(name, "min", lim.min, float(v)))
    return out
