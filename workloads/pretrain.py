"""Pretraining the graph transformer on unlabeled MOSES molecules.

No pretrained graph-transformer weights can be downloaded, so the project makes
its own: a masked-atom objective (predict the atomic number of masked atoms from
their context, as in Hu et al., "Strategies for Pre-training Graph Neural
Networks", ICLR 2020) plus regression of RDKit descriptors from the graph token.
Checkpoints are cached under a key derived from the backbone architecture, the
pretraining recipe, the featurizer version and the content of the SMILES file,
so a sweep pretrains once and every trial reuses the result.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from rdkit import Chem
from rdkit.Chem import Descriptors
from torch import nn
from torch_geometric.loader import DataLoader

from workloads.backbones import BACKBONES
from workloads.backbones.base import coordinates_of
from workloads.config import BackboneConfig, PretrainConfig
from workloads.datasets.featurize import FEATURIZER_VERSION, smiles_to_data, with_conformer_distances
from workloads.datasets.sources import moses_train_smiles
from runfolder.io import file_lock
from workloads.util import LOAD_COUNTS, atomic_torch_save, atomic_write_json, file_digest, seeded, stable_hash
from workloads.progress import Progress

log = logging.getLogger(__name__)

DESCRIPTORS = (
    "MolWt", "MolLogP", "TPSA", "NumHDonors", "NumHAcceptors",
    "NumRotatableBonds", "RingCount", "NumAromaticRings", "FractionCSP3", "HeavyAtomCount",
)
NUM_ATOM_TYPES = 119  # OGB atom feature 0: atomic number - 1, plus "misc"


class PretrainModel(nn.Module):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        d = backbone.out_dim
        self.atom_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, NUM_ATOM_TYPES))
        self.desc_head = nn.Linear(d, len(DESCRIPTORS))

    def forward(self, batch, node_mask):
        token, nodes, mask, _slots = self.backbone(batch, node_mask=node_mask)
        return self.atom_head(nodes[mask]), self.desc_head(token)


def checkpoint_key(cfg: BackboneConfig, smiles_file: Path) -> str:
    assert cfg.pretrain is not None
    return stable_hash(
        {
            "backbone": cfg.name,
            "arch": cfg.arch().model_dump(),
            "pretrain": cfg.pretrain.model_dump(),
            "featurizer": FEATURIZER_VERSION,
            "descriptors": DESCRIPTORS,
            "smiles": file_digest(smiles_file),
        }
    )


def checkpoint_path(cfg: BackboneConfig, cache_dir: Path) -> Path:
    return Path(cache_dir) / "pretrained" / f"{cfg.name}-{checkpoint_key(cfg, moses_train_smiles())}.pt"


def _featurize(smiles: list[str]) -> list:
    fns = [getattr(Descriptors, n) for n in DESCRIPTORS]
    out = []
    progress = Progress("pretrain: featurize MOSES", len(smiles), unit="molecules")
    for s in smiles:
        progress.advance(1)
        d = smiles_to_data(s)
        if d is None:
            continue
        mol = Chem.MolFromSmiles(s)
        d.desc = torch.tensor([[float(f(mol)) for f in fns]], dtype=torch.float32)
        out.append(d)
    progress.close()
    return out


def ensure_pretrained(cfg: BackboneConfig, cache_dir: Path, progress=None) -> Path | None:
    """Path of the cached checkpoint for ``cfg``, pretraining it first if absent.

    Safe to call from several processes at once: one pretrains, the others wait.
    Returns ``None`` when ``cfg.pretrain`` is null (random initialisation).
    """
    if cfg.pretrain is None:
        return None
    path = checkpoint_path(cfg, cache_dir)
    if path.exists():
        return path
    with file_lock(path.with_suffix(".lock")):
        if not path.exists():
            pretrain(cfg, path, progress=progress)
    return path


def pretrain(cfg: BackboneConfig, out: Path, progress=None) -> dict:
    """Pretrain from ``cfg.pretrain.seed``; the caller's random state is left untouched."""
    assert cfg.pretrain is not None
    with seeded(cfg.pretrain.seed):
        return _pretrain(cfg, out, progress)


