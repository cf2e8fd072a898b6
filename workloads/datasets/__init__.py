"""Dataset sources and their entries: molecular property sets (featurized with OGB's
smiles2graph, split by scaffold, cached) and the registry every source is a row of.

The contract of a source is :mod:`workloads.datasets.contract`; an entry's config
model is chosen as :mod:`workloads.datasets.config` describes. Names are imported on
first use, so a source module may import the entry base (``entry``) without loading
the registry, and nothing here loads torch until it is asked for.
"""
from __future__ import annotations

from importlib import import_module

_WHERE = {
    "BaseDatasetConfig": "entry", "DatasetConfig": "config", "dataset_config": "config",
    "parse_dataset": "config",
    "DataSource": "contract", "MoleculeDataSource": "contract", "TextGraphDataSource": "contract",
    "MoleculeSource": "base", "MoleculeSetConfig": "base",
    "SOURCES": "sources", "register_source": "sources", "source_of": "sources", "family_of": "sources",
    "dataset_problems": "sources", "registered_kinds": "sources",
    "GraphSplits": "molecules", "load_dataset": "molecules",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'workloads.datasets' has no attribute '{name}'")
    return getattr(import_module(f"workloads.datasets.{_WHERE[name]}"), name)
