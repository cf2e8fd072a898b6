"""A Molecule-Attention-Transformer-style graph transformer for molecules.

Maziarka et al., "Molecule Attention Transformer" (2020), https://arxiv.org/abs/2002.08264.
Each head's attention mixes three row-stochastic matrices,

.. math::
    \\mathcal{A} = \\lambda_a\\, \\mathrm{softmax}\\Big(\\frac{QK^\\top}{\\sqrt{d}}\\Big)
                 + \\lambda_d\\, g(D) + \\lambda_g\\, \\tilde A, \\qquad \\mathrm{out} = \\mathcal{A} V,

where :math:`D` holds the inter-atomic distances, :math:`g(D) = \\mathrm{softmax}(-D)`
row-wise over the molecule's atoms, and :math:`\\tilde A` is the row-normalised
adjacency with self-loops (as the authors' code normalises it); :math:`\\lambda_a =
\\lambda_d = 0.33`, :math:`\\lambda_g = 0.34` by default, as in the paper.

Deviations, said plainly:

* Distances come from RDKit's 2D depiction coordinates by default (the featurizer's
  ``dist``): every molecule gets them deterministically and fast. ``coordinates: 3d``
  uses one ETKDGv3 conformer per molecule instead (fixed seed, no MMFF refinement: the
  paper minimises with UFF); molecules that fail to embed keep their 2D distances, and
  the dataset summary in each trial record counts them (``conformer_fallback_2d``).
  Pretraining uses the same coordinates as fine-tuning.
* Node inputs are OGB's atom encoding plus a degree encoding (the paper one-hot
  encodes similar atom features), so models pretrained here share the molecular
  featurization with the Graphormer backbone.
* The paper's dummy node is the graph token here: it has no bonds and no distance
  to the atoms, so only the attention term reaches it, and the head reads it (the
  paper mean-pools the atoms).
* Everything else around attention is the Graphormer module's own (pre-LayerNorm
  layers, extra-token slots, input prompts, adapter sites, the structure context),
  so every method and plug-in applies unchanged.

The authors' own computation, for their published weights, is the variant
:class:`workloads.backbones.mat_authors.MATAuthors` (checkpoint format ``mat_authors``).
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from workloads.backbones.graphormer import Graphormer, GraphormerLayer, GraphTransformerConfig, pair_index


class MATConfig(GraphTransformerConfig):
    lambda_attention: float = Field(default=0.33, ge=0, description="weight of self-attention")
    lambda_distance: float = Field(default=0.33, ge=0, description="weight of the distance kernel softmax(-D)")
    lambda_adjacency: float = Field(default=0.34, ge=0, description="weight of the normalised adjacency")
    distance_kernel: Literal["softmax", "exp"] = Field(
        default="softmax", description="g(D): softmax(-D) over the atoms (the paper's), or exp(-D) unnormalised")
    coordinates: Literal["2d", "3d"] = Field(
        default="2d", description="distances from RDKit's 2D depiction, or from one ETKDG 3D conformer per molecule")

    @model_validator(mode="after")
    def _lambdas(self):
        if self.lambda_attention + self.lambda_distance + self.lambda_adjacency <= 0:
            raise ValueError("the three lambdas must not all be zero")
        return self


class MoleculeAttention(nn.Module):
    """Multi-head attention mixed with structure; the structure terms come from the
    backbone's context holder (set once per forward), so the layer signature is the
    Graphormer layer's."""

    def __init__(self, cfg: MATConfig, holder) -> None:
        super().__init__()
        d = cfg.hidden_dim
        self.heads, self.cfg, self.holder = cfg.num_heads, cfg, holder
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.drop = nn.Dropout(cfg.attn_dropout)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        """x: [B, T, D]; bias: [B, H, T, T] additive mask (−inf: keys nobody may read)."""
        b, t, d = x.shape
        split = lambda z: z.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        scores = q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5 + bias
        attn = torch.nan_to_num(scores.softmax(-1))  # a fully masked row (padding) gives zeros
        dist, adj = self.holder.mat
        c = self.cfg
        mixed = c.lambda_attention * attn + c.lambda_distance * dist + c.lambda_adjacency * adj
        out = self.drop(mixed) @ v
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class MAT(Graphormer):
    """Molecule Attention Transformer encoder (see the module docstring).

    Args:
        cfg: :class:`MATConfig` (defaults: hidden 64, 4 layers, 4 heads, λ = 0.33/0.33/0.34).

    Shapes: as :class:`Graphormer`, reading ``dist`` [sum n_g^2] (2D depiction distances)
    instead of ``spd``. Fulfils :class:`workloads.backbones.base.GraphBackbone`.
    """

    featurization = ("dist",)

    def _init_structure(self, cfg: MATConfig) -> None:
        self.context_holder.mat = None  # (distance kernel, adjacency) of the current forward

    def _make_layers(self, cfg: MATConfig) -> nn.ModuleList:
        return nn.ModuleList(GraphormerLayer(cfg, lambda: MoleculeAttention(cfg, self.context_holder))
                             for _ in range(cfg.num_layers))

    def attention_bias(self, batch, n_max: int, num_slots: int = 0) -> Tensor:
        """Zero additive bias (masks are added by the caller); sets this forward's
        distance kernel and normalised adjacency, [B, 1, T, T] each, on the holder."""
        ptr, sizes = batch.ptr, batch.ptr[1:] - batch.ptr[:-1]
        b, k = sizes.numel(), 1 + num_slots
        t = n_max + k
        gid, i, j = pair_index(sizes)
        dist = torch.full((b, t, t), float("inf"), device=sizes.device)
        dist[gid, k + i, k + j] = batch.dist.to(dist.dtype)
        if self.cfg.distance_kernel == "softmax":
            kernel = torch.nan_to_num(torch.softmax(-dist, dim=-1))  # rows without atoms: zeros
        else:
            kernel = torch.exp(-dist)
        adj = torch.zeros(b, t, t, device=sizes.device)
        if batch.edge_index.numel():
            src, dst = batch.edge_index
            g = batch.batch[src]
            adj[g, k + src - ptr[g], k + dst - ptr[g]] = 1.0
        atoms = torch.zeros(b, t, dtype=torch.bool, device=sizes.device)
        atoms[:, k:] = torch.arange(n_max, device=sizes.device).unsqueeze(0) < sizes.unsqueeze(1)
        adj = adj + torch.diag_embed(atoms.to(adj.dtype))  # self-loops on real atoms
        adj = adj / (adj.sum(-1, keepdim=True) + 1e-6)
        self.context_holder.mat = (kernel.unsqueeze(1), adj.unsqueeze(1))
        return torch.zeros(b, self.cfg.num_heads, t, t, device=sizes.device)