def _pretrain(cfg: BackboneConfig, out: Path, progress=None) -> dict:
    pc = cfg.pretrain
    say = progress or (lambda msg: log.info(msg))
    t0 = time.perf_counter()
    smiles_file = moses_train_smiles()
    all_smiles = pd.read_csv(smiles_file)["SMILES"]
    rng = np.random.default_rng(pc.seed)
    pick = rng.choice(len(all_smiles), size=min(pc.max_molecules, len(all_smiles)), replace=False)
    graphs = _featurize(all_smiles.iloc[pick].tolist())
    fallback = None
    if coordinates_of(cfg.arch()) == "3d":  # pretrain on the distances fine-tuning will see
        graphs, fallback = with_conformer_distances(graphs)
    n_val = max(1, len(graphs) // 20)
    train, val = graphs[n_val:], graphs[:n_val]
    desc = torch.cat([g.desc for g in train])
    d_mean, d_std = desc.mean(0), desc.std(0).clamp_min(1e-6)
    say(f"pretrain: featurized {len(graphs)} MOSES molecules in {time.perf_counter() - t0:.1f}s")

    backbone = BACKBONES.get(cfg.name).build(cfg.arch())
    model = PretrainModel(backbone)
    opt = torch.optim.AdamW(model.parameters(), lr=pc.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(pc.seed)
    loader = DataLoader(train, batch_size=pc.batch_size, shuffle=True, generator=gen)
    history = []
    steps = Progress(f"pretrain {cfg.name}", pc.epochs * len(loader), unit="steps")
    for epoch in range(pc.epochs):
        model.train()
        tot = n = 0.0
        for batch in loader:
            node_mask = torch.rand(batch.num_nodes, generator=gen) < pc.mask_rate
            node_mask[0] = True  # at least one target per batch
            atom_logits, desc_pred = model(batch, node_mask)
            atom_loss = F.cross_entropy(atom_logits[node_mask], batch.x[node_mask, 0])
            desc_loss = F.mse_loss(desc_pred, (batch.desc - d_mean) / d_std)
            loss = atom_loss + pc.descriptor_weight * desc_loss
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            tot += loss.item() * batch.num_graphs
            n += batch.num_graphs
            steps.advance(1, note=f"epoch {epoch + 1}/{pc.epochs}")
        metrics = _evaluate(model, val, pc, d_mean, d_std)
        metrics.update(epoch=epoch, train_loss=tot / n)
        history.append(metrics)
        say(
            f"pretrain epoch {epoch}: loss {metrics['train_loss']:.3f}, masked-atom acc "
            f"{metrics['masked_atom_acc']:.3f}, descriptor R2 {metrics['descriptor_r2']:.3f}"
        )
    steps.close()
    info = {
        "backbone": cfg.name,
        "arch": cfg.arch().model_dump(),
        "pretrain": pc.model_dump(),
        "num_molecules": len(graphs),
        **({"conformer_fallback_2d": fallback} if fallback is not None else {}),
        "history": history,
        "seconds": time.perf_counter() - t0,
        "smiles_file": str(smiles_file),
    }
    atomic_torch_save(out, {"backbone": backbone.state_dict(), "info": info})
    atomic_write_json(out.with_suffix(".json"), info)
    say(f"pretrain: saved {out} ({info['seconds']:.0f}s)")
    return info


@torch.no_grad()
def _evaluate(model, graphs, pc: PretrainConfig, d_mean, d_std) -> dict:
    model.eval()
    gen = torch.Generator().manual_seed(pc.seed + 1)
    correct = total = 0
    se = torch.zeros(len(DESCRIPTORS))
    var = torch.zeros(len(DESCRIPTORS))
    for batch in DataLoader(graphs, batch_size=256):
        node_mask = torch.rand(batch.num_nodes, generator=gen) < pc.mask_rate
        node_mask[0] = True
        logits, desc_pred = model(batch, node_mask)
        correct += int((logits[node_mask].argmax(-1) == batch.x[node_mask, 0]).sum())
        total += int(node_mask.sum())
        target = (batch.desc - d_mean) / d_std
        se += ((desc_pred - target) ** 2).sum(0)
        var += ((target - 0.0) ** 2).sum(0)  # target is standardised by training statistics
    return {"masked_atom_acc": correct / total, "descriptor_r2": float((1 - se / var).mean())}


# Checkpoints this process has read, by path: a long-lived worker reads each once.
# load_state_dict copies the tensors into the model, so the kept state is never changed.
_READ: dict[str, dict] = {}


def load_pretrained(backbone: nn.Module, path: Path) -> dict:
    key = str(Path(path).resolve())
    if key in _READ:
        LOAD_COUNTS["checkpoint_reuses"] += 1
    else:
        _READ[key] = torch.load(path, weights_only=False)
        LOAD_COUNTS["checkpoint_reads"] += 1
    blob = _READ[key]
    backbone.load_state_dict(blob["backbone"])
    return blob["info"]


def describe(path: Path) -> str:
    return json.dumps(json.loads(path.with_suffix(".json").read_text()), indent=2)
