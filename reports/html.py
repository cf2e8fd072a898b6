"""The HTML report: per dataset, Pareto fronts of memory and latency against
score for every method's trials, and a table of each method's best trials.

One self-contained file: plotly.js is inlined, nothing is fetched when it opens.
"""
from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from reports.summary import seed_stats, summarize
from runfolder import RunDir, atomic_write_text

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _figure(ds: str, entry: dict, key: str, label: str, colors: dict) -> go.Figure:
    trials, plane = entry["trials"], entry["planes"][key]
    fig = go.Figure()
    for m in sorted({r["method"] for r in trials}):
        idx = [i for i, r in enumerate(trials) if r["method"] == m]
        # two traces per method: a circle for every trial (also the legend entry)
        # and a star over the trials on the front, so the legend never shows a star
        for on_front in (False, True):
            sel = [i for i in idx if plane["pareto_mask"][i]] if on_front else idx
            fig.add_trace(
                go.Scatter(
                    x=[trials[i]["objectives"][key] for i in sel],
                    y=[trials[i]["objectives"]["score"] for i in sel],
                    error_y=None if on_front else dict(
                        type="data", array=[seed_stats(trials[i])["val_std"] for i in sel], thickness=1, width=3),
                    mode="markers",
                    name=m,
                    legendgroup=m,
                    showlegend=not on_front,
                    marker=dict(color=colors[m], size=16 if on_front else 9, symbol="star" if on_front else "circle",
                                line=dict(width=1.5 if on_front else 0, color="black")),
                    text=[_hover(trials[i]) for i in sel],
                    hovertemplate="%{text}<extra></extra>",
                )
            )
    front = plane["front"]
    fig.add_trace(
        go.Scatter(
            x=[trials[i]["objectives"][key] for i in front],
            y=[trials[i]["objectives"]["score"] for i in front],
            mode="lines", line=dict(color="black", dash="dot", shape="hv"), name="Pareto front",
            hoverinfo="skip",
        )
    )
    arrow = "↑" if entry["direction"] == "maximize" else "↓"
    fig.update_layout(
        title=f"{ds}: {label} vs validation {entry['metric']} ({arrow} better)",
        xaxis_title=label + " — log scale", yaxis_title=f"validation {entry['metric']} (mean ± std over seeds)",
        template="plotly_white", height=450, margin=dict(l=60, r=20, t=80, b=50),
        title_y=0.97, title_font_size=13,
    )
    fig.update_xaxes(type="log")
    return fig


