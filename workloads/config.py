"""Configuration of one trial, passed down explicitly (no global state).

The orchestrator builds a :class:`TrialConfig` from the sweep spec and the
values Optuna proposed; ``workloads.run_trial`` consumes it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from runfolder.limits import Limit
from runfolder.strict import StrictModel
from workloads.datasets.config import DatasetConfig


def _at(loc: tuple, e: ValidationError) -> list[dict]:
    """The errors of a nested config, located under ``loc`` (e.g. ``("params",)``)."""
    return [{**err, "loc": (*loc, *err["loc"])} for err in e.errors(include_url=False)]


def _raise(errors: list[dict]) -> None:
    """Raise ``errors`` from a validator as one ValidationError that keeps each one's path
    (pydantic places them under the model being validated: ``backbones[0].params.width``)."""
    if not errors:
        return
    try:
        raise ValidationError.from_exception_data("config", errors)
    except (KeyError, TypeError):  # a custom error type of a nested config: kept by its message
        raise ValidationError.from_exception_data("config", [
            {"type": PydanticCustomError(err["type"], err["msg"]), "loc": err["loc"], "input": err.get("input")}
            for err in errors]) from None


class PretrainConfig(StrictModel):
    max_molecules: int = Field(default=20000, ge=100, le=100_000_000, description="MOSES training molecules used")
    epochs: int = Field(default=2, ge=1, le=100_000, description="passes over those molecules")
    batch_size: int = Field(default=128, ge=2, le=1_000_000, description="graphs per step")
    lr: float = Field(default=5e-4, gt=0, description="AdamW learning rate")
    mask_rate: float = Field(default=0.15, gt=0, lt=1, description="fraction of atoms masked")
    descriptor_weight: float = Field(default=1.0, ge=0, description="weight of RDKit-descriptor regression")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="subset, masking and initialisation seed")


def default_pretrain(data):
    """Before validation: a backbone the project does not pretrain (a language model) gets
    ``pretrain: null`` by default, and naming a recipe for it is an error. So does a backbone
    built from a checkpoint, and beside ``checkpoint:`` neither ``params`` nor ``pretrain``
    may be given (the architecture comes from the checkpoint's config)."""
    if isinstance(data, dict):
        from workloads.backbones import BACKBONES

        name = data.get("name", "graphormer")
        if data.get("checkpoint") is not None:
            given = [k for k in ("params", "pretrain") if data.get(k)]  # an empty or null one (a dump) is no choice
            if given:
                raise ValueError(f"'{given[0]}' cannot be given beside 'checkpoint': the architecture and weights "
                                 "come from the checkpoint")
            return {**data, "pretrain": None}
        if name in BACKBONES and not BACKBONES.get(name).pretrainable:
            if data.get("pretrain") is not None:
                raise ValueError(f"backbone '{name}' is loaded as is, not pretrained by the project; "
                                 "remove 'pretrain'")
            data = {**data, "pretrain": None}
    return data


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class CheckpointConfig(StrictModel):
    """Someone else's pretrained weights for a backbone, in a named format
    (:mod:`workloads.checkpoints`)."""

    format: str = Field(description="checkpoint format, e.g. hf_graphormer")
    path: str = Field(description="the checkpoint folder; ${VAR} is read from the environment")
    spatial_pos_max: int | None = Field(
        default=None, ge=1, le=1_000_000, description="hf_graphormer: atom pairs whose shortest-path distance + 1 "
        "reaches this are masked, as HF's collator does (null: config.json's spatial_pos_max, else 1024; "
        "HF's GraphormerDataCollator defaults to 20)")
    conformer_seed: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="mat_authors: the seed of each molecule's conformer, whose "
        "distances the model reads (the authors' code draws it unseeded; null: 0)")

    @model_validator(mode="after")
    def _options_of_the_format(self):
        for option, fmt in (("spatial_pos_max", "hf_graphormer"), ("conformer_seed", "mat_authors")):
            if getattr(self, option) is not None and self.format != fmt:
                raise ValueError(f"'{option}' is an option of the {fmt} format, not of {self.format}")
        return self

    @field_validator("path", mode="before")
    @classmethod
    def _expand(cls, path):
        """``${VAR}`` in ``path`` is replaced by the environment's value where the spec is read,
        so the resolved spec, the workers and the records hold the real folder."""
        if isinstance(path, str):
            missing = [v for v in _ENV.findall(path) if not os.environ.get(v)]  # unset or empty
            if missing:
                raise ValueError(f"'{path}': environment variable {missing[0]} is not set "
                                 "(set it, or --override the checkpoint's path)")
            path = os.path.expanduser(_ENV.sub(lambda m: os.environ[m.group(1)], path))
        return path

    @field_validator("format")
    @classmethod
    def _known(cls, name):
        from workloads.checkpoints import known_formats

        if name not in known_formats():
            raise ValueError(f"unknown checkpoint format '{name}'; known: {', '.join(known_formats())}")
        return name

    @property
    def folder(self) -> Path:
        return Path(self.path).expanduser()


