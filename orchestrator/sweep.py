"""The sweep driver: one Optuna study per cell, trials handed to an executor.

Optuna proposes (``ask``), an executor runs the trial (by default long-lived Ray
Train worker groups; the driver never calls Ray itself), the driver writes the
trial record and reports back (``tell`` values, or a failed state with the error).
Studies live in durable storage, so a crashed sweep resumes: trials left
running by the crash are closed (with their values if their record was written,
as failed otherwise) and the remaining budget runs.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import yaml
from optuna.trial import Trial, TrialState
from rich.console import Console
from rich.live import Live

from orchestrator.executor import Executor, overhead_breakdown, resource_problems, trials_that_fit
from orchestrator.progress import CellProgress, LiveProgress
from orchestrator.search import distributions
from orchestrator.spec import Cell, SpecError, SweepSpec, dump_resolved, mask_url, parse_spec, redact, search_target
from orchestrator.storage import RunDir, environment, storage_url, study_name
from workloads.config import BackboneConfig, MethodSpec, TrainConfig, TrialConfig
from workloads.util import default_cache_dir

optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger(__name__)


@contextlib.contextmanager
def _heartbeat_warnings_off():
    """The driver asks and tells (trials run elsewhere) and beats for its running trials
    itself (Sweep._beat), where Optuna's warning assumes only Study.optimize does; and
    Optuna marks its heartbeat API experimental. Both are used on purpose."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        yield

PENALTY = 1e12  # the objective value an out-of-memory trial is told with (see Sweep._tell)


def cache_dir_for(spec: SweepSpec) -> Path:
    return Path(spec.storage.cache_dir).expanduser().resolve() if spec.storage.cache_dir else default_cache_dir()


def backbone_config(spec: SweepSpec, index: int) -> BackboneConfig:
    b = spec.backbones[index]
    return BackboneConfig(name=b.name, params=b.params, pretrain=b.pretrain)


