"""Node classification on text-attributed graphs: one class per node, cross-entropy,
accuracy, latency per node.

A batch is a set of target nodes, each with the subgraph its method samples
around it (:class:`workloads.backbones.NodeInputs`), as one disjoint union. It
carries either the pooled LM states of the method's layers, read from the
LM-state cache (training and scoring of methods whose LM does not train), or the
node texts' tokens (LM fine-tuning, and every inference-latency measurement: a
prediction for a new node starts from its text).

Subgraphs are sampled once per node with a fixed seed (as the ENGINE authors
precompute them), so training, validation and test read the same neighbourhoods
and every configuration the same ones. Sampling is written by hand with NumPy:
PyG's ``k_hop_subgraph`` scans every edge per call and its random walks need
``torch_cluster``, which is not installed here.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from runfolder.io import stable_hash
from workloads.tasks import Task
from workloads.textgraphs.base import TextGraph
from workloads.util import LOAD_COUNTS

log = logging.getLogger(__name__)


@dataclass
class NodeBatch:
    """B target nodes and their subgraphs (R rows in all).

    ``rows`` [R]: global node index of each row; ``sub`` [R]: which target's subgraph it
    belongs to; ``target_pos`` [B]: the row of each target; ``edge_index`` [2, E] between
    rows; ``y`` [B]; ``states`` [L, R, H] cached pooled states or None; ``input_ids`` /
    ``attention_mask`` [R, T] tokens or None.
    """

    rows: Tensor
    sub: Tensor
    target_pos: Tensor
    edge_index: Tensor
    y: Tensor
    states: Tensor | None = None
    input_ids: Tensor | None = None
    attention_mask: Tensor | None = None

    @property
    def num_targets(self) -> int:
        return int(self.target_pos.shape[0])

    def to(self, device) -> "NodeBatch":
        return NodeBatch(**{k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items()})


def _csr(num_nodes: int, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected CSR adjacency without self-loops or repeats."""
    if edges.size:
        e = np.concatenate([edges, edges[::-1]], axis=1)
        e = e[:, e[0] != e[1]]
        e = np.unique(e, axis=1)
    else:
        e = np.zeros((2, 0), np.int64)
    order = np.lexsort((e[1], e[0]))
    e = e[:, order]
    indptr = np.zeros(num_nodes + 1, np.int64)
    np.add.at(indptr, e[0] + 1, 1)
    return np.cumsum(indptr), e[1].copy()


def sample_subgraph(node: int, indptr: np.ndarray, indices: np.ndarray, reads, rng: np.random.Generator) -> np.ndarray:
    """Node ids of the subgraph around ``node`` (``node`` first)."""
    nbrs = indices[indptr[node]:indptr[node + 1]]
    if reads.sampler == "none" or reads.size <= 1:
        return np.array([node], np.int64)
    if reads.sampler == "one_hop":
        pick = nbrs if len(nbrs) <= reads.size - 1 else rng.choice(nbrs, reads.size - 1, replace=False)
        return np.concatenate([[node], np.sort(pick)]).astype(np.int64)
    # random walk with restart: each step returns to the start with probability `restart`
    visited, seen, cur = [node], {node}, node
    for _ in range(reads.walk_steps):
        out = indices[indptr[cur]:indptr[cur + 1]]
        if rng.random() < reads.restart or len(out) == 0:
            cur = node
            continue
        cur = int(out[rng.integers(len(out))])
        if cur not in seen:
            seen.add(cur)
            visited.append(cur)
            if len(visited) >= reads.size:
                break
    return np.asarray(visited, np.int64)


