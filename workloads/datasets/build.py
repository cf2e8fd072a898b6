"""From labelled SMILES to featurized, scaffold-split graphs."""
from __future__ import annotations

import numpy as np
from rdkit import Chem

from workloads.datasets.entry import BaseDatasetConfig
from workloads.datasets.featurize import smiles_to_data
from workloads.datasets.split import scaffold_split
from workloads.progress import Progress


def label_stats(train: list, task: str):
    """(mean, std) of the training labels per task for regression, missing labels left out
    (floats for one task, lists for several); (0, 1) for classification."""
    if task != "regression":
        return 0.0, 1.0
    ys = np.concatenate([d.y.numpy().reshape(1, -1) for d in train])
    mean, std = np.nanmean(ys, axis=0), np.nanstd(ys, axis=0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    if ys.shape[1] == 1:
        return float(mean[0]), float(std[0])
    return mean.tolist(), std.tolist()


def random_split(n: int, fractions: tuple[float, float, float], seed: int) -> tuple[list[int], list[int], list[int]]:
    perm = np.random.default_rng(seed).permutation(n)
    n_tr, n_va = int(fractions[0] * n), int(fractions[1] * n)
    return sorted(perm[:n_tr].tolist()), sorted(perm[n_tr:n_tr + n_va].tolist()), sorted(perm[n_tr + n_va:].tolist())


def build_from_smiles(cfg: BaseDatasetConfig, smiles: list[str], y: np.ndarray, task: str, where: str,
                      given_split: list[str] | None = None, mode: str = "scaffold") -> dict:
    """Featurize, then split: by scaffold (``split_fractions``, default 0.8/0.1/0.1), or by
    ``given_split`` (a dataset's own "train"/"valid"/"test" per molecule). A dataset that
    gives only train and test gets its validation set carved from train by scaffold
    (``split_fractions[1]`` of it, default 10%)."""
    idx = np.arange(len(smiles))
    if cfg.max_molecules is not None and cfg.max_molecules < len(smiles):
        rng = np.random.default_rng(cfg.split_seed)
        idx = np.sort(rng.choice(len(smiles), size=cfg.max_molecules, replace=False))
    graphs, kept, parts, invalid, missing = [], [], [], 0, 0
    with Progress(f"featurize {cfg.name}", len(idx), unit="molecules") as progress:
        for i in idx:
            progress.advance(1)
            if np.isnan(np.asarray(y[i], dtype=np.float64)).all():  # no label at all: nothing to learn from
                mol = Chem.MolFromSmiles(smiles[i]) if smiles[i] else None
                if mol is None or mol.GetNumAtoms() == 0:  # nor a molecule: counted as unparsable
                    invalid += 1
                else:
                    missing += 1
                continue
            d = smiles_to_data(smiles[i], y[i])
            if d is None:
                invalid += 1
                continue
            d.smiles = smiles[i]
            graphs.append(d)
            kept.append(smiles[i])
            parts.append(given_split[i] if given_split is not None else None)
    if len(graphs) < 20:
        raise ValueError(f"dataset '{cfg.name}': only {len(graphs)} valid molecules in {where}")
    if given_split is None and mode == "random":
        tr, va, te = random_split(len(kept), cfg.split_fractions or (0.8, 0.1, 0.1), cfg.split_seed)
    elif given_split is None:
        tr, va, te = scaffold_split(kept, cfg.split_fractions or (0.8, 0.1, 0.1), cfg.split_seed)
    else:
        tr = [i for i, p in enumerate(parts) if p == "train"]
        va = [i for i, p in enumerate(parts) if p == "valid"]
        te = [i for i, p in enumerate(parts) if p == "test"]
        if not va:  # carve validation from train by scaffold
            frac = (cfg.split_fractions or (0.9, 0.1, 0.0))[1]
            a, b, c = scaffold_split([kept[i] for i in tr], (1 - frac, frac, 0.0), cfg.split_seed)
            tr, va = sorted([tr[i] for i in a + c]), [tr[i] for i in b]
    train = [graphs[i] for i in tr]
    mean, std = label_stats(train, task)
    return {
        "train": train,
        "valid": [graphs[i] for i in va],
        "test": [graphs[i] for i in te],
        "y_mean": mean,
        "y_std": std,
        "num_invalid": invalid,
        "num_missing_label": missing,
    }
