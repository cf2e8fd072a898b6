"""The torch-free bottom layer: the run-folder format, the trial record, atomic writes,
hashing and the strict base of every config model.

Everything above reads and writes runs through here: the sweep driver writes
them, ``reports`` reads them without importing torch or the workloads, and the
workloads use the same atomic writes and hashes.
"""
from runfolder.io import atomic_write, atomic_write_json, atomic_write_text, file_digest, stable_hash
from runfolder.layout import RunDir
from runfolder.record import (SCHEMA_VERSION, ExecutorInfo, GpuShare, Infeasible, Metrics, RecordError, Rung,
                              TrialRecord, load_record, parse_record)
from runfolder.strict import StrictModel

__all__ = ["SCHEMA_VERSION", "ExecutorInfo", "GpuShare", "Infeasible", "Metrics", "RecordError", "RunDir", "Rung",
           "StrictModel", "TrialRecord", "atomic_write", "atomic_write_json", "atomic_write_text", "file_digest",
           "load_record", "parse_record", "stable_hash"]