def induced_edges(nodes: np.ndarray, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """[2, E] local indices of every edge among ``nodes`` (both directions)."""
    local = {int(n): i for i, n in enumerate(nodes)}
    src, dst = [], []
    for i, n in enumerate(nodes):
        for m in indices[indptr[n]:indptr[n + 1]]:
            j = local.get(int(m))
            if j is not None:
                src.append(i)
                dst.append(j)
    return np.array([src, dst], np.int64).reshape(2, -1)


@dataclass
class NodeData:
    """A text graph ready for training: splits, labels, adjacency, subgraphs, LM states."""

    graph: TextGraph
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    cache_dir: Path
    source: object
    train_subsampled_from: int | None = None
    task: str = "multiclass"
    _subgraphs: dict = field(default_factory=dict)
    _states: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.y = torch.tensor(np.array(self.graph.labels), dtype=torch.long)
        self.num_classes = len(self.graph.classes)
        self.indptr, self.indices = _csr(self.graph.num_nodes, self.graph.edges)

    def split(self, name: str) -> np.ndarray:
        return {"train": self.train, "valid": self.valid, "test": self.test}[name]

    def summary(self) -> dict:
        g = self.graph.summary()
        return {"name": self.graph.name, "task": self.task, "metric": self.source.metric,
                "num_train": len(self.train), "num_valid": len(self.valid), "num_test": len(self.test),
                "num_nodes": g["num_nodes"], "num_edges": g["num_edges"],
                "num_classes": g["num_classes"], "dropped_rows": g["dropped"],
                "train_subsampled_from": self.train_subsampled_from}

    def subgraphs(self, reads, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
        """(nodes, local edges) around every node, sampled once per sampler setting."""
        key = reads.subgraph_key()
        if key not in self._subgraphs:
            rng = np.random.default_rng(seed)
            out = []
            for n in range(self.graph.num_nodes):
                nodes = sample_subgraph(n, self.indptr, self.indices, reads, rng)
                out.append((nodes, induced_edges(nodes, self.indptr, self.indices)))
            self._subgraphs[key] = out
        return self._subgraphs[key]

    def states(self, lm, builder=None) -> np.ndarray:
        """[num_layers + 1, N, H] pooled states of every layer (memory-mapped), from the cache
        (built first by ``builder`` if absent; None: in this process with ``lm``)."""
        from workloads.textgraphs.lm_cache import cached_states

        key = (str(lm.folder), lm.cfg.max_length)
        if key not in self._states:
            arr, info = cached_states(self.graph.texts, list(range(lm.num_layers + 1)), self.cache_dir,
                                      lm=str(lm.folder), max_length=lm.cfg.max_length, model=lm, builder=builder,
                                      what=f"LM states of {self.graph.name} ({Path(lm.cfg.path).name})")
            self._states[key] = arr
            LOAD_COUNTS["lm_cache_builds" if info["built"] else "lm_cache_reads"] += 1
        return self._states[key]

    def batch(self, targets: np.ndarray, model, *, use_cache: bool, seed: int = 0) -> NodeBatch:
        """The batch of ``targets`` for ``model`` (its body's inputs); cached states when
        ``use_cache`` and the body allows it, else tokens."""
        reads = model.reads
        subs = self.subgraphs(reads, seed)
        rows, sub, tpos, edges, off = [], [], [], [], 0
        for b, t in enumerate(targets):
            nodes, e = subs[int(t)]
            rows.append(nodes)
            sub.append(np.full(len(nodes), b, np.int64))
            tpos.append(off)
            edges.append(e + off)
            off += len(nodes)
        rows_a = np.concatenate(rows)
        out = NodeBatch(
            rows=torch.from_numpy(rows_a), sub=torch.from_numpy(np.concatenate(sub)),
            target_pos=torch.as_tensor(tpos, dtype=torch.long),
            edge_index=torch.from_numpy(np.concatenate(edges, axis=1)), y=self.y[torch.as_tensor(targets)],
        )
        if use_cache and reads.cacheable:
            mm = self.states(model.lm)
            out.states = torch.from_numpy(np.ascontiguousarray(mm[np.ix_(list(reads.layers), rows_a)]))
        else:
            enc = model.lm.tokenize([self.graph.texts[i] for i in rows_a])
            out.input_ids, out.attention_mask = enc["input_ids"], enc["attention_mask"]
        return out


def _stratified_subsample(idx: np.ndarray, labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Exactly ``n`` of ``idx``, each class keeping its share (largest remainders round)."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels[idx], return_counts=True)
    share = n * counts / counts.sum()
    k = np.floor(share).astype(int)
    k[np.argsort(-(share - k), kind="stable")[: n - k.sum()]] += 1
    picks = [rng.choice(idx[labels[idx] == c], kc, replace=False) for c, kc in zip(classes, k) if kc]
    return np.sort(np.concatenate(picks))


_LOADED: dict[str, NodeData] = {}


def load_node_data(cfg, cache_dir: Path) -> NodeData:
    """The graph of ``cfg`` with its split; within one process, read once."""
    from workloads.datasets.sources import source_of

    source = source_of(cfg)
    key = stable_hash({"cfg": cfg.model_dump(), "data": source.fingerprint(cfg), "cache": str(cache_dir)})
    if key in _LOADED:
        LOAD_COUNTS["dataset_reuses"] += 1
        return _LOADED[key]
    g = source.read(cfg)
    split = np.asarray(g.split)
    train, valid, test = (np.flatnonzero(split == s) for s in ("train", "valid", "test"))
    full = None
    if cfg.max_train_nodes is not None and cfg.max_train_nodes < len(train):
        full = len(train)
        train = _stratified_subsample(train, g.labels, cfg.max_train_nodes, cfg.split_seed)
    LOAD_COUNTS["dataset_reads"] += 1
    _LOADED[key] = NodeData(g, train, valid, test, Path(cache_dir), source, full)
    return _LOADED[key]


class _Positions(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class NodeClassificationTask(Task):
    name = "node_classification"
    unit = "node"
    backbone_kind = "language_model"
    title = "Node-level: text-attributed graphs"
    full_reference = ("lm_full",)

    def metric(self, dataset) -> str:
        return "accuracy"

    def load(self, dataset_cfg, cache_dir, backbone=None):
        return load_node_data(dataset_cfg, cache_dir)  # the LM's states are cached per model (NodeData.states)

    def prepare(self, dataset_cfg, backbones, cache_dir, builder=None) -> str:
        """Read the graph and build the LM-state cache of each language model, once per sweep
        (by ``builder``: a sweep on Ray's Ray Data builder, which may pool here; None: this process)."""
        from workloads.backbones import BACKBONES

        data = self.load(dataset_cfg, cache_dir)
        notes = []
        for b in backbones:
            lm = BACKBONES.get(b.name).build(b.arch())
            data.states(lm, builder=builder)
            notes.append(f"LM states of {lm.num_layers + 1} layers cached for {Path(lm.cfg.path).name}")
        return "; ".join(notes)

    def make_model(self, backbone, data):
        from workloads.backbones import NodeModel

        return NodeModel(backbone, data.num_classes)

    def loss(self, data, pred, y):
        return F.cross_entropy(pred, y)

    def batch_units(self, batch) -> int:
        return batch.num_targets

    @torch.no_grad()
    def evaluate(self, model, data, split: str, batch_size: int, device) -> float:
        """Accuracy on ``split`` (cached states where the method reads them)."""
        model.eval()
        idx = data.split(split)
        if len(idx) == 0:
            return float("nan")
        correct = 0
        for start in range(0, len(idx), batch_size):
            batch = data.batch(idx[start:start + batch_size], model, use_cache=True).to(device)
            correct += int((model(batch).argmax(-1) == batch.y).sum())
        return correct / len(idx)

    def train_loader(self, data, batch_size: int, *, model=None, sampler=None, generator=None, drop_last=False):
        train = data.train

        def collate(pos: list[int]) -> NodeBatch:
            return data.batch(train[np.asarray(pos)], model, use_cache=True)

        return torch.utils.data.DataLoader(
            _Positions(len(train)), batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
            generator=generator if sampler is None else None, drop_last=drop_last, collate_fn=collate)

    def train_size(self, data) -> int:
        return len(data.train)

    def label_matrix(self, data, split: str) -> np.ndarray:
        return np.eye(data.num_classes)[data.y[data.split(split)].numpy()]

    def score_predictions(self, data, split: str, pred) -> float:
        idx = data.split(split)
        if len(idx) == 0:
            return float("nan")
        return float((np.asarray(pred).argmax(-1) == data.y[idx].numpy()).mean())

    def latency_batch(self, data, n: int, device, *, model=None):
        """Up to ``n`` test nodes with their subgraphs as *tokens*: inference from text."""
        targets = data.test[:n]
        return data.batch(targets, model, use_cache=False).to(device), len(targets)


__all__ = ["NodeBatch", "NodeClassificationTask", "NodeData", "load_node_data"]
