"""The typed trial record changes no behaviour: one tiny fixed configuration, trained
through the whole driver today, gives the record that the code at 420bab7 wrote for it
(tests/golden/record-420bab7-ok.json, read through the upgrader), field by field.

Timings and hosts aside (they vary run to run): scores agree to a relative 1e-6,
parameter counts and memory bytes exactly. The records of a failed, an infeasible and
an interrupted trial written by 420bab7 read back with their statuses."""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.executor import InProcessExecutor
from orchestrator.spec import parse_spec
from orchestrator.sweep import Sweep
from runfolder import RecordError, RunDir, TrialRecord, load_record

GOLDEN = Path(__file__).parent / "golden"

# Values that are measured clocks, process state or paths of the machine that ran them.
VARYING = {"median_s", "p90_s", "ms_per_unit", "ms_per_unit_seeds", "latency_ms_per_graph", "train_s", "total_s",
           "wall_s", "timings", "host", "process", "rss_bytes", "rss_peak_bytes", "cache_dir", "checkpoint",
           "deploy_max_abs_diff", "se_ms_per_unit"}
# The measured peaks, checked apart: the degree vector (one int64 per atom of a batch) now dies inside
# Graphormer.encode_degree instead of living to the end of the forward, so a peak may be lower by
# 8 bytes per atom of the batch at its peak (observed: exactly that, 302 and 284 atoms), never higher.
PEAKS = {"peak_train_bytes", "peak_train_mb", "train_memory_mb"}
MAX_BATCH_ATOMS = 32 * 64  # 32 molecules of the golden spec's batch, generously 64 heavy atoms each


def _spec(tmp_path, cache_dir):
    """The configuration the golden record was made with (its own ``config``), in a sweep of one trial."""
    return parse_spec({
        "name": "golden", "seed": 0,
        "datasets": [{"name": "freesolv", "max_molecules": 120}],
        "backbones": [{"name": "graphormer", "params": {"hidden_dim": 32, "num_layers": 2, "num_heads": 4,
                                                        "ffn_dim": 64},
                       "pretrain": {"max_molecules": 300, "epochs": 3, "batch_size": 32, "lr": 0.002}}],
        "methods": {"lora": {"params": {"r": 2}, "search": {"lr": {"type": "float", "low": 0.001, "high": 0.01,
                                                                   "log": True}}}},
        "train": {"epochs": 2, "batch_size": 32},
        "profile": {"latency_batch_size": 8, "latency_warmup": 1, "latency_repeats": 3},
        "budget": {"trials_per_cell": 1, "seeds": 2, "n_startup_trials": 1},
        "storage": {"root": str(tmp_path / "runs"), "cache_dir": str(cache_dir)},
    })


