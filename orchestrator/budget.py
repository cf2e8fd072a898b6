"""The budget of each cell, in trials and in training epochs, shared by every driver of a sweep.

Invariants:

* A cell's budget is a trial cap (``budget.trials_per_cell``; one for a reference baseline
  that searches nothing, :meth:`SweepSpec.budget_of`), an epoch budget
  (``budget.epochs_per_cell``, :meth:`SweepSpec.epochs_of`), or both. It is used by every
  trial whose record says it counts (:attr:`runfolder.TrialRecord.counts`: every end but
  ``interrupted``) and by every RUNNING trial of any driver. Trials cut short by a crash
  free their budget again.
* Epochs are counted as work happens: a finished trial spends what its record says it
  trained (:attr:`runfolder.TrialRecord.epochs_spent`: over its seeds, stopped and failed
  trials included, at least one), a running trial what it is committed to (``committed``:
  the epochs up to its next rung decision, or its whole training where no rung is left). A
  cell therefore goes on asking for new configurations until its epochs are spent, so the
  epochs early stopping saves buy new trials; a trial that goes on past a rung may overspend
  it by its epochs after that rung.
* Records are written by every driver into the shared run folder, so they are the
  common ledger; a record, once read, is cached by trial number (a record is written
  once and never changes its status afterwards). A resumed sweep counts the same epochs.
* Two drivers that ask at once apply the same rule (:meth:`SharedBudget.admits`): a
  trial runs only if the trials numbered before it (counted and running) leave budget, so
  the trial cap is never exceeded and the same trial is never refused by one driver and
  run by the other.
"""
from __future__ import annotations

from typing import Callable

from orchestrator.spec import Cell
from orchestrator.storage import RunDir
from orchestrator.studies import Studies


class SharedBudget:
    def __init__(self, run: RunDir, studies: Studies, per_cell: int | None | Callable[[Cell], int | None],
                 epochs: Callable[[Cell], int | None] | None = None,
                 committed: Callable[[Cell, int], int] | None = None) -> None:
        self.run, self.studies = run, studies
        self.per_cell: Callable[[Cell], int | None] = per_cell if callable(per_cell) else (lambda cell: per_cell)
        self.epochs: Callable[[Cell], int | None] = epochs or (lambda cell: None)
        # a running trial's epochs, from the last rung it reached (0: none yet): at least one
        self.committed: Callable[[Cell, int], int] = committed or (lambda cell, reached: max(1, reached))
        self._seen: dict[str, dict[int, int]] = {}  # per cell: trial number -> epochs spent (0: does not count)
        self._counts: dict[str, dict[int, bool]] = {}
        self._full: set[str] = set()  # cells without budget left when last looked at (until refresh)
        self._rr = 0

    def _ledger(self, cell: Cell) -> dict[int, int]:
        known = self._seen.setdefault(cell.id, {})
        counts = self._counts.setdefault(cell.id, {})
        for n in self.run.trial_numbers(cell.id):
            if n not in known:
                r = self.run.read_trial(cell.id, n)
                counts[n] = r is not None and r.counts
                known[n] = r.epochs_spent if r is not None else 0
        return known

    def counted(self, cell: Cell) -> set[int]:
        """Trial numbers of the cell whose record says they used budget."""
        self._ledger(cell)
        return {n for n, c in self._counts[cell.id].items() if c}

    def used(self, cell: Cell, below: int | None = None) -> int:
        """Trials used: counted trials plus running ones, all or only those numbered below ``below``."""
        nums = self.counted(cell) | self.studies.running(cell)
        return len(nums if below is None else {n for n in nums if n < below})

    def epochs_used(self, cell: Cell, below: int | None = None) -> int:
        """Epochs spent: by counted trials (their records) and by running ones (what they are
        committed to), all or only those numbered below ``below``."""
        ledger = self._ledger(cell)
        counted = self._counts[cell.id]
        spent = {n: e for n, e in ledger.items() if counted.get(n)}
        for n, reached in self.studies.running_epochs(cell).items():
            spent.setdefault(n, self.committed(cell, reached))
        return sum(e for n, e in spent.items() if below is None or n < below)

    def remaining(self, cell: Cell) -> int:
        """Trials that may still start (a large number where only epochs bound the cell)."""
        cap, epochs = self.per_cell(cell), self.epochs(cell)
        left = [] if cap is None else [max(0, cap - self.used(cell))]
        if epochs is not None:
            left.append(max(0, epochs - self.epochs_used(cell)))  # each trial spends at least one epoch
        return min(left)

    def total_remaining(self) -> int:
        return sum(self.remaining(c) for c in self.studies.cells)

    def exhausted(self, cell: Cell) -> bool:
        """The cell's budget is used up by trials that ended (running ones aside)."""
        cap, epochs = self.per_cell(cell), self.epochs(cell)
        done = self.counted(cell)
        spent = sum(e for n, e in self._seen[cell.id].items() if n in done)
        return (cap is not None and len(done) >= cap) or (epochs is not None and spent >= epochs)

    def admits(self, cell: Cell, number: int) -> bool:
        """Whether the trial just asked for (``number``) may run (see the module docstring)."""
        cap, epochs = self.per_cell(cell), self.epochs(cell)
        if (cap is not None and self.used(cell, below=number) >= cap) or (
                epochs is not None and self.epochs_used(cell, below=number) >= epochs):
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
        """Look at full cells again (a trial cut short elsewhere may have freed budget, a running
        one may have reached a rung)."""
        self._full.clear()
