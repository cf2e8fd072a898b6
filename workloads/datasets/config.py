"""Configuration of one dataset in a sweep."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class DatasetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="registered dataset name (b3db, freesolv, ogbg-molhiv, ...)")
    max_molecules: int | None = Field(
        default=None, ge=20, description="deterministic random subset of this size"
    )
    split_seed: int = Field(default=0, description="seed of the scaffold split and of the subset")
    split_fractions: tuple[float, float, float] = Field(
        default=(0.8, 0.1, 0.1), description="train/valid/test fractions (sets with an official split ignore it)"
    )
    root: str | None = Field(
        default=None, description="folder holding on-disk datasets (OGB sets; default $OGB_ROOT or data/ogb)"
    )

    @field_validator("split_fractions")
    @classmethod
    def _fractions(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f <= 0 for f in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"fractions must be positive and sum to 1, got {list(v)}")
        return v
