"""``constant``: predict the training labels' mean for every example.

For regression that is the training mean (per task; the RMSE of predicting the mean);
for binary classification the positive rate, the class prior (ROC-AUC 0.5 by
construction, average precision the test set's positive rate); for node
classification the class frequencies, so the majority class. Nothing is searched
and the seed plays no part. The floor every learned model must clear: a dataset on
which no method beats it by the paired test has no signal.
"""
from __future__ import annotations

import warnings

import numpy as np

from workloads.peft.base import MethodConfig, ReferenceKind, register_method
from workloads.references.base import MEMORY_BY_TRACEMALLOC, Fitted


class ConstantConfig(MethodConfig):
    """The constant predictor has no parameters."""


def fit(cfg, task, data, seed: int, measure) -> Fitted:
    y = task.label_matrix(data, "train")
    with measure():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a task with no training label: NaN, scored as missing
            mean = np.nanmean(y, axis=0) if len(y) else np.zeros(y.shape[1])

    def predict(split: str) -> np.ndarray:
        return np.broadcast_to(mean, (len(task.label_matrix(data, split)), mean.shape[0])).copy()

    n = min(cfg.profile.latency_batch_size, len(task.label_matrix(data, "test")))
    return Fitted(predict=predict, latency_call=lambda: np.broadcast_to(mean, (n, mean.shape[0])).copy(),
                  latency_units=max(n, 1), fitted_values=int(mean.shape[0]), notes={"constant": mean.tolist()})


def _never_built(model, cfg):
    raise TypeError("constant is fitted outside the training loop (ReferenceKind.fit)")


register_method("constant", ConstantConfig, backbones=("graph_transformer", "language_model"),
                reference=ReferenceKind(memory_by=MEMORY_BY_TRACEMALLOC, fit=fit))(_never_built)
