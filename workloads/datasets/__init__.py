"""Molecular property datasets: featurized with OGB's smiles2graph, scaffold split, cached."""
from workloads.datasets.molecules import DatasetConfig, GraphSplits, load_dataset
from workloads.datasets.sources import SOURCES, MoleculeSource

__all__ = ["DatasetConfig", "GraphSplits", "load_dataset", "SOURCES", "MoleculeSource"]
