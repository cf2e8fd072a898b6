"""A small Graphormer-style graph transformer for molecules.

Ying et al., "Do Transformers Really Perform Bad for Graph Representation?"
(NeurIPS 2021), https://arxiv.org/abs/2106.05234

Each layer is pre-LayerNorm multi-head self-attention with a structural bias,

.. math::
    A_{ij} = \\frac{(h_i W_Q)(h_j W_K)^\\top}{\\sqrt{d}} + b_{\\phi(v_i, v_j)} + c_{ij},

where :math:`\\phi` is the shortest-path distance (clipped), :math:`b` a learned
scalar per head and distance, and :math:`c_{ij}` the bond encoding for directly
bonded atoms (this model uses the 1-hop edge encoding rather than the
path-averaged one of the paper). Node inputs are OGB's atom encoding plus a
degree (centrality) encoding, and a virtual graph token attends to every atom
with its own learned bias; the prediction head reads the token.

PyG ships no Graphormer, so the layer is written here. Linear maps are plain
``nn.Linear`` modules named ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``,
``fc1``, ``fc2`` so that HF ``peft`` can target them by name.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder
from pydantic import Field, model_validator
from torch import Tensor, nn
from torch_geometric.utils import degree, to_dense_batch

from runfolder.strict import StrictModel
from workloads.backbones.base import Encoded


class GraphTransformerConfig(StrictModel):
    """What every graph transformer here is configured by (each backbone adds its own fields)."""

    hidden_dim: int = Field(default=64, ge=8, le=65_536, description="width of node and token states")
    num_layers: int = Field(default=4, ge=1, le=1024, description="transformer layers")
    num_heads: int = Field(default=4, ge=1, le=1024, description="attention heads (must divide hidden_dim)")
    ffn_dim: int = Field(default=128, ge=8, le=262_144, description="feed-forward inner width")
    dropout: float = Field(default=0.1, ge=0, lt=1, description="dropout on residual branches")
    attn_dropout: float = Field(default=0.1, ge=0, lt=1, description="dropout on attention weights")
    max_degree: int = Field(default=8, ge=1, le=1024, description="degrees above this share one embedding")

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim {self.hidden_dim} is not divisible by num_heads {self.num_heads}")
        return self


class GraphormerConfig(GraphTransformerConfig):
    max_distance: int = Field(default=8, ge=1, le=1024, description="distances above this share one bias")


class MultiHeadAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden_dim {dim} is not divisible by num_heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        """x: [B, T, D]; bias: [B, H, T, T] additive (−inf masks padding)."""
        b, t, d = x.shape
        split = lambda z: z.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    def __init__(self, dim: int, inner: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, inner)
        self.fc2 = nn.Linear(inner, dim)
        self.dropout = nn.Dropout(dropout)
        self.act = F.gelu

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.dropout(self.act(self.fc1(x))))


class GraphormerLayer(nn.Module):
    """A pre-LayerNorm transformer layer; ``attention()`` builds its attention module
    (``(x, bias) -> x``; default Graphormer's), so other backbones swap only that."""

    def __init__(self, cfg: GraphormerConfig, attention: Callable[[], nn.Module] | None = None) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.hidden_dim)
        self.attn = attention() if attention else MultiHeadAttention(cfg.hidden_dim, cfg.num_heads, cfg.attn_dropout)
        self.ln2 = nn.LayerNorm(cfg.hidden_dim)
        self.ffn = FeedForward(cfg.hidden_dim, cfg.ffn_dim, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        x = x + self.dropout(self.attn(self.ln1(x), bias))
        return x + self.dropout(self.ffn(self.ln2(x)))


class TokenSlot(NamedTuple):
    module: nn.Module  # batch size B -> [B, P, D]
    visible: bool  # whether other tokens attend to these tokens


class Graphormer(nn.Module):
    """Graph transformer encoder.

    Args:
        cfg: :class:`GraphormerConfig` (defaults: hidden 64, 4 layers, 4 heads).

    Shapes:
        input: a PyG ``Batch`` with ``x`` [N, 9], ``edge_index`` [2, E], ``edge_attr`` [E, 3],
        ``spd`` [sum n_g^2], ``batch`` [N].
        output: :class:`Encoded` ``(graph [B, D], nodes [B, N_max, D], mask [B, N_max], slots)``.

    Token sequence: ``[graph token, slot tokens (in slot order), atoms]``. Fulfils
    :class:`workloads.backbones.base.GraphBackbone`.
    """

    featurization = ("spd",)
    lora_targets = ("q_proj", "k_proj", "v_proj", "out_proj")

    def __init__(self, cfg: GraphTransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden_dim
        # The structure of the batch in the current forward, for structure-aware modules
        # inside the backbone; a plain holder object they share (see graph_context).
        self.context_holder = SimpleNamespace(graph=None)
        self._init_inputs(cfg)
        self.mask_embedding = nn.Parameter(torch.zeros(d))  # replaces masked atoms in pretraining
        self.graph_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self._init_structure(cfg)
        self.layers = self._make_layers(cfg)
        self.final_ln = nn.LayerNorm(d)
        self.slots = nn.ModuleDict()  # see add_token_slot
        self._slot_visible: dict[str, bool] = {}
        self.input_prompt: nn.Module | None = None  # see add_input_prompt

    def _init_inputs(self, cfg: GraphTransformerConfig) -> None:
        """The modules that embed atoms (a variant brings its own, with :meth:`encode_atoms`
        and :meth:`encode_degree`)."""
        self.atom_encoder = AtomEncoder(cfg.hidden_dim)
        self.degree_encoder = nn.Embedding(cfg.max_degree + 1, cfg.hidden_dim)

    def encode_atoms(self, batch) -> Tensor:
        """[N, D] each atom's feature embedding (before the input prompt and the degree)."""
        return self.atom_encoder(batch.x)

    def encode_degree(self, batch) -> Tensor:
        """[N, D] each atom's degree (centrality) embedding."""
        deg = degree(batch.edge_index[1], batch.num_nodes, dtype=torch.long).clamp(max=self.cfg.max_degree)
        return self.degree_encoder(deg)

    def graph_token_state(self, b: int) -> Tensor:
        """[B, 1, D] the graph token's input state (a variant computes its own)."""
        return self.graph_token.expand(b, 1, -1)

    def embed_sequence(self, x: Tensor) -> Tensor:
        """What the token sequence [B, T, D] goes through before the first layer."""
        return x

    def finish(self, x: Tensor) -> Tensor:
        """What every token's state goes through after the last layer."""
        return self.final_ln(x)

    def readout(self, x: Tensor, mask: Tensor, k: int) -> Tensor:
        """[B, D] the graph representation from the final states ``x`` [B, k + n_max, D]
        (k special tokens: the graph token, then slot tokens; then the atoms, ``mask``
        [B, n_max] the real ones): the graph token's state."""
        return x[:, 0]

    def _init_structure(self, cfg: GraphormerConfig) -> None:
        """The modules that encode structure into attention (a subclass brings its own)."""
        h = cfg.num_heads
        self.spatial_bias = nn.Embedding(cfg.max_distance + 2, h)  # last index: unreachable
        self.token_bias = nn.Parameter(torch.zeros(h))
        self.edge_bias = BondEncoder(h)

    def _make_layers(self, cfg: GraphormerConfig) -> nn.ModuleList:
        return nn.ModuleList(GraphormerLayer(cfg) for _ in range(cfg.num_layers))

    @property
    def graph_context(self) -> "GraphContext | None":
        """The :class:`GraphContext` of the latest forward pass."""
        return self.context_holder.graph

    def add_token_slot(self, name: str, module: nn.Module, *, first: bool = False, visible: bool = True) -> None:
        """Insert extra tokens after the graph token: ``module(batch_size)`` returns [B, P, D].

        They carry no positional or structural encoding of their own: zero structural
        bias with the atoms and with each other, the graph token's ``token_bias`` with
        the graph token. ``first`` puts them right after the graph token (before slots
        added earlier). ``visible=False`` masks them as keys for every other token: they
        read the whole sequence, nothing reads them, so the graph token's and atoms'
        states are exactly those of the model without them. Their final states come
        back in ``Encoded.slots[name]``.
        """
        if name in self.slots:
            raise ValueError(f"this backbone already has a token slot '{name}'")
        items = list(self.slots.items())
        items = [(name, module)] + items if first else items + [(name, module)]
        self.slots = nn.ModuleDict(items)
        self._slot_visible[name] = visible

    def add_input_prompt(self, module: nn.Module) -> None:
        """Transform every node's input features right after the atom encoder:
        ``module(h [N, D]) -> [N, D]`` (graph prompt feature methods such as GPF)."""
        if self.input_prompt is not None:
            raise ValueError("this backbone already has an input prompt")
        self.input_prompt = module

    @property
    def out_dim(self) -> int:
        return self.cfg.hidden_dim

    def adapter_sites(self, placement: str = "pfeiffer") -> list[tuple[nn.Module, str, int]]:
        """Where bottleneck adapters go: (parent, attribute, width).

        ``pfeiffer``: after each layer's feed-forward block; ``houlsby``: after each
        layer's attention block and after its feed-forward block (before the residual
        sums, as Houlsby et al. 2019 place them).
        """
        if placement not in ("pfeiffer", "houlsby"):
            raise ValueError(f"unknown adapter placement '{placement}'; known: houlsby, pfeiffer")
        d = self.cfg.hidden_dim
        sites = []
        for layer in self.layers:
            if placement == "houlsby":
                sites.append((layer, "attn", d))
            sites.append((layer, "ffn", d))
        return sites

    def attention_bias(self, batch, n_max: int, num_slots: int = 0) -> Tensor:
        """[B, H, 1 + P + n_max, 1 + P + n_max]: graph token, P slot tokens, then atoms."""
        cfg = self.cfg
        ptr, sizes = batch.ptr, batch.ptr[1:] - batch.ptr[:-1]
        b = sizes.numel()
        gid, i, j = pair_index(sizes)
        spd = torch.full((b, n_max, n_max), -1, dtype=torch.long, device=sizes.device)
        spd[gid, i, j] = batch.spd
        spd = torch.where(spd < 0, cfg.max_distance + 1, spd.clamp(max=cfg.max_distance))
        bias = self.spatial_bias(spd).permute(0, 3, 1, 2)  # [B, H, n, n]
        if batch.edge_index.numel():
            src, dst = batch.edge_index
            g = batch.batch[src]
            eb = self.edge_bias(batch.edge_attr)  # [E, H]
            bias = _add_edge_bias(bias, g, src - ptr[g], dst - ptr[g], eb)
        # Prepend the graph token's row and column (and zero rows/columns for slot tokens).
        k = 1 + num_slots
        full = bias.new_zeros(b, cfg.num_heads, n_max + k, n_max + k)
        full[:, :, k:, k:] = bias
        tb = self.token_bias.view(1, -1, 1)
        full[:, :, 0, :] = tb
        full[:, :, 1:, 0] = tb
        return full

    def forward(self, batch, node_mask: Tensor | None = None) -> Encoded:
        h = self.encode_atoms(batch)
        if self.input_prompt is not None:
            h = self.input_prompt(h)
        if node_mask is not None:
            h = torch.where(node_mask.unsqueeze(-1), self.mask_embedding.expand_as(h), h)
        h = h + self.encode_degree(batch)
        nodes, mask = to_dense_batch(h, batch.batch)  # [B, n, D], [B, n]
        b, n, _ = nodes.shape
        parts = [self.graph_token_state(b)]
        spans, hidden = {}, []
        pos = 1
        for name, module in self.slots.items():
            t = module(b)
            parts.append(t)
            spans[name] = (pos, pos + t.shape[1])
            if not self._slot_visible[name]:
                hidden.append(spans[name])
            pos += t.shape[1]
        k = pos
        x = self.embed_sequence(torch.cat(parts + [nodes], dim=1))
        self.context_holder.graph = GraphContext(batch, mask, k)
        bias = self.attention_bias(batch, n, num_slots=k - 1)
        keys = torch.cat([mask.new_ones(b, k), mask], dim=1)  # keys that exist
        bias = bias.masked_fill(~keys.view(b, 1, 1, n + k), float("-inf"))
        for lo, hi in hidden:  # nobody reads hidden slots, except the slot itself
            own = bias[:, :, lo:hi, lo:hi].clone()
            bias = bias.clone()
            bias[:, :, :, lo:hi] = float("-inf")
            bias[:, :, lo:hi, lo:hi] = own
        for layer in self.layers:
            x = layer(x, bias)
        x = self.finish(x)
        slots = {name: x[:, lo:hi] for name, (lo, hi) in spans.items()}
        return Encoded(self.readout(x, mask, k), x[:, k:], mask, slots)


def pair_index(sizes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(graph, row, column) of every entry of the graphs' flat row-major [n*n] pair blocks
    (``spd``, ``dist``), for scattering them into a dense [B, n_max, n_max] grid."""
    sq = sizes * sizes
    gid = torch.repeat_interleave(torch.arange(sizes.numel(), device=sizes.device), sq)
    offs = torch.cumsum(sq, 0) - sq
    p = torch.arange(int(sq.sum()), device=sizes.device) - offs[gid]
    n_g = sizes[gid]
    return gid, p // n_g, p % n_g


class GraphContext:
    """The batch's structure aligned with the token sequence of the current forward
    pass, for structure-aware modules inside the backbone (e.g. G-Adapter).

    :meth:`norm_adj` is the [B, T, T] symmetric-normalised adjacency with self-loops,
    :math:`\\hat A = D^{-1/2}(A + I)D^{-1/2}`, where T = k + n_max: the k special tokens
    (graph token, then slot tokens) come first. Slot tokens and padding have only
    their self-loop; with ``link_graph_token`` the graph token is linked to every
    real atom of its graph (as Graphormer's virtual node is), otherwise it too has
    only its self-loop. Built on first use per option and cached for the forward.
    """

    def __init__(self, batch, mask: Tensor, num_special: int) -> None:
        self.batch, self.mask, self.k = batch, mask, num_special
        self._adj: dict[bool, Tensor] = {}

    def norm_adj(self, link_graph_token: bool = True) -> Tensor:
        if link_graph_token not in self._adj:
            b, n = self.mask.shape
            t = self.k + n
            src, dst = self.batch.edge_index
            g = self.batch.batch[src]
            ptr = self.batch.ptr
            a = torch.zeros(b, t, t, device=self.mask.device)
            a[g, self.k + src - ptr[g], self.k + dst - ptr[g]] = 1.0
            if link_graph_token:
                a[:, 0, self.k:] = self.mask.to(a.dtype)
                a[:, self.k:, 0] = self.mask.to(a.dtype)
            a = a + torch.eye(t, device=a.device)
            d = a.sum(-1).rsqrt()
            self._adj[link_graph_token] = d.unsqueeze(-1) * a * d.unsqueeze(-2)
        return self._adj[link_graph_token]


def _add_edge_bias(bias: Tensor, g: Tensor, i: Tensor, j: Tensor, eb: Tensor) -> Tensor:
    # bias[g, :, i, j] += eb, out of place so autograd sees it.
    b, h, n, _ = bias.shape
    flat = bias.permute(0, 2, 3, 1).reshape(b * n * n, h)
    flat = flat.index_add(0, (g * n + i) * n + j, eb)
    return flat.view(b, n, n, h).permute(0, 3, 1, 2)
