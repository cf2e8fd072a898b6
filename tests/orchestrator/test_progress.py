"""Progress while a sweep runs and after: the live table on a terminal, plain lines
elsewhere, and `orchestrator status` / `orchestrator report` on a finished and on a
running sweep."""
import io

import optuna
from rich.console import Console

from orchestrator.cli import main
from orchestrator.executor import InProcessExecutor
from orchestrator.spec import parse_spec
from orchestrator.sweep import Sweep
from reports.html import build_report
from tests.conftest import tiny_spec


def _spec(tmp_path, cache_dir, trials):
    return parse_spec(tiny_spec(tmp_path, cache_dir, {"linear_probe": {"search": {"lr": {
        "type": "float", "low": 0.001, "high": 0.01, "log": True}}}}, name="prog",
        train={"epochs": 1, "batch_size": 32}, budget={"trials_per_cell": trials}))


def test_live_table_on_a_terminal_plain_lines_elsewhere(tmp_path, cache_dir):
    out = io.StringIO()
    term = Console(file=out, force_terminal=True, width=140)
    Sweep(_spec(tmp_path / "a", cache_dir, 2), console=term).execute(executor=InProcessExecutor())
    text = out.getvalue()
    assert "best validation" in text and "elapsed" in text and "left" in text
    assert "freesolv__graphormer__linear_probe" in text and "[2/2]" in text  # log lines print above it

    out = io.StringIO()
    plain = Console(file=out, force_terminal=False, width=140)
    Sweep(_spec(tmp_path / "b", cache_dir, 2), console=plain).execute(executor=InProcessExecutor())
    text = out.getvalue()
    assert "[1/2]" in text and "[2/2]" in text and "best validation" not in text and "\x1b[" not in text


def test_status_and_report_on_a_finished_then_a_running_sweep(tmp_path, cache_dir, capsys):
    spec = _spec(tmp_path, cache_dir, 2)
    run = Sweep(spec, console=Console(file=io.StringIO())).execute(executor=InProcessExecutor())
    assert main(["status", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 trials ended" in out and "rmse" in out
    assert "complete in 1 of 1 cells" in build_report(run.path).read_text()
    row = next(line for line in out.splitlines() if "linear_probe" in line)
    assert [c.strip() for c in row.strip("│ ").split("│")][1:7] == ["2", "0", "0", "0", "0", "2"]  # done, running, stopped, failed, infeasible, budget

    # a second driver is mid-trial: raise the budget and leave a trial RUNNING in the storage
    spec3 = _spec(tmp_path, cache_dir, 3)
    Sweep(spec3, console=Console(file=io.StringIO())).write_spec()
    study = optuna.load_study(study_name="freesolv__graphormer__linear_probe", storage=run.sqlite_url())
    study.ask()
    assert main(["status", str(run.path)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "linear_probe" in line)
    assert [c.strip() for c in row.strip("│ ").split("│")][1:7] == ["2", "1", "0", "0", "0", "3"]
    assert "2 of 3 trials ended" in out
    assert main(["report", str(run.path)]) == 0  # what is there so far, through the command
    page = run.report_file.read_text()
    assert "freesolv / graphormer" in page and (run.path / "results.csv").read_text().count("\n") == 3
    assert "1 of 1 cells below it so far" in page  # the report says it is partial
    import pandas as pd

    assert len(pd.read_parquet(run.path / "results.parquet")) == 2


def test_status_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
