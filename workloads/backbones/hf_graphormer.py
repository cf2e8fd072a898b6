"""Graphormer as Hugging Face computes it, for the public checkpoints in its format.

Ying et al., "Do Transformers Really Perform Bad for Graph Representation?"
(NeurIPS 2021), https://arxiv.org/abs/2106.05234; the computation is that of
``transformers`` 4.40.2 (``models/graphormer``: ``GraphormerModel`` and its
collator), the last release with the model. transformers 5 removed it, and its
collator compiles Cython at import, so the variant is written here; the
checkpoint format (config and weight names) is :mod:`workloads.checkpoints.hf_graphormer`.

Inputs, from OGB ``smiles2graph`` features (as HF's ``preprocess_item`` encodes them):

* atom :math:`v`: :math:`h_v = \\sum_k E_{atom}[x_{vk} + 512k + 3] + E_{in}[\\deg v + 1] + E_{out}[\\deg v + 1]`
  (offset 512 per feature, shifted past padding row 0);
* the graph token: a learned vector first in the sequence;
* attention bias between atoms :math:`i, j` at hop distance :math:`d_{ij}`:
  :math:`b_{ij} = S[d_{ij} + 1] + c_{ij}`, with :math:`S` learned per head and distance
  (unreachable pairs, as in salts: :math:`d = 510`), and :math:`c_{ij}` the edge encoding:

  - ``multi_hop``: :math:`c_{ij} = \\frac{1}{\\min(\\max(d_{ij}, 1), L)} \\sum_{t < \\min(d_{ij}, L)} \\bar e_{p_t} W_t`,
    over the first :math:`L` = ``multi_hop_max_dist`` bonds :math:`p_t` of the path that
    HF's Floyd–Warshall reconstructs (its tie-breaking reproduced exactly:
    :func:`path_edges`), :math:`\\bar e` the mean of the bond's three feature
    embeddings (index :math:`a_k + 512k + 3`), :math:`W_t` a learned [H, H] per hop;
  - otherwise: :math:`c_{ij} = \\bar e_{ij}` for bonded pairs (index :math:`a_k + 512k + 2`), 0 else;

* the graph token's row and column get its learned "virtual distance" per head;
* pairs with :math:`d_{ij} + 1 \\ge` ``spatial_pos_max`` are masked (−∞), as HF's collator
  does (its default is 20, which masks unreachable pairs too; a checkpoint's own default is
  its config's ``spatial_pos_max``, 1024 in HF's config, which masks nothing).

Layers are pre- or post-LayerNorm as ``pre_layernorm`` says, with a LayerNorm on the
embeddings when ``encoder_normalize_before``. After the last layer every token goes
through ``LayerNorm(act(Linear(x)))`` (HF's ``lm_head_transform_weight`` and
``layer_norm``): the graph representation is HF's ``last_hidden_state[:, 0]``.

Deviations from HF, each with no effect on a forward pass of the checkpoint's weights:

* HF's collator crashes on a batch whose first molecule has one atom (its edge-input
  array then has a zero-length hop axis); here any batch works.
* ``multi_hop_max_dist: 0`` (whole paths, no truncation) is refused: every released
  checkpoint truncates (the PCQM4Mv2 ones at 5), and whole paths of a salt reach 510 hops.
* LayerDrop, quantisation noise and ``embed_scale`` other than none are refused at load
  (the released checkpoints use none of them).
* The checkpoint's classification head is not used: each task adds its own.

Method sites are those of :class:`~workloads.backbones.graphormer.Graphormer`: the
same module names (``layers[i].attn.q_proj``, ``ffn.fc1``, ``ln1``...), token slots after
the graph token (GIST, prompt tokens), the input prompt after the atom embedding (GPF).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn
from torch_geometric.utils import degree

from workloads.backbones.graphormer import Graphormer, GraphormerLayer, GraphTransformerConfig, pair_index

FEATURE_OFFSET = 512  # HF's convert_to_single_emb: feature k's indices start at 1 + 512k
UNREACHABLE = 510  # HF's algos_graphormer: the distance of a pair with no path

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
               "silu": F.silu, "swish": F.silu}


class HFGraphormerConfig(GraphTransformerConfig):
    """The architecture of an HF ``GraphormerConfig`` (mapped by
    :func:`workloads.checkpoints.hf_graphormer.read_config`); field names follow the
    project's, HF's name in each description."""

    num_atoms: int = Field(default=512 * 9, ge=1, le=10_000_000, description="HF num_atoms: atom-feature vocabulary")
    num_edges: int = Field(default=512 * 3, ge=1, le=10_000_000, description="HF num_edges: bond-feature vocabulary")
    num_in_degree: int = Field(default=512, ge=2, le=1_000_000, description="HF num_in_degree")
    num_out_degree: int = Field(default=512, ge=2, le=1_000_000, description="HF num_out_degree")
    num_spatial: int = Field(default=512, ge=UNREACHABLE + 2, le=1_000_000, description="HF num_spatial")
    num_edge_dis: int = Field(default=128, ge=1, le=1_000_000, description="HF num_edge_dis")
    edge_type: str = Field(default="multi_hop", description="HF edge_type: multi_hop, or anything else for bonds only")
    multi_hop_max_dist: int = Field(default=5, ge=1, le=1024, description="HF multi_hop_max_dist: hops encoded")
    spatial_pos_max: int = Field(default=20, ge=1, le=1_000_000, description="collator's spatial_pos_max: pairs with "
                                 "distance + 1 at or above it are masked")
    pre_layernorm: bool = Field(default=False, description="HF pre_layernorm")
    encoder_normalize_before: bool = Field(default=False, description="HF encoder_normalize_before")
    activation_fn: Literal["gelu", "relu", "gelu_new", "silu", "swish"] = Field(default="gelu",
                                                                               description="HF activation_fn")
    activation_dropout: float = Field(default=0.1, ge=0, lt=1, description="HF activation_dropout")

    @model_validator(mode="after")
    def _fits(self):
        if self.num_edge_dis < self.multi_hop_max_dist and self.multi_hop:
            raise ValueError(f"num_edge_dis {self.num_edge_dis} is below multi_hop_max_dist {self.multi_hop_max_dist}")
        return self

    @property
    def multi_hop(self) -> bool:
        return self.edge_type == "multi_hop"

    @property
    def path_hops(self) -> int:
        """Bonds per path the featurized graphs must carry (``path_edges``); 0: none."""
        return self.multi_hop_max_dist if self.multi_hop else 0


class HFGraphormerLayer(GraphormerLayer):
    """HF's ``GraphormerGraphEncoderLayer``: pre- or post-LayerNorm (``ln1`` is HF's
    ``self_attn_layer_norm``, ``ln2`` its ``final_layer_norm``)."""

    def __init__(self, cfg: HFGraphormerConfig) -> None:
        super().__init__(cfg)
        self.pre = cfg.pre_layernorm
        self.ffn.act = ACTIVATIONS[cfg.activation_fn]
        self.ffn.dropout = nn.Dropout(cfg.activation_dropout)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        if self.pre:
            return super().forward(x, bias)
        x = self.ln1(x + self.dropout(self.attn(x, bias)))
        return self.ln2(x + self.dropout(self.ffn(x)))


class HFGraphormer(Graphormer):
    """Graphormer with Hugging Face's input encoding, layer order and output transform.

    Args:
        cfg: :class:`HFGraphormerConfig` (from a checkpoint's ``config.json``).

    Shapes: as :class:`~workloads.backbones.graphormer.Graphormer`, with ``path_edges``
    [sum n_g^2, L] (int) on the batch when ``edge_type`` is ``multi_hop``
    (:func:`path_edges`). ``Encoded.graph`` is HF's ``last_hidden_state[:, 0]``.
    """

    def __init__(self, cfg: HFGraphormerConfig) -> None:
        super().__init__(cfg)
        # what this instance's attention reads from each featurized molecule
        self.featurization = ("spd", "path_edges") if cfg.multi_hop else ("spd",)
        self.act = ACTIVATIONS[cfg.activation_fn]

    def _init_inputs(self, cfg: HFGraphormerConfig) -> None:
        d = cfg.hidden_dim
        self.atom_encoder = nn.Embedding(cfg.num_atoms + 1, d, padding_idx=0)
        self.in_degree_encoder = nn.Embedding(cfg.num_in_degree, d, padding_idx=0)
        self.out_degree_encoder = nn.Embedding(cfg.num_out_degree, d, padding_idx=0)
        self.emb_ln = nn.LayerNorm(d) if cfg.encoder_normalize_before else None
        self.emb_dropout = nn.Dropout(cfg.dropout)
        self.head_transform = nn.Linear(d, d)  # HF lm_head_transform_weight; final_ln is HF layer_norm

    def _init_structure(self, cfg: HFGraphormerConfig) -> None:
        h = cfg.num_heads
        self.spatial_bias = nn.Embedding(cfg.num_spatial, h, padding_idx=0)
        self.token_bias = nn.Parameter(torch.zeros(h))  # HF graph_token_virtual_distance
        self.edge_encoder = nn.Embedding(cfg.num_edges + 1, h, padding_idx=0)
        if cfg.multi_hop:
            self.edge_dis = nn.Parameter(torch.zeros(cfg.num_edge_dis, h, h))  # HF edge_dis_encoder, reshaped
            nn.init.normal_(self.edge_dis, std=0.02)

    def _make_layers(self, cfg: HFGraphormerConfig) -> nn.ModuleList:
        return nn.ModuleList(HFGraphormerLayer(cfg) for _ in range(cfg.num_layers))

    def encode_atoms(self, batch) -> Tensor:
        offsets = torch.arange(batch.x.shape[1], device=batch.x.device) * FEATURE_OFFSET + 3
        return self.atom_encoder(batch.x + offsets).sum(1)

    def encode_degree(self, batch) -> Tensor:
        deg = degree(batch.edge_index[0], batch.num_nodes, dtype=torch.long) + 1
        return self.in_degree_encoder(deg) + self.out_degree_encoder(deg)

    def embed_sequence(self, x: Tensor) -> Tensor:
        return self.emb_dropout(self.emb_ln(x) if self.emb_ln is not None else x)

    def finish(self, x: Tensor) -> Tensor:
        return self.final_ln(self.act(self.head_transform(x)))

    def attention_bias(self, batch, n_max: int, num_slots: int = 0) -> Tensor:
        """[B, H, 1 + P + n_max, 1 + P + n_max]: graph token, P slot tokens, then atoms."""
        cfg = self.cfg
        sizes = batch.ptr[1:] - batch.ptr[:-1]
        b, h = sizes.numel(), cfg.num_heads
        gid, i, j = pair_index(sizes)
        spd = batch.spd.long()
        reach = spd >= 0
        pos = torch.where(reach, spd + 1, torch.full_like(spd, UNREACHABLE + 1))  # HF spatial_pos
        pair_bias = self.spatial_bias(pos)  # [P, H]
        pair_bias = pair_bias + (self._multi_hop(batch, spd) if cfg.multi_hop else self._bonds(batch, gid, i, j))
        k = 1 + num_slots
        full = pair_bias.new_zeros(b, n_max + k, n_max + k, h)
        full[gid, k + i, k + j] = pair_bias.masked_fill((pos >= cfg.spatial_pos_max).unsqueeze(-1), float("-inf"))
        full = full.permute(0, 3, 1, 2)
        tb = self.token_bias.view(1, -1, 1)
        full[:, :, 0, :] = full[:, :, 0, :] + tb
        full[:, :, 1:, 0] = full[:, :, 1:, 0] + tb
        return full

    def _edge_embedding(self, batch, shift: int) -> Tensor:
        """[E, H]: the mean of each bond's feature embeddings (HF ``edge_encoder(...).mean(-2)``)."""
        a = batch.edge_attr
        offsets = torch.arange(a.shape[1], device=a.device) * FEATURE_OFFSET + shift
        return self.edge_encoder(a + offsets).mean(1)

    def _bonds(self, batch, gid: Tensor, i: Tensor, j: Tensor) -> Tensor:
        """[P, H]: each bonded pair's bond encoding, 0 elsewhere (HF's non-multi-hop branch)."""
        out = self.spatial_bias.weight.new_zeros(gid.numel(), self.cfg.num_heads)
        if batch.edge_index.numel():
            src, dst = batch.edge_index
            g = batch.batch[src]
            ptr, sizes = batch.ptr, batch.ptr[1:] - batch.ptr[:-1]
            offs = torch.cumsum(sizes * sizes, 0) - sizes * sizes
            flat = offs[g] + (src - ptr[g]) * sizes[g] + (dst - ptr[g])
            out = out.index_put((flat,), self._edge_embedding(batch, 2))
        return out

    def _multi_hop(self, batch, spd: Tensor) -> Tensor:
        """[P, H]: HF's multi-hop edge encoding of every pair, from ``batch.path_edges``."""
        hops = self.cfg.multi_hop_max_dist
        paths = batch.path_edges.long()  # [P, L], local bond ids, -1 past the path
        if paths.shape[1] != hops:
            raise ValueError(f"the graphs carry paths of {paths.shape[1]} bonds, the model reads {hops}")
        if not batch.edge_index.numel():
            return self.spatial_bias.weight.new_zeros(paths.shape[0], self.cfg.num_heads)
        # each pair's bond ids are local to its molecule: offset them by the molecule's first bond
        sizes = batch.ptr[1:] - batch.ptr[:-1]
        bonds = torch.bincount(batch.batch[batch.edge_index[0]], minlength=sizes.numel())
        first = torch.cumsum(bonds, 0) - bonds
        gid = torch.repeat_interleave(torch.arange(sizes.numel(), device=sizes.device), sizes * sizes)
        valid = paths >= 0
        ids = torch.where(valid, paths + first[gid].unsqueeze(1), 0)
        per_hop = torch.einsum("eh,thk->etk", self._edge_embedding(batch, 3), self.edge_dis[:hops])  # [E, L, H]
        hop = torch.arange(hops, device=ids.device).expand_as(ids)
        c = (per_hop[ids, hop] * valid.unsqueeze(-1)).sum(1)  # [P, H]
        div = torch.where(spd >= 0, spd.clamp(min=1), torch.full_like(spd, UNREACHABLE)).clamp(max=hops)
        return c / div.unsqueeze(-1).to(c.dtype)


def floyd_warshall(edge_index: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """HF's ``algos_graphormer.floyd_warshall``, vectorised over (i, j): hop distances
    (``UNREACHABLE`` where no path) and the intermediate node of each pair (-1: bonded
    or same; ``UNREACHABLE``: no path). Strict improvements in k order, as HF's loop
    (within one k, row and column k cannot change, so the vectorised sweep is HF's)."""
    adj = np.zeros((n, n), dtype=bool)
    adj[edge_index[0], edge_index[1]] = True
    dist = np.where(adj, 1, UNREACHABLE).astype(np.int64)
    np.fill_diagonal(dist, 0)
    mid = np.full((n, n), -1, dtype=np.int64)
    for k in range(n):
        cand = dist[:, k:k + 1] + dist[k:k + 1, :]
        better = cand < dist
        dist = np.where(better, cand, dist)
        mid = np.where(better, k, mid)
    far = dist >= UNREACHABLE
    dist[far], mid[far] = UNREACHABLE, UNREACHABLE
    return dist, mid


def path_edges(edge_index: np.ndarray, n: int, hops: int) -> np.ndarray:
    """[n*n, hops] int16: for each pair (i, j), row-major, the ids (columns of
    ``edge_index``) of the first ``hops`` bonds on HF's path from i to j, -1 beyond the
    path, on the diagonal and for unreachable pairs.

    HF's path is ``[i] + get_all_edges(i, j) + [j]``, the recursive in-order walk of
    :func:`floyd_warshall`'s intermediate nodes. Here every (pair, position) is resolved
    at once: position p of the walk from a to b is a (p = 0), b (p = d(a, b)), else with
    k = mid(a, b) it lies in a→k (p < d(a, k)), is k, or lies in k→b at p − d(a, k).
    Each step strictly shortens d(a, b), so at most ``hops`` vectorised steps run.
    """
    out = np.full((n * n, hops), -1, dtype=np.int16)
    if n < 2 or edge_index.shape[1] == 0:
        return out
    if edge_index.shape[1] > np.iinfo(np.int16).max:
        raise ValueError(f"a molecule with {edge_index.shape[1]} bonds exceeds the int16 path encoding")
    dist, mid = floyd_warshall(edge_index, n)
    eid = np.full((n, n), -1, dtype=np.int64)
    eid[edge_index[0], edge_index[1]] = np.arange(edge_index.shape[1])
    ii, jj = np.divmod(np.arange(n * n), n)
    d = dist[ii, jj]
    keep = (ii != jj) & (d < UNREACHABLE)
    ii, jj, d, rows = ii[keep], jj[keep], d[keep], np.flatnonzero(keep)
    last = np.minimum(d, hops)  # nodes 0..last of each walk are needed
    reps = last + 1
    row = np.repeat(np.arange(ii.size), reps)
    p = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
    a, b, pp = ii[row].copy(), jj[row].copy(), p.copy()
    node = np.full(row.size, -1, dtype=np.int64)
    todo = np.arange(row.size)
    while todo.size:
        a_, b_, p_ = a[todo], b[todo], pp[todo]
        dab = dist[a_, b_]
        at_a, at_b = p_ == 0, p_ == dab
        node[todo[at_a]] = a_[at_a]
        node[todo[at_b & ~at_a]] = b_[at_b & ~at_a]
        inner = ~(at_a | at_b)
        t, a_, b_, p_ = todo[inner], a_[inner], b_[inner], p_[inner]
        k = mid[a_, b_]
        dk = dist[a_, k]
        left, here, right = p_ < dk, p_ == dk, p_ > dk
        node[t[here]] = k[here]
        b[t[left]] = k[left]
        a[t[right]], pp[t[right]] = k[right], p_[right] - dk[right]
        todo = t[left | right]
    starts = np.cumsum(reps) - reps  # each walk's node 0 in ``node``
    for step in range(hops):
        has = last > step
        u = node[starts[has] + step]
        v = node[starts[has] + step + 1]
        out[rows[has], step] = eid[u, v]
    return out
