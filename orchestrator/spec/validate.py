"""What the models alone cannot check, one checker per section of the spec, each
returning its problems as ``path: message`` lines: names against the workload
registries (generically: no method, task or dataset is known here by name), values
that must agree across sections, and whether every entry takes part in a cell.

Backbone names and parameters are checked by the backbone entry itself
(:class:`~workloads.config.BackboneConfig`), method and plug-in parameters by
:meth:`~orchestrator.spec.schema.MethodEntry.resolve`."""
from __future__ import annotations

from pydantic import ValidationError

from orchestrator.spec.errors import _msg, _pydantic_errors
from orchestrator.spec.routing import RouteError, route
from orchestrator.spec.schema import MethodEntry, SweepSpec, backbone_kind_of, family_of
from workloads.config import TrainConfig


def semantic_errors(spec: SweepSpec) -> list[str]:
    """Every problem of a spec whose sections each passed their models. A checkpoint that
    cannot be read comes alone: the other checks read its architecture."""
    unreadable = check_checkpoints(spec)
    if unreadable:
        return unreadable
    return (check_datasets(spec) + check_backbones(spec) + check_objectives(spec) + check_methods(spec)
            + check_budget(spec) + check_constraints(spec) + check_compatibility(spec) + check_resources(spec))


def check_resources(spec: SweepSpec) -> list[str]:
    """A GPU share is 1/k, asked for with use_gpu, by one-worker trials
    (:func:`workloads.gpu_share.share_problems`)."""
    from workloads.gpu_share import share_problems

    r = spec.resources
    return [f"resources.gpus_per_worker: {p}" for p in share_problems(r.gpus_per_worker, r.use_gpu, r.num_workers)]


def check_constraints(spec: SweepSpec) -> list[str]:
    """Each limit is on an objective some cell has, and a limit on a cost (memory, latency:
    positive quantities) is positive. (``min`` ≥ ``max`` and non-finite limits are the
    :class:`~runfolder.limits.Limit` model's own errors.)"""
    if not spec.constraints or any(family_of(d) is None for d in spec.datasets):
        return []
    have = sorted({o for c in spec.cells() for o in spec.cell_objectives(c)})
    errors = []
    for name, lim in spec.constraints.items():
        if name not in have:
            errors.append(f"constraints.{name}: no cell has objective '{name}' (the cells' objectives: "
                          f"{', '.join(have) or 'none'})")
            continue
        if name == "score":
            continue  # a score may be negative (R², a log-scale error)
        for bound in ("min", "max"):
            v = getattr(lim, bound)
            if v is not None and v <= 0:
                errors.append(f"constraints.{name}.{bound}: {v:g} is not positive ({name} is a cost, above 0)")
    return errors


def check_budget(spec: SweepSpec) -> list[str]:
    """Early stopping has a rung before the last epoch (else it would never decide). An epoch
    budget holds at least one whole trial, and every variant it bounds alone can spend it on
    new configurations (a variant that searches nothing would repeat one configuration on
    the same seeds). An epoch budget always ends: every trial spends at least one epoch."""
    b, st = spec.budget, spec.budget.stopping
    errors = []
    if st.type != "none" and st.min_epochs >= spec.train.epochs:
        errors.append(f"budget.stopping.min_epochs: {st.min_epochs} is not below train.epochs ({spec.train.epochs}): "
                      "no rung before the last epoch, so nothing could be stopped")
    if b.epochs_per_cell is not None:
        whole = spec.train.epochs * b.seeds
        if b.epochs_per_cell < whole:
            errors.append(f"budget.epochs_per_cell: {b.epochs_per_cell} is below one trial's epochs ({whole}: "
                          f"train.epochs {spec.train.epochs} × budget.seeds {b.seeds})")
        if b.trials_per_cell is None:
            from workloads.peft import METHODS

            errors += [f"methods.{name}: searches nothing, so budget.epochs_per_cell would train its one configuration "
                       "again and again on the same seeds; search a parameter, or cap it with budget.trials_per_cell"
                       for name, entry in spec.methods.items() if not entry.search and not entry.is_reference(name)]
            errors += [f"methods.{name}: a reference fitted outside the training loop spends no epochs, so "
                       "budget.epochs_per_cell cannot bound its search; cap it with budget.trials_per_cell"
                       for name, entry in spec.methods.items() if entry.search
                       and (ref := METHODS.get(entry.method_name(name)).reference) is not None and ref.fit is not None]
    return errors


def check_datasets(spec: SweepSpec) -> list[str]:
    """Each dataset passes its source's own check (its files exist and parse) and is listed
    once (its name is part of every cell's id). That its name or kind is registered and
    that it holds only fields its kind reads, its own config model checked already."""
    from workloads.datasets import dataset_problems

    errors = [f"datasets[{i}]: {p}" for i, d in enumerate(spec.datasets) for p in dataset_problems(d)]
    names = [d.name for d in spec.datasets]
    return errors + [f"datasets[{i}].name: dataset '{n}' listed twice (first at datasets[{names.index(n)}])"
                     for i, n in enumerate(names) if n in names[:i]]


def check_checkpoints(spec: SweepSpec) -> list[str]:
    """Each checkpoint's folder, config and weights (names and shapes) load."""
    return [f"backbones[{i}].checkpoint.path: {p}" for i, b in enumerate(spec.backbones)
            if (p := b.checkpoint_problem())]


