"""Benchmarks: scripts run from the repository root (``.venv/bin/python benchmarks/<name>.py``),
and ``benchmarks.support``, what tests and benchmarks share."""
