"""Run-folder helpers that need the environment (package versions, git, device).

The folder layout itself is ``runfolder.layout.RunDir`` (torch-free, shared with
the reports); it is re-exported here.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from runfolder.layout import RunDir  # noqa: F401  (re-exported)

STORAGE_ENV = "GRAPH_PEFT_OPTUNA_URL"


def storage_url(spec, run: RunDir) -> str:
    """The spec's URL, else $GRAPH_PEFT_OPTUNA_URL (a password need not sit in a spec
    file), else SQLite in the run folder.

    A spec read back from a run folder (``spec.resolved.yaml``) has its password masked;
    $GRAPH_PEFT_OPTUNA_URL supplies it when it names the same server and user."""
    from orchestrator.spec import mask_url

    url, env = spec.storage.optuna_url, os.environ.get(STORAGE_ENV)
    if url and env and url != env and mask_url(env) == url:
        return env
    return url or env or run.sqlite_url()


def study_name(spec, cell_id: str, storage_url: str, run_sqlite_url: str) -> str:
    """One study per cell, named after it; in storage shared beyond the run folder (a
    server several sweeps use), prefixed with the sweep's name so sweeps never mix."""
    return cell_id if storage_url == run_sqlite_url else f"{spec.name}.{cell_id}"


PACKAGES = (
    "torch", "torch-geometric", "ogb", "rdkit", "ray", "optuna", "peft", "transformers",
    "pydantic", "plotly", "numpy", "scikit-learn", "qc-b3db", "datamol", "molsets",
)


def git_sha(where: Path | None = None) -> str | None:
    where = where or Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=where, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    import torch

    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    cuda = torch.cuda.is_available()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cuda": torch.version.cuda if cuda else None,
        "git_sha": git_sha(),
        "packages": versions,
    }
