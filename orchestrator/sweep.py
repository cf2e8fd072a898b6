"""The sweep driver's loop: one Optuna study per cell, trials handed to an executor.

Optuna proposes (``ask``), an executor runs the trial (by default long-lived Ray
Train worker groups; the driver never calls Ray itself), the driver completes and
writes the trial record and reports back (``tell``). Its parts, one job each:

* :mod:`orchestrator.studies`: the durable storage and the cells' studies;
* :mod:`orchestrator.budget`: the budget shared by every driver of the sweep;
* :mod:`orchestrator.recovery`: heartbeats, stale trials, written-but-untold trials;
* :mod:`orchestrator.policy`: what Optuna is told, and when a trial runs again;
* :mod:`orchestrator.resolve`: spec and cell to ``TrialConfig``, directions, sampler.

Invariants of the loop:

* Every trial it asks for is, in this order, checked against the shared budget,
  submitted, and, once its record comes back, completed (:meth:`Sweep.finish`),
  written to the run folder and only then told. A driver that dies between the two
  leaves a record that recovery tells.
* While a trial runs, its rung reports reach :meth:`Sweep.on_rung` (through the
  executor's ``rung_decider``), whose answer (continue or stop) goes back through the
  executor.
* Slots are filled round-robin over the cells with budget left, then with the
  confirmation runs of cells whose search is over (:mod:`orchestrator.confirm`).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import yaml
from optuna.trial import Trial
from rich.console import Console
from rich.live import Live

from orchestrator import policy
from orchestrator.budget import SharedBudget
from orchestrator.capacity import check_local_resources, local_capacity
from orchestrator.confirm import Confirmations
from orchestrator.executor import DEFAULT_EXECUTOR, EXECUTORS, Executor, ExecutorContext, trials_that_fit
from orchestrator.policy import PENALTY
from orchestrator.prepare import prepare
from orchestrator.progress import CellProgress, LiveProgress
from orchestrator.recovery import Heartbeat, Recovery, interrupted
from orchestrator.resolve import (backbone_config, cache_dir_for, directions, families, make_sampler,
                                  trial_config)
from orchestrator.search import distributions
from orchestrator.stopping import Rungs
from orchestrator.spec import Cell, SpecError, SweepSpec, dump_resolved, parse_spec
from orchestrator.storage import RunDir, environment
from orchestrator.studies import Studies, heartbeat_warnings_off
from runfolder import Rung, TrialRecord

__all__ = ["PENALTY", "Sweep", "backbone_config", "cache_dir_for", "directions", "make_sampler", "trial_config"]


@dataclass
class Pending:
    """A trial this driver submitted and has not told yet."""

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
        self.studies = Studies(spec, self.run)
        self.recovery = Recovery(spec, self.run, self.studies, self.say)
        self.studies.on_stale = self.recovery.on_stale
        self.budget = SharedBudget(self.run, self.studies, spec.budget_of, spec.epochs_of, spec.committed_epochs)
        self.rungs = Rungs(spec, self.studies, directions) if spec.budget.stopping.type != "none" else None
        self.storage_url = self.studies.url
        self.confirm = Confirmations(spec, self.run, self.cells, directions, self._search_over, self.say)
        self.progress: LiveProgress | None = None
        self._inflight: dict[str, Pending] = {}
        self._finished = self._total = 0

    @property
    def finished(self) -> int:
        """Trials this driver has completed so far."""
        return self._finished

    def say(self, msg: str) -> None:
        """Progress lines; never read as rich markup (they hold params and error text)."""
        self.console.print(msg, markup=False, highlight=False)

    # -- set-up -------------------------------------------------------------
    def write_spec(self) -> None:
        """Record the resolved spec (and its task families); refuse to resume a run whose
        spec changed (budget aside)."""
        self.run.path.mkdir(parents=True, exist_ok=True)
        f = self.run.spec_file
        if f.exists():  # the header line is a YAML comment
            old = parse_spec(yaml.safe_load(f.read_text()), str(f))
            if old.content_hash(exclude_budget=True) != self.spec.content_hash(exclude_budget=True):
                raise SpecError(
                    f"{f}: this run was started from a different spec (only 'budget.trials_per_cell' and 'budget.epochs_per_cell' may change on "
                    f"resume); use a new 'name' or remove {self.run.path}"
                )
        self.run.write_spec(dump_resolved(self.spec))
        self.run.write_families(families(self.spec))
        self.run.write_env(environment())

    def prepare(self, builder=None) -> None:
        """Build what every trial reads before any trial starts (:func:`orchestrator.prepare.prepare`),
        its progress inside the live table on a terminal, else plain lines every 10 s."""
        from workloads.progress import line_sink

        live = self.progress is not None and self.console.is_terminal
        prepare(self.spec, self.say, self.progress.step if live else line_sink(self.say), builder)

    def open_studies(self) -> dict[str, optuna.Study]:
        return self.studies.open()

    def make_executor(self, name: str = DEFAULT_EXECUTOR, address: str | None = None,
                      num_cpus: int | None = None) -> Executor:
        """A registered executor for this sweep; locally, no more slots than fit at once."""
        r = self.spec.resources
        slots = r.max_concurrent_trials
        if address is None and not EXECUTORS.get(name).in_process:
            fit = trials_that_fit(r.model_dump(), *local_capacity(self.spec, num_cpus))
            if 1 <= fit < slots:
                self.say(f"resources.max_concurrent_trials: {slots} asked, {fit} fit on this machine at once")
                slots = fit
        return EXECUTORS.get(name).create(ExecutorContext(
            resources=r.model_dump(), name=self.spec.name, ray_dir=str(self.run.ray_dir), address=address,
            num_cpus=num_cpus, slots=slots, timeout_s=r.trial_timeout_s))

    # -- the loop -----------------------------------------------------------
    def execute(self, address: str | None = None, num_cpus: int | None = None,
                executor: Executor | str = DEFAULT_EXECUTOR) -> RunDir:
        """Run (or resume) the sweep with ``executor`` (a registered name, or an instance)."""
        in_process = executor.in_process if isinstance(executor, Executor) else EXECUTORS.get(executor).in_process
        if address is None:  # this machine runs the trials (through Ray, or GPUs only in this process)
            check_local_resources(self.spec, num_cpus, gpus_only=in_process)
        if self.studies.is_server:  # reachable before anything is written
            self.studies.storage()
        self.write_spec()
        self.open_studies()
        self.recovery.settle(self._mine())
        self._total = self.budget.total_remaining()
        if not self._total and not self.studies.any_running() and not self.confirm.due():
            self.say(f"sweep {self.spec.name}: {len(self.cells)} studies, nothing left to run")
            return self.run
        ex = executor if isinstance(executor, Executor) else self.make_executor(executor, address, num_cpus)
        ex.rung_decider = self._decide if self.rungs is not None else None
        self._start_progress()
        # A live table on a terminal; plain log lines otherwise (CI, nohup, a pipe).
        live = Live(self.progress, console=self.console, refresh_per_second=2) if self.console.is_terminal \
            else contextlib.nullcontext()
        hb = max(1, round(self.spec.storage.heartbeat_s))
        with contextlib.closing(ex), live:  # stops the workers however the loop ends
            ex.connect()  # the caches are built on the cluster before the slots take it
            self.prepare(ex.state_builder())
            ex.start()
            per = self.spec.budget.epochs_per_cell
            self.say(f"sweep {self.spec.name}: {len(self.cells)} studies, "
                     + (f"{per} training epochs each to spend" if per else f"{self._total} trials to run"))
            with Heartbeat(self.studies, hb, lambda: [p.trial_id for p in dict(self._inflight).values()]):
                settled = time.monotonic()
                while self._step(ex, hb):
                    if time.monotonic() - settled > hb:
                        self.budget.refresh()
                        self.recovery.settle(self._mine())
                        settled = time.monotonic()
        return self.run

    def _step(self, ex: Executor, hb: float) -> bool:
        """One turn of the loop: fill free slots, answer rung reports, collect ended trials.
        False when nothing is left to run or to wait for."""
        while ex.free_slots() > 0 and (cell := self.budget.next_cell()) is not None:
            self.submit(ex, cell)
        # confirmations once no cell has search budget left (budget.confirm_seeds)
        while (ex.free_slots() > 0 and self.confirm.on and self.budget.next_cell() is None
               and (c := self.confirm.next()) is not None):
            self.confirm.submit(ex, c)
        if self._inflight or self.confirm.running:
            for key, record in ex.wait(timeout=hb):
                if key in self.confirm.running:
                    self.confirm.collect(ex, key, record)
                    continue
                p = self._inflight.pop(key)
                if policy.should_retry(record, len(p.retried_after), self.spec.resources.max_retries):
                    self.retry(ex, p, record)
                    continue
                self.progress.cells[p.cell.id].running -= 1
                self.finish(p, record)
            return True
        self.confirm.refresh()  # cells whose search ended meanwhile (here or in another driver) are looked at again
        if self.studies.any_running():
            time.sleep(hb)  # another driver's trials: they end, or go stale and free budget
            return True
        return bool(self.confirm.due())

    def _search_over(self, cell: Cell) -> bool:
        """Every trial of the cell's budget has a record that counts, and none runs."""
        return (self.budget.exhausted(cell)
                and not self.studies.running(cell) and not any(p.cell.id == cell.id for p in self._inflight.values()))

    def _mine(self) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for p in self._inflight.values():
            out.setdefault(p.cell.id, set()).add(p.trial.number)
        return out

    def _start_progress(self) -> None:
        self.progress = LiveProgress(self.spec.name, self.spec.resources.max_concurrent_trials)
        for c in self.cells:
            self.progress.cells[c.id] = CellProgress(budget=self.spec.budget_of(c), epochs=self.spec.epochs_of(c))
        for r in self.run.trial_records():  # a resumed sweep starts from what is done
            if r.cell in self.progress.cells:
                self.progress.cells[r.cell].add(r)

    def submit(self, ex: Executor, cell: Cell) -> None:
        """Ask, check the shared budget, hand the trial to the executor."""
        study = self.studies.by_cell[cell.id]
        with heartbeat_warnings_off():
            trial = study.ask(distributions(self.spec.methods[cell.method].search))
        trial_id = self.studies.trial_id(cell, trial.number)
        self.studies.storage().record_heartbeat(trial_id)
        if not self.budget.admits(cell, trial.number):
            self.run.write_trial(cell.id, trial.number, interrupted(
                cell, trial.number, trial.params, "interrupted: not run, the budget was taken by another driver"))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        p = Pending(cell, study, trial, time.perf_counter(), time.time(), trial_id)
        try:
            cfg = trial_config(self.spec, cell, trial.params, f"{cell.id}/{trial.number}")
        except Exception as exc:  # an invalid combination of proposed values
            self.finish(p, TrialRecord.failure(f"invalid trial config: {exc}"))
            return
        p.config = cfg.model_dump(mode="json")
        trial.set_user_attr("trial_config", p.config)
        self._inflight[ex.submit(f"{cell.id}#{trial.number}", p.config)] = p
        self.progress.cells[cell.id].running += 1

    def _decide(self, key: str, rung: Rung) -> bool:
        p = self._inflight.get(key)
        return True if p is None else self.on_rung(p, rung)

    def on_rung(self, p: Pending, rung: Rung) -> bool:
        """A running trial's mid-trial report: True to let it go on, False to stop it
        (the rung rule of ``budget.stopping``, :class:`orchestrator.stopping.Rungs`)."""
        go = self.rungs is None or self.rungs.decide(p.cell, p.trial, rung)
        if not go:
            self.say(f"{p.cell.id} #{p.trial.number}: stopped at rung epoch {rung.epoch} "
                     f"({', '.join(f'{k} {v:.4g}' for k, v in rung.values.items())})")
        return go

    def retry(self, ex: Executor, p: Pending, record: TrialRecord) -> None:
        """Its worker died under it: the same configuration runs again in the same Optuna
        trial (which stays running, its heartbeat going on)."""
        p.retried_after.append(record.error)
        n, most = len(p.retried_after), self.spec.resources.max_retries
        self.say(f"{p.cell.id} #{p.trial.number}: {record.error}; running it again ({n} of {most} retries)")
        key = ex.submit(f"{p.cell.id}#{p.trial.number}.retry{n}", p.config)
        p.submitted_unix = time.time()
        self._inflight[key] = p

    def finish(self, p: Pending, record: TrialRecord) -> None:
        """Complete the record with what only the driver knows, write it, then tell Optuna."""
        self._finished += 1
        self.confirm.refresh()  # its cell's search may have ended: its confirmations become due
        self.budget.refresh()  # it may have spent less than it was committed to: its cell may have budget again
        if record.epochs_trained is None and record.status == "failed":  # the rungs it reached, as the driver saw them
            reached = [int(k.split(":")[1]) for k in p.trial.user_attrs if k.startswith("rung:") and k.count(":") == 1]
            record.epochs_trained = max(reached, default=0) or None
        record.assign(cell=p.cell.id, dataset=p.cell.dataset, backbone=p.cell.backbone, method=p.cell.method,
                      number=p.trial.number, params=p.trial.params, objective_names=self.spec.cell_objectives(p.cell))
        record.received(submitted_unix=p.submitted_unix, received_unix=time.time(),
                        wall_s=time.perf_counter() - p.started, retried_after=p.retried_after)
        values = record.settle()
        self.run.write_trial(p.cell.id, p.trial.number, record)
        if self.progress is not None:
            self.progress.cells[p.cell.id].add(record)
            self.progress.durations.append(record.wall_s)
        policy.annotate(p.trial, record)
        policy.tell(p.study, p.trial, record, directions(self.spec, p.cell))
        head = (f"[{self._finished}] " if self.spec.budget.epochs_per_cell else
                f"[{self._finished}/{self._total}] ") + f"{p.cell.id} #{p.trial.number}"
        if values is None:
            params = f" {p.trial.params}" if record.status == "infeasible" else ""  # the configuration that did not fit
            self.say(f"{head}{params} {record.status}: {record.error}")
        else:
            self.say(f"{head} {p.trial.params} → {record.summary_line()} [{record.wall_s:.0f}s]")
