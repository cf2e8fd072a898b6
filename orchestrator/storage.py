"""Where a sweep's results live: ``runs/<sweep>/``.

    spec.resolved.yaml   the validated spec with defaults filled in, and its hash
    optuna.db            Optuna's SQLite storage (unless the spec names another URL)
    trials/<cell>/trial-NNNN.json   one record per trial: config, metrics, memory, latency, error
    env.json             package versions, git SHA, device, host
    report.html          written by ``orchestrator report``
    ray/                 Ray Train run folders (checkpoints carrying each trial's result)

Every file is written atomically (temporary file, then rename).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from workloads.util import atomic_write_json, atomic_write_text

PACKAGES = (
    "torch", "torch-geometric", "ogb", "rdkit", "ray", "optuna", "peft", "transformers",
    "pydantic", "plotly", "numpy", "scikit-learn", "qc-b3db", "datamol", "molsets",
)


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path).resolve()

    @property
    def spec_file(self) -> Path:
        return self.path / "spec.resolved.yaml"

    @property
    def env_file(self) -> Path:
        return self.path / "env.json"

    @property
    def report_file(self) -> Path:
        return self.path / "report.html"

    @property
    def ray_dir(self) -> Path:
        return self.path / "ray"

    def sqlite_url(self) -> str:
        return f"sqlite:///{self.path / 'optuna.db'}"

    def trial_file(self, cell_id: str, number: int) -> Path:
        return self.path / "trials" / cell_id / f"trial-{number:04d}.json"

    def write_trial(self, cell_id: str, number: int, record: dict) -> Path:
        return atomic_write_json(self.trial_file(cell_id, number), record)

    def read_trial(self, cell_id: str, number: int) -> dict | None:
        f = self.trial_file(cell_id, number)
        return json.loads(f.read_text()) if f.exists() else None

    def trial_records(self) -> list[dict]:
        out = []
        for f in sorted((self.path / "trials").glob("*/trial-*.json")):
            try:
                out.append(json.loads(f.read_text()))
            except json.JSONDecodeError as e:
                raise ValueError(f"{f}: corrupt trial record ({e})") from None
        return out

    def write_spec(self, text: str) -> None:
        atomic_write_text(self.spec_file, text)

    def write_env(self) -> dict:
        env = environment()
        atomic_write_json(self.env_file, env)
        return env


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
