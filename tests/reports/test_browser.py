"""The report of a real small sweep, opened in headless Chromium as a person would:
no script error, every plot has drawn all its points, and a screenshot is taken."""
import re
import shutil
import subprocess

import pytest
from rich.console import Console

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def report(tmp_path_factory, cache_dir):
    import io

    from orchestrator.executor import InProcessExecutor
    from orchestrator.spec import parse_spec
    from orchestrator.sweep import Sweep
    from reports.html import build_report
    from tests.conftest import tiny_spec

    tmp = tmp_path_factory.mktemp("browser")
    lr = {"type": "float", "low": 0.001, "high": 0.02, "log": True}
    spec = parse_spec(tiny_spec(tmp, cache_dir, {
        "full": {"search": {"lr": lr}},
        "lora": {"search": {"r": {"type": "categorical", "choices": [2, 4]}, "lr": lr}},
    }, name="browser", train={"epochs": 1, "batch_size": 32}, budget={"trials_per_cell": 4}))
    run = Sweep(spec, console=Console(file=io.StringIO())).execute(executor=InProcessExecutor())
    return build_report(run.path)


def _chromium(*args, timeout=120):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package 'chromium'; .ci/run installs it)")
    return subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=timeout)


def test_report_draws_every_point_without_script_errors(report, tmp_path):
    out = _chromium("--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", "--dump-dom",
                    report.as_uri())
    dom = out.stdout
    assert out.returncode == 0 and "</html>" in dom, out.stderr[-2000:]
    assert "Uncaught" not in out.stderr, out.stderr[-2000:]
    html_tag = dom[:dom.index(">", dom.index("<html"))]
    assert "data-js-errors" not in html_tag, html_tag  # the page's own error hook saw nothing
    plots = dom.split('<div class="plot" data-points="')[1:]
    assert len(plots) == 4  # memory, latency, parameters fronts and the hypervolume course
    for seg in plots:
        expected = int(seg[:seg.index('"')])
        drawn = len(re.findall(r'class="point"', seg))
        assert expected > 0 and drawn == expected, (expected, drawn)
    assert 'id="overview"' in dom and "Parameter importance" in dom and "orchestrator run" in dom


def test_report_screenshot(report, tmp_path):
    shot = tmp_path / "report.png"
    out = _chromium("--hide-scrollbars", "--window-size=1400,1800", f"--screenshot={shot}", report.as_uri())
    assert out.returncode == 0, out.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