def check_backbones(spec: SweepSpec) -> list[str]:
    """No backbone twice (names and parameters are the entry's own checks)."""
    names = [b.name for b in spec.backbones]
    return [f"backbones[{i}].name: backbone '{n}' listed twice" for i, n in enumerate(names) if n in names[:i]]


def check_objectives(spec: SweepSpec) -> list[str]:
    """The spec's objectives: none twice, each one every dataset's task reports."""
    if spec.objectives is None:
        return []
    from workloads.tasks import task_of

    objectives = spec.objectives
    errors = [f"objectives: '{o}' listed twice" for o in sorted({o for o in objectives if objectives.count(o) > 1})]
    for i, o in enumerate(objectives):
        for d in spec.datasets:
            if family_of(d) is None:
                continue
            task = task_of(d)
            if o not in task.objectives:
                errors.append(f"objectives[{i}]: '{o}' is not an objective of dataset '{d.name}' "
                              f"(task {task.name}: {', '.join(task.objectives)})")
    return errors


def check_methods(spec: SweepSpec) -> list[str]:
    """Each method variant: its method and plug-ins registered, its fixed parameters valid,
    and its search (:func:`check_search`)."""
    from workloads.peft import METHODS
    from workloads.plugins import PLUGINS

    errors: list[str] = []
    for name, entry in spec.methods.items():
        where = f"methods.{name}"
        method = entry.method_name(name)
        if method not in METHODS:
            what = f"{where}.method" if entry.method else where
            errors.append(f"{what}: unknown PEFT method '{method}'; known: {', '.join(METHODS.names())}")
            continue
        bad = [p for p in entry.plugins if p not in PLUGINS]
        errors += [f"{where}.plugins.{p}: unknown training plug-in; known: {', '.join(PLUGINS.names())}"
                   for p in bad]
        try:
            _without(entry, bad).resolve(name)
        except ValidationError as e:
            errors += _pydantic_errors(e, where)
            if any(err["loc"][0] == "params" for err in e.errors()):
                continue  # the search cannot be checked against invalid fixed parameters
            bad += [p for p in entry.plugins if any(err["loc"][:2] == ("plugins", p) for err in e.errors())]
        errors += check_search(spec, name, entry, _without(entry, bad), plugins_ok=not bad)
        errors += check_reference(spec, name, entry)
    return errors


def check_reference(spec: SweepSpec, name: str, entry: MethodEntry) -> list[str]:
    """A fitted reference (no backbone, no training loop) takes no plug-ins, no random_init
    and no training search; random_init needs backbones this project pretrains."""
    from workloads.peft import METHODS

    where = f"methods.{name}"
    kind = METHODS.get(entry.method_name(name)).reference
    errors = []
    if kind is not None and kind.fit is not None:
        what = f"reference '{entry.method_name(name)}' is fitted outside the training loop"
        if entry.plugins:
            errors.append(f"{where}.plugins: {what}: it takes no training plug-in")
        if entry.random_init:
            errors.append(f"{where}.random_init: {what}: it has no backbone to initialise")
        for k in entry.search:
            try:
                if route(k, entry.method_name(name), entry.plugins).target == "train":
                    errors.append(f"{where}.search.{k}: {what}: '{k}' is a training parameter")
            except RouteError:
                pass  # reported by check_search
    if entry.random_init:
        errors += [f"{where}.random_init: backbone '{b.name}' is not pretrained (its pretrain is null or it "
                   "has none, and no checkpoint), so random_init would change nothing" for b in spec.backbones
                   if b.pretrain is None and b.checkpoint is None and any(c.method == name and c.backbone == b.name for c in spec.cells())]
    return errors


def _without(entry: MethodEntry, plugins: list[str]) -> MethodEntry:
    """The entry less some of its plug-ins (unknown or invalid ones: each already reported)."""
    return entry.model_copy(update={"plugins": {p: v for p, v in entry.plugins.items() if p not in plugins}})


def check_search(spec: SweepSpec, name: str, entry: MethodEntry, known: MethodEntry, plugins_ok: bool) -> list[str]:
    """Each searched key goes somewhere (:func:`route`), is not also fixed, and every value
    the search can propose (choices, range ends) is valid there. ``known``: the entry with
    its valid plug-ins only; ``plugins_ok``: all of them registered and valid."""
    where = f"methods.{name}"
    errors: list[str] = []
    for key, param in entry.search.items():
        try:
            r = route(key, entry.method_name(name), entry.plugins)
        except RouteError as e:
            errors.append(f"{where}.search.{key}: {e.reason}")
            continue
        if r.target == "method" and r.field in entry.params:
            errors.append(f"{where}.search.{key}: also fixed in {where}.params; choose one")
            continue
        if r.target == "plugin":
            if r.field in entry.plugins[r.plugin]:
                errors.append(f"{where}.search.{key}: also fixed in {where}.plugins.{r.plugin}; choose one")
                continue
            if not plugins_ok:
                continue
        for value in param.bounds():
            try:
                _, train = known.resolve(name, {key: value})
                if train:
                    TrainConfig(**{**spec.train.model_dump(), **train})
            except ValidationError as e:
                msg = "; ".join(_msg(err) for err in e.errors())
                errors.append(f"{where}.search.{key}: value {value!r} is invalid: {msg}")
    return errors


def check_compatibility(spec: SweepSpec) -> list[str]:
    """Every dataset, backbone and method variant takes part in at least one cell."""
    from workloads.backbones import BACKBONES
    from workloads.peft import METHODS

    if any(family_of(d) is None for d in spec.datasets) \
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
