from __future__ import annotations

import pytest
import torch
from torch_geometric.loader import DataLoader

from workloads.backbones import GraphModel
from workloads.config import BackboneConfig, PretrainConfig
from workloads.datasets import DatasetConfig, load_dataset

TINY_ARCH = {"hidden_dim": 32, "num_layers": 2, "num_heads": 4, "ffn_dim": 64}
TINY_PRETRAIN = {"max_molecules": 300, "epochs": 3, "batch_size": 32, "lr": 0.002}


def tiny_spec(tmp_path, cache_dir, methods: dict, **over) -> dict:
    """A sweep spec on a FreeSolv slice with the tiny backbone; keys in ``over`` replace defaults."""
    d = {
        "name": "tiny",
        "datasets": [{"name": "freesolv", "max_molecules": 120}],
        "backbones": [{"name": "graphormer", "params": TINY_ARCH, "pretrain": TINY_PRETRAIN}],
        "train": {"epochs": 2, "batch_size": 32},
        "profile": {"latency_batch_size": 8, "latency_warmup": 1, "latency_repeats": 3},
        "methods": methods,
        "storage": {"root": str(tmp_path / "runs"), "cache_dir": str(cache_dir)},
    }
    d.update(over)
    return d


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def freesolv(cache_dir):
    return load_dataset(DatasetConfig(name="freesolv", max_molecules=200), cache_dir)


@pytest.fixture(scope="session")
def b3db_small(cache_dir):
    return load_dataset(DatasetConfig(name="b3db", max_molecules=400), cache_dir)


@pytest.fixture
def batch(freesolv):
    return next(iter(DataLoader(freesolv.train, batch_size=16)))


@pytest.fixture
def tiny_backbone_cfg():
    return BackboneConfig(name="graphormer", params=TINY_ARCH, pretrain=PretrainConfig(**TINY_PRETRAIN))


def tiny_model(seed: int = 0, backbone: str = "graphormer") -> GraphModel:
    from workloads.backbones import BACKBONES

    torch.manual_seed(seed)
    spec = BACKBONES.get(backbone)
    return GraphModel(spec.build(spec.config_cls(**TINY_ARCH)), out_dim=1)
