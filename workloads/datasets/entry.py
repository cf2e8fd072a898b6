"""What every dataset entry has: the base of each source's own config model (see
:mod:`workloads.datasets.config` for how an entry's model is chosen). It imports no
source, so every source module can build on it."""
from __future__ import annotations

from pydantic import Field, field_validator

from runfolder.strict import StrictModel

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class BaseDatasetConfig(StrictModel):
    """What every dataset entry has; each source's own model adds the fields it reads."""

    name: str = Field(pattern=NAME_PATTERN,
                      description="registered dataset name (b3db, freesolv, ogbg-molhiv, wordnet, ...), or your "
                      "own dataset's name when 'kind' is given")
    kind: str | None = Field(
        default=None, description="a dataset kind that reads your own files (csv: molecules; text_graph_csv); "
        "null: 'name' is a registered dataset")
    split_seed: int = Field(default=0, ge=0, le=2**31 - 1,
                            description="seed of the split and of any subset")
    split_fractions: tuple[float, float, float] | None = Field(
        default=None, description="train/valid/test fractions; null: the dataset's default (molecules "
        "0.8/0.1/0.1 by scaffold, text graphs 0.6/0.2/0.2 stratified); sets with their own split ignore it"
    )

    @field_validator("split_fractions")
    @classmethod
    def _fractions(cls, v: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        if v is not None and (any(f <= 0 for f in v) or abs(sum(v) - 1.0) > 1e-6):
            raise ValueError(f"fractions must be positive and sum to 1, got {list(v)}")
        return v
