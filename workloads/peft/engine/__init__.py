"""ENGINE: a frozen language model with a tunable G-Ladder side network and dynamic early exit.

Zhu et al., "Efficient Tuning and Inference for Large Language Models on Textual
Graphs" (IJCAI 2024), https://arxiv.org/abs/2401.15569; the authors' code is
https://github.com/ZhuYun97/ENGINE (commit 46dde57, cited below as ``main.py:N`` and
``models/encoder.py:N``).

The LM's pooled node states at selected layers :math:`l_1 < \\dots < l_n` feed a
ladder of side GNN blocks. For rung :math:`i`

.. math::
    x_i = \\sigma(\\alpha_i / T)\\, P_i(h_{l_i}) + (1 - \\sigma(\\alpha_i / T))\\, \\mathrm{out}_{i-1},
    \\qquad \\mathrm{out}_i = \\mathrm{GNN}_i(x_i, E)

(rung 1 has no gate: :math:`x_1 = P_1(h_{l_1})`), with :math:`P_i` = Linear → LayerNorm →
ReLU → Linear into :math:`k = d / r` dimensions, :math:`\\alpha_i = 0` at start and
:math:`T = 0.1` (``main.py:84-93``, ``main.py:272-273``). Each rung has an exit head on
[target node, mean over its subgraph] and training minimises the sum of the exits'
cross-entropies (``main.py:94-97``). Subgraphs come from 1-hop sampling or a random walk
with restart.

Each rung's GNN is the authors' encoder (``models/encoder.py:179-196``, SAGE; GCN the
same at ``:66-83``): every layer is conv → norm → activation → dropout, and the last
layer of a rung skips the activation only when the encoder is built with
``last_activation=False`` (``:187-192``; the dropout is applied either way).
``main.py:271`` builds rung ``l`` with ``last_activation=(l != len(layer_select)-1)``
where ``l`` is the *LM layer id* of the rung, not its position, so with every shipped
config (``layer_select: [0,5,10,15,20,25,-1]``, ``len - 1 = 6``) every rung, the last
included, ends in activation and dropout. That is a flaw (an LM layer id compared with a
rung count), and the default here is the line's evident intent: the last rung's last
layer has no activation, its dropout stays (``last_rung_activation: false``). Their code
as run, which produced their reported numbers, is ``last_rung_activation: true``.

LM-state caching: the LM never runs while training; the pooled states of every
layer are read from the on-disk cache (:mod:`workloads.textgraphs.lm_cache`).

Dynamic early exit at inference, the authors' rule (``main.py:117-160``, run with
``--early``): a node leaves at the first rung whose prediction equals the previous
rung's (patience 1: ``early_mask = (current == last) == not_visited``, ``main.py:150``);
no node leaves at rung 1, whose "previous prediction" is -1 (``main.py:137``), and the
last rung takes everyone left (``main.py:154``). Those are the defaults here:
``patience = 1`` and ``min_exit_rung = 2``. Our extensions, labelled as ours and off by
default: ``patience > 1`` (that many agreeing rungs in a row), a softmax-confidence
``threshold``, and ``min_exit_rung = 1`` (lets the threshold exit at rung 1). On text
(every latency figure) the LM runs block by block and a node that exits, with its whole
subgraph, is dropped from every later block, and the pass ends at the last selected
layer: the saving is real compute. :meth:`Ladder.describe_inference` reports the latest
call and, under ``since_reset``, the sums over every call since
:meth:`Ladder.reset_inference` (a whole test set in batches).

Deviations from the authors' code, said plainly:

* Their exit mask ``(current == last) == not_visited`` (``main.py:150``) also
  re-selects nodes that already exited once their prediction changes, overwriting
  their result; here an exited node stays exited (:func:`exit_now`).
* They compute every LM layer for every node from the cache, so exiting saves
  nothing (``main.py:134-142``); here inference from text skips the later blocks (above).
* Their confidence threshold is named but not implemented (the comment at
  ``main.py:144`` says "entropy"; ``--dynamic_p``, ``utils/args.py:36``, is never
  read) and their patience is fixed at 1; both are parameters here (ours).
* There is no separate final classifier: the last rung's exit head is the final
  prediction (their final classifier, ``main.py:276``, is trained alone when exits are
  off, ``main.py:188-189``).
* The rungs' activation is ReLU and their norm the identity (their ``activation`` /
  ``norm`` config keys: ``elu`` in six of seven shipped configs, ``ln`` for arxiv);
  with ``depth >= 2`` the inner width is ``k`` (theirs is ``hidden_size``, 64).
* Subgraph edges are all edges among the sampled nodes (their random walk keeps
  only the walked ones).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor, nn
from torch_geometric.nn import global_mean_pool

from workloads.backbones.node import NodeInputs, target_and_mean
from workloads.peft.base import MethodConfig, TrainHooks, freeze, register_method
from workloads.peft.gnn import GNNStack


class EngineConfig(MethodConfig):
    layers: tuple[int, ...] | None = Field(
        default=None, description="LM layers feeding the rungs, ascending (0 = embeddings, -1 = last); "
        "null: 0, every third of the depth, and the last")
    r: int = Field(default=4, ge=1, description="reduction factor: rungs work in k = hidden / r dimensions")
    gnn: Literal["sage", "gcn"] = Field(default="sage", description="GNN of each rung (torch_geometric)")
    depth: int = Field(default=1, ge=1, le=4, description="GNN layers per rung")
    dropout: float = Field(default=0.2, ge=0, lt=1, description="dropout inside each rung's GNN")
    last_rung_activation: bool = Field(
        default=False, description="false (default): the last rung's last GNN layer has no activation, dropout only "
        "(the evident intent of the authors' main.py:271, models/encoder.py:187-192); true: it ends in activation "
        "as every other layer does (their code as run, where main.py:271 compares an LM layer id with a rung count)")
    temperature: float = Field(default=0.1, gt=0, description="T of the gates sigma(alpha / T)")
    sampler: Literal["one_hop", "rwr"] = Field(default="one_hop", description="subgraph around each node")
    subgraph_size: int = Field(default=8, ge=1, le=64, description="nodes per subgraph, the target included")
    walk_steps: int = Field(default=32, ge=1, description="rwr: steps of the walk")
    restart: float = Field(default=0.5, ge=0, lt=1, description="rwr: probability of returning to the start")
    patience: int | None = Field(
        default=1, ge=1, description="early exit once a node's prediction agreed with the previous rung's "
        "this many rungs in a row; 1 is the authors' rule (main.py:150), more is ours; null: off")
    min_exit_rung: int = Field(
        default=2, ge=1, description="first rung (counting from 1) at which a node may exit early; 2 is the "
        "authors' rule (rung 1 has no previous prediction, main.py:137); 1 lets the threshold (ours) exit there")
    threshold: float | None = Field(
        default=None, gt=0, le=1, description="ours, not the authors': early exit once a node's softmax "
        "confidence reaches this; null: off")

    @field_validator("layers")
    @classmethod
    def _layers(cls, v):
        if v is not None and (len(v) == 0 or len(set(v)) != len(v)):
            raise ValueError("layers must be a non-empty list without repeats")
        return v


def resolve_layers(cfg: EngineConfig, num_layers: int) -> list[int]:
    if cfg.layers is None:
        step = max(1, num_layers // 3)
        return sorted({0, *range(step, num_layers, step), num_layers})
    out = [l if l >= 0 else num_layers + 1 + l for l in cfg.layers]
    bad = [l for l, o in zip(cfg.layers, out) if not 0 <= o <= num_layers]
    if bad:
        raise ValueError(f"engine layers {bad} out of range: the LM has layers 0..{num_layers}")
    if out != sorted(set(out)):
        raise ValueError(f"engine layers {list(cfg.layers)} must be distinct and ascending")
    return out


def exit_now(agree: Tensor, conf: Tensor, last_rung: bool, patience: int | None, threshold: float | None,
             may_exit: bool = True) -> Tensor:
    """Which of the (still running) nodes exit at this rung: everyone at the last rung;
    elsewhere, where ``may_exit`` (the rung is at or past ``min_exit_rung``), those whose
    prediction agreed ``patience`` rungs in a row or whose confidence reaches ``threshold``."""
    out = torch.full_like(conf, last_rung, dtype=torch.bool)
    if not may_exit:
        return out
    if patience is not None:
        out |= agree >= patience
    if threshold is not None:
        out |= conf >= threshold
    return out


class Ladder(nn.Module):
    """The G-Ladder side network and its exits (see the module docstring).

    Args:
        hidden: LM state width :math:`d`. num_classes: exit head outputs.
        layers: the resolved LM layers of the rungs. cfg: :class:`EngineConfig`.
    """

    def __init__(self, hidden: int, num_classes: int, layers: list[int], cfg: EngineConfig) -> None:
        super().__init__()
        k = max(1, hidden // cfg.r)
        self.cfg, self.k = cfg, k
        self.reads = NodeInputs(layers=tuple(layers), cacheable=True, sampler=cfg.sampler, size=cfg.subgraph_size,
                                walk_steps=cfg.walk_steps, restart=cfg.restart)
        self.proj = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, k), nn.LayerNorm(k), nn.ReLU(), nn.Linear(k, k)) for _ in layers)
        self.alpha = nn.Parameter(torch.zeros(len(layers)))  # alpha[0] unused: rung 1 has no gate
        self.gnns = nn.ModuleList(GNNStack(k, k, cfg.depth, cfg.gnn, cfg.dropout) for _ in layers)
        self.exits = nn.ModuleList(nn.Linear(2 * k, num_classes) for _ in layers)
        self.last_run = None  # rows per LM block and exit rungs of the latest inference from text
        self.reset_inference()

    @property
    def early_exit(self) -> bool:
        return self.cfg.patience is not None or self.cfg.threshold is not None

    def may_exit(self, i: int) -> bool:
        """Whether rung ``i`` (0-based) may let nodes exit early."""
        return self.early_exit and i + 1 >= self.cfg.min_exit_rung

    def reset_inference(self) -> None:
        """Start the sums that :meth:`describe_inference` reports under ``since_reset``."""
        self.totals = {"calls": 0, "nodes": 0, "exits_per_rung": [0] * len(self.proj), "rows_per_block": []}

    def describe_inference(self) -> dict | None:
        """The latest inference from text (``exits_per_rung``, ``rows_per_block``) and, under
        ``since_reset``, the same summed over every call since :meth:`reset_inference`
        (``rows_per_block`` summed block by block; a call that ended early adds 0 to later blocks)."""
        if self.last_run is None:
            return None
        rungs = self.last_run["exit_rung"]
        t = self.totals
        return {"layers": list(self.reads.layers), "early_exit": self.early_exit,
                "exit_rule": {"patience": self.cfg.patience, "min_exit_rung": self.cfg.min_exit_rung,
                              "threshold": self.cfg.threshold},
                "exits_per_rung": [rungs.count(i) for i in range(len(self.proj))],
                "rows_per_block": self.last_run["rows_per_block"],
                "since_reset": {"calls": t["calls"], "nodes": t["nodes"], "exits_per_rung": list(t["exits_per_rung"]),
                                "rows_per_block": list(t["rows_per_block"])}}

    def _record(self, rows_per_block: list[int], exit_rung: list[int]) -> None:
        self.last_run = {"rows_per_block": rows_per_block, "exit_rung": exit_rung}
        t = self.totals
        t["calls"] += 1
        t["nodes"] += len(exit_rung)
        for r in exit_rung:
            t["exits_per_rung"][r] += 1
        rows = t["rows_per_block"]
        rows.extend([0] * (len(rows_per_block) - len(rows)))
        for j, n in enumerate(rows_per_block):
            rows[j] += n

    def gnn(self, i: int, x: Tensor, edge_index: Tensor) -> Tensor:
        """Rung ``i``'s GNN, the authors' encoder form (``models/encoder.py:183-192``): each layer
        conv → activation → dropout; the last rung's last layer skips the activation when
        ``last_rung_activation`` is false (the dropout stays, as theirs)."""
        stack = self.gnns[i]
        bare = i == len(self.gnns) - 1 and not self.cfg.last_rung_activation
        for j, conv in enumerate(stack.convs):
            x = conv(x, edge_index)
            if not (bare and j == len(stack.convs) - 1):
                x = stack.act(x)
            x = stack.drop(x)
        return x

    def rung(self, i: int, h: Tensor, prev: Tensor | None, edge_index: Tensor) -> Tensor:
        x = self.proj[i](h)
        if prev is not None:
            a = torch.sigmoid(self.alpha[i] / self.cfg.temperature)
            x = a * x + (1 - a) * prev
        return self.gnn(i, x, edge_index)

    def forward(self, model, batch):
        if batch.states is None and not self.training:
            return self.from_text(model, batch)
        states = model.lm_states(batch, list(self.reads.layers))
        prev, exits = None, []
        for i in range(len(self.proj)):
            prev = self.rung(i, states[i], prev, batch.edge_index)
            exits.append(self.exits[i](target_and_mean(prev, batch)))
        if self.training or not self.early_exit:
            return exits[-1], {"exits": exits}
        return self.simulate_exit(exits), {"exits": exits}

    def exit_rungs(self, exits: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Early-exit predictions from every rung's logits, the decisions :meth:`from_text`
        takes, and the (0-based) rung each node left at."""
        out = exits[-1].clone()
        rung = torch.full((out.shape[0],), len(exits) - 1, dtype=torch.long, device=out.device)
        done = torch.zeros(out.shape[0], dtype=torch.bool, device=out.device)
        agree = torch.zeros(out.shape[0], dtype=torch.long, device=out.device)
        prev_pred = None
        for i, lg in enumerate(exits):
            conf, pred = F.softmax(lg, -1).max(-1)
            if prev_pred is not None:
                agree = torch.where(pred == prev_pred, agree + 1, torch.zeros_like(agree))
            now = ~done & exit_now(agree, conf, i == len(exits) - 1, self.cfg.patience, self.cfg.threshold,
                                   self.may_exit(i))
            out[now] = lg[now]
            rung[now] = i
            done |= now
            prev_pred = pred
        return out, rung

    def simulate_exit(self, exits: list[Tensor]) -> Tensor:
        """Early-exit predictions from every rung's logits: the decisions :meth:`from_text` takes."""
        return self.exit_rungs(exits)[0]

    @torch.no_grad()
    def from_text(self, model, batch):
        """Inference from tokens: the LM block by block, exited subgraphs dropped from later blocks."""
        B, R = batch.num_targets, batch.rows.shape[0]
        out = torch.zeros(B, self.exits[0].out_features, device=batch.sub.device)
        alive = torch.ones(B, dtype=torch.bool, device=batch.sub.device)
        agree = torch.zeros(B, dtype=torch.long, device=batch.sub.device)
        prev_pred = torch.full((B,), -1, dtype=torch.long, device=batch.sub.device)
        st: dict = {"prev": None}
        exit_rung = torch.full((B,), len(self.proj) - 1, dtype=torch.long)
        layers = list(self.reads.layers)

        def tap_for(i: int):
            def tap(pooled: Tensor, rows: Tensor):
                keep = torch.zeros(R, dtype=torch.bool, device=rows.device)
                keep[rows] = True
                new_id = torch.cumsum(keep, 0) - 1
                e = batch.edge_index[:, keep[batch.edge_index[0]]]
                h = self.rung(i, pooled, st["prev"], new_id[e])
                subs = torch.unique(batch.sub[rows])  # the running targets, ascending
                local_sub = torch.searchsorted(subs, batch.sub[rows])
                readout = torch.cat([h[new_id[batch.target_pos[subs]]],
                                     global_mean_pool(h, local_sub, size=len(subs))], dim=-1)
                lg = self.exits[i](readout)
                conf, pred = F.softmax(lg, -1).max(-1)
                if i > 0:
                    agree[subs] = torch.where(pred == prev_pred[subs], agree[subs] + 1, torch.zeros_like(pred))
                prev_pred[subs] = pred
                now = exit_now(agree[subs], conf, i == len(self.proj) - 1, self.cfg.patience, self.cfg.threshold,
                               self.may_exit(i))
                out[subs[now]] = lg[now]
                exit_rung[subs[now].cpu()] = i
                alive[subs[now]] = False
                stay = alive[batch.sub[rows]]
                st["prev"] = h[stay]
                return rows[stay]
            return tap

        run = model.lm.run(batch.input_ids, batch.attention_mask, {l: tap_for(i) for i, l in enumerate(layers)})
        self._record(run.rows_per_block, exit_rung.tolist())
        return out, {}


@register_method("engine", EngineConfig, backbones=("language_model",))
def apply(model: nn.Module, cfg: EngineConfig) -> TrainHooks:
    freeze(model)
    layers = resolve_layers(cfg, model.lm.num_layers)
    model.body = Ladder(model.lm.hidden, model.num_classes, layers, cfg)

    def other_exits(m, batch, out) -> Tensor:  # the final exit's loss is the task loss
        return sum(F.cross_entropy(lg, batch.y) for lg in out["slots"]["exits"][:-1])

    hooks = TrainHooks(eval_modules=[model.lm], notes={"engine_layers": layers, "k": model.body.k})
    if len(layers) > 1:
        hooks.extra_loss.append(other_exits)
    return hooks