class BackboneConfig(StrictModel):
    name: str = Field(default="graphormer", description="registered backbone name")
    params: dict[str, Any] = Field(default_factory=dict, description="architecture parameters")
    pretrain: PretrainConfig | None = Field(
        default_factory=PretrainConfig, description="pretraining recipe; null for random init"
    )
    checkpoint: CheckpointConfig | None = Field(
        default=None, description="pretrained weights in a named format; the architecture comes from them "
        "(params and pretrain are then refused)")

    _pretrain = model_validator(mode="before")(default_pretrain)

    @model_validator(mode="after")
    def _check(self):
        """The name is a registered backbone and ``params`` its architecture's; each problem
        is reported at its path (``name``, ``params.<field>``, ``checkpoint.format``). The
        checkpoint's files are checked by :meth:`checkpoint_problem` (a semantic check)."""
        from workloads.backbones import BACKBONES

        if self.name not in BACKBONES:
            _raise([{"type": PydanticCustomError("unknown_backbone", "unknown backbone '{name}'; known: {known}",
                                                 {"name": self.name, "known": ", ".join(BACKBONES.names())}),
                     "loc": ("name",), "input": self.name}])
        if self.checkpoint is not None:
            from workloads.checkpoints import format_of

            if self.name not in format_of(self.checkpoint.format).backbones:
                _raise([{"type": PydanticCustomError(
                    "checkpoint_format", "format '{f}' does not hold a '{name}' backbone",
                    {"f": self.checkpoint.format, "name": self.name}),
                    "loc": ("checkpoint", "format"), "input": self.checkpoint.format}])
            return self
        try:
            BACKBONES.get(self.name).config_cls(**self.params)
        except ValidationError as e:
            _raise(_at(("params",), e))
        return self

    def checkpoint_problem(self) -> str | None:
        """The first problem with the checkpoint's files (folder, config, weight names and
        shapes), one line; None when it loads (or there is no checkpoint)."""
        if self.checkpoint is None:
            return None
        from workloads.checkpoints import format_of

        problem = format_of(self.checkpoint.format).check(self.checkpoint.folder, self.checkpoint)
        return f"{self.checkpoint.folder}: {problem}" if problem else None

    def arch(self):
        if self.checkpoint is not None:
            from workloads.checkpoints import format_of

            return format_of(self.checkpoint.format).read_config(self.checkpoint.folder, self.checkpoint)
        from workloads.backbones import BACKBONES

        return BACKBONES.get(self.name).config_cls(**self.params)


