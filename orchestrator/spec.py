"""The sweep spec: strict YAML → validated, resolved, hashed.

Unknown keys are errors that name their path in the YAML; nothing is dropped
or silently fixed. Names of datasets, backbones and methods, and of every
method and search parameter, are checked against the workload registries
(generically: this module knows no method by name).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.search import SearchParam
from workloads.config import PretrainConfig, ProfileConfig, TrainConfig, default_pretrain
from workloads.datasets.config import DatasetConfig
from workloads.util import stable_hash


class SpecError(ValueError):
    """A sweep spec that cannot be used; the message lists each problem with its path.

    The password of any URL in the message is masked here, wherever the text came from
    (a spec, an ``--override``, a driver's error)."""

    def __init__(self, message: str) -> None:
        super().__init__(mask_secrets(message))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # "inf"/1e400 too


class BackboneEntry(_Strict):
    name: str = "graphormer"
    params: dict[str, Any] = Field(default_factory=dict)
    pretrain: PretrainConfig | None = Field(default_factory=PretrainConfig)

    _pretrain = model_validator(mode="before")(default_pretrain)


class MethodEntry(_Strict):
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

    def method_name(self, key: str) -> str:
        return self.method or key


class Budget(_Strict):
    trials_per_cell: int = Field(default=4, ge=1, le=100_000, description="finished trials per study (failed ones count; ones a crash cut short do not)")
    sampler: Literal["tpe", "nsga2", "random"] = "tpe"
    n_startup_trials: int = Field(default=4, ge=1, le=100_000, description="random trials before TPE models the front")
    seeds: int = Field(
        default=1, ge=1, le=100,
        description="seeds each configuration trains with (initialisation and data order; the same seeds for "
        "every configuration); the objective is their mean validation score",
    )


class Resources(_Strict):
    num_workers: int = Field(default=1, ge=1, le=4096, description="Ray Train workers per trial")
    cpus_per_worker: int = Field(default=1, ge=1, le=4096, description="CPUs per worker; torch threads are pinned to it")
    use_gpu: bool = False
    max_concurrent_trials: int = Field(default=1, ge=1, le=4096, description="slots: trials at once, each in its own long-lived worker group")
    trial_timeout_s: float | None = Field(
        default=None, gt=0, allow_inf_nan=False,
        description="a trial running longer (from when its worker takes it) is cut and recorded as failed; "
        "null: no limit",
    )
    max_retries: int = Field(
        default=1, ge=0, le=10, description="a trial whose worker died under it (killed, out of host memory, a "
        "lost node) runs again, same configuration, up to this many times; a trial that raises is not retried")


class Storage(_Strict):
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


class SweepSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="the sweep's base seed (trial seeds, samplers, splits)")
    datasets: list[DatasetConfig] = Field(min_length=1)
    backbones: list[BackboneEntry] = Field(min_length=1)
    methods: dict[str, MethodEntry] = Field(min_length=1)
    objectives: list[str] | None = Field(
        default=None, min_length=1,
        description="objectives every cell optimises, from its task's (e.g. score, train_memory_mb, "
        "latency_ms_per_graph); null: each cell its own task's objectives",
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

    def resolved(self) -> dict:
        """The spec with defaults filled in, as written to the run folder: secrets masked
        (the storage URL's password), so the hash and the file never carry them."""
        d = self.model_dump(mode="json")
        d["storage"]["optuna_url"] = mask_url(d["storage"]["optuna_url"])
        return d

    def content_hash(self, exclude_budget: bool = False) -> str:
        d = self.resolved()
        if exclude_budget:  # what may change on resume: how many trials, not what a trial means
            d["budget"].pop("trials_per_cell")
        return stable_hash(d)

    def run_dir(self, base: Path | None = None) -> Path:
        return (base or Path.cwd()) / self.storage.root / self.name


def family_of(dataset: DatasetConfig) -> str | None:
    from workloads.datasets.sources import SOURCES, source_of

    key = dataset.kind or dataset.name
    return source_of(dataset).family if key in SOURCES else None


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


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _msg(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    return err["msg"].removeprefix("Value error, ")


def _pydantic_errors(e: ValidationError, prefix: str = "") -> list[str]:
    out = []
    for err in e.errors():
        # discriminated unions put the tag in the location; drop it for readability
        loc = tuple(p for p in err["loc"] if p not in ("float", "int", "categorical"))
        path = _loc(loc)
        out.append(f"{prefix + '.' if prefix and loc else prefix}{path if loc else ''}: {_msg(err)}")
    return out


def _semantic_errors(spec: SweepSpec) -> list[str]:
    from workloads.backbones import BACKBONES
    from workloads.datasets.sources import SOURCES
    from workloads.peft import METHODS
    from workloads.plugins import PLUGINS

    errors: list[str] = []
    kinds = [n for n in SOURCES.names() if getattr(SOURCES.get(n), "is_kind", False)]
    for i, d in enumerate(spec.datasets):
        if d.kind is not None:
            if d.kind not in kinds:
                errors.append(f"datasets[{i}].kind: unknown dataset kind '{d.kind}'; known: {', '.join(kinds)}")
                continue
        elif d.name not in SOURCES or d.name in kinds:
            what = (f"'{d.name}' is a dataset kind: write 'kind: {d.name}' and give the dataset a name"
                    if d.name in kinds else f"unknown dataset '{d.name}'; known: "
                    + ", ".join(n for n in SOURCES.names() if n not in kinds))
            errors.append(f"datasets[{i}].name: {what}")
            continue
        source = SOURCES.get(d.kind or d.name)
        if getattr(source, "family", "graph_property") == "graph_property" and (d.nodes or d.edges):
            errors.append(f"datasets[{i}]: 'nodes' and 'edges' apply to text graphs only")
        check = getattr(source, "check", None)
        for problem in (check(d) if check else []):
            errors.append(f"datasets[{i}]: {problem}")
    seen = set()
    for i, b in enumerate(spec.backbones):
        if b.name in seen:
            errors.append(f"backbones[{i}].name: backbone '{b.name}' listed twice")
        seen.add(b.name)
        if b.name not in BACKBONES:
            errors.append(f"backbones[{i}].name: unknown backbone '{b.name}'; known: {', '.join(BACKBONES.names())}")
            continue
        try:
            BACKBONES.get(b.name).config_cls(**b.params)
        except ValidationError as e:
            errors += _pydantic_errors(e, f"backbones[{i}].params")
    if spec.objectives is not None:
        from workloads.tasks import task_of

        dups = {o for o in spec.objectives if spec.objectives.count(o) > 1}
        for o in sorted(dups):
            errors.append(f"objectives: '{o}' listed twice")
        for i, o in enumerate(spec.objectives):
            for d in spec.datasets:
                if family_of(d) is None:
                    continue
                task = task_of(d)
                if o not in task.objectives:
                    errors.append(f"objectives[{i}]: '{o}' is not an objective of dataset '{d.name}' "
                                  f"(task {task.name}: {', '.join(task.objectives)})")
    names = [d.name for d in spec.datasets]
    for i, n in enumerate(names):
        if n in names[:i]:
            errors.append(f"datasets[{i}].name: dataset '{n}' listed twice (first at datasets[{names.index(n)}])")
    train_fields = set(TrainConfig.model_fields)
    for name, entry in spec.methods.items():
        where = f"methods.{name}"
        method = entry.method_name(name)
        if method not in METHODS:
            what = f"{where}.method" if entry.method else where
            errors.append(f"{what}: unknown PEFT method '{method}'; known: {', '.join(METHODS.names())}")
            continue
        cfg_cls = METHODS.get(method).config_cls
        method_fields = set(cfg_cls.model_fields)
        plugin_ok = True
        for pname, pparams in entry.plugins.items():
            if pname not in PLUGINS:
                errors.append(f"{where}.plugins.{pname}: unknown training plug-in; known: {', '.join(PLUGINS.names())}")
                plugin_ok = False
                continue
            try:
                PLUGINS.get(pname).parse(pparams)
            except ValidationError as e:
                errors += _pydantic_errors(e, f"{where}.plugins.{pname}")
                plugin_ok = False
        try:
            cfg_cls(**entry.params)
        except ValidationError as e:
            errors += _pydantic_errors(e, f"{where}.params")
            continue
        for key, param in entry.search.items():
            kind = search_target(key, method_fields, train_fields, entry.plugins)
            if kind.startswith("error:"):
                errors.append(f"{where}.search.{key}: {kind[6:]}")
                continue
            if kind == "method" and key in entry.params:
                errors.append(f"{where}.search.{key}: also fixed in {where}.params; choose one")
                continue
            if kind == "plugin":
                pname, field = key.split(".", 1)
                if field in entry.plugins[pname]:
                    errors.append(f"{where}.search.{key}: also fixed in {where}.plugins.{pname}; choose one")
                    continue
                if not plugin_ok:
                    continue
            # every value the search can propose (choices, range ends) must be valid
            for value in param.bounds():
                try:
                    if kind == "method":
                        cfg_cls(**{**entry.params, key: value})
                    elif kind == "train":
                        TrainConfig(**{**spec.train.model_dump(), key: value})
                    else:
                        PLUGINS.get(pname).parse({**entry.plugins[pname], field: value})
                except ValidationError as e:
                    msg = "; ".join(_msg(err) for err in e.errors())
                    errors.append(f"{where}.search.{key}: value {value!r} is invalid: {msg}")
    errors += _compatibility_errors(spec)
    return errors


def _compatibility_errors(spec: SweepSpec) -> list[str]:
    """Every dataset, backbone and method variant must take part in at least one cell."""
    from workloads.backbones import BACKBONES
    from workloads.peft import METHODS

    if any(family_of(d) is None for d in spec.datasets) or any(b.name not in BACKBONES for b in spec.backbones) \
            or any(e.method_name(k) not in METHODS for k, e in spec.methods.items()):
        return []  # already reported
    cells = spec.cells()
    errors = []
    for i, d in enumerate(spec.datasets):
        if not any(c.dataset_index == i for c in cells):
            errors.append(f"datasets[{i}]: no backbone and method variant of the spec applies to '{d.name}' "
                          f"(task {family_of(d)}, on a {backbone_kind_of(d)} backbone)")
    for i, b in enumerate(spec.backbones):
        if not any(c.backbone_index == i for c in cells):
            errors.append(f"backbones[{i}].name: backbone '{b.name}' is a {BACKBONES.get(b.name).kind}, "
                          "and no dataset of the spec has a task that builds on one")
    for name, entry in spec.methods.items():
        if not any(c.method == name for c in cells):
            kinds = ", ".join(METHODS.get(entry.method_name(name)).backbones)
            errors.append(f"methods.{name}: applies to {kinds} backbones (with its plug-ins), and no dataset "
                          "and backbone of the spec make such a cell")
    return errors


def search_target(key: str, method_fields: set, train_fields: set, plugins: dict) -> str:
    """Where a searched key goes: 'method', 'train', 'plugin', or 'error:<why>'."""
    from workloads.plugins import PLUGINS

    if "." in key:
        pname, field = key.split(".", 1)
        if pname not in plugins:
            return f"error:plug-in '{pname}' is not in this entry's plugins ({', '.join(plugins) or 'none'})"
        if pname in PLUGINS and field not in PLUGINS.get(pname).config_cls.model_fields:
            known = ", ".join(sorted(PLUGINS.get(pname).config_cls.model_fields))
            return f"error:not a parameter of plug-in '{pname}'; known: {known}"
        return "plugin"
    if key in method_fields and key in train_fields:
        return "error:ambiguous (a method and a training parameter)"
    if key in method_fields:
        return "method"
    if key in train_fields:
        return "train"
    return f"error:not a parameter of the method or of training; known: {', '.join(sorted(method_fields | train_fields))}"


def _invalid(source: str, errors: list[str]) -> str:
    """One line: the file, then each error naming its YAML path."""
    if len(errors) == 1:
        return f"{source}: invalid sweep spec: {errors[0]}"
    return f"{source}: invalid sweep spec ({len(errors)} errors): " + "; ".join(errors)


def parse_spec(data: Any, source: str = "<spec>") -> SweepSpec:
    if not isinstance(data, dict):
        raise SpecError(f"{source}: the spec must be a mapping at the top level")
    bad = _non_finite(data)
    if bad:
        raise SpecError(_invalid(source, bad))
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(_invalid(source, _pydantic_errors(e))) from None
    errors = _semantic_errors(spec)
    if errors:
        raise SpecError(_invalid(source, errors))
    return spec


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key repeated in one mapping is an error
    (PyYAML keeps the last one silently)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a plain value, not {type(key).__name__} {key!r}",
                key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' appears twice in one mapping (first at line "
                f"{seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _non_finite(data: Any, path: tuple = ()) -> list[str]:
    """Paths of every NaN or infinite number (YAML's .nan / .inf) in the loaded spec."""
    if isinstance(data, float) and not math.isfinite(data):
        return [f"{_loc(path)}: {data} is not a finite number"]
    if isinstance(data, dict):
        return [e for k, v in data.items() for e in _non_finite(v, path + (k,))]
    if isinstance(data, list):
        return [e for i, v in enumerate(data) for e in _non_finite(v, path + (i,))]
    return []


def load_spec(path: str | Path, overrides: list[str] | tuple = ()) -> SweepSpec:
    """Read, override (``KEY.PATH=VALUE`` items, see :func:`apply_overrides`) and validate a spec."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        data = yaml.load(path.read_text(), Loader=_StrictLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {_yaml_error(e)}") from None
    source = str(path)
    if overrides:
        data = apply_overrides(data, overrides, source)
        source += " with --override " + " ".join(overrides)
    return parse_spec(data, source)


def _yaml_error(e: yaml.YAMLError) -> str:
    """PyYAML's message on one line, with where it happened."""
    mark = getattr(e, "problem_mark", None)
    what = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x) or str(e)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(what.split()) + where


def apply_overrides(data: Any, items: list[str] | tuple, source: str = "<spec>") -> Any:
    """A copy of the loaded spec with each ``dotted.path=value`` item set.

    A path walks mappings by key and lists by index or by an item's ``name``
    (``backbones.mat.pretrain.max_molecules=2000``); a missing last key is added, so
    that the spec's own validation names it if it is not a field. Values are read as
    YAML, strictly (``1``, ``0.5``, ``[2, 4]``, ``{a: 1}``, ``null``)."""
    import copy

    data = copy.deepcopy(data)
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SpecError(f"{source}: --override expects KEY.PATH=VALUE, got '{item}'")
        try:
            value = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            raise SpecError(f"{source}: --override {key}: cannot read value '{text}' as YAML") from None
        parts = key.split(".")
        node = data
        for depth, part in enumerate(parts):
            here = ".".join(parts[:depth]) or "the spec"
            last = depth == len(parts) - 1
            if isinstance(node, dict):
                if last:
                    node[part] = value
                    continue
                if part not in node:
                    node[part] = {}
                elif not isinstance(node[part], (dict, list)):
                    raise SpecError(f"{source}: --override {key}: {'.'.join(parts[:depth + 1])} is a value, "
                                    "not a mapping or list")
                node = node[part]
            elif isinstance(node, list):
                names = [x.get("name") if isinstance(x, dict) else None for x in node]
                idx = int(part) if part.isdigit() and int(part) < len(node) else (
                    names.index(part) if part in names else None)
                if idx is None:
                    raise SpecError(f"{source}: --override {key}: {here} has no item '{part}' (items: "
                                    f"{', '.join(str(n) for n in names if n is not None) or len(node)})")
                if last:
                    node[idx] = value
                else:
                    node = node[idx]
            else:
                raise SpecError(f"{source}: --override {key}: {here} is a value, not a mapping or list")
    return data


_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)\S+@")  # to the last @: a password may hold one


def mask_secrets(text: str) -> str:
    """``text`` with the password of any URL in it masked (``scheme://user:***@host``)."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def mask_url(url: str | None) -> str | None:
    """A database URL with its password replaced by ***, for anything printed or written."""
    if not url:
        return url
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparsable storage URL>"


def redact(text: str, url: str | None) -> str:
    """``text`` with ``url`` and its password masked (driver errors often echo them)."""
    if not url:
        return text
    text = text.replace(url, mask_url(url) or "")
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001 - unparsable: the URL itself is already masked
        password = None
    return text.replace(str(password), "***") if password else text


def dump_resolved(spec: SweepSpec) -> str:
    header = (f"# resolved sweep spec; content hash {spec.content_hash()}\n"
              f"# cells: {len(spec.cells())}\n")  # read by the report: how many studies the sweep has
    return header + yaml.safe_dump(json.loads(json.dumps(spec.resolved())), sort_keys=False)
