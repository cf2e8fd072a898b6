"""What crashed drivers leave behind, and the heartbeats that let others find it.

Invariants (who owns a RUNNING trial):

* A RUNNING trial is owned by the driver that asked for it; that driver beats for it
  every ``storage.heartbeat_s`` (:class:`Heartbeat`) until it tells it.
* A trial whose record is written but that is still RUNNING was ended by a driver that
  died before telling: any driver tells it from the record (:meth:`Recovery.settle`).
* A RUNNING trial without a record whose beat has stopped for three intervals belongs to
  a dead driver: Optuna fails it (``fail_stale_trials``) and :meth:`Recovery.on_stale`
  records it as ``interrupted``, which frees its budget.
* Optuna never stales a trial that never beat (a driver killed between ``ask`` and its
  first beat), so every driver beats once for each RUNNING trial of another driver that
  has no record: a live owner beats on, an orphan goes stale.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable

import optuna
from optuna.trial import TrialState

from orchestrator import policy
from orchestrator.resolve import directions
from orchestrator.spec import Cell, SweepSpec
from orchestrator.storage import RunDir
from orchestrator.studies import Studies, heartbeat_warnings_off
from runfolder import TrialRecord

log = logging.getLogger(__name__)


class Heartbeat:
    """A thread that records a heartbeat for each of this driver's running trials."""

    def __init__(self, studies: Studies, interval_s: float, trial_ids: Callable[[], Iterable[int]]) -> None:
        self.studies, self.interval, self.trial_ids = studies, max(1, round(interval_s)), trial_ids
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="optuna-heartbeat")

    def _run(self) -> None:
        storage = self.studies.storage()
        while not self._stop.wait(self.interval):
            for tid in list(self.trial_ids()):  # a copy: the main thread adds and removes trials
                try:
                    storage.record_heartbeat(tid)
                except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                    log.debug("heartbeat failed", exc_info=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()


class Recovery:
    def __init__(self, spec: SweepSpec, run: RunDir, studies: Studies, say: Callable[[str], None]) -> None:
        self.spec, self.run, self.studies, self.say = spec, run, studies, say
        self._adopted: set[tuple[str, int]] = set()  # others' running trials this driver beat for once

    def settle(self, mine: dict[str, set[int]]) -> None:
        """Annotate and tell the trials whose record was written but whose driver died before telling
        (``mine``: this driver's own running trials per cell, left alone), then fail the stale ones."""
        storage = self.studies.storage()
        for cell in self.studies.cells:
            study = self.studies.by_cell[cell.id]
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if t.number in mine.get(cell.id, ()):
                    continue
                record = self.run.read_trial(cell.id, t.number)
                if record is None and (cell.id, t.number) not in self._adopted:
                    self._adopted.add((cell.id, t.number))
                    try:
                        storage.record_heartbeat(self.studies.trial_id(cell, t.number))
                    except Exception:  # noqa: BLE001 - it may have ended meanwhile; the next settle looks again
                        log.debug("heartbeat for another driver's trial failed", exc_info=True)
                if record is None or record.status == "interrupted":
                    continue
                trial = optuna.trial.Trial(study, self.studies.trial_id(cell, t.number))
                policy.annotate(trial, record)  # as the dead driver would have: where it stopped, its error
                if policy.tell(study, trial, record, directions(self.spec, cell)):
                    self.say(f"resume: {cell.id} trial {t.number} had ended ({record.status}); told Optuna")
            with heartbeat_warnings_off():
                optuna.storages.fail_stale_trials(study)

    def on_stale(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna's callback for a trial failed for a stopped heartbeat: its driver died
        mid-trial. Recorded as interrupted, which does not use up budget."""
        cell = self.studies.cell_of(study)
        if self.run.read_trial(cell.id, trial.number) is None:
            error = "interrupted: its driver stopped mid-trial (no heartbeat)"
            self.run.write_trial(cell.id, trial.number, interrupted(cell, trial.number, trial.params, error))
            self.say(f"resume: {cell.id} trial {trial.number} did not finish ({error}); recorded as interrupted")


def interrupted(cell: Cell, number: int, params: dict, error: str) -> TrialRecord:
    return TrialRecord.interrupted(cell=cell.id, dataset=cell.dataset, backbone=cell.backbone, method=cell.method,
                                   number=number, params=params, error=error)
