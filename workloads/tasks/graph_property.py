"""Graph-level molecular property prediction: T labels per molecule (T = 1 for most
sets; several for multi-task sets such as ogbg-moltox21, missing labels as NaN), a
linear head of T outputs on the backbone's graph token, BCE (classification) or MSE
on standardised labels (regression) over the labelled entries only, and the metric
as OGB's ``Evaluator`` computes it: the mean over tasks of ROC-AUC or average
precision (tasks whose split lacks a positive or a negative are left out), or of
per-task RMSE in label units. Latency per graph."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, roc_auc_score
from torch_geometric.loader import DataLoader

from workloads.tasks import Task


def multitask_score(y_true: np.ndarray, y_pred: np.ndarray, metric: str) -> float:
    """The mean over tasks of ``metric`` ("roc_auc", "ap", "rmse") on the labelled entries,
    by the rule of OGB's ``Evaluator`` (tested against it); NaN when no task qualifies.
    Written out because OGB's Evaluator only accepts OGB dataset names and raises where
    a split has no scorable task."""
    y_true = y_true.reshape(len(y_true), -1)
    y_pred = y_pred.reshape(len(y_pred), -1)
    scores = []
    for i in range(y_true.shape[1]):
        lab = ~np.isnan(y_true[:, i])
        t, p = y_true[lab, i], y_pred[lab, i]
        if metric == "rmse":
            if lab.any():
                scores.append(float(np.sqrt(np.mean((t - p) ** 2))))
        elif (t == 1).any() and (t == 0).any():
            scores.append(float(roc_auc_score(t, p) if metric == "roc_auc" else average_precision_score(t, p)))
    return float(np.mean(scores)) if scores else float("nan")


class GraphPropertyTask(Task):
    name = "graph_property"
    unit = "graph"
    backbone_kind = "graph_transformer"
    title = "Graph-level: molecular property prediction"
    full_reference = ("full",)

    def metric(self, dataset) -> str:
        from workloads.datasets.sources import source_of

        return source_of(dataset).metric

    def load(self, dataset_cfg, cache_dir, backbone=None):
        from workloads.backbones.base import coordinates_of
        from workloads.datasets import load_dataset

        arch = backbone.arch() if backbone else None
        return load_dataset(dataset_cfg, cache_dir, coordinates_of(arch) if arch else "2d",
                            path_hops=getattr(arch, "path_hops", 0),
                            mat_conformer_seed=getattr(arch, "mat_conformer_seed", None))

    def prepare(self, dataset_cfg, backbones, cache_dir, builder=None) -> str:
        s = self.load(dataset_cfg, cache_dir).summary()
        note = ""
        for b in backbones:  # the 3D conformers a backbone asks for, embedded once
            s3 = self.load(dataset_cfg, cache_dir, b).summary()
            if s3["coordinates"] == "3d" and not note:
                note = f"; 3D conformers, {s3['conformer_fallback_2d']} fell back to 2D"
            if "mat_conformer_seed" in s3:
                more = (f"; MAT authors' conformers (seed {s3['mat_conformer_seed']}), "
                        f"{s3['mat_conformer_fallback_2d']} fell back to 2D")
                note += more if more not in note else ""
        return (f"{s['num_train']}/{s['num_valid']}/{s['num_test']} train/valid/test "
                f"({s['num_invalid_smiles']} unparsable SMILES skipped{note})")

    def make_model(self, backbone, data):
        from workloads.backbones import GraphModel

        # the backbone's contract names the per-molecule attributes its attention reads
        graph = data.train[0] if data.train else None
        missing = [f for f in backbone.featurization if graph is not None and getattr(graph, f, None) is None]
        if missing:
            raise ValueError(f"backbone {type(backbone).__name__} reads {', '.join(missing)}, which the "
                             f"featurized '{data.source.name}' graphs do not carry")
        return GraphModel(backbone, out_dim=data.num_tasks)

    def loss(self, data, pred, y):
        labelled = ~torch.isnan(y)  # multi-task sets miss some labels: they carry no loss
        if data.task == "classification":
            return F.binary_cross_entropy_with_logits(pred[labelled], y[labelled])
        mean = torch.as_tensor(data.y_mean, dtype=pred.dtype, device=pred.device)
        std = torch.as_tensor(data.y_std, dtype=pred.dtype, device=pred.device)
        return F.mse_loss(pred[labelled], ((y - mean) / std)[labelled])

    @torch.no_grad()
    def evaluate(self, model, data, split: str, batch_size: int, device) -> float:
        """The source's metric (mean over tasks; regression in label units)."""
        model.eval()
        preds, ys = [], []
        for batch in DataLoader(getattr(data, split), batch_size=batch_size):
            batch = batch.to(device)
            preds.append(model(batch).float().cpu())
            ys.append(batch.y.float().cpu())
        p, y = torch.cat(preds).numpy(), torch.cat(ys).numpy()
        if data.task == "regression":
            p = p * np.asarray(data.y_std) + np.asarray(data.y_mean)
        return multitask_score(y, p, data.source.metric)

    def batch_units(self, batch) -> int:
        return int(batch.num_graphs)

    def train_loader(self, data, batch_size: int, *, model=None, sampler=None, generator=None,
                     drop_last: bool = False):
        return DataLoader(data.train, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
                          generator=generator if sampler is None else None, drop_last=drop_last)

    def train_size(self, data) -> int:
        return len(data.train)

    def label_matrix(self, data, split: str) -> np.ndarray:
        graphs = getattr(data, split)
        return np.stack([g.y.reshape(-1).float().numpy() for g in graphs]).astype(np.float64) if graphs \
            else np.zeros((0, data.num_tasks))

    def score_predictions(self, data, split: str, pred) -> float:
        return multitask_score(self.label_matrix(data, split), np.asarray(pred, np.float64), data.source.metric)

    def latency_batch(self, data, n: int, device, *, model=None):
        graphs = data.test[:n]
        return next(iter(DataLoader(graphs, batch_size=len(graphs)))).to(device), len(graphs)
