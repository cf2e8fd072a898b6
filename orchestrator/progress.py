"""How far a sweep has got: a live table while it runs (when the output is a
terminal), and ``orchestrator status runs/<sweep>`` at any moment, from the run
folder and its Optuna storage.

Both show per cell the trials done, running, stopped early, failed and infeasible
against the budget, and the best validation score so far."""
from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from runfolder import TrialRecord
from workloads.progress import StepState


@dataclass
class CellProgress:
    budget: int | None = 0  # trials (None: no cap, the epochs decide)
    epochs: int | None = None  # the cell's epoch budget (budget.epochs_per_cell), if any
    epochs_spent: int = 0
    done: int = 0
    running: int = 0
    stopped: int = 0
    failed: int = 0
    infeasible: int = 0
    best: float | None = None
    metric: str = ""
    direction: str = "maximize"

    def add(self, record: TrialRecord) -> None:
        if not record.counts:
            return  # cut short, re-run: does not count
        self.epochs_spent += record.epochs_spent
        if record.status == "ok":
            self.done += 1
            score = record.score
            if record.metrics is not None:
                self.metric, self.direction = record.metrics.metric, record.metrics.direction
            if self.best is None or (score > self.best if self.direction == "maximize" else score < self.best):
                self.best = score
        elif record.status == "stopped":
            self.stopped += 1  # its score is not final: never the best
        elif record.status == "infeasible":
            self.infeasible += 1
        else:
            self.failed += 1

    @property
    def ended(self) -> int:
        return self.done + self.stopped + self.failed + self.infeasible

    def budget_text(self) -> str:
        """``4`` (trials), ``37/60 epochs`` or ``37/60 epochs, ≤ 8 trials``."""
        if self.epochs is None:
            return str(self.budget)
        cap = f", ≤ {self.budget} trials" if self.budget is not None else ""
        return f"{self.epochs_spent}/{self.epochs} epochs{cap}"

    def left(self, epochs_per_trial: float | None) -> float:
        """Trials left, estimated from the epochs a trial has spent on average where epochs decide."""
        by_trials = max(0, self.budget - self.ended) if self.budget is not None else math.inf
        if self.epochs is None:
            return by_trials
        per = epochs_per_trial or 1.0
        return min(by_trials, max(0, self.epochs - self.epochs_spent) / per)


def _duration(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def status_table(cells: dict[str, CellProgress], title: str, caption: str = "") -> Table:
    t = Table(title=title, caption=caption or None, title_justify="left", caption_justify="left")
    for col in ("cell", "done", "running", "stopped", "failed", "infeasible", "budget", "best validation"):
        t.add_column(col, justify="left" if col == "cell" else "right", no_wrap=col in ("cell", "best validation"))
    for cell, c in cells.items():
        arrow = "↑" if c.direction == "maximize" else "↓"
        best = f"{c.metric} {c.best:.4f} {arrow}" if c.best is not None else "–"
        t.add_row(cell, str(c.done), str(c.running), str(c.stopped), str(c.failed), str(c.infeasible),
                  c.budget_text(), best)
    return t


@dataclass
class LiveProgress:
    """The driver's counters, drawn as :func:`status_table` with elapsed time and an
    estimate of what remains (mean trial time × trials left ÷ concurrent slots)."""

    name: str
    slots: int
    cells: dict[str, CellProgress] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    durations: list[float] = field(default_factory=list)
    steps: dict[str, StepState] = field(default_factory=dict)  # featurizing, LM caches, pretraining

    def step(self, state: StepState, final: bool) -> None:
        """A :class:`workloads.progress.Progress` sink: the step is drawn above the table."""
        self.steps[state.what] = state

    def remaining_s(self) -> float | None:
        ended = sum(c.ended for c in self.cells.values())
        per = sum(c.epochs_spent for c in self.cells.values()) / ended if ended else None
        left = sum(c.left(per) for c in self.cells.values())
        if not self.durations or not math.isfinite(left):
            return None
        return sum(self.durations) / len(self.durations) * left / max(1, self.slots)

    def __rich__(self) -> Table | Group:
        caption = (f"elapsed {_duration(time.perf_counter() - self.started)}, about "
                   f"{_duration(self.remaining_s())} left")
        table = status_table(self.cells, f"sweep {self.name}", caption)
        if not self.steps:
            return table
        # Text, not markup: a step's note holds [brackets]; a copy: the driver adds steps meanwhile
        lines = [Text(("✓ " if s.ended is not None else "… ") + s.line()) for s in list(self.steps.values())]
        return Group(*lines, table)


def sweep_status(run_path: str | Path) -> tuple[dict[str, CellProgress], str]:
    """Per-cell progress of the sweep in ``run_path`` (finished or running) and a
    one-line note on where the running counts came from."""
    import yaml

    from orchestrator.spec import parse_spec
    from orchestrator.storage import RunDir

    run = RunDir(Path(run_path))
    if not run.spec_file.exists():
        raise FileNotFoundError(f"{run.path}: not a run folder (no spec.resolved.yaml)")
    spec = parse_spec(yaml.safe_load(run.spec_file.read_text()), str(run.spec_file))
    cells: dict[str, CellProgress] = defaultdict(CellProgress)
    for c in spec.cells():
        cells[c.id].budget, cells[c.id].epochs = spec.budget_of(c), spec.epochs_of(c)
    for r in run.trial_records():
        cells[r.cell or "?"].add(r)
    note = _running_from_storage(spec, run, cells)
    return dict(cells), note


def _running_from_storage(spec, run, cells: dict[str, CellProgress]) -> str:
    import optuna
    from optuna.trial import TrialState

    from orchestrator.spec import mask_url
    from orchestrator.storage import STORAGE_ENV, storage_url, study_name

    url = storage_url(spec, run)
    if url == run.sqlite_url() and not (run.path / "optuna.db").exists():
        return "no Optuna storage yet: nothing has run"
    try:
        storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
        names = {study_name(spec, c, url, run.sqlite_url()): c for c in cells}
        for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False):
            if s.study_name in names:
                study = optuna.load_study(study_name=s.study_name, storage=storage)
                cells[names[s.study_name]].running = len(study.get_trials(deepcopy=False,
                                                                          states=(TrialState.RUNNING,)))
    except Exception as e:  # the storage may be down or elsewhere: the records still tell most
        hint = (f"; set ${STORAGE_ENV} to its full URL (the run folder keeps it without its password)"
                if ":***@" in url else "")
        return f"running trials unknown: cannot read {mask_url(url)} ({type(e).__name__}){hint}"
    return f"running trials from {mask_url(url)}"
