import subprocess
import sys

import yaml

from orchestrator.cli import main
from tests.conftest import tiny_spec


def test_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for cmd in ("sweep", "run", "pretrain", "report"):
        assert cmd in out.stdout


def test_bad_spec_gives_short_error(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text("name: x\ndatasets: [{name: freesolv}]\nbackbones: [{name: graphormer}]\nmethods: {lora: {}}\nbudgt: {}\n")
    assert main(["sweep", str(f)]) == 2
    err = capsys.readouterr().err
    assert "budgt: unknown key" in err and "Traceback" not in err


def test_run_one_trial_without_ray(tmp_path, cache_dir):
    spec = tiny_spec(tmp_path, cache_dir, {"adapter": {"search": {"bottleneck": {"type": "categorical",
                                                                        "choices": [4, 8]}}}},
                     train={"epochs": 1, "batch_size": 32})
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(spec))
    out = tmp_path / "r.json"
    assert main(["run", str(f), "--method", "adapter", "--set", "bottleneck=8", "--out", str(out)]) == 0
    from runfolder import load_record

    rec = load_record(out.read_text(), str(out))
    assert rec.config["method"]["params"]["bottleneck"] == 8
    assert len(rec.metrics.history) == 1  # the spec's single epoch
    assert rec.method == "adapter" and rec.trainable_params < rec.total_params


def test_run_unknown_cell_is_an_error(tmp_path):
    import pytest

    f = tmp_path / "s.yaml"
    f.write_text("name: x\ndatasets: [{name: freesolv}]\nbackbones: [{name: graphormer}]\nmethods: {lora: {}}\n")
    with pytest.raises(SystemExit, match="no cell"):
        main(["run", str(f), "--method", "adapter"])


def test_run_rejects_bad_overrides(tmp_path):
    import pytest

    f = tmp_path / "s.yaml"
    f.write_text("name: x\ndatasets: [{name: freesolv}]\nbackbones: [{name: graphormer}]\nmethods: {lora: {}}\n")
    with pytest.raises(SystemExit, match="--epochs must be at least 1"):
        main(["run", str(f), "--epochs", "0"])
    with pytest.raises(SystemExit, match="cannot read value"):
        main(["run", str(f), "--set", "r=[", "--epochs", "1"])
    with pytest.raises(SystemExit, match="rank: unknown"):
        main(["run", str(f), "--set", "rank=4"])


def test_report_on_empty_run_is_an_error(tmp_path, capsys):
    (tmp_path / "runs" / "x").mkdir(parents=True)
    assert main(["report", str(tmp_path / "runs" / "x")]) == 2
    assert "no trial records" in capsys.readouterr().err


def test_run_and_the_in_process_executor_import_no_ray(tmp_path, cache_dir):
    """`orchestrator run` (and the sweep driver with the in-process executor) never load Ray."""
    import subprocess
    import sys

    spec = tiny_spec(tmp_path, cache_dir, {"linear_probe": {}}, train={"epochs": 1, "batch_size": 32})
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(spec))
    code = (
        "import sys\n"
        "from orchestrator.cli import main\n"
        f"assert main(['run', {str(f)!r}]) == 0\n"
        "from orchestrator.executor import InProcessExecutor\n"
        "from orchestrator.spec import load_spec\n"
        "from orchestrator.sweep import Sweep\n"
        f"run = Sweep(load_spec({str(f)!r})).execute(executor=InProcessExecutor())\n"
        "assert len(run.trial_records()) == 4, run.trial_records()\n"
        "print('RAY_LOADED', 'ray' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RAY_LOADED False" in out.stdout


def test_sweep_override_errors_name_it_and_create_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "s.yaml"
    f.write_text("name: x\ndatasets: [{name: freesolv}]\nbackbones: [{name: graphormer}]\nmethods: {lora: {}}\n")
    assert main(["sweep", str(f), "--override", "budget.trials_per_cell=0"]) == 2
    err = capsys.readouterr().err
    assert "with --override budget.trials_per_cell=0: invalid sweep spec: budget.trials_per_cell: " in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_prepare_builds_every_cache_with_progress_and_no_run_folder(tmp_path, capsys):
    """`orchestrator prepare`: the spec's featurized set and pretrained backbone, built ahead of
    a sweep (in process here), each long step with its count and rate; nothing in the runs root."""
    cache = tmp_path / "cache"  # its own cache: every step is built, none found
    spec = tiny_spec(tmp_path, cache, {"linear_probe": {}}, datasets=[{"name": "freesolv", "max_molecules": 60}])
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(spec))
    assert main(["prepare", str(f), "--executor", "inprocess"]) == 0
    out = capsys.readouterr().out
    assert "featurize freesolv: 60/60 molecules (100%)" in out and "molecules/s" in out
    assert "pretrain graphormer:" in out and "steps (100%)" in out, out
    assert "dataset freesolv: " in out and "backbone graphormer: checkpoint" in out
    assert list((cache / "datasets").glob("freesolv-*.pt")) and list((cache / "pretrained").glob("graphormer-*.pt"))
    assert not (tmp_path / "runs").exists()
    # a second prepare finds everything built: no step runs again
    assert main(["prepare", str(f), "--executor", "inprocess"]) == 0
    assert "featurize" not in capsys.readouterr().out
    # pretrain is prepare's backbones part: it finds the checkpoint too
    assert main(["pretrain", str(f)]) == 0
    out = capsys.readouterr().out
    assert "backbone graphormer: checkpoint" in out and "pretrain graphormer:" not in out, out
