"""Task families: what a trial learns, and how it is scored and timed.

The training loop, the sweep and the reports know no task by name; a registered
:class:`Task` supplies

* its data and splits (``load``),
* the model head on a backbone and the loss (``make_model``, ``loss``),
* the metric and its direction (``metric``, ``direction``),
* the unit of inference latency (``unit``: per graph, per node), which names the
  latency objective,

and its objective names (``objectives``) flow unchanged to the spec validation,
Optuna's directions, the trial records and the reports. A dataset names its task
family (``MoleculeSource.family``). Graph-level molecular property prediction is
registered here; node classification on text-attributed graphs is the next family.
"""
from __future__ import annotations

import abc
from typing import Literal

from workloads.registry import Registry

# Direction of every metric a task may report.
METRIC_DIRECTIONS: dict[str, Literal["maximize", "minimize"]] = {
    "roc_auc": "maximize", "ap": "maximize", "accuracy": "maximize", "f1": "maximize",
    "rmse": "minimize", "mae": "minimize",
}
MEMORY_OBJECTIVE = "train_memory_mb"


def metric_direction(metric: str) -> Literal["maximize", "minimize"]:
    try:
        return METRIC_DIRECTIONS[metric]
    except KeyError:
        raise ValueError(f"metric '{metric}' has no known direction; known: {', '.join(METRIC_DIRECTIONS)}") from None


class Task(abc.ABC):
    """A task family (see the module docstring). Stateless: one instance serves every trial."""

    name: str
    unit: str  # what one inference latency figure is per: "graph", "node"

    @property
    def latency_objective(self) -> str:
        return f"latency_ms_per_{self.unit}"

    @property
    def objectives(self) -> tuple[str, ...]:
        """Every objective a trial of this family reports, in the default order."""
        return ("score", MEMORY_OBJECTIVE, self.latency_objective)

    def objective_directions(self, dataset: str) -> dict[str, str]:
        """Direction of each objective for one dataset (the score's comes from its metric)."""
        return {o: (self.direction(dataset) if o == "score" else "minimize") for o in self.objectives}

    @abc.abstractmethod
    def metric(self, dataset: str) -> str:
        """The score's metric on ``dataset`` (a key of ``METRIC_DIRECTIONS``)."""

    def direction(self, dataset: str) -> Literal["maximize", "minimize"]:
        return metric_direction(self.metric(dataset))

    @abc.abstractmethod
    def load(self, dataset_cfg, cache_dir):
        """The dataset's featurized splits (cached)."""

    @abc.abstractmethod
    def make_model(self, backbone, data):
        """The backbone with this family's prediction head."""

    @abc.abstractmethod
    def loss(self, data, pred, y):
        """Training loss of a prediction against raw labels."""

    @abc.abstractmethod
    def evaluate(self, model, data, split: str, batch_size: int, device) -> float:
        """The metric on ``split`` ("valid" or "test")."""

    @abc.abstractmethod
    def train_loader(self, data, batch_size: int, *, sampler=None, generator=None, drop_last: bool = False):
        """Batches of the training split."""

    @abc.abstractmethod
    def train_size(self, data) -> int:
        """Training examples (graphs or nodes): for sharding and drop_last."""

    @abc.abstractmethod
    def latency_batch(self, data, n: int, device) -> tuple[object, int]:
        """A batch of up to ``n`` test examples for timing inference, and how many units it holds."""


TASKS: Registry[Task] = Registry("task family")


def task_of(dataset: str) -> Task:
    """The task family of a registered dataset."""
    from workloads.datasets.sources import SOURCES

    return TASKS.get(SOURCES.get(dataset).family)


def _register() -> None:
    from workloads.tasks.graph_property import GraphPropertyTask

    TASKS.add(GraphPropertyTask.name, GraphPropertyTask())


_register()

__all__ = ["METRIC_DIRECTIONS", "TASKS", "Task", "metric_direction", "task_of"]
