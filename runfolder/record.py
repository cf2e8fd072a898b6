"""The trial record: one typed model, one schema, one version.

Who writes what (each part has one writer):

* the **worker** (``workloads.run_trial`` through an executor) builds the record:
  ``config``, ``task``, ``base_method``, ``plugins``, ``metrics`` (with the per-epoch
  history), ``objectives`` (every objective of its task), ``memory``, ``latency``,
  ``seeds``, parameter counts, ``dataset`` (its summary), ``device``, ``process``,
  ``timings.train_s``/``total_s``; or, when the trial raised, ``status`` ``failed`` /
  ``infeasible`` with ``error`` and ``traceback``;
* the **executor** adds where and when it ran: :meth:`TrialRecord.ran_in_worker`,
  :meth:`TrialRecord.ran_on`;
* the **driver** adds what only it knows through named methods:
  :meth:`TrialRecord.assign` (the cell, the Optuna trial, its parameters and the
  cell's objectives), :meth:`TrialRecord.received` (timestamps, wall time, overhead,
  retries), :meth:`TrialRecord.settle` (the values told to Optuna);
  :meth:`TrialRecord.interrupted` builds the record of a trial cut short.

It is written and read only through :class:`runfolder.RunDir`; records written
before the schema had a version (``schema_version`` absent, the code at 420bab7)
are upgraded on reading by :func:`upgrade`. Nothing here imports torch.
"""
from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 2

Status = Literal["ok", "failed", "infeasible", "interrupted", "stopped"]
InfeasibleCause = Literal["oom", "limit", "share"]


class _Part(BaseModel):
    """Every part of a record: unknown keys are errors (a typo is not a new field), and
    NaN is kept and written as JSON's NaN (a diverged seed's score is data)."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class Epoch(_Part):
    epoch: int
    train_loss: float
    val_score: float


class Metrics(_Part):
    """Scores of the trial: validation selects, test is reported beside it."""

    metric: str
    direction: Literal["maximize", "minimize"]
    selection: str = "validation"
    val_score: float = Field(description="mean over seeds of each seed's best validation score")
    val_std: float = 0.0
    test_score: float = float("nan")
    test_std: float = 0.0
    val_scores: list[float] = Field(default_factory=list, description="per seed")
    test_scores: list[float] = Field(default_factory=list, description="per seed, at its selected epoch")
    best_epoch: int | None = None
    history: list[Epoch] = Field(default_factory=list, description="the first seed's epochs")

    @property
    def seeds(self) -> int:
        return len(self.val_scores) or 1


class Rung(_Part):
    """What a running trial reported at a rung epoch: its validation score and its costs so far."""

    epoch: int
    values: dict[str, float]
    noise: dict[str, float] = Field(default_factory=dict, description="each measured cost's standard error "
                                    "(latency: of its median); a rung decision treats differences within it as ties")


class Memory(_Part):
    device: str
    method: str = Field(description="how peak_train_bytes was measured")
    peak_train_bytes: int
    peak_train_mb: float
    eval_peak_bytes: int | None = None
    parts: dict[str, int] = Field(default_factory=dict, description="a breakdown, not a peak")
    sum_of_parts_bytes: int = 0
    rss_bytes: int = 0
    rss_peak_bytes: int = 0
    detail: dict[str, Any] = Field(default_factory=dict)


class Timing(_Part):
    """One latency measurement: the median of timed no-grad forwards after warm-up."""

    device: str
    method: str
    batch_size: int
    median_s: float
    p90_s: float
    repeats: int
    warmup: int
    num_threads: int
    unit: str = "graph"
    ms_per_unit: float
    se_ms_per_unit: float | None = Field(
        default=None, description="standard error of the median per unit (1.253 · 1.4826 · MAD / √repeats): "
        "the spread two trials' latencies must exceed to count as different at a rung")
    lock_wait_s: float | None = Field(
        default=None, description="seconds waited for the GPU's timing lock before timing (a GPU shared by "
        "several slots: neighbours never time at once); None: no lock (a CPU, or a whole GPU)")


class Latency(Timing):
    """The deployed model's latency (merged weights where the method has a deploy form)."""

    as_trained: Timing | None = None
    deployed: bool = False
    deploy_max_abs_diff: float = 0.0
    inference: dict[str, Any] | None = Field(default=None, description="what the timed model reported (exits)")
    ms_per_unit_seeds: list[float] | None = Field(default=None, description="per seed (the trial's: the median)")


class SeedResult(_Part):
    seed: int
    val_score: float
    test_score: float
    best_epoch: int
    history: list[Epoch]
    memory: Memory
    latency: Latency
    train_s: float
    trainable_params: int
    total_params: int


