"""G-Adapter: structure-aware bottleneck adapters with a graph convolution inside.

Gui et al., "G-Adapter: Towards Structure-Aware Parameter-Efficient Transfer
Learning for Graph Transformer Networks" (AAAI 2024), https://arxiv.org/abs/2305.10329.
What this package computes:

.. math::
    h \\leftarrow h + s \\, W_{up}\\, \\sigma(\\hat A \\, W_{down} h), \\qquad
    \\hat A = D^{-1/2}(A + I) D^{-1/2},

where :math:`\\hat A` is the molecule's normalised adjacency aligned with the token
sequence. :math:`W_{up}` starts at zero, so the adapted model starts equal to the
pretrained one.

This package is the graph-convolution adapter alone. The paper's full method also
trains with a Bregman proximal point term: that is the ``proximal`` training
plug-in (``workloads/plugins/proximal``), which composes with any method, so the
paper's G-Adapter is ``g_adapter`` + ``proximal`` in a sweep spec.

Sources this was checked against, and what they settle:

* The paper: only its abstract could be reached here (the adapter "leverages graph
  convolution operation to introduce graph structure (e.g., graph adjacent matrix)
  as an inductive bias"; training adds "Bregman proximal point optimization"). Its
  Section 3, with the adapter's equations and placement, could not; no code by the
  authors was found.
* GConv-Adapter's re-implementation of G-Adapter as a baseline
  (https://github.com/PanPapag/GConv-Adapter, commit a35187d): ``src/finetune/g_adapter.py``,
  ``configs/finetune/g_adapter.yaml``, ``src/models/inductive/gnn.py``. It targets
  message-passing GNNs and DIFFormer/NodeFormer, not Graphormer (no graph token, no
  separate attention and feed-forward sub-layers), and reads G-Adapter as
  :math:`x \\leftarrow \\mathrm{LN}_{post}(x + \\mathrm{ReLU}(W_{up} W_{down} A x))` with
  :math:`x = \\mathrm{LN}_{pre}(x)` (``g_adapter.py:35-37``), :math:`A` the raw adjacency of
  the batch (``to_dense_adj``: no self-loops, no normalisation, ``g_adapter.py:34``), no
  zero initialisation, and one adapter per layer, inserted sequentially after the
  layer (``g_adapter.yaml:4-5``: ``positions: ['post']``, ``type: sequential``;
  ``gnn.py:112-117``).

So no default below is settled by the paper; each is an assumption, kept from before:

1. *Insertion.* Sequential (the adapter rewrites the sub-layer's output), as the
   re-implementation inserts it (``gnn.py:112-117``). Which sub-layers is not settled
   for a graph transformer: the re-implementation's backbones have no attention /
   feed-forward split. Default ``placement: houlsby`` (the ``adapter`` method's field:
   after each layer's attention block and after its feed-forward block, before the
   residual sums, LayerNorms trainable), so ``adapter`` and ``g_adapter`` share
   placement and parameter count; ``pfeiffer`` (one adapter after each feed-forward
   block) is the nearest to the re-implementation's one adapter per layer.
2. *The graph token in* :math:`\\hat A`. Not settled (the re-implementation's backbones
   have no graph token; the abstract speaks of the graph's adjacency matrix).
   Default ``link_graph_token: true``: the graph token is linked to every atom of its
   molecule, as Graphormer's virtual node is. The graph token is the readout, so its
   adapter then adds a degree-weighted mean of the molecule's atoms to the readout
   path, and ``g_adapter`` differs from ``adapter`` in two ways: the convolution over
   the atoms, and this pooled path into the readout token. ``link_graph_token: false``
   is the ablation that keeps only the first: the graph token has only its self-loop,
   and its adapter is exactly the plain bottleneck. Extra tokens (prompts, a gist
   token) and padding keep only their self-loop either way.
3. *Activation.* Not settled: GELU between the projections (the backbone's own, and
   the ``adapter`` method's). The re-implementation's ReLU (``g_adapter.py:20``, applied
   after the up-projection, ``:36``) is no evidence either way: its plain Houlsby
   adapter uses ReLU too (``src/finetune/adapter.py:18``).
4. *Proximal form.* Not settled: the re-implementation trains with the task loss
   alone (``scripts/finetune_inductive_learning.py:26-74``). See the ``proximal``
   plug-in's ``anchor`` (``momentum``, SMART's, the default; or ``previous``).
5. *Normalisation of* :math:`\\hat A` *and the scale* s. Not settled: GCN's symmetric
   normalisation with self-loops (Kipf & Welling, ICLR 2017) and ``scale`` s = 1 are
   kept; the re-implementation uses the raw adjacency with no self-loops and no scale,
   but wraps the adapter in two LayerNorms (``g_adapter.py:18-19,35,37``), which this
   residual form with a zero-initialised :math:`W_{up}` does not have.

Args:
    bottleneck (int): inner width b (default 16).
    scale (float): s (default 1.0).
    placement (str): ``houlsby`` or ``pfeiffer`` (default ``houlsby``).
    link_graph_token (bool): default True; False is the ablation (see 2).

Written by hand: HF ``peft`` has no graph adapter.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from workloads.peft.adapter import AdapterConfig, Bottleneck, insert_adapters
from workloads.peft.base import TrainHooks, register_method


class GAdapterConfig(AdapterConfig):
    link_graph_token: bool = Field(
        default=True,
        description="link the graph token to every atom in the adapter's adjacency (false: the ablation, "
        "where the adapter at the graph token is the plain bottleneck)",
    )


class GraphBottleneck(Bottleneck):
    """The bottleneck adapter with the graph convolution between its projections.

    Args: dim (d), bottleneck (b), scale, context (the backbone's ``context_holder``,
    whose ``.graph`` is the current forward's graph context), link_graph_token.
    Shapes: [B, T, d] -> [B, T, d].
    """

    def __init__(self, dim: int, bottleneck: int, scale: float, context, link_graph_token: bool = True) -> None:
        super().__init__(dim, bottleneck, scale)
        self.context = context  # shared with the backbone (a plain object: copies and pickles keep the sharing)
        self.link_graph_token = link_graph_token

    def forward(self, h: Tensor) -> Tensor:
        z = torch.bmm(self.context.graph.norm_adj(self.link_graph_token), self.down(h))
        return h + self.scale * self.up(F.gelu(z))


@register_method("g_adapter", GAdapterConfig)
def apply(model: nn.Module, cfg: GAdapterConfig) -> TrainHooks:
    ctx = model.backbone.context_holder
    insert_adapters(model, cfg.placement,
                    lambda dim: GraphBottleneck(dim, cfg.bottleneck, cfg.scale, ctx, cfg.link_graph_token))
    return TrainHooks()
