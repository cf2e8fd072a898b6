"""The real trial, with the CPU time it used recorded beside it (``notes.cpu_s``).

``benchmarks/search.py`` counts compute as CPU-seconds of the trial's process; the
trial runs in the driver's process (the in-process executor) with one torch thread,
so the process's CPU time over the call is the trial's own, rung latency timing and
validation included.
"""
from __future__ import annotations

import time

from runfolder import TrialRecord


def timed_trial(cfg, **kw) -> TrialRecord:
    from workloads import run_trial

    c0 = time.process_time()
    record = run_trial(cfg, **kw)
    record.notes = {**record.notes, "cpu_s": time.process_time() - c0}
    return record
