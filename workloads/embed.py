"""Graph representations of a user's molecules from any graph backbone of a spec: what
``orchestrator embed`` writes, for the user's own tools, and the way to check a loaded
checkpoint by hand."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch_geometric.loader import DataLoader

from workloads.backbones import BACKBONES
from workloads.backbones.base import coordinates_of
from workloads.checkpoints import load_checkpoint
from workloads.config import BackboneConfig
from workloads.datasets.featurize import smiles_to_data, with_authors_conformer_distances, with_conformer_distances


class EmbedError(ValueError):
    """Input that cannot be embedded, with where (one line)."""


def read_smiles(path: Path) -> list[str]:
    """The SMILES of ``path``, one per line (the first whitespace-separated field; blank lines
    are errors too, so that row i of the output is line i of the file)."""
    path = Path(path)
    if not path.is_file():
        raise EmbedError(f"{path}: no such SMILES file")
    lines = path.read_text().splitlines()
    if not lines:
        raise EmbedError(f"{path}: no SMILES in the file")
    return [ln.split()[0] if ln.split() else "" for ln in lines]


def featurize(smiles: list[str], arch, where: str = "<smiles>") -> list:
    """Each SMILES as the backbone's featurized graph; EmbedError naming the first line
    RDKit cannot parse, before anything is computed."""
    graphs = []
    for i, s in enumerate(smiles, start=1):
        g = smiles_to_data(s) if s else None
        if g is None:
            raise EmbedError(f"{where}: line {i}: RDKit cannot parse SMILES {s!r}" if s else
                             f"{where}: line {i}: no SMILES on the line")
        g.smiles = s
        graphs.append(g)
    if coordinates_of(arch) == "3d":
        graphs, _ = with_conformer_distances(graphs)
    seed = getattr(arch, "mat_conformer_seed", None)
    if seed is not None:
        graphs, _ = with_authors_conformer_distances(graphs, seed)
    hops = getattr(arch, "path_hops", 0)
    if hops:
        from workloads.backbones.hf_graphormer import path_edges

        for g in graphs:
            g.path_edges = torch.from_numpy(path_edges(g.edge_index.numpy(), g.num_nodes, hops))
    return graphs


def load_backbone(cfg: BackboneConfig, cache_dir: Path) -> tuple[torch.nn.Module, str]:
    """The backbone with its weights (a checkpoint's, or the project's pretraining, run now if
    it is not cached), in eval mode, and where the weights came from."""
    from workloads.pretrain import ensure_pretrained, load_pretrained

    spec = BACKBONES.get(cfg.name)
    if spec.kind != "graph_transformer":
        raise EmbedError(f"backbone '{cfg.name}' is a {spec.kind}, not a graph backbone")
    backbone = spec.build(cfg.arch())
    if cfg.checkpoint is not None:
        info = load_checkpoint(backbone, cfg.checkpoint)
        source = f"checkpoint {info['checkpoint']} ({info['format']})"
    elif cfg.pretrain is not None:
        path = ensure_pretrained(cfg, cache_dir)
        load_pretrained(backbone, path)
        source = f"pretrained {path}"
    else:
        raise EmbedError(f"backbone '{cfg.name}' has no weights to embed with (pretrain is null and no checkpoint)")
    return backbone.eval(), source


@torch.no_grad()
def embed(backbone: torch.nn.Module, graphs: list, batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """[n, D] float32: each graph's representation (``Encoded.graph``), in order."""
    backbone = backbone.to(device)
    out = [backbone(batch.to(device)).graph.float().cpu() for batch in DataLoader(graphs, batch_size=batch_size)]
    return torch.cat(out).numpy().astype(np.float32)


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