def _hover(r: dict) -> str:
    o, st = r["objectives"], seed_stats(r)
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in r.get("params", {}).items())
    return (
        f"<b>{r['method']}</b> trial {r.get('optuna_trial')}<br>{params}<br>"
        f"validation {st['val']:.4f} ± {st['val_std']:.4f} ({st['seeds']} seeds)<br>"
        f"test {st['test']:.4f} ± {st['test_std']:.4f}<br>"
        + "".join(f"{k} {v:.3f}<br>" for k, v in o.items() if k != "score")
        + f"trainable {r['trainable_params']:,}"
    )


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _table(entry: dict) -> str:
    rows = []
    planes = entry["plane_labels"]  # objective -> label, from the task's own names
    for r in entry["best"]:
        o, st = r["objectives"], seed_stats(r)
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in r.get("params", {}).items())
        n = sum(1 for t in entry["trials"] if t["method"] == r["method"])
        cells = [r["method"], n, st["seeds"], f"{st['val']:.4f} ± {st['val_std']:.4f}",
                 f"{st['test']:.4f} ± {st['test_std']:.4f}"]
        cells += [f"{o[k]:.3f}" for k in planes]
        cells += [f"{r['trainable_params']:,}", f"{100 * r['trainable_params'] / r['total_params']:.2f}%", params]
        cells += [f"{entry['planes'][k]['hypervolume'][r['method']]:.3g}" for k in planes]
        cells += [f"{r['memory']['method'].split('(')[0]} on {r['memory']['device']}"]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    heads = ["method variant", "trials", "seeds", f"validation {entry['metric']} (selects)",
             f"test {entry['metric']} (reported)"]
    heads += list(planes.values()) + ["trainable params", "trainable share", "params"]
    heads += [f"HV: {label}" for label in planes.values()] + ["memory measured by"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render(summary: dict, title: str, env: dict | None) -> str:
    methods = sorted({r["method"] for e in summary.values() for r in e["trials"] + e["failed"]})
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}
    sections = []
    for ds, entry in summary.items():
        parts = [f"<h2>{html.escape(ds)}</h2>"]
        if entry["trials"]:
            cut = f", {entry['interrupted']} interrupted by a crash and re-run" if entry["interrupted"] else ""
            parts.append(f"<p>{len(entry['trials'])} finished trials, {len(entry['failed'])} failed{cut}. "
                         "Stars mark trials on the Pareto front of that plane (all methods together).</p>")
            parts.append('<div class="row">')
            for key, label in entry["plane_labels"].items():
                fig = _figure(ds, entry, key, label, colors)
                parts.append(fig.to_html(full_html=False, include_plotlyjs=False, div_id=re.sub(r"[^A-Za-z0-9_-]+", "-", f"{ds}-{key}"),
                                         config={"displaylogo": False}))
            parts.append("</div>")
            parts.append("<h3>Best configuration of each method variant, chosen on validation</h3>" + _table(entry))
            parts.append("<p class='note'>HV: hypervolume of the method's own trials in that plane (cost × score), "
                         "measured from a reference just past the worst cost and score of the dataset; larger is "
                         "better.</p>")
        if entry["failed"]:
            items = "".join(
                f"<li>{html.escape(r.get('method', '?'))} #{r.get('optuna_trial')}: "
                f"{html.escape(str(r.get('error', ''))[:300])}</li>" for r in entry["failed"]
            )
            parts.append(f"<h3>Failed trials</h3><ul>{items}</ul>")
        sections.append("\n".join(parts))
    env_html = ""
    if env:
        pk = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items() if v)
        env_html = (f"<p class='env'>device {html.escape(str(env.get('device')))}, host "
                    f"{html.escape(str(env.get('host')))}, git {html.escape(str(env.get('git_sha')))}<br>"
                    f"{html.escape(pk)}</p>")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
.row {{ display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }}
table {{ border-collapse: collapse; font-size: 13px; margin-bottom: 24px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}
th {{ background: #f3f3f3; }}
.env, .note {{ font-size: 12px; color: #666; }}
</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Generated {stamp}. <b>Selection is on validation only</b>: each configuration trains with the same seeds,
its score is the mean validation score over them (error bars: their standard deviation), and the fronts, hypervolumes and
best configurations are built from it. Test scores are reported (mean ± std over seeds) for the configurations
validation chose and never used to choose. Memory: measured peak of live tensor bytes during training steps
(the CUDA allocator's peak on GPUs, the allocator's events through the PyTorch profiler on CPUs); latency: median
no-grad forward time of the deployable model (LoRA merged) per unit of its task: per graph for molecules, per node
for text graphs, where inference starts from the node's text (the language model included, with early exit where
the method has it).</p>
{env_html}
{''.join(f'<section>{s}</section>' for s in sections)}
</body></html>
"""


def build_report(run_path: str | Path) -> Path:
    run = RunDir(Path(run_path))
    if not run.path.is_dir():
        raise FileNotFoundError(f"{run.path}: no such run folder")
    records = run.trial_records()
    if not records:
        raise ValueError(f"{run.path}: no trial records under trials/ to report on")
    env = run.read_env()
    page = render(summarize(records), f"Sweep report: {run.path.name}", env)
    return atomic_write_text(run.report_file, page)
