"""Running trials on Ray: each trial is one Ray Train ``TorchTrainer`` run.

Ray 2.5x defaults to Train V2: a trainer cannot be handed to a ``Tuner``, and
metrics reported without a checkpoint are not kept on the result. So Optuna
drives the search (ask/tell), each trial's trainer runs inside a small Ray task
(so several trials can run at once and a cluster schedules them), and the rank-0
worker reports the trial record inside a checkpoint that the task reads back.
"""
from __future__ import annotations

import json
import tempfile
import time
import traceback
from pathlib import Path

import ray

RESULT_FILE = "trial_result.json"


def train_loop_per_worker(config: dict) -> None:
    """Runs in every Ray Train worker."""
    t_enter = time.time()
    import ray.train

    from workloads import run_trial
    from workloads.config import TrialConfig

    t_imported = time.time()
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    cfg = TrialConfig.model_validate(config["trial"])
    record = run_trial(cfg, rank=rank, world_size=world)
    record.setdefault("timings", {}).update(worker_enter_unix=t_enter, worker_imported_unix=t_imported,
                                            worker_done_unix=time.time())
    with tempfile.TemporaryDirectory() as d:
        checkpoint = None
        if rank == 0:
            Path(d, RESULT_FILE).write_text(json.dumps(record, default=str))
            checkpoint = ray.train.Checkpoint.from_directory(d)
        ray.train.report({"trial_id": cfg.trial_id, "score": record.get("objectives", {}).get("score")},
                         checkpoint=checkpoint)


def overhead_breakdown(t: dict, submitted_unix: float, received_unix: float) -> dict:
    """Where a trial's wall time went outside the workload, from the timestamps the
    task and the rank-0 worker add to ``record['timings']`` (seconds). Across hosts
    the differences include their clock offset."""
    return {
        "submit_to_task_s": t["task_start_unix"] - submitted_unix,
        "task_to_worker_s": t["worker_enter_unix"] - t["task_start_unix"],  # Train controller + worker start
        "worker_imports_s": t["worker_imported_unix"] - t["worker_enter_unix"],
        # config validation (its lazy imports of the method and backbone registries), context, glue
        "config_and_glue_s": t["worker_done_unix"] - t["worker_imported_unix"] - t.get("total_s", 0.0),
        "worker_to_task_s": t["task_done_unix"] - t["worker_done_unix"],  # report, checkpoint, shutdown
        "task_to_driver_s": received_unix - t["task_done_unix"],
    }


def _root_cause(exc: BaseException) -> str:
    """The innermost error message in a Ray/Train exception chain."""
    seen = exc
    while True:
        nxt = getattr(seen, "cause", None) or seen.__cause__
        if nxt is None or nxt is seen:
            break
        seen = nxt
    text = str(seen).strip().splitlines()
    return f"{type(seen).__name__}: {text[-1] if text else ''}"


@ray.remote(num_cpus=0)
def fit_trial(trial: dict, resources: dict, storage_path: str, run_name: str) -> dict:
    """Run one trial in a Ray Train worker group; never raises (errors are returned)."""
    t_task = time.time()
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    try:
        trainer = TorchTrainer(
            train_loop_per_worker,
            train_loop_config={"trial": trial},
            scaling_config=ScalingConfig(
                num_workers=resources["num_workers"],
                use_gpu=resources["use_gpu"],
                resources_per_worker={"CPU": resources["cpus_per_worker"]},
            ),
            run_config=RunConfig(
                name=run_name, storage_path=storage_path, failure_config=FailureConfig(max_failures=0)
            ),
        )
        result = trainer.fit()
        if result.error is not None:
            raise result.error
        if result.checkpoint is None:
            raise RuntimeError("the trial finished without reporting a result checkpoint")
        with result.checkpoint.as_directory() as d:
            record = json.loads(Path(d, RESULT_FILE).read_text())
        record["status"] = "ok"
        record["ray_run"] = str(Path(storage_path) / run_name)
        record.setdefault("timings", {}).update(task_start_unix=t_task, task_done_unix=time.time())
        return record
    except Exception as exc:  # noqa: BLE001 - a failed trial is data, the sweep goes on
        return {
            "status": "failed",
            "error": _root_cause(exc),
            "traceback": "".join(traceback.format_exception(exc))[-8000:],
        }


# Ray Train's controller polls its workers every 2 s by default, which adds
# seconds to every short trial; 0.25 s cuts that (measured in docs/overhead.md).
TRAIN_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25"}


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    if ray.is_initialized():
        return
    runtime_env = {"env_vars": TRAIN_ENV}
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)


def check_resources(resources: dict, strict: bool) -> None:
    """Fail fast (locally) or warn (on a cluster, which may scale up) when one
    trial's worker group cannot fit: Ray would otherwise wait for it forever."""
    have = ray.cluster_resources()
    need_cpu = resources["num_workers"] * resources["cpus_per_worker"]
    need_gpu = resources["num_workers"] if resources["use_gpu"] else 0
    problems = []
    if have.get("CPU", 0) < need_cpu:
        problems.append(f"a trial needs {need_cpu} CPUs (num_workers × cpus_per_worker), Ray has {have.get('CPU', 0):g}")
    if have.get("GPU", 0) < need_gpu:
        problems.append(f"a trial needs {need_gpu} GPUs, Ray has {have.get('GPU', 0):g}")
    if problems:
        msg = "resources: " + "; ".join(problems)
        if strict:
            raise RuntimeError(msg)
        import warnings

        warnings.warn(msg + " (waiting for the cluster to scale up)", stacklevel=2)
