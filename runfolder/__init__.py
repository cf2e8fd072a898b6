"""The torch-free bottom layer: the run-folder format, atomic writes and hashing.

Everything above reads and writes runs through here: the sweep driver writes
them, ``reports`` reads them without importing torch or the workloads, and the
workloads use the same atomic writes and hashes.
"""
from runfolder.io import atomic_write, atomic_write_json, atomic_write_text, file_digest, stable_hash
from runfolder.layout import RunDir

__all__ = ["RunDir", "atomic_write", "atomic_write_json", "atomic_write_text", "file_digest", "stable_hash"]
