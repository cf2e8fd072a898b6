"""The trial budget of each cell, shared by every driver of a sweep.

Invariants:

* A cell's budget (``budget.trials_per_cell``; one for a reference baseline that
  searches nothing, :meth:`SweepSpec.budget_of`) is used by every trial whose record
  says it counts (:attr:`runfolder.TrialRecord.counts`: every end but ``interrupted``)
  and by every RUNNING trial of any driver. Trials cut short by a crash free their
  budget again.
* Records are written by every driver into the shared run folder, so they are the
  common ledger; a record, once read, is cached by trial number (a record is written
  once and never changes its status afterwards).
* Two drivers that ask at once apply the same rule (:meth:`SharedBudget.admits`): a
  trial runs only if fewer than the budget of the cell's counted and running trials
  precede it by number, so the budget is never exceeded and never both refused.
"""
from __future__ import annotations

from typing import Callable

from orchestrator.spec import Cell
from orchestrator.storage import RunDir
from orchestrator.studies import Studies


class SharedBudget:
    def __init__(self, run: RunDir, studies: Studies, per_cell: int | Callable[[Cell], int]) -> None:
        self.run, self.studies = run, studies
        self.per_cell: Callable[[Cell], int] = per_cell if callable(per_cell) else (lambda cell: per_cell)
        self._seen: dict[str, dict[int, bool]] = {}  # per cell: trial number -> its record counts
        self._full: set[str] = set()  # cells without budget left when last looked at (until refresh)
        self._rr = 0

    def counted(self, cell: Cell) -> set[int]:
        """Trial numbers of the cell whose record says they used budget."""
        known = self._seen.setdefault(cell.id, {})
        for n in self.run.trial_numbers(cell.id):
            if n not in known:
                r = self.run.read_trial(cell.id, n)
                known[n] = r is not None and r.counts
        return {n for n, counted in known.items() if counted}

    def used(self, cell: Cell, below: int | None = None) -> int:
        """Budget used: counted trials plus running ones, all or only those numbered below ``below``."""
        nums = self.counted(cell) | self.studies.running(cell)
        return len(nums if below is None else {n for n in nums if n < below})

    def remaining(self, cell: Cell) -> int:
        return max(0, self.per_cell(cell) - self.used(cell))

    def total_remaining(self) -> int:
        return sum(self.remaining(c) for c in self.studies.cells)

    def admits(self, cell: Cell, number: int) -> bool:
        """Whether the trial just asked for (``number``) may run (see the module docstring)."""
        if self.used(cell, below=number) >= self.per_cell(cell):
            self._full.add(cell.id)
            return False
        return True

    def next_cell(self) -> Cell | None:
        """The next cell with budget left, round-robin so every cell progresses together."""
        cells = self.studies.cells
        n = len(cells)
        for k in range(n):
            cell = cells[(self._rr + k) % n]
            if cell.id in self._full:
                continue
            if self.remaining(cell) > 0:
                self._rr = (self._rr + k + 1) % n
                return cell
            self._full.add(cell.id)  # looked at again after the next refresh (a crashed trial frees budget)
        return None

    def refresh(self) -> None:
        """Look at full cells again (a trial cut short elsewhere may have freed budget)."""
        self._full.clear()
