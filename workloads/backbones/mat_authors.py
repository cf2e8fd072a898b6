"""The Molecule Attention Transformer as its authors compute it, for their published weights.

Maziarka et al., "Molecule Attention Transformer" (2020), https://arxiv.org/abs/2002.08264;
the computation is that of the authors' code, github.com/ardigen/MAT (commit 1c7af06,
``src/transformer.py`` ``make_model`` and ``src/featurization/data_utils.py``), whose
``pretrained_weights.pt`` is a ``state_dict`` of ``make_model(**params)``. Their code is
not imported; the checkpoint format (hyperparameters and weight names) is
:mod:`workloads.checkpoints.mat_authors`, and the proof is tests/workloads/test_mat_authors.py
against outputs of their code (scripts/make_mat_fixtures.py).

Inputs, as their ``load_data_from_smiles(..., add_dummy_node=True, one_hot_formal_charge=True)``
builds them (d_atom = 28):

* node 0 is a dummy node with feature vector :math:`e_0`; each atom's 27 features (after a
  leading 0) are one-hot atomic number (B, C, N, O, F, P, S, Cl, Br, I, other), heavy-atom
  degree (0..5, more counts as 5), total hydrogens (0..4, more as 4), formal charge (-1, 0, 1;
  any other charge takes the last slot, as their ``one_hot_vector`` does), in a ring, aromatic.
  They are read off OGB's atom features and the bonds (:func:`authors_atom_features`);
* adjacency: the bonds with self-loops on the atoms, none on the dummy node;
* distances between the heavy atoms of one conformer: RDKit ``EmbedMolecule(maxAttempts=5000)``
  (ETKDG) with hydrogens, ``UFFOptimizeMolecule``, hydrogens removed; the dummy node is at
  distance 1e6 from every node, itself included. The conformer is the dataset view ``mat_dist``
  (:func:`workloads.datasets.featurize.authors_conformer_distances`).

Each layer is pre-norm, :math:`x + \\mathrm{Attn}(\\mathrm{LN}(x))`, then
:math:`x + \\mathrm{FFN}(\\mathrm{LN}(x))`, with their LayerNorm
(:math:`a (x - \\mu) / (\\sigma + 10^{-6}) + b`, :math:`\\sigma` the unbiased standard deviation), and

.. math::
    \\mathcal{A} = \\lambda_a\\, \\mathrm{softmax}\\Big(\\frac{QK^\\top}{\\sqrt{d_k}}\\Big)
                 + \\lambda_d\\, g(D) + (1 - \\lambda_a - \\lambda_d)\\, \\frac{A}{A\\mathbf 1 + 10^{-6}},

:math:`g(D) = \\exp(-D)` (``exp``, the published model's) or :math:`\\mathrm{softmax}(-D)`
row-wise (``softmax``), padding masked. The feed-forward block is ``N_dense`` linear maps,
leaky ReLU between them and the output non-linearity after the last (``relu`` is their leaky
ReLU with ``leaky_relu_slope``). After the last layer a LayerNorm; the graph representation is
their Generator's pooling (before its projection): the mean (or sum) over the dummy node and
the atoms, or the dummy node's state. ``Encoded.graph`` is that pooled vector.

Method sites, as :class:`~workloads.backbones.graphormer.Graphormer`'s: module names
``layers[i].attn.q_proj``/``k_proj``/``v_proj``/``out_proj`` (LoRA's targets),
``layers[i].ffn.fc1``..., ``ln1``/``ln2``/``final_ln`` (LayerNorm subclasses, so Houlsby
adapters train them); adapters after each layer's attention and feed-forward sublayers; the
dummy node plays the graph token: token slots (GIST, prompt tokens) go right after it and get
only the attention term (no adjacency, no distance), the pooling leaves them out; the input
prompt (GPF) acts on the atoms' embeddings; ``graph_context.norm_adj`` links the dummy node to
the atoms when asked to, as it links Graphormer's graph token.

Deviations from the authors' code, none of which changes a forward pass of their weights on
the molecules their code featurizes:

* Their conformer is unseeded (``EmbedMolecule`` without ``randomSeed``), so their distances
  change from run to run; here it is seeded (``conformer_seed``, default 0), and the fixtures
  were made with their code under that seed.
* A molecule whose embedding fails (``EmbedMolecule`` returns -1; rare): their code then
  featurizes the molecule *with its hydrogens as atoms* and 2D coordinates (a side effect of its
  ``try`` block, which has already added them). Here it keeps its heavy atoms and takes the 2D
  depiction distances (the base graph's ``dist``), counted in the dataset summary.
* Only their published featurization (d_atom 28) and the features the published model uses:
  ``trainable_lambda``, ``use_edge_features``, ``scale_norm`` and ``use_adapter`` are refused
  at load; their Generator (``generator.*``, the pretraining head) is not loaded, as their
  EXAMPLE.ipynb skips it: each task adds its own head.
* Padding: they mask padded keys with -1e12 before the softmax, here with -inf (the same zero
  weights); padded rows, which nothing reads, differ.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from workloads.backbones.graphormer import Graphormer, GraphormerLayer, GraphTransformerConfig, pair_index

D_ATOM = 28  # their featurization with add_dummy_node and one_hot_formal_charge
DUMMY_DISTANCE = 1e6  # their distance between the dummy node and every node
ATOMIC_NUMBERS = (5, 6, 7, 8, 9, 15, 16, 17, 35, 53)  # then "other"
NORM_EPS = 1e-6  # their LayerNorm's eps (added to the standard deviation)
ADJ_EPS = 1e-6  # their attention(): adj / (adj.sum(-1) + eps)


class MATAuthorsConfig(GraphTransformerConfig):
    """The architecture of the authors' ``make_model(**params)`` (mapped by
    :func:`workloads.checkpoints.mat_authors.read_config`); their name in each description."""

    d_atom: Literal[28] = Field(default=D_ATOM, description="make_model d_atom: node features (28: dummy node, "
                                "one-hot formal charge)")
    lambda_attention: float = Field(default=0.33, description="lambda_attention")
    lambda_distance: float = Field(default=0.33, description="lambda_distance (the adjacency gets 1 - both)")
    distance_kernel: Literal["softmax", "exp"] = Field(default="exp", description="distance_matrix_kernel")
    n_dense: int = Field(default=1, ge=0, le=64, description="N_dense: linear maps of the feed-forward block")
    leaky_relu_slope: float = Field(default=0.1, description="leaky_relu_slope")
    dense_output_nonlinearity: Literal["relu", "tanh", "none"] = Field(
        default="relu", description="dense_output_nonlinearity ('relu' is their leaky ReLU)")
    aggregation: Literal["mean", "sum", "dummy_node"] = Field(default="mean", description="aggregation_type")
    init_type: Literal["uniform", "normal", "small_normal_init", "small_uniform_init"] = Field(
        default="uniform", description="init_type: the random initialisation (random_init trials)")
    conformer_seed: int = Field(default=0, ge=0, le=2**31 - 1, description="the seed of each molecule's ETKDG "
                                "conformer (theirs is unseeded)")

    @model_validator(mode="before")
    @classmethod
    def _ffn_is_hidden(cls, data):
        if isinstance(data, dict) and "ffn_dim" not in data:
            data = {**data, "ffn_dim": data.get("hidden_dim", cls.model_fields["hidden_dim"].default)}
        return data

    @model_validator(mode="after")
    def _feed_forward_width(self):
        if self.ffn_dim != self.hidden_dim:
            raise ValueError(f"ffn_dim {self.ffn_dim} must equal hidden_dim {self.hidden_dim} (their feed-forward "
                             "maps are d_model x d_model)")
        return self

    @property
    def lambda_adjacency(self) -> float:
        return 1. - self.lambda_attention - self.lambda_distance  # their MultiHeadedAttention's arithmetic

    @property
    def mat_conformer_seed(self) -> int:
        """The dataset view the graphs must carry (``mat_dist`` under this seed)."""
        return self.conformer_seed


def authors_atom_features(x: Tensor, edge_index: Tensor) -> Tensor:
    """[N, 27] the authors' ``get_atom_features(atom, one_hot_formal_charge=True)`` from OGB's
    atom features ``x`` [N, 9] (atomic number - 1, chirality, total degree, formal charge + 5,
    total H, radicals, hybridisation, aromatic, in ring) and the bonds (heavy-atom degree)."""
    n = x.shape[0]
    atomic = x[:, 0] + 1
    table = torch.tensor(ATOMIC_NUMBERS, device=x.device)
    hit = atomic.unsqueeze(1) == table
    element = torch.where(hit.any(1), hit.long().argmax(1), len(ATOMIC_NUMBERS))
    deg = torch.bincount(edge_index[0], minlength=n).clamp(max=5) if edge_index.numel() \
        else torch.zeros(n, dtype=torch.long, device=x.device)
    hs = x[:, 4].clamp(max=4)  # OGB's "misc" (> 8) is 9: more than 4 either way
    charge = x[:, 3] - 5  # OGB's "misc" (|charge| > 5) is 11: outside -1..1 either way
    charge = torch.where((charge >= -1) & (charge <= 1), charge + 1, 2)
    return torch.cat([F.one_hot(element, len(ATOMIC_NUMBERS) + 1), F.one_hot(deg, 6), F.one_hot(hs, 5),
                      F.one_hot(charge, 3), x[:, 8:9], x[:, 7:8]], dim=1).float()


class AuthorsLayerNorm(nn.LayerNorm):
    """Their LayerNorm: ``a_2 * (x - mean) / (std + eps) + b_2``, the standard deviation unbiased
    and eps added to it (``weight`` is their ``a_2``, ``bias`` their ``b_2``)."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim, eps=NORM_EPS)

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.weight * (x - mean) / (std + self.eps) + self.bias


