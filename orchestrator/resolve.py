"""From a validated spec and a cell to what the workloads and Optuna take: the trial's
``TrialConfig``, the cell's Optuna directions and sampler, the cache folder, and what
reports need to know of each task family."""
from __future__ import annotations

from pathlib import Path

import optuna

from orchestrator.spec import Cell, SweepSpec
from orchestrator.stopping import rung_epochs
from workloads.config import BackboneConfig, TrainConfig, TrialConfig
from workloads.util import default_cache_dir


def cache_dir_for(spec: SweepSpec) -> Path:
    return Path(spec.storage.cache_dir).expanduser().resolve() if spec.storage.cache_dir else default_cache_dir()


def backbone_config(spec: SweepSpec, index: int) -> BackboneConfig:
    return spec.backbones[index]


def trial_config(spec: SweepSpec, cell: Cell, params: dict, trial_id: str) -> TrialConfig:
    """Merge fixed settings with the proposed values, each sent where
    :func:`orchestrator.spec.route` says (the method, a plug-in, or training).

    Every configuration trains with the same seeds (``seed`` … ``seed + budget.seeds - 1``),
    so configurations are compared on the same initialisations and data orders."""
    entry = spec.methods[cell.method]
    method, train = entry.resolve(cell.method, params)
    st = spec.budget.stopping
    train_cfg = TrainConfig(**{**spec.train.model_dump(), **train})
    # a reference baseline is a line to compare with: never over a limit, and never ranked against other
    # variants at a rung; a searched one (random_init, a searched text_mlp) is ranked within its own cell
    # (scope cell), so its search is stopped as any variant's and spends the same budget
    ref = entry.is_reference(cell.method)
    ranked = st.type != "none" and (not ref or (bool(entry.search) and st.scope == "cell"))
    return TrialConfig(
        trial_id=trial_id,
        seed=spec.seed,
        seeds=spec.budget.seeds,
        dataset=spec.datasets[cell.dataset_index],
        backbone=backbone_config(spec, cell.backbone_index),
        method=method,
        train=train_cfg,
        profile=spec.profile,
        cache_dir=str(cache_dir_for(spec)),
        num_threads=spec.resources.cpus_per_worker,
        device="cuda" if spec.resources.use_gpu else "cpu",
        # rungs below this trial's own epochs (a searched 'epochs' moves its last rung)
        rungs=rung_epochs(st.min_epochs, st.reduction_factor, train_cfg.epochs) if ranked else [],
        limits={k: v for k, v in spec.constraints.items()
                if k in spec.cell_objectives(cell) and not entry.is_reference(cell.method)},
    )


def directions(spec: SweepSpec, cell: Cell) -> list[str]:
    """Optuna's directions for a cell, in its objectives' order, from its task."""
    from workloads.tasks import task_of

    d = spec.datasets[cell.dataset_index]
    dirs = task_of(d).objective_directions(d)
    return [dirs[o] for o in spec.cell_objectives(cell)]


def make_sampler(spec: SweepSpec, cell_index: int, n_existing: int = 0) -> optuna.samplers.BaseSampler:
    # The seed moves on with the trials already stored, so a resumed sweep does not
    # replay the proposals of its first run.
    # numpy's seeds are below 2**32 (the same values as before for every seed that fitted)
    seed = (spec.seed * 1_000_003 + cell_index * 10_007 + n_existing) % 2**32
    if spec.budget.sampler == "tpe":
        # With trials in flight at once, constant liar makes TPE treat running trials as
        # bad results, so concurrent proposals spread out instead of collapsing on one point.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.budget.n_startup_trials,
                                          constant_liar=spec.resources.max_concurrent_trials > 1)
    if spec.budget.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def families(spec: SweepSpec) -> dict[str, dict]:
    """Each task family of the sweep as reports show it (they import no task): its title
    and the methods that are its full fine-tuning reference."""
    from workloads.tasks import task_of

    out = {}
    for d in spec.datasets:
        task = task_of(d)
        out[task.name] = {"title": task.title, "full_reference": list(task.full_reference)}
    return out
