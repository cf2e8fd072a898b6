"""Your own molecules: ``{name: mine, kind: csv, path: mols.csv, smiles_column: smiles,
target_columns: [a, b], task: classification|regression, split: scaffold|random|column:<name>}``.

Checked when the spec loads (the file and its columns exist, classification labels
are 0/1, split values are train/valid/test); rows that cannot be used are skipped and
counted in the trial record (``dataset.num_invalid_smiles``: RDKit cannot parse the
SMILES; ``dataset.num_missing_label``: every target cell empty), never silently.
Several target columns make a multi-task set: empty cells are missing labels,
masked out of the loss and the metric.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from workloads.datasets.base import MoleculeSource
from workloads.datasets.entry import BaseDatasetConfig
from workloads.util import file_digest

SPLIT_VALUES = {"train", "valid", "test"}


class CsvMoleculesConfig(BaseDatasetConfig):
    """An entry of kind ``csv``: your own molecules from one CSV (or TSV) file."""

    kind: Literal["csv"] = Field(default="csv", description="csv: your own molecules from a CSV file")
    path: str | None = Field(default=None, description="the CSV file of molecules (.tsv/.tab: tab-separated)")
    smiles_column: str = Field(default="smiles", description="the column holding SMILES")
    target_columns: tuple[str, ...] | None = Field(
        default=None, min_length=1, description="label columns, one task each (empty cells: missing labels)")
    task: Literal["classification", "regression"] | None = Field(
        default=None, description="binary classification (labels 0/1) or regression")
    split: str | None = Field(
        default=None, description="'scaffold' (the default), 'random', or 'column:<name>' (train/valid/test, "
        "or train/test with validation carved from train, in that column)")
    max_molecules: int | None = Field(default=None, ge=20, description="deterministic random subset of this size")


def _read(cfg: CsvMoleculesConfig) -> tuple[pd.DataFrame, list[str]]:
    """The frame and the problems found (empty: usable)."""
    problems = []
    for key in ("path", "target_columns", "task"):
        if getattr(cfg, key) is None:
            problems.append(f"kind csv needs '{key}'")
    if problems:
        return pd.DataFrame(), problems
    path = Path(cfg.path)
    if not path.is_file():
        return pd.DataFrame(), [f"{path}: no such file"]
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, sep="\t" if path.suffix in (".tsv", ".tab") else ",")
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        return pd.DataFrame(), [f"{path}: not a readable CSV file ({e})"]
    split_col = cfg.split.removeprefix("column:") if cfg.split and cfg.split.startswith("column:") else None
    wanted = [cfg.smiles_column, *cfg.target_columns] + ([split_col] if split_col else [])
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        return df, [f"{path}: missing column(s) {', '.join(missing)}; has {', '.join(df.columns)}"]
    if cfg.split not in (None, "scaffold", "random") and not split_col:
        problems.append(f"split: '{cfg.split}' is none of scaffold, random, column:<name>")
    if split_col:
        bad = sorted(set(df[split_col].str.strip()) - SPLIT_VALUES)
        if bad:
            problems.append(f"{path}: column '{split_col}' has values other than train/valid/test: {', '.join(bad[:5])}")
    for c in cfg.target_columns:
        values = pd.to_numeric(df[c].str.strip().replace("", np.nan), errors="coerce")
        unreadable = df[c].str.strip().ne("") & values.isna()
        if unreadable.any():
            problems.append(f"{path}: column '{c}' has non-numeric labels, e.g. {df[c][unreadable].iloc[0]!r}")
        elif cfg.task == "classification" and not set(values.dropna().unique()) <= {0.0, 1.0}:
            odd = sorted(set(values.dropna().unique()) - {0.0, 1.0})[:3]
            problems.append(f"{path}: column '{c}' must hold 0/1 labels for classification; found {odd}")
    return df, problems


def check(cfg: CsvMoleculesConfig) -> list[str]:
    return _read(cfg)[1]


def build(cfg: CsvMoleculesConfig) -> dict:
    from workloads.datasets.build import build_from_smiles

    df, problems = _read(cfg)
    if problems:
        raise ValueError(f"dataset '{cfg.name}': " + "; ".join(problems))
    y = np.stack([pd.to_numeric(df[c].str.strip().replace("", np.nan), errors="coerce").to_numpy(np.float32)
                  for c in cfg.target_columns], axis=1)
    split = None
    if cfg.split and cfg.split.startswith("column:"):
        split = df[cfg.split.removeprefix("column:")].str.strip().tolist()
    return build_from_smiles(cfg, df[cfg.smiles_column].str.strip().tolist(), y, cfg.task, cfg.path,
                             given_split=split, mode="random" if cfg.split == "random" else "scaffold")


def fingerprint(cfg: CsvMoleculesConfig) -> str:
    return file_digest(Path(cfg.path))


@dataclass(frozen=True)
class CsvMoleculeKind:
    """The ``csv`` kind (a ``MoleculeDataSource``): each entry's own file is a
    :class:`MoleculeSource` of the entry's name, task and metric (``for_config``)."""

    name: str = "csv"
    description: str = "your own molecules: a CSV with a SMILES column and label columns"
    family: str = "graph_property"
    task: str | None = None  # the entry's 'task'
    metric: str | None = None  # roc_auc for classification, rmse for regression
    config_cls: type[BaseDatasetConfig] = CsvMoleculesConfig
    is_kind: bool = True

    def check(self, cfg: CsvMoleculesConfig) -> list[str]:
        return check(cfg)

    def fingerprint(self, cfg: CsvMoleculesConfig) -> str:
        return fingerprint(cfg)

    def build(self, cfg: CsvMoleculesConfig) -> dict:
        return build(cfg)

    def for_config(self, cfg: CsvMoleculesConfig) -> MoleculeSource:
        return MoleculeSource(
            cfg.name, cfg.task or "regression", "roc_auc" if cfg.task == "classification" else "rmse",
            f"your molecules from {cfg.path}", fingerprint=fingerprint, build=build, check=check,
            config_cls=CsvMoleculesConfig)


CSV_MOLECULES = CsvMoleculeKind()
