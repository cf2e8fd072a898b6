"""Progress of the long steps that run before any trial: featurizing a molecule set,
building an LM-state cache, pretraining a backbone.

A step counts what it has done (``advance``) against its total; a :class:`Progress`
turns that into counts, a rate and an ETA and hands it to a *sink*. The sink is the one
given, else the one the caller installed around the work with :func:`reporting` (a
context variable, as ``logging`` handlers are set once by the application rather than
passed down every call), else a plain line to this module's logger every 10 s. The
sweep driver's sink draws the step inside its live table on a terminal (one live
display at a time); otherwise it says a plain line every ``every_s`` seconds and one
at the end, so a log or a CI run still tells progress from a hang. Torch-free.

Written by hand: ``rich.progress`` would open a second live display beside the
driver's table, and ``tqdm`` draws on stderr only.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

__all__ = ["Progress", "ProgressSink", "StepState", "current_sink", "line_sink", "null_progress", "reporting"]

log = logging.getLogger(__name__)


@dataclass
class StepState:
    """Where one step stands: ``done`` of ``total`` ``unit`` (``done_before``: found done,
    as a resumed build's finished shards, and not counted in the rate)."""

    what: str
    total: int
    unit: str = "items"
    done: int = 0
    done_before: int = 0
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None
    note: str = ""

    @property
    def elapsed_s(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    @property
    def rate(self) -> float | None:
        """Units per second of this run (what was found done does not count)."""
        work, t = self.done - self.done_before, self.elapsed_s
        return work / t if work > 0 and t > 0 else None

    @property
    def eta_s(self) -> float | None:
        r = self.rate
        return None if r is None else max(0, self.total - self.done) / r

    def line(self) -> str:
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        rate = f", {self.rate:,.1f} {self.unit}/s" if self.rate is not None else ""
        if self.ended is not None:
            tail = f", ended after {_clock(self.elapsed_s)}" if self.done < self.total else \
                f", done in {_clock(self.elapsed_s)}"
        else:
            tail = f", ETA {_clock(self.eta_s)}" if self.eta_s is not None else ""
        resumed = f", {self.done_before:,} found done" if self.done_before else ""
        note = f" [{self.note}]" if self.note else ""
        return f"{self.what}: {self.done:,}/{self.total:,} {self.unit}{pct}{rate}{tail}{resumed}{note}"


class ProgressSink(Protocol):
    """Receives a step's state on every update; ``final`` on the last."""

    def __call__(self, state: StepState, final: bool) -> None: ...


def _clock(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "?"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def line_sink(say: Callable[[str], None] = print, every_s: float = 10.0) -> ProgressSink:
    """A sink that says a plain line at most every ``every_s`` seconds, and at the end."""
    last: dict[int, float] = {}

    def sink(state: StepState, final: bool) -> None:
        now = time.perf_counter()
        if final or now - last.get(id(state), state.started) >= every_s:
            last[id(state)] = now
            say(state.line())
    return sink


class Progress:
    """One step's counter: ``advance(n)`` as work ends, ``close()`` once (or use ``with``)."""

    def __init__(self, what: str, total: int, *, unit: str = "items", sink: ProgressSink | None = None,
                 done_before: int = 0) -> None:
        self.state = StepState(what, int(total), unit, done=done_before, done_before=done_before)
        self.sink = sink if sink is not None else current_sink()

    def advance(self, n: int = 1, note: str | None = None) -> None:
        self.state.done += int(n)
        if note is not None:
            self.state.note = note
        self.sink(self.state, False)

    def close(self, note: str | None = None) -> None:
        if self.state.ended is None:
            self.state.ended = time.perf_counter()
            if note is not None:
                self.state.note = note
            self.sink(self.state, True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(note=None if exc_type is None else f"interrupted ({exc_type.__name__})")


def null_progress(state: StepState, final: bool) -> None:
    """A sink that shows nothing (tests, nested steps)."""


_SINK: contextvars.ContextVar[ProgressSink | None] = contextvars.ContextVar("graph_peft_progress_sink", default=None)


def current_sink() -> ProgressSink:
    """The sink installed by the innermost :func:`reporting`, else plain log lines."""
    return _SINK.get() or line_sink(log.info)


@contextlib.contextmanager
def reporting(sink: ProgressSink) -> Iterator[None]:
    """Steps started inside the block report to ``sink`` unless given their own."""
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)
