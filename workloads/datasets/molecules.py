"""Loading a molecular dataset: build it once (featurize, split), then load from the cache."""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch_geometric.data import Data

from workloads.datasets.entry import BaseDatasetConfig
from workloads.datasets.featurize import FEATURIZER_VERSION, with_authors_conformer_distances, with_conformer_distances
from workloads.datasets.contract import MoleculeDataSource
from workloads.datasets.sources import source_of
from workloads.util import LOAD_COUNTS, atomic_torch_save, stable_hash

log = logging.getLogger(__name__)

__all__ = ["GraphSplits", "load_dataset"]


@dataclass
class GraphSplits:
    source: MoleculeDataSource  # the entry's source (its name, task and metric)
    train: list[Data]
    valid: list[Data]
    test: list[Data]
    y_mean: float  # training-label statistics (used to standardise regression targets)
    y_std: float
    num_invalid: int
    num_missing_label: int = 0  # molecules skipped for having no label at all
    coordinates: str = "2d"  # what ``dist`` holds: 2D depiction or 3D conformer distances
    conformer_fallback_2d: int = 0  # with 3D: molecules that failed to embed and kept 2D distances
    dist_from_hops: int = 0  # OGB sets without SMILES: molecules whose distances are scaled hop counts
    mat_conformer_seed: int | None = None  # with the MAT authors' conformers (``mat_dist``): their seed
    mat_conformer_fallback_2d: int = 0  # ... and how many molecules kept their 2D ``dist`` instead

    @property
    def task(self) -> str:
        return self.source.task

    @property
    def num_tasks(self) -> int:
        return int(self.train[0].y.shape[-1])

    def summary(self) -> dict:
        return {
            "name": self.source.name,
            "task": self.source.task,
            "metric": self.source.metric,
            "num_train": len(self.train),
            "num_valid": len(self.valid),
            "num_test": len(self.test),
            "num_invalid_smiles": self.num_invalid,
            "num_missing_label": self.num_missing_label,
            "num_tasks": self.num_tasks,
            "coordinates": self.coordinates,
            **({"conformer_fallback_2d": self.conformer_fallback_2d} if self.coordinates == "3d" else {}),
            **({"dist_from_hops": self.dist_from_hops} if self.dist_from_hops else {}),
            **({"mat_conformer_seed": self.mat_conformer_seed,
                "mat_conformer_fallback_2d": self.mat_conformer_fallback_2d}
               if self.mat_conformer_seed is not None else {}),
        }


def _cache_path(cfg: BaseDatasetConfig, source: MoleculeDataSource, cache_dir: Path) -> Path:
    key = stable_hash({"cfg": cfg.model_dump(), "data": source.fingerprint(cfg), "feat": FEATURIZER_VERSION})
    return Path(cache_dir) / "datasets" / f"{cfg.name}-{key}.pt"


# Datasets this process has loaded, by cache file: a long-lived worker reads each once.
# Trials never modify the graphs (batches are collated copies), so sharing them is safe.
_LOADED: dict[str, GraphSplits] = {}


def load_dataset(cfg: BaseDatasetConfig, cache_dir: Path, coordinates: str = "2d",
                 path_hops: int = 0, mat_conformer_seed: int | None = None) -> GraphSplits:
    """Build on first use, then load from the cache (keyed by config, data content,
    featurizer); within one process, from memory after the first load. With
    ``coordinates="3d"`` the splits' ``dist`` holds conformer distances (cached apart).
    With ``path_hops`` L > 0 each graph also carries ``path_edges`` [n*n, L], the bonds of
    HF Graphormer's multi-hop paths (cached apart, computed once per molecule). With
    ``mat_conformer_seed`` each graph also carries ``mat_dist`` [n*n], the distances of the
    MAT authors' conformer under that seed (cached apart, computed once per molecule)."""
    if path_hops and mat_conformer_seed is not None:
        raise ValueError("one dataset view at a time: path_hops or mat_conformer_seed")
    if path_hops:
        return _with_paths(cfg, cache_dir, coordinates, path_hops)
    if mat_conformer_seed is not None:
        return _with_mat_conformers(cfg, cache_dir, coordinates, mat_conformer_seed)
    source = source_of(cfg)
    path = _cache_path(cfg, source, cache_dir)
    if coordinates == "3d":
        path = path.with_name(path.stem + "-3d.pt")
    elif coordinates != "2d":
        raise ValueError(f"coordinates must be '2d' or '3d', got {coordinates!r}")
    key = str(path.resolve())
    if key in _LOADED:
        LOAD_COUNTS["dataset_reuses"] += 1
        return _LOADED[key]
    if path.exists():
        blob = torch.load(path, weights_only=False)
        LOAD_COUNTS["dataset_reads"] += 1
    elif coordinates == "3d":
        blob = _with_3d(load_dataset(cfg, cache_dir))
        atomic_torch_save(path, blob)
        log.info("embedded 3D conformers for %s -> %s", cfg.name, path)
    else:
        blob = source.build(cfg)
        atomic_torch_save(path, blob)
        LOAD_COUNTS["dataset_builds"] += 1
        log.info("featurized %s -> %s", cfg.name, path)
    _LOADED[key] = GraphSplits(source=source, **blob)
    return _LOADED[key]


