"""Confirmation runs (``budget.confirm_seeds``): when a cell's search has ended, its
Pareto-optimal configurations, chosen on validation, train again on fresh seeds.

A search selects on the seeds it trained with; a difference it shows is partly the luck
of those seeds. The confirmation runs train each selected configuration on
``confirm_seeds`` seeds none of the search used (``seed + budget.seeds`` onwards), the
same seeds for every configuration of the sweep, so the reports' paired tests compare
configurations on equal, fresh draws.

Invariants:

* A cell is confirmed once its search is over: every trial of its budget has a record
  that counts and none is running.
* Which configurations: the cell's finished (``ok``) search trials that no other
  finished trial dominates on the cell's objectives (validation score and costs, as
  Optuna saw them), at most ``budget.confirm_max`` of them, best validation score first.
* A confirmation run is not an Optuna trial (nothing is told): its record is
  ``trials/<cell>/confirm-NNNN.json`` with ``confirms = NNNN``, the search trial it
  repeats. The records are the ledger: a confirmation without a record is due, so a
  driver that dies mid-run leaves it due and the next one runs it again (the same
  configuration and seeds, so the same result on CPU). Two drivers at once may both run
  one; the second write replaces the first with the same figures.
* It trains without early-stopping rungs and without limits (the configuration was
  finished and within them once); ``train.patience``, part of training, still applies.
  It runs under the same ``resources.trial_timeout_s`` as a search trial, which trained
  ``budget.seeds`` seeds where it trains ``confirm_seeds``: size the timeout for it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from orchestrator import policy
from orchestrator.spec import Cell, SweepSpec
from orchestrator.stopping import non_dominated_fronts
from orchestrator.storage import RunDir
from runfolder import TrialRecord
from workloads.config import TrialConfig  # noqa: F401  (what config() returns)


@dataclass(frozen=True)
class Confirmation:
    cell: Cell
    source: TrialRecord  # the search trial whose configuration runs again

    @property
    def key(self) -> str:
        return f"{self.cell.id}#confirm{self.source.optuna_trial}"


def selected(records: list[TrialRecord], directions: list[str], most: int) -> list[TrialRecord]:
    """A cell's configurations to confirm: its finished trials on the first non-dominated
    front of its objectives, best validation score first, at most ``most``."""
    ok = [r for r in records if r.status == "ok" and r.values is not None and r.confirms is None]
    if not ok:
        return []
    front = non_dominated_fronts(np.array([r.values for r in ok]), directions)[0]
    score = ok[0].objective_names.index("score")
    sign = -1.0 if directions[score] == "maximize" else 1.0
    return sorted((ok[i] for i in front), key=lambda r: (sign * r.values[score], r.optuna_trial))[:most]


class Confirmations:
    """The confirmation runs of one driver: which are due, and those it has handed to an
    executor until their records are written."""

    def __init__(self, spec: SweepSpec, run: RunDir, cells: list[Cell], directions, search_over,
                 say=print) -> None:
        """``directions(spec, cell)``: the cell's Optuna directions; ``search_over(cell)``: whether
        its search has ended (the budget used by counted trials, none running); ``say``: progress lines."""
        self.spec, self.run, self.cells = spec, run, cells
        self.directions, self.search_over, self.say = directions, search_over, say
        self.submitted: set[str] = set()  # keys this driver has running or has finished
        self.running: dict[str, tuple[Confirmation, float, float, list]] = {}  # key -> (c, start, unix, retries)
        self._due: list[Confirmation] | None = None  # looked at again after refresh()

    @property
    def on(self) -> bool:
        return self.spec.budget.confirm_seeds > 0

    def due(self) -> list[Confirmation]:
        """Confirmations with no record yet, of cells whose search is over (none this driver runs)."""
        if not self.on:
            return []
        out = []
        for cell in self.cells:
            if not self.search_over(cell):
                continue
            done = self.run.confirmed_numbers(cell.id)
            records = [self.run.read_trial(cell.id, n) for n in self.run.trial_numbers(cell.id)]
            for r in selected([r for r in records if r is not None], self.directions(self.spec, cell),
                              self.spec.budget.confirm_max):
                c = Confirmation(cell, r)
                if r.optuna_trial not in done and c.key not in self.submitted:
                    out.append(c)
        return out

    def config(self, c: Confirmation) -> TrialConfig:
        """The source trial's configuration (its params resolved by this spec, on this machine's
        cache and device) on the fresh seeds, without rungs or limits."""
        from orchestrator.resolve import trial_config

        cfg = trial_config(self.spec, c.cell, c.source.params, f"{c.cell.id}/confirm-{c.source.optuna_trial}")
        return cfg.model_copy(update={"seed": self.spec.seed + self.spec.budget.seeds,
                                      "seeds": self.spec.budget.confirm_seeds, "rungs": [], "limits": {}})

    def refresh(self) -> None:
        """Look for due confirmations again at the next :meth:`next` (a cell's search may have ended)."""
        self._due = None

    def next(self) -> Confirmation | None:
        """The next due confirmation this driver has not submitted, or None."""
        if self._due is None:
            self._due = self.due()
        return self._due.pop(0) if self._due else None

    def submit(self, ex, c: Confirmation) -> None:
        """Hand ``c`` to the executor ``ex``."""
        cfg = self.config(c)
        self.submitted.add(c.key)
        self.running[ex.submit(c.key, cfg.model_dump(mode="json"))] = (c, time.perf_counter(), time.time(), [])
        self.say(f"{c.cell.id} #{c.source.optuna_trial}: confirming on seeds {cfg.seed}..{cfg.seed + cfg.seeds - 1}")

    def collect(self, ex, key: str, record: TrialRecord) -> None:
        """A submitted confirmation came back: run it again where its worker died (as a search
        trial is, ``resources.max_retries``), else complete and write its record."""
        c, started, unix, retried = self.running.pop(key)
        if policy.should_retry(record, len(retried), self.spec.resources.max_retries):
            retried.append(record.error)
            self.running[ex.submit(f"{key}.retry{len(retried)}", self.config(c).model_dump(mode="json"))] \
                = (c, started, time.time(), retried)
            return
        self.finish(c, record, submitted_unix=unix, received_unix=time.time(),
                    wall_s=time.perf_counter() - started, retried_after=retried)
        self.refresh()
        head = f"[confirm] {c.cell.id} #{c.source.optuna_trial}"
        self.say(f"{head} → {record.summary_line()}" if record.status == "ok" else
                 f"{head} {record.status}: {record.error}")

    def finish(self, c: Confirmation, record: TrialRecord, **received) -> TrialRecord:
        """Complete the record as the source trial's confirmation and write it."""
        record.assign(cell=c.cell.id, dataset=c.cell.dataset, backbone=c.cell.backbone, method=c.cell.method,
                      number=c.source.optuna_trial, params=c.source.params,
                      objective_names=list(c.source.objective_names))
        record.confirmation_of(c.source.optuna_trial)
        record.received(**received)
        record.settle()
        self.run.write_confirmation(c.cell.id, c.source.optuna_trial, record)
        return record