class Overhead(_Part):
    submit_to_worker_s: float | None = None
    worker_glue_s: float | None = None
    worker_to_driver_s: float | None = None


class Timings(_Part):
    train_s: float | None = None
    total_s: float | None = Field(default=None, description="the trial's own run, in the worker")
    submitted_unix: float | None = None
    worker_process_start_unix: float | None = None
    worker_ready_unix: float | None = None
    worker_start_unix: float | None = None
    worker_done_unix: float | None = None
    driver_received_unix: float | None = None
    overhead: Overhead | None = None


class DeviceInfo(_Part):
    type: str
    name: str
    host: str
    torch_threads: int | None = None


class ProcessInfo(_Part):
    pid: int
    loads: dict[str, int] = Field(default_factory=dict,
                                  description="this process's data and checkpoint loads so far (long-lived workers)")


class GpuShare(_Part):
    """A slot's share of a GPU that ``k`` slots share (``resources.gpus_per_worker`` = 1/k).

    Ray's fractional GPUs are bookkeeping only, so each trial process caps its own CUDA
    allocator (``torch.cuda.set_per_process_memory_fraction(cap)``) with
    ``cap = (total − k·context − margin) / (k·total)``: k caps, k contexts and the margin
    make the whole device (:func:`workloads.gpu_share.share_cap`)."""

    fraction: float = Field(description="1/k, what the slot asked Ray for")
    k: int = Field(description="slots sharing the GPU")
    cap: float | None = Field(default=None, description="the allocator's cap, a fraction of total_bytes; "
                              "None: no CUDA device was visible, nothing was capped")
    cap_bytes: int | None = None
    total_bytes: int | None = None
    context_bytes: int | None = Field(default=None, description="one CUDA context, measured or assumed")
    context_measured: bool = False
    margin_bytes: int | None = None
    note: str = Field(default="", description="how the context was measured, or why it was assumed")


class ExecutorInfo(_Part):
    kind: str
    slot: int | None = None
    worker_pid: int | None = None
    trials_served_by_worker: int | None = None
    world_size: int | None = None
    node_id: str | None = None
    node_ip: str | None = None
    ray_run: str | None = None
    gpu_share: GpuShare | None = Field(default=None, description="the slot's share of a shared GPU; None: a "
                                       "whole GPU or none")


class Infeasible(_Part):
    """Why a configuration cannot run here: out of memory (``oom``), over a user's hard
    limit (``limit``), or over its share of a shared GPU (``share``)."""

    cause: InfeasibleCause
    objective: str | None = None
    bound: Literal["min", "max"] | None = Field(default=None, description="which side of the limit it passed")
    limit: float | None = None
    measured: float | None = None


class Reference(_Part):
    """A reference baseline's trial (``constant``, ``ecfp_rf``, ``text_mlp``, a ``random_init``
    variant): drawn as a reference line, never on a front, in a hypervolume, a knee or a rung."""

    kind: str = Field(description="what it is: the registered reference method, or random_init")
    memory_by: str = Field(description="how its memory was measured (the torch allocator, tracemalloc)")
    note: str = ""


