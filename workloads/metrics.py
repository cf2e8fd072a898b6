"""Every metric a task may report, and its direction (a bottom module: sources and tasks both read it)."""
from __future__ import annotations

from typing import Literal

METRIC_DIRECTIONS: dict[str, Literal["maximize", "minimize"]] = {
    "roc_auc": "maximize", "ap": "maximize", "accuracy": "maximize", "f1": "maximize",
    "rmse": "minimize", "mae": "minimize",
}


def metric_direction(metric: str) -> Literal["maximize", "minimize"]:
    try:
        return METRIC_DIRECTIONS[metric]
    except KeyError:
        raise ValueError(f"metric '{metric}' has no known direction; known: {', '.join(METRIC_DIRECTIONS)}") from None
