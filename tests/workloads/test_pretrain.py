import torch

from workloads.backbones import BACKBONES
from workloads.config import BackboneConfig, PretrainConfig
from workloads.pretrain import checkpoint_path, ensure_pretrained, load_pretrained


import pytest


@pytest.mark.parametrize("name", ["graphormer", "mat"])
def test_pretrains_once_and_reuses(cache_dir, tiny_backbone_cfg, name):
    tiny_backbone_cfg = tiny_backbone_cfg.model_copy(update={"name": name})
    path = ensure_pretrained(tiny_backbone_cfg, cache_dir)
    assert path.exists() and path.with_suffix(".json").exists()
    mtime = path.stat().st_mtime_ns
    assert ensure_pretrained(tiny_backbone_cfg, cache_dir) == path
    assert path.stat().st_mtime_ns == mtime  # reused, not retrained

    backbone = BACKBONES.get(name).build(tiny_backbone_cfg.arch())
    fresh = {k: v.clone() for k, v in backbone.state_dict().items()}
    info = load_pretrained(backbone, path)
    assert any(not torch.equal(fresh[k], v) for k, v in backbone.state_dict().items())
    h = info["history"][-1]
    assert info["num_molecules"] >= 290  # ~300 MOSES molecules, unparsable ones skipped
    # 119 atom classes: chance is < 0.01; MOSES is mostly carbon, so a short run learns at least that
    assert h["masked_atom_acc"] > 0.3
    assert info["history"][-1]["train_loss"] < info["history"][0]["train_loss"]
    assert torch.isfinite(torch.tensor(h["train_loss"]))


def test_key_follows_the_config(cache_dir, tiny_backbone_cfg):
    other = tiny_backbone_cfg.model_copy(update={"pretrain": PretrainConfig(max_molecules=301, epochs=3)})
    assert checkpoint_path(other, cache_dir) != checkpoint_path(tiny_backbone_cfg, cache_dir)
    same = BackboneConfig(**tiny_backbone_cfg.model_dump())
    assert checkpoint_path(same, cache_dir) == checkpoint_path(tiny_backbone_cfg, cache_dir)
    mat = tiny_backbone_cfg.model_copy(update={"name": "mat"})
    assert checkpoint_path(mat, cache_dir) != checkpoint_path(tiny_backbone_cfg, cache_dir)


def test_no_pretraining_means_random_init(cache_dir, tiny_backbone_cfg):
    assert ensure_pretrained(tiny_backbone_cfg.model_copy(update={"pretrain": None}), cache_dir) is None
