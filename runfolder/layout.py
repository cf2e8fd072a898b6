"""Where a sweep's results live: ``runs/<sweep>/``.

    spec.resolved.yaml   the validated spec with defaults filled in, and its hash
    optuna.db            Optuna's SQLite storage (unless the spec names another URL)
    trials/<cell>/trial-NNNN.json   one record per trial: config, metrics, memory, latency, error
    env.json             package versions, git SHA, device, host
    report.html          written by ``orchestrator report``
    ray/                 Ray Train run folders of the executor's slots

Every file is written atomically (temporary file, then rename). No torch here:
reports read runs through this module alone.
"""
from __future__ import annotations

import json
from pathlib import Path

from runfolder.io import atomic_write_json, atomic_write_text


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

    def write_env(self, env: dict) -> dict:
        atomic_write_json(self.env_file, env)
        return env

    def read_env(self) -> dict | None:
        return json.loads(self.env_file.read_text()) if self.env_file.exists() else None
