"""Loading a labelled molecular dataset: read, subsample, featurize, split, cache."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch_geometric.data import Data

from workloads.datasets.featurize import FEATURIZER_VERSION, smiles_to_data
from workloads.datasets.sources import SOURCES, MoleculeSource
from workloads.datasets.split import scaffold_split
from workloads.util import atomic_torch_save, file_digest, stable_hash

log = logging.getLogger(__name__)


class DatasetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="registered dataset name (b3db, freesolv, ...)")
    max_molecules: int | None = Field(
        default=None, ge=20, description="deterministic random subset of this size before splitting"
    )
    split_seed: int = Field(default=0, description="seed of the scaffold split and of the subset")
    split_fractions: tuple[float, float, float] = Field(
        default=(0.8, 0.1, 0.1), description="train/valid/test fractions"
    )


@dataclass
class GraphSplits:
    source: MoleculeSource
    train: list[Data]
    valid: list[Data]
    test: list[Data]
    y_mean: float  # training-label statistics (used to standardise regression targets)
    y_std: float
    num_invalid: int

    @property
    def task(self) -> str:
        return self.source.task

    def summary(self) -> dict:
        return {
            "name": self.source.name,
            "task": self.source.task,
            "metric": self.source.metric,
            "num_train": len(self.train),
            "num_valid": len(self.valid),
            "num_test": len(self.test),
            "num_invalid_smiles": self.num_invalid,
        }


def _cache_path(cfg: DatasetConfig, src_file: Path, cache_dir: Path) -> Path:
    key = stable_hash({"cfg": cfg.model_dump(), "file": file_digest(src_file), "feat": FEATURIZER_VERSION})
    return Path(cache_dir) / "datasets" / f"{cfg.name}-{key}.pt"


def load_dataset(cfg: DatasetConfig, cache_dir: Path) -> GraphSplits:
    """Featurize on first use, then load from the cache (keyed by config, file content, featurizer)."""
    source = SOURCES.get(cfg.name)
    src_file = source.locate()
    path = _cache_path(cfg, src_file, cache_dir)
    if path.exists():
        blob = torch.load(path, weights_only=False)
    else:
        blob = _build(cfg, source, src_file)
        atomic_torch_save(path, blob)
        log.info("featurized %s -> %s", cfg.name, path)
    return GraphSplits(source=source, **blob)


def _build(cfg: DatasetConfig, source: MoleculeSource, src_file: Path) -> dict:
    smiles, y = source.read(src_file)
    idx = np.arange(len(smiles))
    if cfg.max_molecules is not None and cfg.max_molecules < len(smiles):
        rng = np.random.default_rng(cfg.split_seed)
        idx = np.sort(rng.choice(len(smiles), size=cfg.max_molecules, replace=False))
    graphs, kept_smiles, invalid = [], [], 0
    for i in idx:
        d = smiles_to_data(smiles[i], float(y[i]))
        if d is None:
            invalid += 1
            continue
        d.smiles = smiles[i]
        graphs.append(d)
        kept_smiles.append(smiles[i])
    if len(graphs) < 20:
        raise ValueError(f"dataset '{cfg.name}': only {len(graphs)} valid molecules in {src_file}")
    tr, va, te = scaffold_split(kept_smiles, cfg.split_fractions, cfg.split_seed)
    ys = np.array([float(graphs[i].y) for i in tr])
    std = float(ys.std()) if source.task == "regression" else 1.0
    return {
        "train": [graphs[i] for i in tr],
        "valid": [graphs[i] for i in va],
        "test": [graphs[i] for i in te],
        "y_mean": float(ys.mean()) if source.task == "regression" else 0.0,
        "y_std": std if std > 0 else 1.0,
        "num_invalid": invalid,
    }