def _compare(new, old, path: str, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            if k in VARYING or k in PEAKS:
                continue
            if k not in new or k not in old:
                out.append(f"{path}.{k}: only in the {'golden' if k in old else 'new'} record")
                continue
            _compare(new[k], old[k], f"{path}.{k}", out)
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            out.append(f"{path}: {len(new)} items, golden {len(old)}")
        elif path.endswith(".values"):  # the latency objective (last) is a clock; memory (second) a peak
            _compare(new[:1], old[:1], path + "[:1]", out)
        else:
            for i, (a, b) in enumerate(zip(new, old)):
                _compare(a, b, f"{path}[{i}]", out)
    elif isinstance(old, float) and not isinstance(old, bool):
        # a spread over seeds is a difference of near-equal scores: their own relative 1e-6 (checked
        # beside it) allows it an absolute error of about 1e-6 × the score, not a relative one
        abs_tol = 1e-5 if path.endswith("_std") else 0.0
        if not (math.isclose(new, old, rel_tol=1e-6, abs_tol=abs_tol) or (math.isnan(new) and math.isnan(old))):
            out.append(f"{path}: {new} != golden {old}")
    elif new != old:  # ints (parameter counts, memory bytes) exactly, strings, None
        out.append(f"{path}: {new!r} != golden {old!r}")


def test_the_record_matches_the_one_420bab7_wrote(tmp_path):
    golden_file = GOLDEN / "record-420bab7-ok.json"
    golden = load_record(golden_file.read_text(), str(golden_file))
    run = Sweep(_spec(tmp_path, tmp_path / "cache"), console=Console(file=io.StringIO())).execute(
        executor=InProcessExecutor())
    [record] = run.trial_records()
    assert record.params == golden.params  # the same proposal from the same sampler seed
    new, old = record.model_dump(), golden.model_dump()
    # The dataset entry is now its kind's own model (a registered molecule set), no longer the flat
    # union of every kind's fields: what it holds is what it held; what it dropped belonged to other kinds.
    new_ds, old_ds = new["config"].pop("dataset"), old["config"].pop("dataset")
    assert new["config"].pop("rungs") == []  # added since: the epochs a trial reports at (no early stopping here)
    assert new["config"].pop("limits") == {}  # added since: hard limits (none here)
    assert new["config"]["profile"].pop("rung_latency_repeats") == 5  # added since: timing at rungs (unused here)
    assert new["config"]["train"].pop("patience") is None  # added since: convergence stopping (off here)
    assert new["config"]["method"].pop("random_init") is False  # added since: the random-init reference (off)
    assert new.pop("epochs_trained") == 2 * 2 and old.pop("epochs_trained") is None  # added since: 2 epochs x 2 seeds
    assert new_ds == {k: old_ds[k] for k in new_ds}
    assert set(old_ds) - set(new_ds) == {"path", "smiles_column", "target_columns", "task", "nodes", "edges",
                                         "split", "max_train_nodes", "root"}
    problems: list[str] = []
    _compare(new, old, "record", problems)
    assert not problems, "\n".join(problems)
    for a, b in [(record.memory, golden.memory)] + [(x.memory, y.memory) for x, y in zip(record.seeds, golden.seeds)]:
        assert 0 <= b.peak_train_bytes - a.peak_train_bytes <= 8 * MAX_BATCH_ATOMS, (a.peak_train_bytes, b.peak_train_bytes)
    assert record.objectives["train_memory_mb"] == record.memory.peak_train_mb
    assert record.trainable_params == golden.trainable_params == 1057


@pytest.mark.parametrize("status", ["ok", "failed", "infeasible", "interrupted"])
def test_records_420bab7_wrote_are_upgraded(status, tmp_path):
    f = GOLDEN / f"record-420bab7-{status}.json"
    old = json.loads(f.read_text())
    r = load_record(f.read_text(), str(f))
    assert r.status == status and r.schema_version == 2
    assert r.counts == (status != "interrupted")
    assert r.cell == old["cell"] and r.optuna_trial == old["optuna_trial"]
    if status == "infeasible":
        assert r.infeasible.cause == "oom" and "allocate" in r.error
    if status == "ok":
        assert r.metrics.val_scores == old["metrics"]["val_scores"] and r.process.loads["dataset_builds"] == 1
    # written back in today's schema, read the same
    run = RunDir(tmp_path)
    run.write_trial(r.cell, r.optuna_trial, r)
    assert run.read_trial(r.cell, r.optuna_trial) == r


def test_an_unreadable_record_is_one_line_naming_its_file(tmp_path):
    run = RunDir(tmp_path)
    f = run.trial_file("c", 0)
    f.parent.mkdir(parents=True)
    bad = json.loads((GOLDEN / "record-420bab7-ok.json").read_text())
    bad["metrics"]["val_score"] = "high"
    f.write_text(json.dumps(bad))
    with pytest.raises(RecordError) as e:
        run.trial_records()
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(f)) and "metrics.val_score" in msg
    f.write_text(json.dumps({**json.loads((GOLDEN / "record-420bab7-ok.json").read_text()), "schema_version": 9}))
    with pytest.raises(RecordError, match="schema_version 9"):
        run.read_trial("c", 0)
    f.write_text("{not json")
    with pytest.raises(RecordError, match="corrupt trial record"):
        run.read_trial("c", 0)
    with pytest.raises(TypeError):
        run.write_trial("c", 1, {"status": "ok"})  # a dict is not a record
    assert TrialRecord().status == "ok"
