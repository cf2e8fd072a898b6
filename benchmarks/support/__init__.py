"""What the tests and the benchmarks share (synthetic trial functions).

Not an installed package: it is imported from the repository root, which the test
runner and the benchmark scripts put on their own ``sys.path``. Ray worker processes
are other interpreters; :func:`worker_pythonpath` is the ``PYTHONPATH`` that lets them
import it too, whatever the driver's current directory (a local Ray cluster's workers
inherit the environment of the driver that started it).
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def worker_pythonpath(current: str | None = None) -> str:
    """``PYTHONPATH`` with the repository root first (``current`` defaults to the environment's)."""
    current = os.environ.get("PYTHONPATH", "") if current is None else current
    parts = [p for p in current.split(os.pathsep) if p and Path(p).resolve() != ROOT]
    return os.pathsep.join([str(ROOT), *parts])
