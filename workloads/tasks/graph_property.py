"""Graph-level molecular property prediction: one label per molecule, a linear
head on the backbone's graph token, BCE (classification, ROC-AUC) or MSE on
standardised labels (regression, RMSE in label units), latency per graph."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch_geometric.loader import DataLoader

from workloads.tasks import Task


class GraphPropertyTask(Task):
    name = "graph_property"
    unit = "graph"
    backbone_kind = "graph_transformer"

    def metric(self, dataset) -> str:
        from workloads.datasets.sources import SOURCES, source_of

        return (SOURCES.get(dataset) if isinstance(dataset, str) else source_of(dataset)).metric

    def load(self, dataset_cfg, cache_dir):
        from workloads.datasets import load_dataset

        return load_dataset(dataset_cfg, cache_dir)

    def prepare(self, dataset_cfg, backbones, cache_dir) -> str:
        s = self.load(dataset_cfg, cache_dir).summary()
        return (f"{s['num_train']}/{s['num_valid']}/{s['num_test']} train/valid/test "
                f"({s['num_invalid_smiles']} unparsable SMILES skipped)")

    def make_model(self, backbone, data):
        from workloads.backbones import GraphModel

        return GraphModel(backbone, out_dim=1)

    def loss(self, data, pred, y):
        if data.task == "classification":
            return F.binary_cross_entropy_with_logits(pred, y)
        return F.mse_loss(pred, (y - data.y_mean) / data.y_std)

    @torch.no_grad()
    def evaluate(self, model, data, split: str, batch_size: int, device) -> float:
        """ROC-AUC (classification) or RMSE in label units (regression)."""
        model.eval()
        preds, ys = [], []
        for batch in DataLoader(getattr(data, split), batch_size=batch_size):
            batch = batch.to(device)
            preds.append(model(batch).float().cpu())
            ys.append(batch.y.float().cpu())
        p, y = torch.cat(preds).numpy().ravel(), torch.cat(ys).numpy().ravel()
        if data.task == "classification":
            if len(np.unique(y)) < 2:
                return float("nan")
            return float(roc_auc_score(y, p))
        p = p * data.y_std + data.y_mean
        return float(np.sqrt(np.mean((p - y) ** 2)))

    def batch_units(self, batch) -> int:
        return int(batch.num_graphs)

    def train_loader(self, data, batch_size: int, *, model=None, sampler=None, generator=None,
                     drop_last: bool = False):
        return DataLoader(data.train, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
                          generator=generator if sampler is None else None, drop_last=drop_last)

    def train_size(self, data) -> int:
        return len(data.train)

    def latency_batch(self, data, n: int, device, *, model=None):
        graphs = data.test[:n]
        return next(iter(DataLoader(graphs, batch_size=len(graphs)))).to(device), len(graphs)
