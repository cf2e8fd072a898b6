"""Sweep orchestration: spec, Optuna search, Ray execution, profiling, result storage."""