class AuthorsFeedForward(nn.Module):
    """Their ``PositionwiseFeedForward``: ``fc1``... (``N_dense`` d x d maps), leaky ReLU between
    them, the output non-linearity after the last, dropout after each; none: the identity."""

    def __init__(self, cfg: MATAuthorsConfig) -> None:
        super().__init__()
        self.n, self.slope = cfg.n_dense, cfg.leaky_relu_slope
        for i in range(cfg.n_dense):
            setattr(self, f"fc{i + 1}", nn.Linear(cfg.hidden_dim, cfg.hidden_dim))
        self.dropout = nn.Dropout(cfg.dropout)
        self.out_act = cfg.dense_output_nonlinearity

    def forward(self, x: Tensor) -> Tensor:
        if self.n == 0:
            return x
        for i in range(1, self.n):
            x = self.dropout(F.leaky_relu(getattr(self, f"fc{i}")(x), negative_slope=self.slope))
        x = getattr(self, f"fc{self.n}")(x)
        if self.out_act == "relu":
            x = F.leaky_relu(x, negative_slope=self.slope)
        elif self.out_act == "tanh":
            x = torch.tanh(x)
        return self.dropout(x)


class AuthorsAttention(nn.Module):
    """Their ``MultiHeadedAttention`` (``linears[0..3]`` are ``q_proj``, ``k_proj``, ``v_proj``,
    ``out_proj``); the distance kernel and normalised adjacency come from the backbone's context
    holder (set once per forward), so the layer signature is the Graphormer layer's."""

    def __init__(self, cfg: MATAuthorsConfig, holder) -> None:
        super().__init__()
        d = cfg.hidden_dim
        self.heads, self.holder = cfg.num_heads, holder
        self.lambdas = (cfg.lambda_attention, cfg.lambda_distance, cfg.lambda_adjacency)
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        """x: [B, T, D]; bias: [B, 1, T, T] additive mask (−inf: keys nobody may read)."""
        b, t, d = x.shape
        d_k = d // self.heads
        split = lambda z: z.view(b, -1, self.heads, d_k).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d_k) + bias
        p_attn = F.softmax(scores, dim=-1)
        p_dist, p_adj = self.holder.mat
        la, ld, lg = self.lambdas
        mixed = self.drop(la * p_attn + ld * p_dist + lg * p_adj)
        out = torch.matmul(mixed, v)
        return self.out_proj(out.transpose(1, 2).contiguous().view(b, -1, d))


