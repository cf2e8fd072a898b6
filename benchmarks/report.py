"""Does a report of 2,000 trials write in reasonable time, open, and stay responsive?

    .venv/bin/python benchmarks/report.py        # writes docs/benchmarks/report.md

The 2,000 records are made from a real sweep's: a small in-process sweep (FreeSolv,
three variants, four trials each) runs first, and its records are copied across 10
datasets × 2 backbones × 10 variants × 10 trials, with their objectives and
searched values jittered (seeded) so every front, hypervolume course and importance
is computed on distinct points. Measured: the time ``build_report`` takes (summary,
importance, plots, exports), the file sizes, and in headless Chromium the time to
load and draw the page, that every point was drawn, and how long the method filter
takes to hide one variant in every plot (the interaction a reader repeats most).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402

from runfolder import RunDir, TrialRecord  # noqa: E402
from runfolder.io import atomic_write_json, atomic_write_text  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
ARCH = {"hidden_dim": 32, "num_layers": 2, "num_heads": 4, "ffn_dim": 64}
LR = {"type": "float", "low": 0.001, "high": 0.02, "log": True}


def real_records(tmp: Path) -> tuple[list[TrialRecord], dict]:
    """The records of a small real sweep, and its task families (``families.json``)."""
    from orchestrator.executor import InProcessExecutor
    from orchestrator.spec import parse_spec
    from orchestrator.sweep import Sweep
    from workloads.util import default_cache_dir

    spec = parse_spec({
        "name": "seed-run", "datasets": [{"name": "freesolv", "max_molecules": 150}],
        "backbones": [{"name": "graphormer", "params": ARCH,
                       "pretrain": {"max_molecules": 300, "epochs": 1, "batch_size": 32, "lr": 0.002}}],
        "train": {"epochs": 1, "batch_size": 32},
        "profile": {"latency_batch_size": 8, "latency_warmup": 1, "latency_repeats": 3},
        "methods": {"full": {"search": {"lr": LR}},
                    "lora": {"search": {"r": {"type": "categorical", "choices": [2, 4, 8]}, "lr": LR}},
                    "adapter": {"search": {"bottleneck": {"type": "categorical", "choices": [4, 8]}, "lr": LR}}},
        "budget": {"trials_per_cell": 4},
        "storage": {"root": str(tmp), "cache_dir": str(default_cache_dir())},
    })
    run = Sweep(spec, console=Console(file=io.StringIO())).execute(executor=InProcessExecutor())
    return run.trial_records(), run.read_families()


def scale(records: list[TrialRecord], n_datasets: int, n_backbones: int, n_variants: int,
          n_trials: int) -> list[TrialRecord]:
    rng = np.random.default_rng(0)
    ok = [r for r in records if r.status == "ok"]
    out = []
    for d in range(n_datasets):
        for b in range(n_backbones):
            for v in range(n_variants):
                for t in range(n_trials):
                    r = ok[(v * n_trials + t) % len(ok)].model_copy(deep=True)
                    ds, bb, m = f"set{d:02d}", f"backbone{b}", f"variant{v:02d}"
                    r.dataset_name, r.backbone_name, r.method, r.cell, r.optuna_trial = ds, bb, m, f"{ds}__{bb}__{m}", t
                    r.objectives = {k: x * float(np.exp(rng.normal(0, 0.1))) for k, x in r.objectives.items()}
                    r.metrics.val_score = r.score
                    r.params = {k: (v_ * float(np.exp(rng.normal(0, 0.3))) if isinstance(v_, float) else v_)
                                for k, v_ in r.params.items()}
                    r.trainable_params = int(r.trainable_params * np.exp(rng.normal(0, 0.2))) + 1
                    out.append(r)
    return out


PROBE = """<script>
window.addEventListener('load', () => setTimeout(() => {
  const t0 = performance.now();
  const box = document.querySelector('.mfilter'); box.checked = false; applyFilter();
  document.documentElement.setAttribute('data-filter-ms', String(performance.now() - t0));
  document.documentElement.setAttribute('data-load-ms', String(t0));
}, 0));
</script></body>"""


def browse(page: Path, mode: str) -> dict:
    """Load the page in headless Chromium (``mode`` "" draws plots as they near the
    viewport, "#all" draws all 80 at once) and read the probe's timings."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return {}
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE))
    out = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--window-size=1400,1000", "--virtual-time-budget=120000", "--dump-dom",
                          probe.as_uri() + mode], capture_output=True, text=True, timeout=600)
    dom = out.stdout
    head = dom[:dom.index(">", dom.index("<html"))]
    segs = dom.split('<div class="plot" data-points="')[1:]
    return {"load_ms": float(re.search(r'data-load-ms="([\d.]+)"', head).group(1)),
            "filter_ms": float(re.search(r'data-filter-ms="([\d.]+)"', head).group(1)),
            "plots": len(segs), "plots_drawn": sum('class="point"' in s for s in segs),
            "points_expected": sum(int(s[:s.index('"')]) for s in segs), "js_errors": "data-js-errors" in head}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=2000)
    args = ap.parse_args()
    from reports.html import build_report

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base, families = real_records(tmp / "runs")
        n_trials = max(1, args.trials // (10 * 2 * 10))
        records = scale(base, 10, 2, 10, n_trials)
        run = RunDir(tmp / "big")
        run.write_families(families)
        for r in records:
            run.write_trial(r.cell, r.optuna_trial, r)
        load = os.getloadavg()[0]  # another job on the cores slows everything below
        t0 = time.perf_counter()
        page = build_report(run.path)
        write_s = time.perf_counter() - t0
        res = {"trials": len(records), "write_s": write_s, "load_average_1min": load, "html_mb": page.stat().st_size / 2**20,
               "csv_mb": (run.path / "results.csv").stat().st_size / 2**20,
               "parquet_mb": (run.path / "results.parquet").stat().st_size / 2**20,
               "browser": {"lazy": browse(page, ""), "all": browse(page, "#all")}}
    atomic_write_json(OUT / "report.json", res)
    atomic_write_text(OUT / "report.md", render(res))
    print(json.dumps(res, indent=1))


def _plotlyjs_mb() -> float:
    from plotly.offline import get_plotlyjs

    return len(get_plotlyjs()) / 2**20


def render(r: dict) -> str:
    lines = ["# A report of 2,000 trials", "",
             "Regenerate: `.venv/bin/python benchmarks/report.py` (this 2-core machine, CPU). The records are a real "
             "small sweep's, copied across 10 datasets × 2 backbones × 10 variants × 10 trials with seeded jitter on "
             "objectives and searched values (see the script's docstring).", "",
             "| figure | value |", "|---|---|",
             f"| trials | {r['trials']:,} |",
             f"| machine load (1-minute average) when measured | {r['load_average_1min']:.1f} on 2 cores |",
             f"| `build_report` (summary, fANOVA importance, plots, CSV and Parquet) | {r['write_s']:.1f} s |",
             f"| report.html | {r['html_mb']:.1f} MB (plotly.js inlined: {_plotlyjs_mb():.1f} MB of it) |",
             f"| results.csv / results.parquet | {r['csv_mb']:.2f} MB / {r['parquet_mb']:.2f} MB |"]
    lazy, every = r["browser"]["lazy"], r["browser"]["all"]
    if lazy:
        lines += [f"| Chromium, as opened (plots drawn as they near the viewport): page ready | "
                  f"{lazy['load_ms'] / 1000:.2f} s ({lazy['plots_drawn']} of {lazy['plots']} plots drawn) |",
                  f"| the method filter, as opened | {lazy['filter_ms']:.0f} ms |",
                  f"| Chromium, every plot drawn at once (`#all`): page ready | {every['load_ms'] / 1000:.1f} s "
                  f"({every['plots_drawn']} plots, {every['points_expected']:,} points) |",
                  f"| the method filter with every plot drawn (it restyles the plots near the viewport at once; the others "
                  f"one by one in the background, or when scrolled to) | {every['filter_ms']:.0f} ms |",
                  f"| script errors | {'yes' if lazy['js_errors'] or every['js_errors'] else 'none'} |"]
    else:
        lines += ["", "Chromium was not installed: load and filter times were not measured."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
