"""One training loop for every method and plug-in: fine-tune, select the best
validation epoch, test, and measure memory and latency, once per seed.

Methods and plug-ins change the loop only through :class:`workloads.peft.TrainHooks`;
nothing here knows one by name. Selection reads validation only: the best epoch
of each seed is chosen on its validation score, and the trial's objective is the
mean validation score over seeds. Test scores are measured at the selected epoch
and recorded beside it, never used to choose.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import platform
import statistics
import time
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from runfolder.limits import Violation, violations
from runfolder.record import DeviceInfo, Metrics, ProcessInfo, Reference, Rung, Timings, TrialRecord
from workloads import profiling
from workloads.backbones import BACKBONES
from workloads.checkpoints import load_checkpoint
from workloads.config import TrialConfig
from workloads.peft import METHODS, TrainHooks, count_parameters
from workloads.plugins import PLUGINS, TaskInfo
from workloads.tasks import MEMORY_OBJECTIVE, Task, task_of
from workloads.pretrain import ensure_pretrained, load_pretrained
from workloads.references.base import MEMORY_BY_ALLOCATOR
from workloads.util import LOAD_COUNTS, default_cache_dir, seeded

log = logging.getLogger(__name__)


class LimitExceeded(Exception):
    """A measured cost passed one of the trial's hard limits (``TrialConfig.limits``):
    training stops where it was measured."""

    def __init__(self, violation: Violation, measured: dict[str, float], where: str, rungs: list[Rung],
                 epochs: int = 0) -> None:
        super().__init__(f"{violation.message()}, measured {where}")
        self.violation, self.measured, self.where, self.rungs = violation, measured, where, rungs
        self.epochs = epochs  # epochs trained by the seed it stopped in (its finished seeds aside)


def _agree(flag, world_size: int):
    """Rank 0's value on every rank (a decision all ranks must take together)."""
    if world_size > 1:
        box = [flag]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]
    return flag


def resolve_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but torch sees no CUDA device")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def task_info(task: Task, data) -> TaskInfo:
    return TaskInfo(kind=data.task, loss=partial(task.loss, data))


def build_model(cfg: TrialConfig, task: Task, data, ckpt: Path | None) -> tuple[nn.Module, TrainHooks, dict]:
    """Backbone (loaded from ``ckpt``), the task's head, then the method, then each plug-in.

    Every random draw here comes from the caller's seeded stream, in this order."""
    backbone = BACKBONES.get(cfg.backbone.name).build(cfg.backbone.arch())
    pre_info = {"checkpoint": str(ckpt) if ckpt else None}
    if ckpt is not None:
        info = load_pretrained(backbone, ckpt)
        pre_info["final"] = info["history"][-1] if info.get("history") else None
    elif cfg.backbone.checkpoint is not None and not cfg.method.random_init:
        pre_info = load_checkpoint(backbone, cfg.backbone.checkpoint)
    model = task.make_model(backbone, data)
    method = METHODS.get(cfg.method.name)
    hooks = method.apply(model, method.parse(cfg.method.params))
    info = task_info(task, data)
    plugin_params = {}
    for name, params in cfg.method.plugins.items():
        plugin = PLUGINS.get(name)
        before = _count_trainable(model)
        hooks = hooks.combine(plugin.apply(model, plugin.parse(params), info))
        plugin_params[name] = _count_trainable(model) - before  # what the plug-in itself adds (GIST: its token)
    if plugin_params:
        hooks.notes = {**hooks.notes, "plugin_params": plugin_params}
    return model, hooks, pre_info


def _count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def is_better(a: float, b: float, direction: str) -> bool:
    if math.isnan(a):
        return False
    if math.isnan(b):
        return True
    return a > b if direction == "maximize" else a < b


