"""The sweep spec's models: what a spec may hold, its cells, and its resolved, hashed form.

Every section is strict (:class:`runfolder.strict.StrictModel`): unknown keys are
errors, values are frozen, non-finite numbers are refused. A backbone entry *is* the
workloads' :class:`~workloads.config.BackboneConfig` (validated once, where the spec
is read); a method entry becomes a :class:`~workloads.config.MethodSpec` through
:meth:`MethodEntry.resolve`, the one place its parameters are checked.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import Field, model_validator

from orchestrator.search import SearchParam
from orchestrator.spec.routing import route
from orchestrator.spec.secrets import mask_url
from runfolder.limits import Limit
from runfolder.strict import StrictModel
from workloads.config import BackboneConfig, MethodSpec, ProfileConfig, TrainConfig
from workloads.datasets.config import DatasetConfig
from workloads.util import stable_hash


class MethodEntry(StrictModel):
    """A method variant: a PEFT method plus training plug-ins, under its own name (the key)."""

    method: str | None = Field(default=None, description="registered PEFT method (default: the entry's key)")
    params: dict[str, Any] = Field(default_factory=dict, description="fixed method parameters")
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="training plug-ins by name with fixed parameters, applied in order"
    )
    search: dict[str, SearchParam] = Field(
        default_factory=dict,
        description="searched parameters: method parameters, training ones (lr, ...), or a plug-in's as "
        "'<plugin>.<field>' (e.g. proximal.weight)",
    )
    random_init: bool = Field(default=False, description="skip the backbone's pretraining: this variant is the "
                              "reference that measures what pretraining is worth")

    def method_name(self, key: str) -> str:
        return self.method or key

    def is_reference(self, key: str) -> bool:
        """A reference baseline (a registered reference method, or a random_init variant):
        drawn as a reference line, never on a front, never ranked at a rung."""
        from workloads.peft import METHODS

        return self.random_init or METHODS.get(self.method_name(key)).reference is not None

    def resolve(self, key: str, values: Mapping[str, Any] | None = None) -> tuple[MethodSpec, dict[str, Any]]:
        """This variant (``key``: its name in the spec) as a trial takes it, with ``values``
        (searched or given) sent where :func:`~orchestrator.spec.routing.route` says: the
        validated :class:`MethodSpec`, and the training parameters among ``values``.

        Raises RouteError for a key that goes nowhere, pydantic's ValidationError for
        invalid parameters (each at its path: ``params.r``, ``plugins.gist.kl_weight``)."""
        method = self.method_name(key)
        params, plugins, train = dict(self.params), {k: dict(v) for k, v in self.plugins.items()}, {}
        for k, v in (values or {}).items():
            r = route(k, method, plugins)
            if r.target == "plugin":
                plugins[r.plugin][r.field] = v
            else:
                (params if r.target == "method" else train)[r.field] = v
        return MethodSpec(name=method, params=params, plugins=plugins, variant=key,
                          random_init=self.random_init), train


class Stopping(StrictModel):
    """Early stopping: multi-objective asynchronous successive halving (``orchestrator.stopping``)."""

    type: Literal["none", "mo_asha"] = Field(
        default="none", description="none: every trial trains every epoch; mo_asha: a trial reports at rung "
        "epochs (min_epochs · reduction_factor^k) and goes on only if it ranks in the top 1/reduction_factor "
        "of the trials that reached that rung (a non-dominated sort of their objectives)")
    min_epochs: int = Field(default=1, ge=1, le=100_000, description="the first rung's epoch")
    reduction_factor: int = Field(default=3, ge=2, le=100, description="η: one trial in η goes on at each rung")
    scope: Literal["cell", "dataset"] = Field(
        default="cell", description="cell: a variant's trials are compared among themselves; dataset: every "
        "variant of a dataset × backbone (the front the report draws)")
    cost_tolerance: float = Field(
        default=0.05, ge=0, lt=1, description="at a rung, two trials' costs (memory, latency) that differ by "
        "less than this fraction, or than twice the standard error of their timed difference, are ties")


class Budget(StrictModel):
    trials_per_cell: int | None = Field(
        default=None, ge=1, le=100_000, description="finished trials per study (failed ones count; ones a crash cut "
        "short do not); with epochs_per_cell an optional cap; default 4 when neither is given")
    epochs_per_cell: int | None = Field(
        default=None, ge=1, le=1_000_000_000, description="training epochs a study may spend, summed over its trials "
        "and their seeds, stopped and failed ones included (a trial costs at least one), counted as work happens: a "
        "study asks for new configurations until it is spent, so epochs that early stopping saves buy new trials")
    sampler: Literal["tpe", "nsga2", "random"] = "tpe"
    n_startup_trials: int = Field(default=4, ge=1, le=100_000, description="random trials before TPE models the front")
    seeds: int = Field(
        default=1, ge=1, le=100,
        description="seeds each configuration trains with (initialisation and data order; the same seeds for "
        "every configuration); the objective is their mean validation score",
    )
    stopping: Stopping = Field(default_factory=Stopping,
                               description="early stopping of trials that rank low at a rung (with several seeds, "
                               "the first seed decides and the others train only if it went on)")
    confirm_seeds: int = Field(
        default=0, ge=0, le=100, description="when a cell's search ends, its Pareto-optimal configurations (by "
        "validation) train again on this many fresh seeds (after the search's), and the reports' statistics use "
        "those runs; 0: off")
    confirm_max: int = Field(default=3, ge=1, le=1000, description="at most this many of a cell's Pareto-optimal "
                             "configurations are confirmed, best validation score first")

    @model_validator(mode="before")
    @classmethod
    def _default_trials(cls, data):
        """Four trials per cell when no budget is given (as before ``epochs_per_cell`` existed, so a
        resolved spec of an older run reads the same)."""
        if isinstance(data, dict) and data.get("trials_per_cell") is None and data.get("epochs_per_cell") is None:
            data = {**data, "trials_per_cell": 4}
        return data


class Resources(StrictModel):
    num_workers: int = Field(default=1, ge=1, le=4096, description="Ray Train workers per trial")
    cpus_per_worker: int = Field(default=1, ge=1, le=4096, description="CPUs per worker; torch threads are pinned to it")
    use_gpu: bool = False
    gpus_per_worker: float = Field(
        default=1.0, gt=0, allow_inf_nan=False,
        description="with use_gpu: the GPU a worker takes, 1 (a whole GPU) or 1/k (0.5, 0.3333, 0.25, ...: k slots "
        "share one GPU through Ray's fractional GPUs, each trial process capping its CUDA allocator to its share; "
        "a trial past it is infeasible, cause share). A share needs num_workers: 1; more than one GPU per worker "
        "is not supported. One value for the whole sweep (the spec has one resources block), so fractions are "
        "never mixed. max_concurrent_trials is capped by the GPUs there × k. Only the Ray executor shares.")
    max_concurrent_trials: int = Field(default=1, ge=1, le=4096, description="slots: trials at once, each in its own long-lived worker group")
    trial_timeout_s: float | None = Field(
        default=None, gt=0, allow_inf_nan=False,
        description="a trial running longer (from when its worker takes it) is cut and recorded as failed; "
        "null: no limit",
    )
    max_retries: int = Field(
        default=1, ge=0, le=10, description="a trial whose worker died under it (killed, out of host memory, a "
        "lost node) runs again, same configuration, up to this many times; a trial that raises is not retried")


class Storage(StrictModel):
    root: str = Field(default="runs", description="results go to <root>/<name>/")
    optuna_url: str | None = Field(
        default=None, description="Optuna storage URL (e.g. postgresql://...); default $GRAPH_PEFT_OPTUNA_URL, "
        "else SQLite under the run")
    cache_dir: str | None = Field(
        default=None, description="dataset/checkpoint cache; default $GRAPH_PEFT_CACHE or ~/.cache/graph-peft-sweep"
    )
    heartbeat_s: float = Field(
        default=10.0, ge=1.0, le=3600.0, description="a driver's heartbeat for its running trials; a trial silent "
        "for 3 beats (its driver died) is failed as interrupted by the next driver that looks")


class SweepSpec(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="the sweep's base seed (trial seeds, samplers, splits)")
    datasets: list[DatasetConfig] = Field(min_length=1)
    backbones: list[BackboneConfig] = Field(min_length=1)
    methods: dict[str, MethodEntry] = Field(min_length=1)
    objectives: list[str] | None = Field(
        default=None, min_length=1,
        description="objectives every cell optimises, from its task's (e.g. score, train_memory_mb, "
        "latency_ms_per_graph); null: each cell its own task's objectives",
    )
    constraints: dict[str, Limit] = Field(
        default_factory=dict,
        description="hard limits by objective name (e.g. train_memory_mb: {max: 2000}): a trial past one is "
        "stopped as soon as that is measured and recorded infeasible (cause limit); also with stopping none",
    )
    train: TrainConfig = Field(default_factory=TrainConfig)
    profile: ProfileConfig = Field(default_factory=ProfileConfig)
    budget: Budget = Field(default_factory=Budget)
    resources: Resources = Field(default_factory=Resources)
    storage: Storage = Field(default_factory=Storage)

    def cell_objectives(self, cell: "Cell") -> list[str]:
        """The objectives of one cell: the spec's list, or its task's own."""
        from workloads.tasks import task_of

        d = self.datasets[cell.dataset_index]
        return list(self.objectives) if self.objectives is not None else list(task_of(d).objectives)

    def cells(self) -> list["Cell"]:
        """Every dataset × backbone × method variant that fit together: the dataset's task
        builds on one kind of backbone (a graph transformer for molecules, a language model
        for text graphs), and each method and plug-in declares the kinds it applies to."""
        return [
            Cell(d.name, b.name, m, di, bi)
            for di, d in enumerate(self.datasets)
            for bi, b in enumerate(self.backbones)
            for m, entry in self.methods.items()
            if compatible(d, b.name, entry.method_name(m), entry.plugins)
        ]

    def budget_of(self, cell: "Cell") -> int | None:
        """Trials the cell runs at most: ``budget.trials_per_cell`` (None: no cap, the epochs
        decide), or one for a reference baseline that searches nothing (its one configuration,
        at fixed settings)."""
        entry = self.methods[cell.method]
        return 1 if entry.is_reference(cell.method) and not entry.search else self.budget.trials_per_cell

    def committed_epochs(self, cell: "Cell", reached: int) -> int:
        """The epochs a running trial that last reached rung epoch ``reached`` (0: none) is
        committed to: up to its next rung decision, else its whole training over every seed."""
        from orchestrator.stopping import rung_epochs

        st, epochs = self.budget.stopping, self.train.epochs
        rungs = rung_epochs(st.min_epochs, st.reduction_factor, epochs) if st.type != "none" else []
        nxt = next((r for r in rungs if r > reached), None)
        return nxt if nxt is not None else epochs * self.budget.seeds

    def epochs_of(self, cell: "Cell") -> int | None:
        """Training epochs the cell may spend (``budget.epochs_per_cell``); None for a cell
        bounded by trials alone (a reference baseline that searches nothing)."""
        entry = self.methods[cell.method]
        return None if entry.is_reference(cell.method) and not entry.search else self.budget.epochs_per_cell

    def resolved(self) -> dict:
        """The spec with defaults filled in, as written to the run folder: secrets masked
        (the storage URL's password), so the hash and the file never carry them."""
        d = self.model_dump(mode="json")
        d["storage"]["optuna_url"] = mask_url(d["storage"]["optuna_url"])
        return d

    def content_hash(self, exclude_budget: bool = False) -> str:
        d = self.resolved()
        if exclude_budget:  # what may change on resume: how many trials or epochs, not what a trial means
            d["budget"].pop("trials_per_cell")
            d["budget"].pop("epochs_per_cell")
        return stable_hash(d)

    def run_dir(self, base: Path | None = None) -> Path:
        return (base or Path.cwd()) / self.storage.root / self.name


def family_of(dataset: DatasetConfig) -> str | None:
    from workloads.datasets import family_of as source_family

    return source_family(dataset)


def backbone_kind_of(dataset: DatasetConfig) -> str | None:
    from workloads.tasks import task_of

    return task_of(dataset).backbone_kind if family_of(dataset) is not None else None


def compatible(dataset: DatasetConfig, backbone: str, method: str, plugins: dict) -> bool:
    """Whether a dataset's task, a backbone, a method and plug-ins fit one kind of backbone."""
    from workloads.backbones import BACKBONES
    from workloads.peft import METHODS
    from workloads.plugins import PLUGINS

    kind = backbone_kind_of(dataset)
    if kind is None or backbone not in BACKBONES or method not in METHODS:
        return False
    return (BACKBONES.get(backbone).kind == kind and kind in METHODS.get(method).backbones
            and all(p in PLUGINS and kind in PLUGINS.get(p).backbones for p in plugins))


class Cell:
    """One study: dataset × backbone × method variant (``method`` is the variant's name)."""

    def __init__(self, dataset: str, backbone: str, method: str, di: int, bi: int) -> None:
        self.dataset, self.backbone, self.method = dataset, backbone, method
        self.dataset_index, self.backbone_index = di, bi

    @property
    def id(self) -> str:
        return f"{self.dataset}__{self.backbone}__{self.method}"

    def __repr__(self) -> str:
        return f"Cell({self.id})"


def dump_resolved(spec: SweepSpec) -> str:
    header = (f"# resolved sweep spec; content hash {spec.content_hash()}\n"
              f"# cells: {len(spec.cells())}\n")  # read by the report: how many studies the sweep has
    return header + yaml.safe_dump(json.loads(json.dumps(spec.resolved())), sort_keys=False)
