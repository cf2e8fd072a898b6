"""One training loop for every method: fine-tune, select the best validation
epoch, test, and measure memory and latency.

Methods plug in through :class:`workloads.peft.TrainHooks`; nothing here knows a
method by name.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import math
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn
from torch_geometric.loader import DataLoader

from orchestrator import profiling
from workloads.backbones import BACKBONES, GraphModel
from workloads.config import TrialConfig
from workloads.datasets import GraphSplits, load_dataset
from workloads.peft import METHODS, TrainHooks, count_parameters
from workloads.pretrain import ensure_pretrained, load_pretrained
from workloads.util import default_cache_dir, seed_everything

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but torch sees no CUDA device")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def build_model(cfg: TrialConfig, data: GraphSplits, cache_dir: Path) -> tuple[nn.Module, TrainHooks, dict]:
    backbone = BACKBONES.get(cfg.backbone.name).build(cfg.backbone.arch())
    ckpt = ensure_pretrained(cfg.backbone, cache_dir)
    pre_info = {"checkpoint": str(ckpt) if ckpt else None}
    if ckpt is not None:
        info = load_pretrained(backbone, ckpt)
        pre_info["final"] = info["history"][-1] if info.get("history") else None
    model = GraphModel(backbone, out_dim=1)
    method = METHODS.get(cfg.method.name)
    hooks = method.apply(model, method.parse(cfg.method.params))
    return model, hooks, pre_info


def task_loss(data: GraphSplits, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if data.task == "classification":
        return F.binary_cross_entropy_with_logits(pred, y)
    return F.mse_loss(pred, (y - data.y_mean) / data.y_std)


@torch.no_grad()
def evaluate(model: nn.Module, data: GraphSplits, graphs: list, batch_size: int, device) -> float:
    """ROC-AUC (classification) or RMSE in label units (regression)."""
    model.eval()
    preds, ys = [], []
    for batch in DataLoader(graphs, batch_size=batch_size):
        batch = batch.to(device)
        preds.append(model(batch).float().cpu())
        ys.append(batch.y.float().cpu())
    p, y = torch.cat(preds).numpy().ravel(), torch.cat(ys).numpy().ravel()
    if data.task == "classification":
        if len(np.unique(y)) < 2:
            return float("nan")
        return float(roc_auc_score(y, p))
    p = p * data.y_std + data.y_mean
    return float(np.sqrt(np.mean((p - y) ** 2)))


def _is_better(a: float, b: float, direction: str) -> bool:
    if math.isnan(a):
        return False
    if math.isnan(b):
        return True
    return a > b if direction == "maximize" else a < b


def run_trial(
    cfg: TrialConfig,
    *,
    rank: int = 0,
    world_size: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Train and evaluate one configuration; return the trial record (JSON-ready).

    With ``world_size > 1`` the caller has initialised ``torch.distributed``; the
    model is wrapped in DDP and each rank trains on its shard, rank 0 evaluates.
    """
    say = progress or (lambda msg: log.info(msg))
    t_start = time.perf_counter()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    data = load_dataset(cfg.dataset, cache_dir)
    model, hooks, pre_info = build_model(cfg, data, cache_dir)
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
        sampler = DistributedSampler(data.train, num_replicas=world_size, rank=rank, seed=cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(
        data.train, batch_size=cfg.train.batch_size, shuffle=sampler is None, sampler=sampler,
        generator=gen if sampler is None else None,
        drop_last=(len(data.train) // world_size) > cfg.train.batch_size,
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # CPU memory accounting covers every step of the first epoch and keeps the largest
    # (the peak depends on the biggest molecules a batch holds).
    meter = profiling.SavedActivationMeter(model)
    peak_activations = 0
    direction = data.source.direction
    best_val, best_epoch, best_state = float("nan"), -1, None
    history = []
    accounted = None
    t_train = time.perf_counter()
    for epoch in range(cfg.train.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        train_model.train()
        tot = n = 0.0
        for step, batch in enumerate(loader):
            batch = batch.to(device)
            measure = epoch == 0
            if measure:
                meter.reset()
            with meter.track() if measure else contextlib.nullcontext():
                if hooks.before_forward is not None:
                    hooks.before_forward(model, batch)
                pred = train_model(batch)
                loss = task_loss(data, pred, batch.y)
                if hooks.extra_loss is not None:
                    loss = loss + hooks.extra_loss(model, batch, pred)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch} step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.train.grad_clip:
                nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
            opt.step()
            if hooks.after_step is not None:
                hooks.after_step(model)
            if measure and (accounted is None or meter.bytes > peak_activations):
                peak_activations = meter.bytes
                accounted = profiling.tensor_accounting(model, opt, meter.bytes)
            tot += loss.item() * batch.num_graphs
            n += batch.num_graphs
        val = evaluate(model, data, data.valid, cfg.train.eval_batch_size, device) if rank == 0 else float("nan")
        history.append({"epoch": epoch, "train_loss": tot / max(n, 1), "val_score": val})
        if rank == 0 and (best_state is None or _is_better(val, best_val, direction)):
            best_val, best_epoch = val, epoch
            best_state = copy.deepcopy(model.state_dict())
        say(f"[{cfg.trial_id}] epoch {epoch}: loss {tot / max(n, 1):.4f}, val {data.source.metric} {val:.4f}")
    train_seconds = time.perf_counter() - t_train
    if device.type == "cuda":
        memory = profiling.cuda_memory_report(device, accounted or {})
    else:
        memory = profiling.cpu_memory_report(accounted or {})
    record: dict = {"trial_id": cfg.trial_id, "rank": rank, "world_size": world_size}
    if rank != 0:
        return record
    model.load_state_dict(best_state)
    test = evaluate(model, data, data.test, cfg.train.eval_batch_size, device)
    model.eval()
    lat_graphs = data.test[: cfg.profile.latency_batch_size]
    lat_batch = next(iter(DataLoader(lat_graphs, batch_size=len(lat_graphs)))).to(device)
    with torch.no_grad():
        latency = profiling.measure_latency(
            lambda: model(lat_batch), batch_size=len(lat_graphs), device=device,
            warmup=cfg.profile.latency_warmup, repeats=cfg.profile.latency_repeats,
        )
    mem, lat = memory.to_dict(), latency.to_dict()
    record.update(
        {
            "config": cfg.model_dump(mode="json"),
            "dataset": data.summary(),
            "method": cfg.method.name,
            "trainable_params": trainable,
            "total_params": total,
            "metrics": {
                "metric": data.source.metric,
                "direction": direction,
                "test_score": test,
                "val_score": best_val,
                "best_epoch": best_epoch,
                "history": history,
            },
            "objectives": {
                "score": test,
                "train_memory_mb": mem["peak_train_mb"],
                "latency_ms_per_graph": lat["ms_per_graph"],
            },
            "memory": mem,
            "latency": lat,
            "pretrained": pre_info,
            "device": {"type": device.type, "name": mem["device"], "host": platform.node(),
                       "torch_threads": torch.get_num_threads()},
            "timings": {"train_s": train_seconds, "total_s": time.perf_counter() - t_start},
        }
    )
    return record

