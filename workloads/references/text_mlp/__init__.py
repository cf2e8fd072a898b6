"""``text_mlp``: an MLP on each node's own language-model state, without the graph.

The no-graph baseline of text-attributed graph learning (e.g. the "LM-only"/MLP rows
of Chen et al., "Exploring the Potential of Large Language Models in Learning on
Graphs", 2023, and of ENGINE's own comparison): the frozen LM's pooled state of the
node's text at ``layer`` (read from the LM-state cache), Linear → ReLU → dropout →
Linear to the classes. No neighbour is read, so comparing it with the GNNs shows what
the edges are worth. Trained in the shared loop like any method; its memory is
measured as every trial's.
"""
from __future__ import annotations

from pydantic import Field
from torch import nn

from workloads.backbones.node import NodeInputs, lm_layer
from workloads.peft.base import MethodConfig, ReferenceKind, TrainHooks, freeze, register_method
from workloads.references.base import MEMORY_BY_ALLOCATOR


class TextMlpConfig(MethodConfig):
    hidden: int = Field(default=128, ge=4, description="MLP width")
    dropout: float = Field(default=0.2, ge=0, lt=1, description="dropout after the hidden layer")
    layer: int = Field(default=-1, ge=-1, description="LM layer read (0 = embeddings, -1 = the last)")


class TextMLP(nn.Module):
    def __init__(self, lm_hidden: int, num_layers: int, num_classes: int, cfg: TextMlpConfig) -> None:
        super().__init__()
        layer = lm_layer(cfg.layer, num_layers)
        self.reads = NodeInputs(layers=(layer,), cacheable=True, sampler="none", size=1)
        self.mlp = nn.Sequential(nn.Linear(lm_hidden, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.hidden, num_classes))

    def forward(self, model, batch):
        x = model.lm_states(batch, list(self.reads.layers))[0]
        return self.mlp(x[batch.target_pos]), {}


@register_method("text_mlp", TextMlpConfig, backbones=("language_model",),
                 reference=ReferenceKind(memory_by=MEMORY_BY_ALLOCATOR))
def apply(model: nn.Module, cfg: TextMlpConfig) -> TrainHooks:
    freeze(model)
    model.body = TextMLP(model.lm.hidden, model.lm.num_layers, model.num_classes, cfg)
    return TrainHooks(eval_modules=[model.lm])