class TrialRecord(_Part):
    schema_version: int = SCHEMA_VERSION
    trial_id: str = ""
    status: Status = "ok"
    error: str | None = None
    traceback: str | None = None
    infeasible: Infeasible | None = None
    worker_lost: bool = Field(default=False, description="the worker died under the trial (the driver may retry)")
    # the worker's
    task: str | None = None
    config: dict[str, Any] | None = Field(default=None, description="the TrialConfig the worker ran")
    base_method: str | None = None
    plugins: list[str] = Field(default_factory=list)
    metrics: Metrics | None = None
    rungs: list[Rung] = Field(default_factory=list)
    objectives: dict[str, float] = Field(default_factory=dict, description="every objective of the task")
    memory: Memory | None = None
    latency: Latency | None = None
    seeds: list[SeedResult] = Field(default_factory=list)
    epochs_trained: int | None = Field(default=None, description="training epochs the trial ran, summed over its "
                                       "seeds (what it spent of budget.epochs_per_cell)")
    trainable_params: int | None = None
    total_params: int | None = None
    pretrained: dict[str, Any] | None = None
    notes: dict[str, Any] = Field(default_factory=dict)
    reference: Reference | None = Field(default=None, description="set on a reference baseline's trial")
    dataset: dict[str, Any] | None = Field(default=None, description="the dataset's summary")
    device: DeviceInfo | None = None
    process: ProcessInfo | None = None
    rank: int = 0
    world_size: int = 1
    # the executor's
    executor: ExecutorInfo | None = None
    timings: Timings = Field(default_factory=Timings)
    # the driver's
    cell: str | None = None
    dataset_name: str | None = None
    backbone_name: str | None = None
    method: str | None = Field(default=None, description="the method variant (a key of the spec's methods)")
    optuna_trial: int | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    objective_names: list[str] = Field(default_factory=list, description="the cell's objectives, in Optuna's order")
    values: list[float] | None = None
    wall_s: float | None = None
    retried_after: list[str] = Field(default_factory=list)
    confirms: int | None = Field(default=None, description="a confirmation run: the search trial (its number) "
                                 "whose configuration trained again on fresh seeds")

    # -- built by workers and executors --------------------------------------
    @classmethod
    def failure(cls, error: str, tb: str = "", *, trial_id: str = "", worker_lost: bool = False) -> "TrialRecord":
        """A trial that raised (or whose worker died: ``worker_lost``)."""
        return cls(trial_id=trial_id, status="failed", error=error[:2000], traceback=tb[-8000:],
                   worker_lost=worker_lost)

    def mark_infeasible(self, cause: InfeasibleCause, error: str, *, objective: str | None = None,
                        limit: float | None = None, measured: float | None = None,
                        bound: Literal["min", "max"] | None = None) -> "TrialRecord":
        self.status, self.error = "infeasible", error[:2000]
        if bound is None and limit is not None and measured is not None:
            bound = "max" if measured > limit else "min"
        self.infeasible = Infeasible(cause=cause, objective=objective, bound=bound, limit=limit, measured=measured)
        return self

    def ran_in_worker(self, start_unix: float, done_unix: float, **more: float) -> "TrialRecord":
        """The worker's timestamps around the trial (and the slot's process start, ready)."""
        self.timings = self.timings.model_copy(update={"worker_start_unix": start_unix,
                                                       "worker_done_unix": done_unix, **more})
        return self

    def ran_on(self, info: ExecutorInfo) -> "TrialRecord":
        self.executor = info
        return self

    # -- completed by the driver ---------------------------------------------
    @classmethod
    def interrupted(cls, *, cell: str, dataset: str, backbone: str, method: str, number: int, params: dict,
                    error: str) -> "TrialRecord":
        """A trial cut short (its driver died, or another driver took the budget): it
        does not use budget."""
        return cls(status="interrupted", error=error, cell=cell, dataset_name=dataset, backbone_name=backbone,
                   method=method, optuna_trial=number, params=dict(params))

    def assign(self, *, cell: str, dataset: str, backbone: str, method: str, number: int | None, params: dict,
               objective_names: list[str]) -> "TrialRecord":
        """Which cell and Optuna trial this is (None: a trial run by hand), with the proposed values."""
        self.cell, self.dataset_name, self.backbone_name, self.method = cell, dataset, backbone, method
        self.optuna_trial, self.params, self.objective_names = number, dict(params), list(objective_names)
        return self

    def confirmation_of(self, number: int) -> "TrialRecord":
        """This record is a confirmation run of the cell's search trial ``number`` (same
        configuration, fresh seeds; never told to Optuna)."""
        self.confirms = number
        return self

    def received(self, *, submitted_unix: float, received_unix: float, wall_s: float,
                 retried_after: list[str]) -> "TrialRecord":
        """When the driver sent and got it back; the overhead outside the workload (seconds;
        across hosts the differences include their clock offset)."""
        self.wall_s, self.retried_after = wall_s, list(retried_after)
        t = self.timings
        if t.worker_start_unix is not None:
            t = t.model_copy(update={"submitted_unix": t.submitted_unix or submitted_unix,
                                     "driver_received_unix": t.driver_received_unix or received_unix})
            t.overhead = Overhead(
                submit_to_worker_s=t.worker_start_unix - t.submitted_unix,  # mailbox; slot start on its first trial
                # config validation, result assembly: the worker's time outside run_trial
                worker_glue_s=(t.worker_done_unix - t.worker_start_unix - (t.total_s or 0.0)
                               if t.worker_done_unix is not None else None),
                worker_to_driver_s=(t.driver_received_unix - t.worker_done_unix
                                    if t.worker_done_unix is not None else None),
            )
            self.timings = t
        return self

    def settle(self) -> list[float] | None:
        """The values Optuna is told, in the cell's objective order: an ok trial's
        objectives, a stopped trial's values at its last rung (not final: never on a
        reported front); None otherwise. A non-finite value makes the trial failed."""
        values = None
        if self.status == "ok":
            values = [float(self.objectives[o]) for o in self.objective_names]
        elif self.status == "stopped" and self.rungs:
            values = [float(self.rungs[-1].values[o]) for o in self.objective_names]
        if values is not None:
            if not all(math.isfinite(v) for v in values):
                self.status, self.error = "failed", f"non-finite objective values {values}"
                values = None
        self.values = values
        return values

    # -- read by everyone ----------------------------------------------------
    @property
    def counts(self) -> bool:
        """Whether the trial used budget (every end but a cut-short one)."""
        return self.status != "interrupted"

    @property
    def epochs_spent(self) -> int:
        """What the trial spent of its cell's epoch budget: the epochs it trained over its seeds,
        at least one for any trial that counts (a failure costs a start), none if cut short.
        A record written before ``epochs_trained`` existed: its seeds' histories."""
        if not self.counts:
            return 0
        n = self.epochs_trained
        if n is None:
            n = sum(len(s.history) for s in self.seeds) or (len(self.metrics.history) if self.metrics else 0)
        return max(1, n)

    @property
    def stopped_at(self) -> int | None:
        """The epoch a stopped trial reached (its last rung)."""
        return self.rungs[-1].epoch if self.status == "stopped" and self.rungs else None

    @property
    def score(self) -> float:
        return self.objectives["score"]

    def cost(self, key: str) -> float:
        """An objective, or the trainable parameters (a cost a PEFT user budgets too)."""
        if key in self.objectives:
            return float(self.objectives[key])
        if key == "trainable_params":
            return float(self.trainable_params or 0)
        raise KeyError(f"trial {self.cell}#{self.optuna_trial} has no cost '{key}'")

    def summary_line(self) -> str:
        """One line for the console: scores over seeds, the costs, trainable parameters."""
        m = self.metrics
        if self.status == "stopped" and self.rungs:
            r = self.rungs[-1]
            return (f"stopped at rung epoch {r.epoch}: "
                    + ", ".join(f"{k} {v:.4g}" for k, v in r.values.items()) + " (not final)")
        if self.status != "ok" or m is None:
            return f"{self.status}: {self.error}"
        return (f"val {m.metric} {m.val_score:.4f}±{m.val_std:.4f} (test {m.test_score:.4f}±{m.test_std:.4f}, "
                f"{m.seeds} seeds), " + ", ".join(f"{k} {v:.3f}" for k, v in self.objectives.items() if k != "score")
                + f", {self.trainable_params:,} trainable of {self.total_params:,}")

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="python"), indent=2, sort_keys=True, default=str) + "\n"