def _with_3d(flat: GraphSplits) -> dict:
    blob = {k: getattr(flat, k) for k in ("y_mean", "y_std", "num_invalid", "num_missing_label", "dist_from_hops")}
    fallback = 0
    for split in ("train", "valid", "test"):
        blob[split], n = with_conformer_distances(getattr(flat, split))
        fallback += n
    return blob | {"coordinates": "3d", "conformer_fallback_2d": fallback}


_KEPT = ("y_mean", "y_std", "num_invalid", "num_missing_label", "coordinates", "conformer_fallback_2d",
         "dist_from_hops")


def _view(cfg: BaseDatasetConfig, cache_dir: Path, coordinates: str, suffix: str, build) -> GraphSplits:
    """A derived view of ``load_dataset(cfg, cache_dir, coordinates)``: ``build(base)`` returns
    the new splits' blob (``train``/``valid``/``test`` and any summary fields), cached beside the
    base as ``<base>-<suffix>.pt`` and kept in memory like it."""
    base = load_dataset(cfg, cache_dir, coordinates)
    path = _cache_path(cfg, base.source, cache_dir)
    path = path.with_name(path.stem + ("-3d" if coordinates == "3d" else "") + f"-{suffix}.pt")
    key = str(path.resolve())
    if key in _LOADED:
        LOAD_COUNTS["dataset_reuses"] += 1
        return _LOADED[key]
    if path.exists():
        blob = torch.load(path, weights_only=False)
        LOAD_COUNTS["dataset_reads"] += 1
    else:
        blob = {k: getattr(base, k) for k in _KEPT} | build(base)
        atomic_torch_save(path, blob)
        log.info("%s view of %s -> %s", suffix, cfg.name, path)
    _LOADED[key] = GraphSplits(source=base.source, **blob)
    return _LOADED[key]


def _with_paths(cfg: BaseDatasetConfig, cache_dir: Path, coordinates: str, hops: int) -> GraphSplits:
    """The splits of ``load_dataset(cfg, cache_dir, coordinates)`` with ``path_edges`` added."""
    from workloads.backbones.hf_graphormer import path_edges
    from workloads.progress import Progress

    def build(base: GraphSplits) -> dict:
        out: dict = {}
        total = len(base.train) + len(base.valid) + len(base.test)
        with Progress(f"multi-hop paths {cfg.name}", total, unit="molecules") as progress:
            for split in ("train", "valid", "test"):
                out[split] = []
                for g in getattr(base, split):
                    progress.advance(1)
                    c = copy.copy(g)  # shallow: the other attributes stay shared
                    c.path_edges = torch.from_numpy(path_edges(g.edge_index.numpy(), g.num_nodes, hops))
                    out[split].append(c)
        return out

    return _view(cfg, cache_dir, coordinates, f"paths{hops}", build)


def _with_mat_conformers(cfg: BaseDatasetConfig, cache_dir: Path, coordinates: str, seed: int) -> GraphSplits:
    """The splits of ``load_dataset(cfg, cache_dir, coordinates)`` with ``mat_dist`` added
    (:func:`~workloads.datasets.featurize.with_authors_conformer_distances`)."""

    def build(base: GraphSplits) -> dict:
        done, fallback = with_authors_conformer_distances(base.train + base.valid + base.test, seed)
        a, b = len(base.train), len(base.train) + len(base.valid)
        return {"train": done[:a], "valid": done[a:b], "test": done[b:],
                "mat_conformer_seed": seed, "mat_conformer_fallback_2d": fallback}

    return _view(cfg, cache_dir, coordinates, f"matconf{seed}", build)
