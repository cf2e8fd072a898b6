"""Search spaces: each entry maps one to one onto an ``optuna.distributions`` class."""
from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import Field, model_validator

from runfolder.strict import StrictModel


class FloatParam(StrictModel):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scaled range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("step and log cannot be combined")
        return self

    def distribution(self) -> BaseDistribution:
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def bounds(self) -> list[float]:
        return [self.low, self.high]

    def default(self) -> float:
        return math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2


class IntParam(StrictModel):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, gt=0)

    @model_validator(mode="after")
    def _check(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("a log-scaled int range needs low >= 1 and step 1")
        return self

    def distribution(self) -> BaseDistribution:
        return IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def bounds(self) -> list[int]:
        return [self.low, self.high]

    def default(self) -> int:
        mid = round(math.sqrt(self.low * self.high)) if self.log else (self.low + self.high) // 2
        return self.low + ((mid - self.low) // self.step) * self.step


class CategoricalParam(StrictModel):
    type: Literal["categorical"]
    choices: list[Any] = Field(min_length=1)

    def distribution(self) -> BaseDistribution:
        return CategoricalDistribution(tuple(self.choices))

    def bounds(self) -> list[Any]:
        return list(self.choices)

    def default(self) -> Any:
        return self.choices[0]


SearchParam = Annotated[Union[FloatParam, IntParam, CategoricalParam], Field(discriminator="type")]


def distributions(space: dict[str, SearchParam]) -> dict[str, BaseDistribution]:
    return {name: p.distribution() for name, p in space.items()}