def trial_config(spec: SweepSpec, cell: Cell, params: dict, trial_id: str) -> TrialConfig:
    """Merge fixed settings with the proposed values: method parameters go to the
    method, '<plugin>.<field>' to that plug-in, the rest (lr, ...) to training.

    Every configuration trains with the same seeds (``seed`` … ``seed + budget.seeds - 1``),
    so configurations are compared on the same initialisations and data orders."""
    from workloads.peft import METHODS

    entry = spec.methods[cell.method]
    method = entry.method_name(cell.method)
    method_fields = set(METHODS.get(method).config_cls.model_fields)
    mparams = dict(entry.params)
    plugins = {k: dict(v) for k, v in entry.plugins.items()}
    tparams = spec.train.model_dump()
    for k, v in params.items():
        kind = search_target(k, method_fields, set(tparams), plugins)  # the rule spec validation uses
        if kind == "plugin":
            pname, field = k.split(".", 1)
            plugins[pname][field] = v
        elif kind in ("method", "train"):
            (mparams if kind == "method" else tparams)[k] = v
        else:
            raise ValueError(f"{k}: {kind.removeprefix('error:')}")
    return TrialConfig(
        trial_id=trial_id,
        seed=spec.seed,
        seeds=spec.budget.seeds,
        dataset=spec.datasets[cell.dataset_index],
        backbone=backbone_config(spec, cell.backbone_index),
        method=MethodSpec(name=method, params=mparams, plugins=plugins, variant=cell.method),
        train=TrainConfig(**tparams),
        profile=spec.profile,
        cache_dir=str(cache_dir_for(spec)),
        num_threads=spec.resources.cpus_per_worker,
        device="cuda" if spec.resources.use_gpu else "cpu",
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


@dataclass
class Pending:
    cell: Cell
    study: optuna.Study
    trial: Trial
    started: float  # perf_counter at submission
    submitted_unix: float = 0.0
    trial_id: int = -1  # the storage's id, for heartbeats
    config: dict | None = None  # the TrialConfig dump handed to the executor (a retry sends it again)
    retried_after: list = field(default_factory=list)  # errors of the attempts its worker died under


class Sweep:
    def __init__(self, spec: SweepSpec, base_dir: Path | None = None, console: Console | None = None) -> None:
        self.spec = spec
        self.run = RunDir(spec.run_dir(base_dir))
        self.console = console or Console()
        self.cells = spec.cells()
        self.storage_url = storage_url(spec, self.run)
        self.progress: LiveProgress | None = None
        self._storage: optuna.storages.RDBStorage | None = None
        self._inflight: dict[str, Pending] = {}
        self._seen: dict[str, dict[int, bool]] = {}  # per cell: trial number -> its record counts
        self._full: set[str] = set()  # cells without budget left when last looked at (until the next settle)
        self._rr = 0
        self._settled = time.monotonic()
        self._adopted: set[tuple[str, int]] = set()  # others' running trials this driver beat for once

    def say(self, msg: str) -> None:
        """Progress lines; never read as rich markup (they hold params and error text)."""
        self.console.print(msg, markup=False, highlight=False)

    # -- set-up -------------------------------------------------------------
    def write_spec(self) -> None:
        """Record the resolved spec; refuse to resume a run whose spec changed (budget aside)."""
        self.run.path.mkdir(parents=True, exist_ok=True)
        f = self.run.spec_file
        if f.exists():  # the header line is a YAML comment
            old = parse_spec(yaml.safe_load(f.read_text()), str(f))
            if old.content_hash(exclude_budget=True) != self.spec.content_hash(exclude_budget=True):
                raise SpecError(
                    f"{f}: this run was started from a different spec (only 'budget.trials_per_cell' may change on "
                    f"resume); use a new 'name' or remove {self.run.path}"
                )
        self.run.write_spec(dump_resolved(self.spec))
        self.run.write_env(environment())

    def prepare(self) -> None:
        """Build what every trial reads, once, before any trial starts: featurized datasets,
        LM-state caches (each task's ``prepare``), pretrained backbones."""
        from workloads.backbones import BACKBONES
        from workloads.pretrain import ensure_pretrained
        from workloads.tasks import task_of

        cache = cache_dir_for(self.spec)
        for di, d in enumerate(self.spec.datasets):
            t0 = time.perf_counter()
            used = sorted({c.backbone_index for c in self.cells if c.dataset_index == di})
            line = task_of(d).prepare(d, [backbone_config(self.spec, i) for i in used], cache)
            self.say(f"dataset {d.name}: {line} [{time.perf_counter() - t0:.1f}s]")
        for i in range(len(self.spec.backbones)):
            if not BACKBONES.get(self.spec.backbones[i].name).pretrainable:
                continue
            path = ensure_pretrained(backbone_config(self.spec, i), cache, progress=self.console.print)
            self.say(f"backbone {self.spec.backbones[i].name}: checkpoint {path}")

    def open_storage(self) -> optuna.storages.RDBStorage:
        """Optuna's storage, opened once, with heartbeats: every driver beats for its
        running trials, and a trial whose beat stops (its driver died) is failed by
        ``optuna.storages.fail_stale_trials`` in whichever driver looks next. A URL that
        cannot be opened is a spec error (its password masked), found before the run
        folder is created."""
        if self._storage is None:
            hb = self.spec.storage.heartbeat_s
            for attempt in range(5):
                try:
                    with _heartbeat_warnings_off():
                        self._storage = optuna.storages.RDBStorage(
                            self.storage_url, engine_kwargs={"connect_args": {"timeout": 60}}
                            if self.storage_url.startswith("sqlite") else {},
                            heartbeat_interval=max(1, round(hb)), grace_period=max(2, round(3 * hb)),
                            heartbeat_stale_trial_callback=self._stale_trial,
                        )
                    break
                except Exception as e:  # SQLAlchemy raises several types for bad URLs or servers
                    if "IntegrityError" in type(e).__name__ + str(e) and attempt < 4:
                        time.sleep(0.5 + attempt)  # another driver is creating the tables at this moment
                        continue
                    what = " ".join(redact(str(e), self.storage_url).split())
                    raise SpecError(f"storage.optuna_url: cannot open '{mask_url(self.storage_url)}': {what}") from None
        return self._storage

    def study_name(self, cell: Cell) -> str:
        return study_name(self.spec, cell.id, self.storage_url, self.run.sqlite_url())

    def _cell_of(self, study: optuna.Study) -> Cell:
        return next(c for c in self.cells if self.study_name(c) == study.study_name)

    def open_studies(self) -> dict[str, optuna.Study]:
        storage = self.open_storage()
        studies = {}
        for i, cell in enumerate(self.cells):
            study = optuna.create_study(
                storage=storage, study_name=self.study_name(cell), directions=directions(self.spec, cell),
                load_if_exists=True,
            )
            if list(study.directions) != [optuna.study.StudyDirection[d.upper()] for d in directions(self.spec, cell)]:
                raise SpecError(f"{mask_url(self.storage_url)}: study '{study.study_name}' exists with other objectives")
            study.sampler = make_sampler(self.spec, i, len(study.trials))
            study.set_user_attr("objectives", self.spec.cell_objectives(cell))
            study.set_user_attr("cell", {"dataset": cell.dataset, "backbone": cell.backbone, "method": cell.method})
            studies[cell.id] = study
        return studies

    # -- what others left: written-but-untold trials, stale trials ------------
    def settle(self, studies: dict[str, optuna.Study]) -> None:
        """Tell the trials whose record was written but whose driver died before telling
        (with their values, or the infeasible penalty), then fail the stale ones."""
        storage = self.open_storage()
        for cell in self.cells:
            study = studies[cell.id]
            mine = {p.trial.number for p in self._inflight.values() if p.cell.id == cell.id}
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if t.number in mine:
                    continue
                record = self.run.read_trial(cell.id, t.number)
                if not record and (cell.id, t.number) not in self._adopted:
                    # Optuna never stales a trial without a heartbeat, and a driver killed between
                    # creating a trial and its first beat leaves one. Beat once for every running
                    # trial of another driver: a live owner beats on, an orphan goes stale.
                    self._adopted.add((cell.id, t.number))
                    try:
                        storage.record_heartbeat(storage.get_trial_id_from_study_id_trial_number(
                            storage.get_study_id_from_name(study.study_name), t.number))
                    except Exception:  # noqa: BLE001 - it may have ended meanwhile; the next settle looks again
                        log.debug("heartbeat for another driver's trial failed", exc_info=True)
                if not record or record.get("interrupted"):
                    continue
                if self._tell(cell, study, t.number, record):
                    self.say(f"resume: {cell.id} trial {t.number} had ended ({record.get('status')}); told Optuna")
            with _heartbeat_warnings_off():
                optuna.storages.fail_stale_trials(study)

    def _stale_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna's callback for a trial failed for a stopped heartbeat: its driver died
        mid-trial. Recorded as interrupted, which does not use up budget."""
        cell = self._cell_of(study)
        if self.run.read_trial(cell.id, trial.number) is None:
            error = "interrupted: its driver stopped mid-trial (no heartbeat)"
            self.run.write_trial(cell.id, trial.number, self._stub(cell, trial.number, trial.params, error))
            self.say(f"resume: {cell.id} trial {trial.number} did not finish ({error}); recorded as interrupted")

    def _stub(self, cell: Cell, number: int, params: dict, error: str) -> dict:
        return {"status": "failed", "error": error, "cell": cell.id, "dataset_name": cell.dataset,
                "backbone_name": cell.backbone, "method": cell.method, "optuna_trial": number,
                "params": params, "values": None, "interrupted": True}

    # -- the budget, shared by every driver ----------------------------------
    def _counted(self, cell: Cell) -> set[int]:
        """Trial numbers of the cell that used budget: ended (ok, failed or infeasible),
        not cut short by a crash. From the records, which every driver writes."""
        known = self._seen.setdefault(cell.id, {})
        folder = self.run.trial_file(cell.id, 0).parent
        for f in folder.glob("trial-*.json") if folder.is_dir() else ():
            n = int(f.stem.removeprefix("trial-"))
            if n not in known:
                r = self.run.read_trial(cell.id, n)
                known[n] = bool(r) and not r.get("interrupted")
        return {n for n, counted in known.items() if counted}

    def used(self, cell: Cell, study: optuna.Study, below: int | None = None) -> int:
        """Budget used by the cell: ended trials plus running ones (any driver's), all or
        only those numbered below ``below``."""
        running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        nums = self._counted(cell) | running
        return len(nums if below is None else {n for n in nums if n < below})

    def remaining(self, cell: Cell, study: optuna.Study) -> int:
        """Budget left in a cell: ended trials and running ones count, trials cut short by
        a crash do not."""
        return max(0, self.spec.budget.trials_per_cell - self.used(cell, study))

    def _penalty(self, cell: Cell) -> list[float]:
        return [-PENALTY if d == "maximize" else PENALTY for d in directions(self.spec, cell)]

    # -- the loop -----------------------------------------------------------
    def _values(self, cell: Cell, record: dict) -> list[float]:
        return [float(record["objectives"][o]) for o in self.spec.cell_objectives(cell)]

    def make_executor(self, address: str | None = None, num_cpus: int | None = None) -> Executor:
        """The default executor: one long-lived Ray Train worker group per concurrent trial."""
        from orchestrator.executor.ray_slots import RaySlotExecutor

        r = self.spec.resources
        slots = r.max_concurrent_trials
        if address is None:  # one machine: no more worker groups than fit on it at once
            fit = trials_that_fit(r.model_dump(), *self._local_capacity(num_cpus))
            if 1 <= fit < slots:
                self.say(f"resources.max_concurrent_trials: {slots} asked, {fit} fit on this machine at once")
                slots = fit
        return RaySlotExecutor(
            {"num_workers": r.num_workers, "cpus_per_worker": r.cpus_per_worker, "use_gpu": r.use_gpu},
            slots, self.run.ray_dir, address=address, num_cpus=num_cpus,
            timeout_s=r.trial_timeout_s, name=self.spec.name,
        )

    def _local_capacity(self, num_cpus: int | None) -> tuple[float, int]:
        """CPUs (``num_cpus``, else the machine's) and GPUs (counted only if asked for) here."""
        gpus = 0
        if self.spec.resources.use_gpu:
            import torch

            gpus = torch.cuda.device_count()
        return num_cpus or os.cpu_count() or 1, gpus

    def check_local_resources(self, num_cpus: int | None, gpus_only: bool = False) -> None:
        """Before anything is written or computed: can this machine give one trial
        what it asks for? (On a cluster the executor checks, warning, since it may scale.)
        ``gpus_only``: an executor of the caller's (in-process) runs threads, not Ray's CPU slots."""
        cpus, gpus = self._local_capacity(num_cpus)
        problems = resource_problems(self.spec.resources.model_dump(), math.inf if gpus_only else cpus, gpus)
        if problems:
            raise SpecError("resources: " + "; ".join(problems))

    def _beat(self, stop: threading.Event) -> None:
        """Record a heartbeat for each of this driver's running trials, every interval."""
        storage, hb = self.open_storage(), max(1, round(self.spec.storage.heartbeat_s))
        while not stop.wait(hb):
            for p in dict(self._inflight).values():  # a copy: the main thread adds and removes trials
                try:
                    storage.record_heartbeat(p.trial_id)
                except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                    log.debug("heartbeat failed", exc_info=True)

    def _next_cell(self, studies: dict[str, optuna.Study]) -> Cell | None:
        """The next cell with budget left, round-robin so every cell progresses together."""
        n = len(self.cells)
        for k in range(n):
            cell = self.cells[(self._rr + k) % n]
            if cell.id in self._full:
                continue
            if self.remaining(cell, studies[cell.id]) > 0:
                self._rr = (self._rr + k + 1) % n
                return cell
            self._full.add(cell.id)  # looked at again after the next settle (a crashed trial frees budget)
        return None

    def execute(self, address: str | None = None, num_cpus: int | None = None,
                executor: Executor | None = None) -> RunDir:
        if address is None:  # this machine runs the trials (through Ray, or GPUs only in this process)
            self.check_local_resources(num_cpus, gpus_only=executor is not None)
        if self.storage_url != self.run.sqlite_url():  # a server: reachable before anything is written
            self.open_storage()
        self.write_spec()
        studies = self.open_studies()
        self.settle(studies)
        total = sum(self.remaining(c, studies[c.id]) for c in self.cells)
        others = any(studies[c.id].get_trials(deepcopy=False, states=(TrialState.RUNNING,)) for c in self.cells)
        if not total and not others:
            self.say(f"sweep {self.spec.name}: {len(self.cells)} studies, nothing left to run")
            return self.run
        ex = executor or self.make_executor(address, num_cpus)
        finished = 0
        self.progress = LiveProgress(self.spec.name, self.spec.resources.max_concurrent_trials)
        for c in self.cells:
            self.progress.cells[c.id] = CellProgress(budget=self.spec.budget.trials_per_cell)
        for r in self.run.trial_records():  # a resumed sweep starts from what is done
            if r.get("cell") in self.progress.cells:
                self.progress.cells[r["cell"]].add(r)
        # A live table on a terminal; plain log lines otherwise (CI, nohup, a pipe).
        live = Live(self.progress, console=self.console, refresh_per_second=2) if self.console.is_terminal \
            else contextlib.nullcontext()
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(stop,), daemon=True, name="optuna-heartbeat")
        hb = max(1, round(self.spec.storage.heartbeat_s))
        with contextlib.closing(ex), live:  # stops the workers however the loop ends
            ex.start()  # workers start (seconds) while the driver featurizes and pretrains
            self.prepare()
            self.say(f"sweep {self.spec.name}: {len(self.cells)} studies, {total} trials to run")
            beat.start()
            try:
                while True:
                    while ex.free_slots() > 0:
                        cell = self._next_cell(studies)
                        if cell is None:
                            break
                        finished += self._submit(ex, cell, studies[cell.id], finished, total)
                    if self._inflight:
                        for key, record in ex.wait(timeout=hb):
                            p = self._inflight.pop(key)
                            if record.get("worker_lost") and len(p.retried_after) < self.spec.resources.max_retries:
                                self._retry(ex, p, record)
                                continue
                            finished += 1
                            self.progress.cells[p.cell.id].running -= 1
                            self._finish(p, record, finished, total)
                    elif any(studies[c.id].get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                             for c in self.cells):
                        time.sleep(hb)  # another driver's trials: they end, or go stale and free budget
                    else:
                        break
                    if time.monotonic() - self._settled > hb:
                        self._full.clear()
                        self.settle(studies)
                        self._settled = time.monotonic()
            finally:
                stop.set()
        return self.run

    def _submit(self, ex: Executor, cell: Cell, study: optuna.Study, finished: int, total: int) -> int:
        """Ask, check the budget, hand the trial to the executor; returns 1 if it ended at once."""
        storage = self.open_storage()
        space = self.spec.methods[cell.method].search
        with _heartbeat_warnings_off():
            trial = study.ask(distributions(space))
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(study.study_name), trial.number)
        storage.record_heartbeat(trial_id)
        # Two drivers may ask at once: a trial runs only if fewer than the budget of the
        # cell's counted and running trials precede it (every driver applies the same rule).
        if self.used(cell, study, below=trial.number) >= self.spec.budget.trials_per_cell:
            self.run.write_trial(cell.id, trial.number, self._stub(
                cell, trial.number, trial.params, "interrupted: not run, the budget was taken by another driver"))
            study.tell(trial, state=TrialState.FAIL)
            self._full.add(cell.id)
            return 0
        try:
            cfg = trial_config(self.spec, cell, trial.params, f"{cell.id}/{trial.number}")
        except Exception as exc:  # an invalid combination of proposed values
            self._finish(Pending(cell, study, trial, time.perf_counter(), trial_id=trial_id),
                         {"status": "failed", "error": f"invalid trial config: {exc}"[:2000]}, finished + 1, total)
            return 1
        dumped = cfg.model_dump(mode="json")
        trial.set_user_attr("trial_config", dumped)
        key = ex.submit(f"{cell.id}#{trial.number}", dumped)
        self._inflight[key] = Pending(cell, study, trial, time.perf_counter(), time.time(), trial_id, dumped)
        self.progress.cells[cell.id].running += 1
        return 0

    def _retry(self, ex: Executor, p: Pending, record: dict) -> None:
        """The trial's failure policy: its worker died under it, so the same configuration
        runs again in the same Optuna trial (which stays running, its heartbeat going on)."""
        p.retried_after.append(record["error"])
        n, most = len(p.retried_after), self.spec.resources.max_retries
        self.say(f"{p.cell.id} #{p.trial.number}: {record['error']}; running it again ({n} of {most} retries)")
        key = ex.submit(f"{p.cell.id}#{p.trial.number}.retry{n}", p.config)
        p.submitted_unix = time.time()
        self._inflight[key] = p

    def _tell(self, cell: Cell, study: optuna.Study, trial, record: dict) -> bool:
        """Tell Optuna how a recorded trial ended: its values; failed; or, out of memory, a
        penalised value (the worst in every objective: finite, dominated by every real trial
        so never on a front, and counted by TPE among its bad trials, which moves it away
        from that region). False when another driver told it first (from the record)."""
        status = record.get("status")
        try:
            if status == "ok" and record.get("values"):
                study.tell(trial, record["values"])
            elif status == "infeasible":
                study.tell(trial, self._penalty(cell))
            else:
                study.tell(trial, state=TrialState.FAIL)
        except (ValueError, RuntimeError):
            return False
        return True

    def _finish(self, p: Pending, record: dict, finished: int, total: int) -> None:
        record.update(
            cell=p.cell.id, dataset_name=p.cell.dataset, backbone_name=p.cell.backbone,
            method=p.cell.method, optuna_trial=p.trial.number, params=p.trial.params,
            objective_names=self.spec.cell_objectives(p.cell), wall_s=time.perf_counter() - p.started,
            retried_after=p.retried_after,
        )
        t = record.setdefault("timings", {})
        if "worker_start_unix" in t:
            t.setdefault("submitted_unix", p.submitted_unix)
            t.setdefault("driver_received_unix", time.time())
            t["overhead"] = overhead_breakdown(t)
        values = None
        if record["status"] == "ok":
            values = self._values(p.cell, record)
            if not all(math.isfinite(v) for v in values):
                record.update(status="failed", error=f"non-finite objective values {values}")
                values = None
        record["values"] = values
        self.run.write_trial(p.cell.id, p.trial.number, record)
        if self.progress is not None:
            self.progress.cells[p.cell.id].add(record)
            self.progress.durations.append(record["wall_s"])
        if values is None:
            try:
                p.trial.set_user_attr("error", record["error"])
                if record["status"] == "infeasible":
                    p.trial.set_user_attr("infeasible", True)
            except (ValueError, RuntimeError):
                pass  # another driver settled it from the record first
        self._tell(p.cell, p.study, p.trial, record)
        if values is None:
            params = f" {p.trial.params}" if record["status"] == "infeasible" else ""  # the configuration that did not fit
            self.say(f"[{finished}/{total}] {p.cell.id} #{p.trial.number}{params} {record['status']}: {record['error']}")
            return
        o, m = record["objectives"], record["metrics"]
        self.say(
            f"[{finished}/{total}] {p.cell.id} #{p.trial.number} {p.trial.params} → val "
            f"{m['metric']} {m['val_score']:.4f}±{m['val_std']:.4f} (test {m['test_score']:.4f}±{m['test_std']:.4f}, "
            f"{len(m['val_scores'])} seeds), "
            + ", ".join(f"{k} {v:.3f}" for k, v in o.items() if k != "score")
            + f", {record['trainable_params']} trainable "
            f"[{record['wall_s']:.0f}s]"
        )