class MethodSpec(StrictModel):
    """A method variant: a PEFT method and the training plug-ins it carries."""

    name: str = Field(description="registered PEFT method name")
    params: dict[str, Any] = Field(default_factory=dict, description="method parameters")
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="training plug-ins by name with their parameters, applied in order"
    )
    variant: str | None = Field(default=None, description="name of the variant in its sweep (default: name)")
    random_init: bool = Field(default=False, description="skip the backbone's pretraining: the same method from "
                              "random weights, a reference that measures what pretraining is worth")

    @model_validator(mode="after")
    def _check(self):
        """Each plug-in's parameters, then the method's, every problem at its path
        (``plugins.<name>.<field>``, ``params.<field>``). An unknown method or plug-in
        name raises the registry's KeyError."""
        from workloads.peft import METHODS
        from workloads.plugins import PLUGINS

        method = METHODS.get(self.name)
        errors = []
        for name, params in self.plugins.items():
            try:
                PLUGINS.get(name).parse(params)
            except ValidationError as e:
                errors += _at(("plugins", name), e)
        try:
            method.parse(self.params)
        except ValidationError as e:
            errors += _at(("params",), e)
        _raise(errors)
        return self

    @property
    def label(self) -> str:
        return self.variant or self.name


class TrainConfig(StrictModel):
    lr: float = Field(default=1e-3, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW weight decay")
    epochs: int = Field(default=10, ge=1, le=100_000, description="training epochs (best validation epoch is kept); "
                        "with patience, the cap")
    patience: int | None = Field(
        default=None, ge=1, le=100_000, description="end a seed's training once validation has not improved for this "
        "many epochs (the trial stays ok: this is convergence, not a stopping decision); null: train every epoch")
    batch_size: int = Field(default=64, ge=2, le=1_000_000, description="training graphs per step")
    eval_batch_size: int = Field(default=256, ge=1, le=1_000_000, description="graphs per evaluation step")
    grad_clip: float | None = Field(default=1.0, gt=0, description="gradient norm clip; null for none")


class ProfileConfig(StrictModel):
    latency_batch_size: int = Field(default=64, ge=1, le=1_000_000, description="graphs per timed inference call")
    latency_warmup: int = Field(default=3, ge=0, le=10_000, description="untimed calls before timing")
    latency_repeats: int = Field(default=20, ge=1, le=10_000, description="timed calls (median reported)")
    rung_latency_repeats: int = Field(
        default=5, ge=1, le=10_000, description="timed calls at an early-stopping rung (after one untimed warm-up call): "
        "a ranking signal on the current weights, cheaper than the final measurement")
    memory_steps: int | None = Field(
        default=None, ge=1, description="training steps whose memory peak is measured (null: the whole first epoch)"
    )


class TrialConfig(StrictModel):
    trial_id: str = Field(default="adhoc", description="identifier of this trial in its sweep")
    seed: int = Field(default=0, ge=0, description="first seed; repeats use seed, seed + 1, ...")
    seeds: int = Field(default=1, ge=1, description="repeats of the configuration (initialisation and data order)")
    dataset: DatasetConfig
    backbone: BackboneConfig = Field(default_factory=BackboneConfig)
    method: MethodSpec
    train: TrainConfig = Field(default_factory=TrainConfig)
    profile: ProfileConfig = Field(default_factory=ProfileConfig)
    cache_dir: str | None = Field(default=None, description="dataset and checkpoint cache")
    num_threads: int | None = Field(default=None, ge=1, description="torch threads (the trial's CPUs)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    rungs: list[int] = Field(
        default_factory=list, description="epochs (counted from 1) after which the trial reports its validation "
        "score and costs and asks whether to go on (early stopping); empty: it never asks")
    limits: dict[str, Limit] = Field(
        default_factory=dict, description="hard limits on the trial's objectives (the spec's constraints): past "
        "one, the trial stops as soon as it is measured and is recorded infeasible")

    @property
    def cost_limits(self) -> dict[str, Limit]:
        """The limits checked while the trial trains (a score is final only at the end)."""
        return {k: v for k, v in self.limits.items() if k != "score"}