class RecordError(ValueError):
    """A trial record that cannot be read: the message names the file and what is wrong."""


def upgrade(data: dict) -> dict:
    """A record as written by older code, in the current schema's shape.

    Version 1 (no ``schema_version``, the code at 420bab7): ``interrupted`` was a flag
    beside ``status: failed``; an infeasible trial had no cause (it was always out of
    memory); ``ray_run`` sat at the top; ``process`` held the load counters flat; the
    aggregated latency and every seed carried the same keys."""
    if not isinstance(data, dict):
        raise ValueError(f"a record is a JSON object, not {type(data).__name__}")
    version = data.get("schema_version", 1)
    if version == SCHEMA_VERSION:
        return data
    if version != 1:
        raise ValueError(f"schema_version {version} is not one this code reads (it reads 1 and {SCHEMA_VERSION})")
    d = dict(data)
    if d.pop("interrupted", False):
        d["status"] = "interrupted"
    if d.get("status") == "infeasible" and "infeasible" not in d:
        d["infeasible"] = {"cause": "oom"}
    ray_run = d.pop("ray_run", None)
    if d.get("executor") is not None or ray_run:
        d["executor"] = {**(d.get("executor") or {"kind": "ray_slots"}), "ray_run": ray_run}
    if isinstance(d.get("process"), dict):
        p = dict(d["process"])
        d["process"] = {"pid": p.pop("pid", 0), "loads": p}
    d["schema_version"] = SCHEMA_VERSION
    return d


def parse_record(data: Any, source: str) -> TrialRecord:
    """A record from its JSON object (upgraded if older); one-line error naming ``source``."""
    try:
        return TrialRecord.model_validate(upgrade(data))
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise RecordError(f"{source}: unreadable trial record: {where}: {err['msg']}{more}") from None
    except ValueError as e:
        raise RecordError(f"{source}: unreadable trial record: {e}") from None


def load_record(text: str, source: str) -> TrialRecord:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(f"{source}: corrupt trial record ({e})") from None
    return parse_record(data, source)
