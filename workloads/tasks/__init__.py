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
family (its source's ``family``). Two families are registered: graph-level
molecular property prediction and node classification on text-attributed graphs.
A dataset is passed around as its validated entry (its source's config model; a
user's own CSV graph has a name of its own and a registered *kind*).
"""
from __future__ import annotations

import abc
from typing import Literal

from workloads.metrics import METRIC_DIRECTIONS, metric_direction
from workloads.registry import Registry

MEMORY_OBJECTIVE = "train_memory_mb"


class Task(abc.ABC):
    """A task family (see the module docstring). Stateless: one instance serves every trial."""

    name: str
    unit: str  # what one inference latency figure is per: "graph", "node"
    backbone_kind: str  # the backbones (BackboneSpec.kind) its models are built on, and so its methods
    title: str  # the family's heading in reports
    # methods that train every weight: the reference each PEFT method is compared with in reports
    full_reference: tuple[str, ...] = ()

    @property
    def latency_objective(self) -> str:
        return f"latency_ms_per_{self.unit}"

    @property
    def objectives(self) -> tuple[str, ...]:
        """Every objective a trial of this family reports, in the default order."""
        return ("score", MEMORY_OBJECTIVE, self.latency_objective)

    def objective_directions(self, dataset) -> dict[str, str]:
        """Direction of each objective for one dataset (the score's comes from its metric)."""
        return {o: (self.direction(dataset) if o == "score" else "minimize") for o in self.objectives}

    @abc.abstractmethod
    def metric(self, dataset) -> str:
        """The score's metric on ``dataset`` (a DatasetConfig; a key of ``METRIC_DIRECTIONS``)."""

    def direction(self, dataset) -> Literal["maximize", "minimize"]:
        return metric_direction(self.metric(dataset))

    @abc.abstractmethod
    def load(self, dataset_cfg, cache_dir, backbone=None):
        """The dataset's featurized splits (cached), as ``backbone`` (a BackboneConfig;
        None: the default featurization) needs them."""

    def prepare(self, dataset_cfg, backbones, cache_dir, builder=None) -> str:
        """Everything a trial would otherwise build itself, done once per sweep before any
        trial (featurization, LM-state caches) for the given backbone configs; returns a
        one-line summary. ``builder``: who builds LM-state caches (a
        :class:`workloads.textgraphs.lm_cache.StateBuilder`; None: this process)."""
        s = self.load(dataset_cfg, cache_dir).summary()
        return f"{s['num_train']}/{s['num_valid']}/{s['num_test']} train/valid/test"

    @abc.abstractmethod
    def batch_units(self, batch) -> int:
        """Examples (graphs, target nodes) in a training batch."""

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
    def train_loader(self, data, batch_size: int, *, model=None, sampler=None, generator=None,
                     drop_last: bool = False):
        """Batches of the training split (for ``model``: what its method reads)."""

    @abc.abstractmethod
    def train_size(self, data) -> int:
        """Training examples (graphs or nodes): for sharding and drop_last."""

    @abc.abstractmethod
    def label_matrix(self, data, split: str):
        """[n, T] labels of ``split`` as a float array for models outside the training loop
        (reference baselines): T tasks' labels (NaN where missing), or one-hot classes."""

    @abc.abstractmethod
    def score_predictions(self, data, split: str, pred) -> float:
        """The metric of ``pred`` ([n, T], in :meth:`label_matrix`'s layout and label units)
        on ``split``, as :meth:`evaluate` scores a model."""

    @abc.abstractmethod
    def latency_batch(self, data, n: int, device, *, model=None) -> tuple[object, int]:
        """A batch of up to ``n`` test examples for timing inference (for ``model``), and how
        many units it holds."""


TASKS: Registry[Task] = Registry("task family")


def task_of(dataset) -> Task:
    """The task family of a dataset (its validated entry, or a registered dataset's name)."""
    from workloads.datasets.sources import family_of

    return TASKS.get(family_of(dataset))


def _register() -> None:
    from workloads.tasks.graph_property import GraphPropertyTask
    from workloads.tasks.node_classification import NodeClassificationTask

    TASKS.add(GraphPropertyTask.name, GraphPropertyTask())
    TASKS.add(NodeClassificationTask.name, NodeClassificationTask())


_register()

__all__ = ["METRIC_DIRECTIONS", "TASKS", "Task", "metric_direction", "task_of"]