class MATAuthorsLayer(GraphormerLayer):
    """Pre-norm: ``x + dropout(attn(ln1(x)))``, then ``x + dropout(ffn(ln2(x)))`` (their
    ``SublayerConnection``s), with their LayerNorm, attention and feed-forward block."""

    def __init__(self, cfg: MATAuthorsConfig, holder) -> None:
        super().__init__(cfg, lambda: AuthorsAttention(cfg, holder))
        self.ln1, self.ln2 = AuthorsLayerNorm(cfg.hidden_dim), AuthorsLayerNorm(cfg.hidden_dim)
        self.ffn = AuthorsFeedForward(cfg)


class MATAuthors(Graphormer):
    """The authors' MAT encoder and pooling (see the module docstring).

    Args:
        cfg: :class:`MATAuthorsConfig` (from a checkpoint's hyperparameters).

    Shapes: as :class:`~workloads.backbones.graphormer.Graphormer`, reading ``mat_dist``
    [sum n_g^2] (float, the authors' conformer distances) instead of ``spd``; ``Encoded.graph``
    is their pooled representation. Token sequence: ``[dummy node, slot tokens, atoms]``.
    """

    featurization = ("mat_dist",)
    lora_targets = ("q_proj", "k_proj", "v_proj", "out_proj")

    def __init__(self, cfg: MATAuthorsConfig) -> None:
        super().__init__(cfg)
        del self.graph_token  # the dummy node's state is the embedding of its feature vector
        self.final_ln = AuthorsLayerNorm(cfg.hidden_dim)  # their Encoder.norm
        self._init_weights(cfg.init_type)

    def _init_weights(self, kind: str) -> None:
        """make_model's initialisation of every matrix (random_init trials start from it)."""
        for p in self.parameters():
            if p.dim() > 1:
                if kind == "uniform":
                    nn.init.xavier_uniform_(p)
                elif kind == "normal":
                    nn.init.xavier_normal_(p)
                else:  # their utils.xavier_*_small_init_: std sqrt(2 / (fan_in + 4 fan_out))
                    fan_out, fan_in = p.shape[0], p[0].numel()
                    std = math.sqrt(2.0 / float(fan_in + 4 * fan_out))
                    with torch.no_grad():
                        if kind == "small_normal_init":
                            p.normal_(0.0, std)
                        else:
                            p.uniform_(-math.sqrt(3.0) * std, math.sqrt(3.0) * std)

    def _init_inputs(self, cfg: MATAuthorsConfig) -> None:
        self.atom_encoder = nn.Linear(cfg.d_atom, cfg.hidden_dim)  # their src_embed.lut
        self.emb_dropout = nn.Dropout(cfg.dropout)
        self.register_buffer("dummy_features", F.one_hot(torch.tensor([0]), cfg.d_atom).float(), persistent=False)

    def _init_structure(self, cfg: MATAuthorsConfig) -> None:
        self.context_holder.mat = None  # (distance kernel, adjacency) of the current forward

    def _make_layers(self, cfg: MATAuthorsConfig) -> nn.ModuleList:
        return nn.ModuleList(MATAuthorsLayer(cfg, self.context_holder) for _ in range(cfg.num_layers))

    def encode_atoms(self, batch) -> Tensor:
        feats = authors_atom_features(batch.x, batch.edge_index)
        feats = torch.cat([feats.new_zeros(feats.shape[0], 1), feats], dim=1)  # column 0: the dummy node's
        return self.emb_dropout(self.atom_encoder(feats.to(self.atom_encoder.weight.dtype)))

    def encode_degree(self, batch) -> Tensor:
        return self.atom_encoder.weight.new_zeros(())  # they encode degree among the atom features

    def graph_token_state(self, b: int) -> Tensor:
        """[B, 1, D] the dummy node's embedding (their lut applied to its feature vector e_0)."""
        dummy = self.atom_encoder(self.dummy_features.to(self.atom_encoder.weight.dtype))
        return self.emb_dropout(dummy.unsqueeze(0).expand(b, 1, -1))

    def readout(self, x: Tensor, mask: Tensor, k: int) -> Tensor:
        """Their Generator's pooling over the dummy node and the atoms (slot tokens left out)."""
        if self.cfg.aggregation == "dummy_node":
            return x[:, 0]
        nodes = x if k == 1 else torch.cat([x[:, :1], x[:, k:]], dim=1)
        m = torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1).unsqueeze(-1).to(x.dtype)
        total = (nodes * m).sum(dim=1)
        return total / m.sum(dim=1) if self.cfg.aggregation == "mean" else total

    def attention_bias(self, batch, n_max: int, num_slots: int = 0) -> Tensor:
        """Zero additive bias [B, 1, T, T] (masks are added by the caller); sets this forward's
        distance kernel and normalised adjacency, [B, 1, T, T] each, on the holder."""
        ptr, sizes = batch.ptr, batch.ptr[1:] - batch.ptr[:-1]
        b, k = sizes.numel(), 1 + num_slots
        t = n_max + k
        dev = sizes.device
        gid, i, j = pair_index(sizes)
        real = torch.zeros(b, t, dtype=torch.bool, device=dev)  # the dummy node and the atoms
        real[:, 0] = True
        real[:, k:] = torch.arange(n_max, device=dev).unsqueeze(0) < sizes.unsqueeze(1)
        pairs = real.unsqueeze(2) & real.unsqueeze(1)
        dist = torch.full((b, t, t), float("inf"), device=dev).masked_fill(pairs, DUMMY_DISTANCE)
        dist[gid, k + i, k + j] = batch.mat_dist.to(dist.dtype)
        if self.cfg.distance_kernel == "exp":
            kernel = torch.exp(-dist)
        else:  # rows without any node (slot tokens, padding) give zeros
            kernel = torch.nan_to_num(F.softmax(-dist, dim=-1), nan=0.0)
        adj = torch.zeros(b, t, t, device=dev)
        if batch.edge_index.numel():
            src, dst = batch.edge_index
            g = batch.batch[src]
            adj[g, k + src - ptr[g], k + dst - ptr[g]] = 1.0
        atoms = real.clone()
        atoms[:, 0] = False
        adj = adj + torch.diag_embed(atoms.to(adj.dtype))  # self-loops on the atoms
        adj = adj / (adj.sum(dim=-1).unsqueeze(2) + ADJ_EPS)
        self.context_holder.mat = (kernel.unsqueeze(1), adj.unsqueeze(1))
        return torch.zeros(b, 1, t, t, device=dev)
