"""G-Adapter: structure-aware bottleneck adapters with a graph convolution inside.

Gui et al., "G-Adapter: Towards Structure-Aware Parameter-Efficient Transfer
Learning for Graph Transformer Networks" (AAAI 2024), https://arxiv.org/abs/2305.10329:

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

Choices and deviations, said plainly:

* ``link_graph_token`` (default on): the graph token is linked to every atom of its
  molecule in :math:`\\hat A`, as Graphormer's virtual node is; off, the graph token
  has only its self-loop and the adapter at the token is a plain adapter.
  Extra tokens (prompts, a gist token) and padding keep only their self-loop.
* Placement follows the ``adapter`` method's ``placement`` field (default
  ``houlsby``: after attention and after the feed-forward block, LayerNorms
  trainable), so ``adapter`` and ``g_adapter`` differ only in the convolution.

Args:
    bottleneck (int): inner width b (default 16).
    scale (float): s (default 1.0).
    placement (str): ``houlsby`` or ``pfeiffer`` (default ``houlsby``).
    link_graph_token (bool): default True.

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
        default=True, description="link the graph token to every atom in the adapter's adjacency"
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
