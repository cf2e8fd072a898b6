"""From labelled SMILES to featurized, scaffold-split graphs."""
from __future__ import annotations

import numpy as np

from workloads.datasets.config import DatasetConfig
from workloads.datasets.featurize import smiles_to_data
from workloads.datasets.split import scaffold_split


def label_stats(train: list, task: str) -> tuple[float, float]:
    """(mean, std) of training labels for regression; (0, 1) for classification."""
    if task != "regression":
        return 0.0, 1.0
    ys = np.array([float(d.y) for d in train])
    std = float(ys.std())
    return float(ys.mean()), (std if std > 0 else 1.0)


def build_from_smiles(cfg: DatasetConfig, smiles: list[str], y: np.ndarray, task: str, where: str) -> dict:
    idx = np.arange(len(smiles))
    if cfg.max_molecules is not None and cfg.max_molecules < len(smiles):
        rng = np.random.default_rng(cfg.split_seed)
        idx = np.sort(rng.choice(len(smiles), size=cfg.max_molecules, replace=False))
    graphs, kept, invalid = [], [], 0
    for i in idx:
        d = smiles_to_data(smiles[i], float(y[i]))
        if d is None:
            invalid += 1
            continue
        d.smiles = smiles[i]
        graphs.append(d)
        kept.append(smiles[i])
    if len(graphs) < 20:
        raise ValueError(f"dataset '{cfg.name}': only {len(graphs)} valid molecules in {where}")
    tr, va, te = scaffold_split(kept, cfg.split_fractions or (0.8, 0.1, 0.1), cfg.split_seed)
    train = [graphs[i] for i in tr]
    mean, std = label_stats(train, task)
    return {
        "train": train,
        "valid": [graphs[i] for i in va],
        "test": [graphs[i] for i in te],
        "y_mean": mean,
        "y_std": std,
        "num_invalid": invalid,
    }
