"""Molecular property datasets: featurized with OGB's smiles2graph, split by scaffold, cached."""
from workloads.datasets.config import DatasetConfig
from workloads.datasets.molecules import GraphSplits, load_dataset
from workloads.datasets.sources import SOURCES, MoleculeSource

__all__ = ["DatasetConfig", "GraphSplits", "load_dataset", "SOURCES", "MoleculeSource"]
