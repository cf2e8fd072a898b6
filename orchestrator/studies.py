"""Optuna's durable storage and the sweep's studies, one per cell.

Invariants:

* The storage is opened once per driver, with heartbeats on: a driver beats for the
  RUNNING trials it owns (:class:`orchestrator.recovery.Heartbeat`); a trial whose
  beat stops is failed by whichever driver calls ``fail_stale_trials`` next.
* A study's name is derived from the spec and the cell alone, so every driver of a
  sweep (and a resumed one) opens the same studies; a study that exists with other
  objectives is refused.
* Only Optuna's public API is used.
"""
from __future__ import annotations

import contextlib
import time
import warnings
from typing import Callable

import optuna
from optuna.trial import TrialState

from orchestrator.resolve import directions, make_sampler
from orchestrator.spec import Cell, SpecError, SweepSpec, mask_url, redact
from orchestrator.storage import RunDir, storage_url, study_name

optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextlib.contextmanager
def heartbeat_warnings_off():
    """The driver asks and tells (trials run elsewhere) and beats for its running trials
    itself, where Optuna's warning assumes only Study.optimize does; and Optuna marks its
    heartbeat API experimental. Both are used on purpose."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        yield


class Studies:
    """The storage and the cells' studies of one sweep, as one driver sees them.

    Args:
        spec: the validated sweep spec.
        run: its run folder (SQLite lives there unless the spec names a server).
        on_stale: Optuna's callback for a trial failed for a stopped heartbeat.
    """

    def __init__(self, spec: SweepSpec, run: RunDir, on_stale: Callable | None = None) -> None:
        self.spec, self.run, self.on_stale = spec, run, on_stale
        self.url = storage_url(spec, run)
        self.cells = spec.cells()
        self._storage: optuna.storages.RDBStorage | None = None
        self.by_cell: dict[str, optuna.Study] = {}

    @property
    def is_server(self) -> bool:
        return self.url != self.run.sqlite_url()

    def storage(self) -> optuna.storages.RDBStorage:
        """Optuna's storage, opened once, with heartbeats. A URL that cannot be opened is a
        spec error (its password masked), found before the run folder is created."""
        if self._storage is None:
            hb = self.spec.storage.heartbeat_s
            for attempt in range(5):
                try:
                    with heartbeat_warnings_off():
                        self._storage = optuna.storages.RDBStorage(
                            self.url, engine_kwargs={"connect_args": {"timeout": 60}}
                            if self.url.startswith("sqlite") else {},
                            heartbeat_interval=max(1, round(hb)), grace_period=max(2, round(3 * hb)),
                            heartbeat_stale_trial_callback=self.on_stale,
                        )
                    break
                except Exception as e:  # SQLAlchemy raises several types for bad URLs or servers
                    # another driver is creating the tables at this moment: a duplicate row (IntegrityError),
                    # or on SQLite a table it created between our check and our CREATE ("already exists")
                    if ("IntegrityError" in type(e).__name__ + str(e) or "already exists" in str(e)) and attempt < 4:
                        time.sleep(0.5 + attempt)
                        continue
                    what = " ".join(redact(str(e), self.url).split())
                    raise SpecError(f"storage.optuna_url: cannot open '{mask_url(self.url)}': {what}") from None
        return self._storage

    def name(self, cell: Cell) -> str:
        return study_name(self.spec, cell.id, self.url, self.run.sqlite_url())

    def cell_of(self, study: optuna.Study) -> Cell:
        return next(c for c in self.cells if self.name(c) == study.study_name)

    def open(self) -> dict[str, optuna.Study]:
        """Create or load every cell's study; each gets its sampler, seeded past the trials it holds."""
        storage = self.storage()
        for i, cell in enumerate(self.cells):
            dirs = directions(self.spec, cell)
            study = optuna.create_study(storage=storage, study_name=self.name(cell), directions=dirs,
                                        load_if_exists=True)
            if list(study.directions) != [optuna.study.StudyDirection[d.upper()] for d in dirs]:
                raise SpecError(f"{mask_url(self.url)}: study '{study.study_name}' exists with other objectives")
            study.sampler = make_sampler(self.spec, i, len(study.trials))
            study.set_user_attr("objectives", self.spec.cell_objectives(cell))
            study.set_user_attr("cell", {"dataset": cell.dataset, "backbone": cell.backbone, "method": cell.method})
            self.by_cell[cell.id] = study
        return self.by_cell

    def running(self, cell: Cell) -> set[int]:
        """Numbers of the cell's RUNNING trials, whichever driver owns them."""
        return {t.number for t in self.by_cell[cell.id].get_trials(deepcopy=False, states=(TrialState.RUNNING,))}

    def running_epochs(self, cell: Cell) -> dict[int, int]:
        """The cell's RUNNING trials, each with the last rung epoch it reached (``rung:<epoch>``
        in its user attributes; 0 before its first rung)."""
        out = {}
        for t in self.by_cell[cell.id].get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            rungs = [int(k.split(":")[1]) for k in t.user_attrs if k.startswith("rung:") and k.count(":") == 1]
            out[t.number] = max(rungs, default=0)
        return out

    def any_running(self) -> bool:
        return any(self.running(c) for c in self.cells)

    def trial_id(self, cell: Cell, number: int) -> int:
        """The storage's id of a trial (what heartbeats are recorded against)."""
        storage = self.storage()
        return storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(self.by_cell[cell.id].study_name), number)
