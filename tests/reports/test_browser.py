"""The report of a real small sweep, opened in headless Chromium as a person would:
no script error, every plot has drawn all its points, and a screenshot is taken."""
import html
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
    }, name="browser", train={"epochs": 1, "batch_size": 32}, budget={"trials_per_cell": 4, "seeds": 2}))
    run = Sweep(spec, console=Console(file=io.StringIO())).execute(executor=InProcessExecutor())
    return build_report(run.path)


def _chromium(*args, timeout=120):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package 'chromium'; .ci/run installs it)")
    return subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=timeout)


def test_report_draws_every_point_without_script_errors(report, tmp_path):
    # '#all' draws every plot at once (otherwise each is drawn as it nears the viewport)
    out = _chromium("--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", "--dump-dom",
                    report.as_uri() + "#all")
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
    # two seeds per configuration: the fronts draw each point's error bar (its seeds' std), of some height
    bars = [(float(a), float(b)) for a, b in re.findall(r'<path class="yerror"[^>]* d="M[-\d.]+,([-\d.]+)h[^V]*V([-\d.]+)', dom)]
    assert len(bars) >= 3 * 8 and sum(abs(a - b) > 0.5 for a, b in bars) >= 3, bars[:10]

    # without '#all', plots below the fold wait until scrolled to: the first ones are drawn, not the last
    out = _chromium("--virtual-time-budget=15000", "--window-size=1400,900", "--dump-dom", report.as_uri())
    drawn = [len(re.findall(r'class="point"', seg)) for seg in out.stdout.split('<div class="plot" data-points="')[1:]]
    assert drawn[0] > 0 and drawn[-1] == 0, drawn


PROBE = """<script>
window.addEventListener('load', () => setTimeout(() => {
  const box = document.querySelector('.mfilter[value="lora"]'); box.checked = false; applyFilter();
  const hidden = [...document.querySelectorAll('tr[data-method="lora"]')].filter(tr => tr.style.display === 'none');
  const shown = [...document.querySelectorAll('tr[data-method="full"]')].filter(tr => tr.style.display !== 'none');
  const lora = () => [...document.querySelectorAll('.lazy-plot')].flatMap(d => d.data || [])
    .filter(t => t.legendgroup === 'lora');
  const now = lora().filter(t => t.visible !== false).length;
  // far plots are restyled in the background (or when scrolled to): wait, then look at all
  const wait = ms => new Promise(r => setTimeout(r, ms));
  (async () => {
    await wait(1000);
    document.documentElement.setAttribute('data-probe', JSON.stringify({
      hidden: hidden.length, shown: shown.length, lora_traces: lora().length, visible_at_once: now,
      stale: document.querySelectorAll('.lazy-plot[data-stale]').length,
      visible_later: lora().filter(t => t.visible !== false).length}));
  })();
}, 0));
</script></body>"""


def test_the_method_filter_hides_a_variant_in_plots_and_tables(report, tmp_path):
    import json

    page = tmp_path / "probe.html"
    page.write_text(report.read_text().replace("</body>", PROBE))
    out = _chromium("--virtual-time-budget=30000", "--window-size=1400,900", "--dump-dom", page.as_uri() + "#all")
    head = out.stdout[:out.stdout.index(">", out.stdout.index("<html"))]
    assert "data-js-errors" not in head, head
    probe = json.loads(html.unescape(re.search(r'data-probe="([^"]+)"', head).group(1)))
    assert probe["hidden"] > 0 and probe["shown"] > 0  # lora's rows hidden, full's kept
    assert probe["lora_traces"] > 0 and probe["visible_later"] == 0 and probe["stale"] == 0, probe


def test_report_screenshot(report, tmp_path):
    shot = tmp_path / "report.png"
    out = _chromium("--hide-scrollbars", "--window-size=1400,1800", "--virtual-time-budget=15000",
                    f"--screenshot={shot}", report.as_uri())
    assert out.returncode == 0, out.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
