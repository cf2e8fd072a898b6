"""Where a sweep's results live: ``runs/<sweep>/``.

    spec.resolved.yaml   the validated spec with defaults filled in, and its hash
    optuna.db            Optuna's SQLite storage (unless the spec names another URL)
    trials/<cell>/trial-NNNN.json   one TrialRecord per trial (runfolder.record): config, metrics, memory, latency, error
    trials/<cell>/confirm-NNNN.json confirmation run of trial NNNN: its configuration on fresh seeds (budget.confirm_seeds)
    families.json        per task family of the sweep: its title and its full fine-tuning reference method
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
from runfolder.record import TrialRecord, load_record


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

    @property
    def families_file(self) -> Path:
        return self.path / "families.json"

    def write_trial(self, cell_id: str, number: int, record: TrialRecord) -> Path:
        if not isinstance(record, TrialRecord):
            raise TypeError(f"write_trial takes a TrialRecord, not {type(record).__name__}")
        return atomic_write_text(self.trial_file(cell_id, number), record.to_json())

    def read_trial(self, cell_id: str, number: int) -> TrialRecord | None:
        """The record of one trial (upgraded if an older version wrote it), or None."""
        f = self.trial_file(cell_id, number)
        return load_record(f.read_text(), str(f)) if f.exists() else None

    def trial_numbers(self, cell_id: str) -> list[int]:
        """Trial numbers of a cell that have a record."""
        folder = self.path / "trials" / cell_id
        return sorted(int(f.stem.removeprefix("trial-")) for f in folder.glob("trial-*.json")) if folder.is_dir() else []

    def trial_records(self) -> list[TrialRecord]:
        """Every record of the run; a record that cannot be read raises :class:`RecordError`
        naming its file."""
        return [load_record(f.read_text(), str(f)) for f in sorted((self.path / "trials").glob("*/trial-*.json"))]

    def confirm_file(self, cell_id: str, number: int) -> Path:
        return self.path / "trials" / cell_id / f"confirm-{number:04d}.json"

    def write_confirmation(self, cell_id: str, number: int, record: TrialRecord) -> Path:
        if record.confirms != number:
            raise ValueError(f"a confirmation of trial {number} must say so (record.confirms is {record.confirms})")
        return atomic_write_text(self.confirm_file(cell_id, number), record.to_json())

    def confirmed_numbers(self, cell_id: str) -> set[int]:
        """Search trials of a cell whose confirmation run has a record."""
        folder = self.path / "trials" / cell_id
        return {int(f.stem.removeprefix("confirm-")) for f in folder.glob("confirm-*.json")} if folder.is_dir() \
            else set()

    def confirmation_records(self) -> list[TrialRecord]:
        """Every confirmation run of the run (``budget.confirm_seeds``)."""
        return [load_record(f.read_text(), str(f)) for f in sorted((self.path / "trials").glob("*/confirm-*.json"))]

    def write_families(self, families: dict[str, dict]) -> None:
        """What reports need to know of each task family and cannot import (they never import
        torch): ``{family: {"title": ..., "full_reference": [method, ...]}}``."""
        atomic_write_json(self.families_file, families)

    def read_families(self) -> dict[str, dict]:
        return json.loads(self.families_file.read_text()) if self.families_file.exists() else {}

    def write_spec(self, text: str) -> None:
        atomic_write_text(self.spec_file, text)

    def write_env(self, env: dict) -> dict:
        atomic_write_json(self.env_file, env)
        return env

    def read_env(self) -> dict | None:
        return json.loads(self.env_file.read_text()) if self.env_file.exists() else None
