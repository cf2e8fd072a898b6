"""The one strict base of every configuration model (spec sections, workload configs,
method and plug-in configs): unknown keys are errors, values are frozen, and
non-finite numbers ("inf", 1e400, NaN) are refused."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
