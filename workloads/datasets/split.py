"""Scaffold split with a fixed seed (balanced scaffold split, as in chemprop).

Molecules are grouped by Bemis–Murcko scaffold so that no scaffold appears in
two splits. Scaffold sets too large to fit in validation or test go to train
first; the remaining sets are shuffled with the seed and filled greedily.
RDKit gives the scaffolds; the grouping is written here because neither RDKit
nor PyG ships a seeded scaffold splitter.
"""
from __future__ import annotations

import random
from collections import defaultdict

from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold


def scaffold(smiles: str) -> str:
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return smiles
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def scaffold_split(
    smiles: list[str], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[list[int], list[int], list[int]]:
    """Return train/valid/test index lists; the same inputs and seed give the same split."""
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(smiles):
        groups[scaffold(s)].append(i)
    n = len(smiles)
    n_train, n_valid = int(fractions[0] * n), int(fractions[1] * n)
    n_test = n - n_train - n_valid
    sets = sorted(groups.values(), key=lambda g: (len(g), g[0]))
    big = [g for g in sets if len(g) > n_valid / 2 or len(g) > n_test / 2]
    small = [g for g in sets if not (len(g) > n_valid / 2 or len(g) > n_test / 2)]
    rng = random.Random(seed)
    rng.shuffle(big)
    rng.shuffle(small)
    train: list[int] = []
    valid: list[int] = []
    test: list[int] = []
    for g in big + small:
        if len(train) + len(g) <= n_train:
            train += g
        elif len(valid) + len(g) <= n_valid:
            valid += g
        else:
            test += g
    return sorted(train), sorted(valid), sorted(test)
