"""Configuration of one dataset in a sweep."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class DatasetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # "inf"/1e400 too

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                      description="registered dataset name (b3db, freesolv, ogbg-molhiv, wordnet, ...), or your "
                      "own dataset's name when 'kind' is given")
    kind: str | None = Field(
        default=None, description="a dataset kind that reads your own files (csv: molecules; text_graph_csv); "
        "null: 'name' is a registered dataset")
    path: str | None = Field(default=None, description="csv: the CSV file of molecules")
    smiles_column: str = Field(default="smiles", description="csv: the column holding SMILES")
    target_columns: list[str] | None = Field(
        default=None, min_length=1, description="csv: label columns, one task each (empty cells: missing labels)")
    task: Literal["classification", "regression"] | None = Field(
        default=None, description="csv: binary classification (labels 0/1) or regression")
    nodes: str | None = Field(default=None, description="text_graph_csv: CSV with columns id,text,label")
    edges: str | None = Field(default=None, description="text_graph_csv: CSV with columns src,dst (node ids)")
    split: str | None = Field(
        default=None, description="your own files: 'scaffold' (csv molecules' default), 'random' (text graphs' "
        "default; stratified for them), or 'column:<name>' (train/valid/test, or train/test with validation "
        "carved from train, in that column)")
    max_train_nodes: int | None = Field(
        default=None, ge=10, description="text graphs: a deterministic stratified subsample of the training "
        "nodes (every method sees the same); null: all")
    max_molecules: int | None = Field(
        default=None, ge=20, description="deterministic random subset of this size"
    )
    split_seed: int = Field(default=0, ge=0, le=2**31 - 1, description="seed of the scaffold split and of the subset")
    split_fractions: tuple[float, float, float] | None = Field(
        default=None, description="train/valid/test fractions; null: the dataset's default (molecules "
        "0.8/0.1/0.1 by scaffold, text graphs 0.6/0.2/0.2 stratified); sets with their own split ignore it"
    )
    root: str | None = Field(
        default=None, description="folder holding on-disk datasets (OGB sets: default $OGB_ROOT or data/ogb; "
        "wordnet: WordNet's dict folder for all of WordNet instead of the shipped subset)"
    )

    @field_validator("split_fractions")
    @classmethod
    def _fractions(cls, v: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        if v is not None and (any(f <= 0 for f in v) or abs(sum(v) - 1.0) > 1e-6):
            raise ValueError(f"fractions must be positive and sum to 1, got {list(v)}")
        return v