def _trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of what training changes: trainable parameters and buffers.

    Frozen parameters are shared with the model, so keeping the best epoch costs no
    device memory and no copy of the frozen backbone."""
    keep = {n for n, p in model.named_parameters() if p.requires_grad} | {n for n, _ in model.named_buffers()}
    return {n: t.detach().to("cpu", copy=True) for n, t in model.state_dict().items() if n in keep}


def _restore(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    bad = [m for m in missing if m not in frozen]
    if bad:
        raise RuntimeError(f"best-epoch state misses trainable entries: {bad[:3]}")


def train_seed(
    cfg: TrialConfig, seed: int, data, ckpt: Path | None, device: torch.device,
    *, rank: int = 0, world_size: int = 1, say: Callable[[str], None] = log.info,
    rung: Callable[[Rung], bool] | None = None,
) -> dict:
    """Train one seed: build, train with validation selection, test, profile.

    With ``rung``, after each epoch of ``cfg.rungs`` rank 0 reports a :class:`Rung` (the
    best validation score so far, the memory peak measured so far, the latency timed now on
    the current weights as deployed, with their noise) and stops training early when ``rung`` answers False
    (every rank stops). A stopped seed is neither tested nor profiled again: what it
    showed is its rung values, and it is never on a front."""
    task = task_of(cfg.dataset)
    with seeded(seed):
        model, hooks, pre_info = build_model(cfg, task, data, ckpt)
        model.to(device)
        trainable, total = count_parameters(model)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        train_model: nn.Module = model
        sampler = None
        if world_size > 1:
            from torch.nn.parallel import DistributedDataParallel
            from torch.utils.data.distributed import DistributedSampler

            # Some parameters get no gradient in fine-tuning (e.g. the pretraining mask embedding).
            train_model = DistributedDataParallel(model, find_unused_parameters=True)
            sampler = DistributedSampler(range(task.train_size(data)), num_replicas=world_size, rank=rank, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        loader = task.train_loader(
            data, cfg.train.batch_size, model=model, sampler=sampler, generator=gen,
            drop_last=(task.train_size(data) // world_size) > cfg.train.batch_size,
        )
        # The peak is measured from the first step, before any gradient or optimizer
        # state exists: what is live then is the model itself.
        meter = profiling.PeakMeter(device, profiling.live_tensor_bytes(profiling.model_state_tensors(model)))
        saved = profiling.SavedActivationMeter(model)
        eval_peak = profiling.CudaPeakWindow(device) if device.type == "cuda" else None
        max_steps = cfg.profile.memory_steps
        parts, parts_saved, measured_steps = {}, -1, 0
        direction = task.direction(cfg.dataset)
        best_val, best_epoch, best_state = float("nan"), -1, None
        history, rungs, stopped = [], [], False
        cost_limits = cfg.cost_limits
        rung_latency: tuple[float, float] | None = None
        memory_checked = MEMORY_OBJECTIVE not in cost_limits

        def check_memory() -> None:
            # The peak over the measured steps, read as soon as their window closes; past the
            # limit the trial stops here, inside its first epoch.
            nonlocal memory_checked
            memory_checked = True
            mb = meter.peak_so_far() / 2**20
            over = _agree(violations(cost_limits, {MEMORY_OBJECTIVE: mb}) if rank == 0 else None, world_size)
            if over:
                raise LimitExceeded(over[0], {MEMORY_OBJECTIVE: mb},
                                    f"over the first {measured_steps} training steps (seed {seed})", rungs, epochs=1)

        t_train = time.perf_counter()
        for epoch in range(cfg.train.epochs):
            if sampler is not None:
                sampler.set_epoch(epoch)
            train_model.train()
            for m in hooks.eval_modules:
                m.eval()
            tot = n = 0.0
            # The memory window: CPU, the first epoch's steps (or its first memory_steps), the
            # batches' collation included, in one profiler window; CUDA, every epoch's
            # training steps (a cheap counter). Validation is outside it.
            window = contextlib.ExitStack()
            if device.type == "cuda" or epoch == 0:
                window.enter_context(meter.measure())
            with window:
                it = iter(loader)
                step = 0
                while True:
                    measure = device.type == "cuda" or (epoch == 0 and (max_steps is None or step < max_steps))
                    if not measure:
                        window.close()  # no-op once closed
                    if epoch == 0 and not memory_checked and max_steps is not None and step == max_steps:
                        check_memory()
                    try:
                        batch = next(it)
                    except StopIteration:
                        break
                    batch = batch.to(device)
                    if measure:
                        saved.reset()
                        measured_steps += 1
                    with saved.track() if measure else contextlib.nullcontext():
                        for f in hooks.before_forward:
                            f(model, batch)
                        out = train_model(batch, with_slots=True) if hooks.needs_slots else train_model(batch)
                        pred = out["pred"] if isinstance(out, dict) else out
                        loss = task.loss(data, pred, batch.y)
                        for f in hooks.extra_loss:
                            loss = loss + f(model, batch, out)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"non-finite loss at epoch {epoch} step {step} (seed {seed})")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.train.grad_clip:
                        nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
                    opt.step()
                    for f in hooks.after_step:
                        f(model)
                    if measure and saved.bytes > parts_saved:
                        parts_saved = saved.bytes
                        parts = profiling.tensor_accounting(model, opt, saved.bytes)
                    units = task.batch_units(batch)
                    tot += loss.item() * units
                    n += units
                    del out, pred, loss
                    step += 1
            if epoch == 0 and not memory_checked:  # the whole first epoch was measured
                check_memory()
            val = float("nan")
            if rank == 0:
                with eval_peak.measure() if eval_peak is not None else contextlib.nullcontext():
                    val = task.evaluate(model, data, "valid", cfg.train.eval_batch_size, device)
            history.append({"epoch": epoch, "train_loss": tot / max(n, 1), "val_score": val})
            if rank == 0 and (best_state is None or is_better(val, best_val, direction)):
                best_val, best_epoch = val, epoch
                best_state = _trainable_state(model)
            say(f"[{cfg.trial_id} seed {seed}] epoch {epoch}: loss {tot / max(n, 1):.4f}, "
                f"val {task.metric(cfg.dataset)} {val:.4f}")
            # patience: validation has not improved for that many epochs (rank 0 evaluates)
            converged = _agree(rank == 0 and cfg.train.patience is not None
                               and epoch - best_epoch >= cfg.train.patience, world_size)
            if (rung is not None or cost_limits) and epoch + 1 in cfg.rungs:
                go, over, values = True, None, {}
                if rank == 0:
                    values, noise = _rung_values(cfg, task, data, model, device, best_val, meter, rung_latency,
                                                 hooks.deploy)
                    if not _exits_early(model):  # its latency does not move with its weights: timed once
                        rung_latency = (values[task.latency_objective], noise[task.latency_objective])
                    # a cost past its limit ends the trial before it asks to go on
                    over = violations(cost_limits, values) or None
                    if over is None:
                        rungs.append(Rung(epoch=epoch + 1, values=values, noise=noise))
                        go = rung is None or bool(rung(rungs[-1]))
                go, over = _agree((go, over), world_size)
                if over:
                    raise LimitExceeded(over[0], values, f"at epoch {epoch + 1} (seed {seed})", rungs, epochs=epoch + 1)
                if not go:
                    stopped = True
                    say(f"[{cfg.trial_id} seed {seed}] stopped after epoch {epoch} (rung {epoch + 1})")
                    break
            if converged and epoch + 1 < cfg.train.epochs:
                say(f"[{cfg.trial_id} seed {seed}] no validation gain for {cfg.train.patience} epochs: "
                    f"training ends after epoch {epoch} (best epoch {best_epoch})")
                break
        train_seconds = time.perf_counter() - t_train
        memory = profiling.memory_report(meter, parts, eval_peak.peak_bytes if eval_peak else None,
                                         {"measured_steps": measured_steps,
                                          "window": "every epoch's training steps" if device.type == "cuda"
                                          else "the first epoch's training steps"
                                          + (f" (at most {max_steps})" if max_steps else "")})
        out_rec: dict = {"seed": seed, "trainable_params": trainable, "total_params": total, "pretrained": pre_info,
                         "rungs": rungs, "stopped": stopped}
        if rank != 0:
            return out_rec
        if stopped:  # never on a front, its rung values told: no test, no final latency; the slot frees at once
            out_rec.update(val_score=best_val, best_epoch=best_epoch, history=history, memory=memory.model_dump(),
                           train_s=train_seconds, notes=hooks.notes)
            return out_rec
        _restore(model, best_state)
        test = task.evaluate(model, data, "test", cfg.train.eval_batch_size, device)
        model.eval()
        lat_batch, lat_units = task.latency_batch(data, cfg.profile.latency_batch_size, device, model=model)
        lat_kw = dict(batch_size=lat_units, device=device, warmup=cfg.profile.latency_warmup,
                      repeats=cfg.profile.latency_repeats, unit=task.unit)
        with torch.no_grad():
            getattr(model, "reset_inference", lambda: None)()  # what it reports covers the final timing only
            as_trained = profiling.measure_latency(lambda: model(lat_batch), **lat_kw)
            deployed, deploy_gap = as_trained, 0.0
            inference = getattr(model, "describe_inference", lambda: None)()
            if hooks.deploy is not None:
                dmodel = hooks.deploy(model).eval()
                deploy_gap = float((dmodel(lat_batch) - model(lat_batch)).abs().max())
                deployed = profiling.measure_latency(lambda: dmodel(lat_batch), **lat_kw)
                inference = getattr(dmodel, "describe_inference", lambda: None)()
                del dmodel
        lat = deployed.model_dump()
        lat["inference"] = inference  # what the timed model reported of its last call (ENGINE: exits per rung)
        lat["as_trained"] = as_trained.model_dump() if hooks.deploy is not None else None
        lat["deployed"] = hooks.deploy is not None
        lat["deploy_max_abs_diff"] = deploy_gap
        out_rec.update(
            val_score=best_val, test_score=test, best_epoch=best_epoch, history=history,
            memory=memory.model_dump(), latency=lat, train_s=train_seconds, notes=hooks.notes,
        )
        return out_rec


def _exits_early(model: nn.Module) -> bool:
    """Whether the model's inference depends on its weights' values (ENGINE's early exit:
    which nodes leave at which layer changes as it trains), as its last inference reports."""
    info = getattr(model, "describe_inference", lambda: None)()
    return bool(info and info.get("early_exit"))


def _rung_values(cfg: TrialConfig, task: Task, data, model: nn.Module, device: torch.device, best_val: float,
                 meter: profiling.PeakMeter, latency: tuple[float, float] | None = None,
                 deploy: Callable[[nn.Module], nn.Module] | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """What a trial reports at a rung, and each cost's noise: its best validation score so far
    (what its final objective would be if it ended here: the final objective is the best
    epoch's), its memory peak measured so far (deterministic: noise 0), and its latency timed
    now on the model as deployed (``deploy``: LoRA merged, as at the end), with
    ``profile.rung_latency_repeats`` timed calls after one warm-up, and the standard error of
    that median. ``latency``: (ms, se) timed at an earlier rung, reused where the work per
    call does not depend on the weights (every method but one that exits early)."""
    if latency is None:
        model.eval()  # the next epoch sets training mode again
        # the latency batch's loader draws from the global generator: a rung must not shift training
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            timed = deploy(model) if deploy is not None else model
            batch, units = task.latency_batch(data, cfg.profile.latency_batch_size, device, model=timed)
            t = profiling.measure_latency(
                lambda: timed(batch), batch_size=units, device=device, warmup=1,
                repeats=cfg.profile.rung_latency_repeats, unit=task.unit)
            latency = (t.ms_per_unit, t.se_ms_per_unit or 0.0)
            del timed
    values = {"score": best_val, MEMORY_OBJECTIVE: meter.peak_bytes / 2**20, task.latency_objective: latency[0]}
    return values, {MEMORY_OBJECTIVE: 0.0, task.latency_objective: latency[1]}


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value; NaN propagates)."""
    if any(math.isnan(x) for x in xs):
        return float("nan"), float("nan")
    return float(statistics.fmean(xs)), (float(statistics.stdev(xs)) if len(xs) > 1 else 0.0)


def aggregate(cfg: TrialConfig, task: Task, per_seed: list[dict]) -> dict:
    """The worker's part of the trial record from its seeds: the objective is the mean
    validation score; memory is the largest peak of any seed; latency the median of the
    seeds' medians."""
    val_m, val_s = mean_std([s["val_score"] for s in per_seed])
    test_m, test_s = mean_std([s["test_score"] for s in per_seed])
    peak = max(per_seed, key=lambda s: s["memory"]["peak_train_bytes"])
    lat_ms = statistics.median(s["latency"]["ms_per_unit"] for s in per_seed)
    first = per_seed[0]
    ds = cfg.dataset
    return dict(
        task=task.name,
        metrics=Metrics(
            metric=task.metric(ds), direction=task.direction(ds), selection="validation",
            val_score=val_m, val_std=val_s, test_score=test_m, test_std=test_s,
            val_scores=[s["val_score"] for s in per_seed], test_scores=[s["test_score"] for s in per_seed],
            best_epoch=first["best_epoch"], history=first["history"],
        ),
        objectives={
            "score": val_m,
            MEMORY_OBJECTIVE: peak["memory"]["peak_train_mb"],
            task.latency_objective: lat_ms,
        },
        memory=peak["memory"],
        latency=first["latency"] | {"ms_per_unit": lat_ms,
                                    "ms_per_unit_seeds": [s["latency"]["ms_per_unit"] for s in per_seed]},
        seeds=[{k: v for k, v in s.items() if k not in ("pretrained", "notes", "rungs", "stopped")} for s in per_seed],
        trainable_params=first["trainable_params"],
        total_params=first["total_params"],
        pretrained=first["pretrained"],
        notes=first.get("notes", {}),
    )


def run_trial(
    cfg: TrialConfig,
    *,
    rank: int = 0,
    world_size: int = 1,
    progress: Callable[[str], None] | None = None,
    rung: Callable[[Rung], bool] | None = None,
) -> TrialRecord:
    """Train and evaluate one configuration with ``cfg.seeds`` seeds; return the
    worker's part of its :class:`~runfolder.TrialRecord`.

    With ``world_size > 1`` the caller has initialised ``torch.distributed``; the
    model is wrapped in DDP and each rank trains on its shard, rank 0 evaluates.
    The caller's global random state is left as it was.
    """
    say = progress or (lambda msg: log.info(msg))
    t_start = time.perf_counter()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    task = task_of(cfg.dataset)
    data = task.load(cfg.dataset, cache_dir, cfg.backbone)
    kind = METHODS.get(cfg.method.name).reference
    reference = None
    if kind is not None or cfg.method.random_init:
        reference = Reference(kind=cfg.method.name if kind is not None else "random_init",
                              memory_by=kind.memory_by if kind is not None else MEMORY_BY_ALLOCATOR)
    fit = kind.fit if kind is not None else None  # a reference fitted outside the training loop
    # Before any seeding, and leaving the random state alone: a cached and a fresh
    # checkpoint give the same trial. random_init: the same method from random weights.
    ckpt = None if cfg.method.random_init or fit is not None else ensure_pretrained(cfg.backbone, cache_dir)
    # With early stopping the first seed decides at each rung and the others train only if it
    # went to the end: training the seeds in lockstep would hold every seed's model at once,
    # which is not the memory a single training run needs (the memory objective).
    per_seed = []
    common = dict(trial_id=cfg.trial_id, rank=rank, world_size=world_size, task=task.name,
                  config=cfg.model_dump(mode="json"), base_method=cfg.method.name, plugins=sorted(cfg.method.plugins))
    cost_limits = cfg.cost_limits

    def where() -> dict:  # at the record's making: this process's loads so far (checkpoints load per seed)
        return dict(dataset=data.summary(), process=ProcessInfo(pid=os.getpid(), loads=dict(LOAD_COUNTS)))

    if fit is not None:  # no backbone, no training loop: rank 0 fits, scores and times it on the CPU
        from workloads.references import run_fitted_seed

        if rank == 0:
            per_seed = [run_fitted_seed(cfg, task, data, cfg.seed + k, fit) for k in range(cfg.seeds)]
        device = torch.device("cpu")
    else:
        try:
            for k in range(cfg.seeds):
                per_seed.append(train_seed(cfg, cfg.seed + k, data, ckpt, device, rank=rank, world_size=world_size,
                                           say=say, rung=rung if k == 0 else None))
                if per_seed[0]["stopped"]:
                    break
                if MEMORY_OBJECTIVE in cost_limits and k < cfg.seeds - 1:
                    # the trial's memory is the largest of its seeds' peaks: one seed over it is over, so
                    # the next seed does not train (latency, a median over seeds, is checked at the end)
                    costs = {MEMORY_OBJECTIVE: per_seed[-1]["memory"]["peak_train_mb"]} if rank == 0 else {}
                    over = _agree(violations(cost_limits, costs) if rank == 0 else None, world_size)
                    if over:
                        raise LimitExceeded(over[0], costs, f"over seed {cfg.seed + k}", per_seed[0]["rungs"])
        except LimitExceeded as e:
            say(f"[{cfg.trial_id}] infeasible: {e}")
            if rank != 0:
                return TrialRecord(**common)
            v = e.violation
            return TrialRecord(**common, **where(), rungs=e.rungs, objectives=e.measured,
                               epochs_trained=sum(len(s["history"]) for s in per_seed) + e.epochs,  # + the seed it stopped in
                               timings=Timings(total_s=time.perf_counter() - t_start)).mark_infeasible(
                "limit", f"over a limit: {e}", objective=v.objective, limit=v.limit, measured=v.measured,
                bound=v.bound)
    if rank != 0:
        return TrialRecord(trial_id=cfg.trial_id, rank=rank, world_size=world_size)
    if per_seed[0]["stopped"]:  # stopped at a rung: its first seed's epochs and rungs, not tested
        s0, ds = per_seed[0], cfg.dataset
        return TrialRecord(
            **common, **where(), status="stopped", rungs=s0["rungs"], epochs_trained=len(s0["history"]),
            metrics=Metrics(metric=task.metric(ds), direction=task.direction(ds), val_score=s0["val_score"],
                            val_scores=[s0["val_score"]], best_epoch=s0["best_epoch"], history=s0["history"]),
            memory=s0["memory"], trainable_params=s0["trainable_params"], total_params=s0["total_params"],
            pretrained=s0["pretrained"], notes=s0.get("notes", {}),
            device=DeviceInfo(type=device.type, name=s0["memory"]["device"], host=platform.node(),
                              torch_threads=torch.get_num_threads()),
            timings=Timings(train_s=s0["train_s"], total_s=time.perf_counter() - t_start))
    parts = aggregate(cfg, task, per_seed)
    record = TrialRecord(
        **common, **{k: v for k, v in parts.items() if k != "task"}, reference=reference,
        status="ok", rungs=per_seed[0]["rungs"], **where(),
        epochs_trained=sum(len(s.get("history") or ()) for s in per_seed),
        device=DeviceInfo(type=device.type, name=parts["memory"]["device"], host=platform.node(),
                          torch_threads=torch.get_num_threads()),
        timings=Timings(train_s=sum(s["train_s"] for s in per_seed), total_s=time.perf_counter() - t_start),
    )  # process: this process's loads so far (a long-lived worker reads data and checkpoints once)
    # the score is final only now: every limit, the score's included, on the trial's objectives
    if record.status == "ok" and (over := violations(cfg.limits, record.objectives)):
        record.mark_infeasible("limit", f"over a limit: {over[0].message()}, measured at the end",
                               objective=over[0].objective, limit=over[0].limit, measured=over[0].measured,
                               bound=over[0].bound)
    return record
