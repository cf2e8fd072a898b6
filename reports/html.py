"""The HTML report: an overview of the sweep, then per task family, dataset and
backbone the Pareto fronts of score against peak training memory, inference
latency and trainable parameters, each variant's hypervolume and its course over
the trials, the knee of each front with the command that re-runs it, every
variant's Pareto-optimal configurations, parameter importance, and the failed and
infeasible trials with their messages.

One self-contained file: plotly.js is inlined, nothing is fetched when it opens.
Everything that came from a spec or a dataset is escaped (names, parameters, errors).
"""
from __future__ import annotations

import html
import math
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from reports.pooled import pooled_versus_full
from reports.summary import PARAMS_PLANE, REFERENCE_RULE, family_title, overview, rerun_command, summarize
from reports.verdicts import interval, rows_against, verdict_text
from runfolder import RunDir, TrialRecord, atomic_write_text

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")
E = html.escape


def _div_id(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(parts))


def _plot(fig: go.Figure, div_id: str) -> str:
    """A placeholder drawn when it scrolls into view (a report of thousands of trials
    opens at once), its figure as JSON beside it, inside a wrapper saying how many
    points it must draw (the browser test counts them)."""
    n = sum(len(t.x) for t in fig.data if t.x is not None and "markers" in (t.mode or ""))
    data = pio.to_json(fig, validate=False).replace("</", "<\\/")  # nothing in it can close the script tag
    height = fig.layout.height or 450
    return (f'<div class="plot" data-points="{n}"><div id="{div_id}" class="lazy-plot" style="min-height:{height}px">'
            f'</div><script type="application/json" id="{div_id}-fig">{data}</script></div>')


def _front_figure(entry: dict, key: str, label: str, colors: dict, limits: dict | None = None) -> go.Figure:
    trials, plane = entry["trials"], entry["planes"][key]
    fig = go.Figure()
    for m in sorted({r.method for r in trials}):
        idx = [i for i, r in enumerate(trials) if r.method == m]
        # every trial a circle with its seeds' error bar, dominated ones faded; a star over those on the front
        fig.add_trace(go.Scatter(
            x=[trials[i].cost(key) for i in idx], y=[trials[i].score for i in idx],
            error_y=dict(type="data", array=[_half_width(trials[i]) for i in idx], thickness=1, width=3),
            mode="markers", name=m, legendgroup=m,
            marker=dict(color=colors[m], size=9, opacity=[1.0 if plane["pareto_mask"][i] else 0.3 for i in idx]),
            text=[_hover(trials[i]) for i in idx], hovertemplate="%{text}<extra></extra>"))
        star = [i for i in idx if plane["pareto_mask"][i]]
        if star:
            fig.add_trace(go.Scatter(
                x=[trials[i].cost(key) for i in star], y=[trials[i].score for i in star],
                mode="markers", name=m, legendgroup=m, showlegend=False,
                marker=dict(color=colors[m], size=16, symbol="star", line=dict(width=1.5, color="black")),
                text=[_hover(trials[i]) for i in star], hovertemplate="%{text}<extra></extra>"))
    stopped = [r for r in entry.get("stopped", []) if r.rungs and key in r.rungs[-1].values]
    if stopped:  # where they stood at their last rung: not final, never on a front
        fig.add_trace(go.Scatter(
            x=[r.rungs[-1].values[key] for r in stopped], y=[r.rungs[-1].values["score"] for r in stopped],
            mode="markers", name="stopped early (at its last rung)",
            marker=dict(color=[colors.get(r.method, "#999") for r in stopped], size=7, opacity=0.35,
                        symbol="circle-open"),
            text=[f"{E(r.method or '?')} #{r.optuna_trial}: stopped at epoch {r.stopped_at}" for r in stopped],
            hovertemplate="%{text}<extra></extra>"))
    for name, lim in (limits or {}).items():
        for bound in ("min", "max"):
            v = lim.get(bound)
            if v is None or name not in (key, "score"):
                continue
            text = f"limit: {_bound_text(name, bound, v)}"
            style = dict(color="#c00", dash="dashdot", width=1.5)
            if name == "score":
                fig.add_hline(y=v, line=style, annotation_text=text, annotation_position="top right")
            else:  # shapes on a log axis take data coordinates, annotations log10 ones
                fig.add_vline(x=v, line=style)
                fig.add_annotation(x=_logx(v), yref="paper", y=1.0, text=text, showarrow=False,
                                   font=dict(color="#c00", size=10), xanchor="left")
    front = plane["front"]
    fig.add_trace(go.Scatter(
        x=[trials[i].cost(key) for i in front], y=[trials[i].score for i in front],
        mode="lines", line=dict(color="black", dash="dot", shape="hv"), name="Pareto front", hoverinfo="skip"))
    if plane["knee"] is not None:
        k = trials[plane["knee"]]
        fig.add_annotation(x=_logx(k.cost(key)), y=k.score, text="knee", showarrow=True,
                           arrowhead=2, ax=30, ay=-30)
    if trials:
        lo, hi = min(r.cost(key) for r in trials), max(r.cost(key) for r in trials)
        for ref in entry.get("references", []):  # a line across the plane: never a point on a front
            text = _reference_hover(ref, key)
            fig.add_trace(go.Scatter(
                x=[lo, hi], y=[ref.score, ref.score], mode="lines", name=f"{ref.method} (reference)",
                legendgroup=ref.method, line=dict(color=colors.get(ref.method, "#777"), dash="longdashdot", width=1.5),
                text=[text, text], hovertemplate="%{text}<extra></extra>"))
    full = entry.get("full_reference")
    if full is not None:
        fig.add_hline(y=full.score, line=dict(color="#555", dash="dash", width=1),
                      annotation_text=f"full fine-tuning ({E(full.method)}, best)",
                      annotation_position="bottom left")
    arrow = "↑" if entry["direction"] == "maximize" else "↓"
    fig.update_layout(
        title=f"{label} vs validation {entry['metric']} ({arrow} better)",
        xaxis_title=label + " — log scale", yaxis_title=f"validation {entry['metric']} (mean, 95% t interval over seeds)",
        template="plotly_white", height=470, margin=dict(l=60, r=20, t=70, b=50), title_font_size=12,
        legend=dict(orientation="h", yanchor="top", y=-0.18, font_size=11),
    )
    fig.update_xaxes(type="log")
    return fig


def _half_width(r: TrialRecord) -> float:
    """Half-width of the 95% t interval of the validation score over seeds; NaN (no bar)
    with one seed, where no interval exists."""
    iv = interval(r, "val")
    return iv.half_width if iv.low is not None else float("nan")


def _reference_hover(r: TrialRecord, key: str) -> str:
    cost = r.cost(key) if key in r.objectives or key == PARAMS_PLANE else float("nan")
    how = f"memory: {r.reference.memory_by}" if key == "train_memory_mb" else ""
    return (f"<b>{E(r.method)}</b> (reference: {E(r.reference.kind)})<br>validation {r.score:.4f}, "
            f"test {E(interval(r).text(4))}<br>{E(key)} {cost:.4g}<br>{E(how)}")


def _logx(v: float) -> float:
    return math.log10(v) if v > 0 else v  # annotations on a log axis take log10 coordinates


def _hv_figure(entry: dict, colors: dict) -> go.Figure:
    planes = list(entry["plane_labels"].items())
    fig = make_subplots(rows=1, cols=len(planes), subplot_titles=[label for _, label in planes])
    for col, (key, _label) in enumerate(planes, start=1):
        for m, tr in entry["planes"][key]["hv_over_trials"].items():
            fig.add_trace(go.Scatter(
                x=list(range(1, len(tr["hypervolume"]) + 1)), y=tr["hypervolume"], mode="lines+markers",
                name=m, legendgroup=m, showlegend=col == 1, line=dict(color=colors[m], shape="hv"),
                marker=dict(size=5), hovertemplate=f"{E(m)}: after %{{x}} trials, HV %{{y:.4g}}<extra></extra>"),
                row=1, col=col)
    fig.update_layout(title="hypervolume after each of a variant's trials (convergence)",
                      template="plotly_white", height=320, margin=dict(l=50, r=20, t=70, b=40), title_font_size=13)
    fig.update_xaxes(title_text="trials of the variant")
    return fig


def _hover(r: TrialRecord) -> str:
    m = r.metrics
    params = ", ".join(f"{E(str(k))}={E(_fmt(v))}" for k, v in r.params.items())
    return (
        f"<b>{E(r.method)}</b> trial {r.optuna_trial}<br>{params}<br>"
        f"validation {m.val_score:.4f} ± {m.val_std:.4f} ({m.seeds} seeds)<br>"
        f"test {m.test_score:.4f} ± {m.test_std:.4f}<br>"
        + "".join(f"{E(k)} {v:.3f}<br>" for k, v in r.objectives.items() if k != "score")
        + f"trainable {r.trainable_params:,}"
    )


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _table(heads: list[str], rows: list[tuple[str, list]], cls: str = "sortable") -> str:
    """``rows``: (method, cells); cells are escaped here; the method tags the row for the filter."""
    head = "".join(f"<th>{E(h)}</th>" for h in heads)
    body = "".join(f'<tr data-method="{E(m)}">' + "".join(f"<td>{E(str(c))}</td>" for c in cells) + "</tr>"
                   for m, cells in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _pareto_table(entry: dict, knees: dict) -> str:
    planes = entry["plane_labels"]
    heads = ["method variant", "trial", "seeds", f"validation {entry['metric']} (selects)",
             f"test {entry['metric']}: mean, 95% t interval", "test vs the best (paired t, Holm)"] \
        + list(planes.values()) + ["params", "knee of"]
    shown = [(m, i) for m, idx in entry["method_fronts"].items() for i in idx]
    best = entry["verdicts"].get("search_best")  # the search's own runs: the rows' seeds
    against = rows_against([entry["trials"][i] for _, i in shown], best, entry["direction"]) if best else \
        [""] * len(shown)
    rows = []
    for (m, i), vs in zip(shown, against):
        r = entry["trials"][i]
        st = r.metrics
        cells = [m, r.optuna_trial, st.seeds, interval(r, "val").text(4), interval(r).text(4), vs]
        cells += [f"{r.cost(k):,.0f}" if k == PARAMS_PLANE else f"{r.cost(k):.3f}" for k in planes]
        cells += [", ".join(f"{k}={_fmt(v)}" for k, v in r.params.items()),
                  ", ".join(planes[k] for k, j in knees.items() if j == i)]
        rows.append((m, cells))
    note = (f"<p class='note'>The best: {E(best.method)} trial {best.optuna_trial}, the search's configuration with "
            "the best validation mean. Each row's test scores against it, paired by seed, Holm-corrected over the "
            "rows; α = 0.05.</p>") if best else ""
    return _table(heads, rows) + note


def _verdict_table(entry: dict) -> str:
    """Each variant's configuration chosen on validation, references included: test mean with its
    95% t interval, and the paired t tests against the best and against full fine-tuning."""
    v = entry["verdicts"]
    if not v.get("rows"):
        return ""
    rows = []
    for c in v["rows"]:
        r = v["chosen"][c.variant]
        kind = f"reference ({r.reference.kind}; memory: {r.reference.memory_by})" if r.reference else "method"
        rows.append((c.variant, [c.variant, kind, r.optuna_trial, c.interval.text(4), verdict_text(c, "best"),
                                 verdict_text(c, "reference") if c.vs_reference else "—"]))
    signal = ""
    if v["no_signal"] is True:
        signal = (f"<p class='verdict no-signal'><b>No signal</b>: no searched variant beats the constant predictor "
                  f"(test {v['constant']:.4g}) by the paired t test (Holm, α = 0.05). Nothing here says a model "
                  "learned, so no claim is drawn from this group.</p>")
    elif v["no_signal"] is False:
        signal = (f"<p class='verdict'>Signal: at least one searched variant beats the constant predictor (test "
                  f"{v['constant']:.4g}) by the paired t test (Holm, α = 0.05).</p>")
    n = v["n_seeds"]
    which = ("<p class='note'>From the confirmation runs: each variant's selected configurations trained again on "
             "fresh seeds (budget.confirm_seeds).</p>" if v.get("confirmed") else "")
    if v["no_signal"] is None and v["constant"] is not None:
        signal = ("<p class='verdict'>Signal not tested: with one seed per configuration no paired test against the "
                  "constant predictor exists (run more seeds, or budget.confirm_seeds).</p>")
    few = (f"<p class='note'>With n = {n} seed(s) per configuration the paired tests have little power: "
           "'not distinguishable' here refutes nothing.</p>") if n < 5 else ""
    return (signal + which + _table(["method variant", "kind", "trial", f"test {entry['metric']}: mean, 95% t interval",
                             "vs the best (paired t, Holm)", "vs full fine-tuning (paired t, Holm)"], rows)
            + "<p class='note'>Each variant's configuration chosen on validation; its test scores per seed, paired by "
            "seed (every configuration trains with the same seeds). The best: the variant with the best validation "
            "mean. Student t intervals; Holm's correction over the tests against each target within this group. A "
            "verdict: better, worse or not distinguishable at α = 0.05; no test with fewer than 2 seeds.</p>" + few)


def _hv_table(entry: dict) -> str:
    planes = entry["plane_labels"]
    rows = [(m, [m, sum(1 for r in entry["trials"] if r.method == m)]
             + [f"{entry['planes'][k]['hypervolume'][m]:.4g}" for k in planes])
            for m in sorted(entry["method_fronts"])]
    refs = "; ".join(f"{label}: ({_fmt(entry['planes'][k]['reference'][0])}, "
                     f"{_fmt(entry['planes'][k]['reference'][1])})" for k, label in planes.items())
    return (_table(["method variant", "finished trials"] + [f"HV: {v}" for v in planes.values()], rows)
            + f"<p class='note'>Reference points (cost, validation {E(entry['metric'])}): {E(refs)}. Chosen as "
            f"{E(REFERENCE_RULE)}. Larger is better.</p>")


def _importance_table(entry: dict) -> str:
    names = ["score"] + [k for k in entry["plane_labels"] if k != PARAMS_PLANE]
    labels = {"score": f"validation {entry['metric']}", **entry["plane_labels"]}
    rows, empty = [], []
    for m, imp in entry["importance"].items():
        if not imp:
            empty.append(m)
            continue
        for p, per in imp.items():
            cells = [m, p] + [f"{per[n]['importance']:.2f}" + (f" (ρ {per[n]['rho']:+.2f})" if per[n]["rho"] is not None
                                                             else "") for n in names]
            rows.append((m, cells))
    out = _table(["method variant", "parameter"] + [f"importance for {labels[n]}" for n in names], rows) if rows else ""
    if empty:
        out += (f"<p class='note'>Too few finished trials (or nothing varied) for importance: "
                f"{E(', '.join(empty))}.</p>")
    stopped = Counter(r.method for r in entry.get("stopped", []))
    if stopped:  # early stopping leaves fewer finished trials, and not a random sample of them
        out += ("<p class='note'>Importance uses finished trials only; early stopping ended "
                + E(", ".join(f"{n} of {m}'s trials" for m, n in sorted(stopped.items())))
                + " at a rung, and the finished ones are those that ranked well there, so importance here "
                "describes the better region of the search, not the whole of it.</p>")
    return out + ("<p class='note'>Optuna's fANOVA importance (FanovaImportanceEvaluator, 16 trees, seed 0) of each searched "
                  "parameter, per objective, over the variant's finished trials (it sums to 1 per objective); ρ: "
                  "Spearman's rank correlation of the parameter with that objective (positive: larger values raise "
                  "it), where the parameter is a number. With one searched parameter its importance is 1 by "
                  "construction, measurement noise included; read ρ then.</p>")


def _bound_text(name: str, bound: str, value: float) -> str:
    return f"{name} {'≤' if bound == 'max' else '≥'} {value:g}"


def limit_text(limits: dict) -> str:
    """``train_memory_mb ≤ 2000, score ≥ 0.7``: the spec's constraints as read."""
    return ", ".join(_bound_text(k, b, v[b]) for k, v in limits.items() for b in ("min", "max") if v.get(b) is not None)


def _over_limits(entry: dict, limits: dict) -> str:
    over = [r for r in entry["infeasible"] if r.infeasible is not None and r.infeasible.cause == "limit"]
    head = (f"<p>Limits (the spec's constraints): {E(limit_text(limits))}. Fronts are built from trials within "
            "them; a trial over one stopped when it was measured.</p>" if limits else "")
    if not over:
        return head
    rows = [(r.method or "?", [r.method or "?", r.optuna_trial, r.infeasible.objective,
                               f"{r.infeasible.limit:g}", f"{r.infeasible.measured:.4g}", str(r.error or "")[:300]])
            for r in over]
    return head + (f"<h4>Trials over a limit ({len(over)})</h4>"
                   + _table(["method variant", "trial", "objective", "limit", "measured", "where"], rows))


def _problems(entry: dict) -> str:
    rows = [(r.method or "?", [r.method or "?", r.optuna_trial, r.status, str(r.error or "")[:500]])
            for r in entry["infeasible"] + entry["failed"]
            if r.infeasible is None or r.infeasible.cause != "limit"]
    cut = (f"<p class='note'>{entry['interrupted']} trial(s) were cut short by a crash of the driver and "
           "run again; they do not count against the budget.</p>" if entry["interrupted"] else "")
    if not rows:
        return cut
    return "<h4>Failed and infeasible trials</h4>" + _table(["method variant", "trial", "status", "message"], rows) + cut


def _overview_html(ov: dict, title_cells: dict) -> str:
    when = ""
    if ov["first_unix"]:
        f = datetime.fromtimestamp(ov["first_unix"], timezone.utc).strftime("%Y-%m-%d %H:%M")
        last = datetime.fromtimestamp(ov["last_unix"], timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        when = f"{f} – {last}"
    env = ov.get("env") or {}
    hosts = ", ".join(f"{h} ({n} trials)" for h, n in ov["hosts"].items()) or str(env.get("host", "?"))
    devices = ", ".join(f"{d} ({n})" for d, n in ov["devices"].items()) or str(env.get("device", "?"))
    over = f"{ov['overhead_s'] / 60:.1f} min" if ov["overhead_s"] is not None else "not recorded"
    progress = "?"
    if ov.get("budget") or ov.get("epochs_budget"):
        short, n = ov["cells_below_budget"], ov["n_cells"]
        spent = sorted(ov.get("epochs_spent", {}).values())
        per = " and ".join(x for x in (f"{ov['budget']} trials" if ov.get("budget") else "",
                                        f"{ov['epochs_budget']} training epochs" if ov.get("epochs_budget") else "") if x)
        per += " per cell" + (f" (epochs spent per cell: {spent[0]}–{spent[-1]}, median {spent[len(spent) // 2]})"
                              if ov.get("epochs_budget") and spent else "")
        progress = (f"{per}; " + (
            f"{short} of {n} cells below it so far (a sweep still running, or stopped: this report "
            "shows what had finished when it was written)" if short else f"complete in {n} of {n} cells"))
    items = [("sweep", ov.get("sweep") or "?"), ("spec hash", ov["spec_hash"] or "?"), ("budget", progress),
             ("trials run", when or "?"),
             ("nodes", f"{len(ov['hosts']) or 1}: {hosts}"), ("devices", devices),
             ("git", str(env.get("git_sha", "?"))[:12]),
             ("compute", f"{ov['compute_s'] / 60:.1f} min in trials"
                         + (f" and {ov['confirmations']} confirmation runs" if ov.get("confirmations") else "")),
             ("orchestration overhead", f"{over} (driver-observed trial time beyond the trials' own)")]
    dl = "".join(f"<dt>{E(k)}</dt><dd>{E(str(v))}</dd>" for k, v in items)
    # trials stopped early at a rung: a column of their own where a sweep had any
    stopped = any(v.get("stopped") for v in ov["cells"].values())
    rows = [(c.rsplit("__", 1)[-1], [c, v.get("ok", 0)] + ([v.get("stopped", 0)] if stopped else [])
             + [v.get("failed", 0), v.get("infeasible", 0), v.get("interrupted", 0), title_cells.get(c, "")])
            for c, v in ov["cells"].items()]
    table = _table(["cell (dataset__backbone__variant)", "completed"] + (["stopped early"] if stopped else [])
                   + ["failed", "infeasible", "interrupted (re-run)", "best validation"], rows)
    opened = " open" if len(rows) <= 30 else ""  # a long sweep's list stays folded
    return (f"<section id='overview'><h2>Overview</h2><dl class='facts'>{dl}</dl><details{opened}><summary>Trials "
            f"per cell ({len(rows)} cells)</summary>{table}</details></section>")


SCRIPT = """
function shownMethods() {
  return new Set([...document.querySelectorAll('.mfilter:checked')].map(x => x.value));
}
function drawPlot(div) {
  if (div.dataset.drawn) return;
  div.dataset.drawn = '1';
  const fig = JSON.parse(document.getElementById(div.id + '-fig').textContent), on = shownMethods();
  fig.data.forEach(t => { if (t.legendgroup && !on.has(t.legendgroup)) t.visible = false; });
  Plotly.newPlot(div, fig.data, fig.layout, {displaylogo: false, responsive: true});
}
function restyle(div) {
  const on = shownMethods(), vis = div.data.map(t => !t.legendgroup || on.has(t.legendgroup));
  const idx = vis.map((v, i) => i).filter(i => (div.data[i].visible !== false) !== vis[i]);
  if (idx.length) Plotly.restyle(div, {visible: idx.map(i => vis[i])}, idx);
}
// Plots are drawn as they come near the viewport, and a filter change reaches a drawn plot
// far from it when it comes back; '#all' in the address draws every plot at once.
const observer = new IntersectionObserver(entries => entries.forEach(e => {
  if (!e.isIntersecting) return;
  if (!e.target.dataset.drawn) drawPlot(e.target); else if (e.target.dataset.stale) restyle(e.target);
  delete e.target.dataset.stale;
  observer.unobserve(e.target);
}), {rootMargin: '800px'});
document.querySelectorAll('.lazy-plot').forEach(d => location.hash === '#all' ? drawPlot(d) : observer.observe(d));
function near(div) {
  const r = div.getBoundingClientRect();
  return r.bottom > -800 && r.top < window.innerHeight + 800;
}
// Drawn plots far from the viewport are restyled one at a time in the background after a
// filter change (so the change itself stays quick with thousands of plots), or at once when
// scrolled to, whichever comes first.
const stalePlots = new Set();
function drainStale() {
  const div = stalePlots.values().next().value;
  if (!div) return;
  stalePlots.delete(div);
  if (div.dataset.stale) { restyle(div); delete div.dataset.stale; observer.unobserve(div); }
  setTimeout(drainStale, 0);
}
function applyFilter() {
  const on = shownMethods(), idle = stalePlots.size === 0;
  document.querySelectorAll('.lazy-plot').forEach(div => {
    if (!div.data) return;  // not drawn yet: it reads the filter when it is
    if (near(div)) restyle(div); else { div.dataset.stale = '1'; observer.observe(div); stalePlots.add(div); }
  });
  if (idle && stalePlots.size) setTimeout(drainStale, 50);
  document.querySelectorAll('tr[data-method]').forEach(tr => {
    tr.style.display = (on.has(tr.dataset.method) || !document.querySelector(
      '.mfilter[value="' + CSS.escape(tr.dataset.method) + '"]')) ? '' : 'none';
  });
}
document.querySelectorAll('.mfilter').forEach(x => x.addEventListener('change', applyFilter));
document.querySelectorAll('table.sortable th').forEach((th, _) => th.addEventListener('click', () => {
  const table = th.closest('table'), body = table.tBodies[0];
  const col = [...th.parentNode.children].indexOf(th), asc = th.dataset.dir !== 'asc';
  th.parentNode.querySelectorAll('th').forEach(h => delete h.dataset.dir);
  th.dataset.dir = asc ? 'asc' : 'desc';
  const key = tr => { const t = tr.children[col].textContent.replace(/,/g, ''); const v = parseFloat(t);
                      return isNaN(v) ? t : v; };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    const c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
    return asc ? c : -c; }).forEach(tr => body.appendChild(tr));
}));
"""

# First in the page: any script error shows as a banner (and the browser test reads it).
ERRORS = """
window.reportErrors = [];
function noteError(msg) {
  window.reportErrors.push(String(msg));
  document.documentElement.setAttribute('data-js-errors', JSON.stringify(window.reportErrors));
  const b = document.getElementById('js-errors');
  if (b) { b.style.display = 'block'; b.textContent = 'This page hit a script error: ' + window.reportErrors.join('; '); }
}
window.addEventListener('error', e => noteError(e.message));
const consoleError = console.error;
console.error = function (...a) { noteError(a.join(' ')); consoleError.apply(console, a); };
"""


def render(records: list[TrialRecord], title: str, env: dict | None, spec_header: str | None = None,
           spec_path: str = "SPEC", budget: int | None = None, sweep: str | None = None,
           n_cells: int | None = None, *, families: dict[str, dict], limits: dict | None = None,
           epochs_budget: int | None = None) -> str:
    """The page. ``families``: each task family's title and full fine-tuning reference, as
    :meth:`runfolder.RunDir.read_families` gives them (empty: titles are the families'
    names, and no group has a reference line). ``limits``: the spec's constraints
    (``{objective: {"min": ..., "max": ...}}``), drawn on each plane and listed."""
    summary = summarize(records, families)
    ov = overview(records, env, spec_header, budget=budget, sweep=sweep, n_cells=n_cells,
                  epochs_budget=epochs_budget)
    methods = sorted({r.method for r in records if r.method})
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}
    best_of_cell = {}
    sections, family = [], None
    for g, entry in summary.items():
        if entry["family"] != family:
            family = entry["family"]
            sections.append(f"<h2 class='family' id='{_div_id('family', family)}'>"
                            f"{E(family_title(family, families))}</h2>")
        parts = [f"<section class='group' id='{_div_id('group', g)}'><h3>{E(g)}</h3>"]
        n_ok, n_bad, n_inf = len(entry["trials"]), len(entry["failed"]), len(entry["infeasible"])
        n_stop = len(entry["stopped"])
        stop = f", {n_stop} stopped early (not final: never on a front)" if n_stop else ""
        parts.append(f"<p>{n_ok} finished trials{stop}, {n_bad} failed, {n_inf} infeasible. Stars: trials on the "
                     "Pareto front of that plane (all variants together); faded circles are dominated; error bars: "
                     "the 95% Student-t interval of the validation mean over seeds (none with one seed: no interval "
                     "exists); the dashed line: full fine-tuning's best; long-dash-dot lines: reference baselines "
                     f"({len(entry['references'])} here), never on a front.</p>")
        if entry["trials"]:
            for r in entry["best"]:
                best_of_cell[r.cell] = f"{r.score:.4f}"
            # fixed tracks: a plot takes its width when drawn, before the next one exists
            parts.append(f'<div class="row" style="grid-template-columns: repeat({len(entry["plane_labels"])}, '
                         'minmax(0, 1fr))">')
            for key, label in entry["plane_labels"].items():
                parts.append(_plot(_front_figure(entry, key, label, colors, limits), _div_id("front", g, key)))
            parts.append("</div>")
            knees = {k: p["knee"] for k, p in entry["planes"].items() if p["knee"] is not None}
            cmds = "".join(
                f"<li>{E(entry['plane_labels'][k])}: {E(entry['trials'][i].method)} trial "
                f"{entry['trials'][i].optuna_trial}<pre>{E(rerun_command(entry['trials'][i], spec_path))}</pre>"
                "</li>" for k, i in knees.items())
            parts.append("<h4>Knee of each front, and the command that re-runs it</h4>"
                         f"<ul class='knees'>{cmds}</ul><p class='note'>Knee: the front point farthest from the line "
                         "joining the front's ends, cost on a log scale, both axes scaled to the front.</p>")
            parts.append("<h4>Hypervolume per variant</h4>" + _hv_table(entry))
            parts.append(_plot(_hv_figure(entry, colors), _div_id("hv", g)))
            parts.append("<h4>Is a difference real? Each variant's chosen configuration on test</h4>"
                         + _verdict_table(entry))
            parts.append("<h4>Pareto-optimal configurations of each variant (score and every searched cost; click "
                         "a column to sort)</h4>" + _pareto_table(entry, knees))
            parts.append("<h4>Parameter importance</h4>" + _importance_table(entry))
        parts.append(_over_limits(entry, limits or {}))
        parts.append(_problems(entry))
        parts.append("</section>")
        sections.append("\n".join(parts))
    env_html = ""
    if env:
        pk = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items() if v)
        env_html = (f"<p class='env'>device {E(str(env.get('device')))}, host {E(str(env.get('host')))}, "
                    f"python {E(str(env.get('python')))}<br>{E(pk)}</p>")
    filt = "".join(f"<label style='color:{colors[m]}'><input type='checkbox' class='mfilter' value='{E(m)}' checked>"
                   f"{E(m)}</label> " for m in methods)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{E(title)}</title>
<script>{ERRORS}</script>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
.row {{ display: grid; gap: 12px; }}
.plot {{ min-width: 0; }}
table {{ border-collapse: collapse; font-size: 13px; margin-bottom: 16px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: left; }}
th {{ background: #f3f3f3; }} table.sortable th {{ cursor: pointer; }}
th[data-dir=asc]::after {{ content: " ▲"; }} th[data-dir=desc]::after {{ content: " ▼"; }}
.env, .note {{ font-size: 12px; color: #666; }}
pre {{ background: #f6f6f6; padding: 6px; white-space: pre-wrap; font-size: 12px; }}
dl.facts {{ display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }} dt {{ font-weight: 600; }}
#filter {{ position: sticky; top: 0; background: white; padding: 6px 0; border-bottom: 1px solid #ddd; z-index: 10; }}
#js-errors {{ display: none; background: #fdd; padding: 8px; }}
h2.family {{ border-bottom: 2px solid #333; margin-top: 36px; }}
</style></head>
<body><div id="js-errors"></div><h1>{E(title)}</h1>
<p>Generated {stamp}. <b>Selection is on validation only</b>: each configuration trains with the same seeds,
its score is the mean validation score over them, and the fronts, hypervolumes, knees and best configurations are
built from it. Test scores are reported (mean with its 95% Student t interval over seeds) beside what validation chose, never used to choose.
Memory: measured peak of live tensor bytes during training steps (the CUDA allocator's peak on GPUs, the allocator's
events through the PyTorch profiler on CPUs); latency: median no-grad forward time of the deployable model (LoRA
merged) per unit of its task: per graph for molecules, per node for text graphs (from the node's text, the language
model included, with early exit where the method has it). Exports: <code>results.csv</code> and
<code>results.parquet</code> beside this file, one row per trial with every seed's scores.</p>
{env_html}
<div id="filter"><b>Method variants shown:</b> {filt}</div>
{_overview_html(ov, best_of_cell)}
{_pooled_html(pooled_versus_full(summary))}
{''.join(sections)}
<script>{SCRIPT}</script>
</body></html>
"""


def _pooled_html(pooled: dict) -> str:
    """Each variant against full fine-tuning across datasets (:mod:`reports.pooled`)."""
    if not pooled:
        return ""
    parts = ["<section id='pooled'><h2>Across datasets: each variant against full fine-tuning</h2>",
             "<p class='note'>Over the datasets whose comparisons used confirmation runs: each dataset's paired "
             "test-score differences in units of its gap between the constant predictor and its best variant "
             "(positive: the variant is better), datasets sharing molecules as one block, pooled by a "
             "random-effects model with modified Hartung–Knapp intervals; one-sided tests for and against, Holm "
             "over both; 'detectable' is the smallest pooled effect this design finds with 80% power.</p>"]
    for key, verdicts in pooled.items():
        rows = []
        for v in verdicts:
            c, p = v.claim, v.claim.pooled
            if p is None:
                rows.append(f"<tr><td>{E(c.label)}</td><td>{len(c.blocks)}</td><td colspan='4'>no test (fewer "
                            "than 2 blocks)</td></tr>")
                continue
            det = f"{v.detectable:.3f}" if v.detectable is not None else "–"
            rows.append(f"<tr><td>{E(c.label)}</td><td>{len(c.blocks)}</td><td>{p.effect:+.3f} "
                        f"[{p.low:+.3f}, {p.high:+.3f}]</td><td>{p.tau2:.4f}</td>"
                        f"<td><b>{E(v.verdict)}</b> (p_Holm for {v.p_for_holm:.2g}, against {v.p_against_holm:.2g})"
                        f"</td><td>{det}</td></tr>")
        parts.append(f"<h3>{E(key)}</h3><table><tr><th>claim</th><th>blocks</th><th>pooled effect (95%)</th>"
                     "<th>τ²</th><th>verdict</th><th>detectable</th></tr>" + "".join(rows) + "</table>")
    return "\n".join(parts) + "</section>"


def build_report(run_path: str | Path) -> Path:
    """Write report.html, results.csv and results.parquet from what the run folder holds
    now (a running sweep's finished trials included); returns the report's path. The task
    families' titles and full fine-tuning references come from the run folder's
    ``families.json`` (written by the driver; without it, titles are the families' names
    and no reference line is drawn)."""
    from reports.export import write_exports

    run = RunDir(Path(run_path))
    if not run.path.is_dir():
        raise FileNotFoundError(f"{run.path}: no such run folder")
    records = run.trial_records() + run.confirmation_records()
    if not records:
        raise ValueError(f"{run.path}: no trial records under trials/ to report on")
    spec_path = str(run.spec_file)
    try:
        spec_path = str(run.spec_file.relative_to(Path.cwd()))
    except ValueError:
        pass
    header = budget = sweep = n_cells = epochs_budget = None
    limits: dict = {}
    if run.spec_file.exists():  # the resolved spec (strict YAML the driver wrote), its header comments first
        import yaml

        text = run.spec_file.read_text()
        header = text.split("\n", 1)[0]
        resolved = yaml.safe_load(text) or {}
        budget, sweep = (resolved.get("budget") or {}).get("trials_per_cell"), resolved.get("name")
        epochs_budget = (resolved.get("budget") or {}).get("epochs_per_cell")
        limits = resolved.get("constraints") or {}
        found = re.search(r"^# cells: (\d+)$", text, re.M)
        n_cells = int(found.group(1)) if found else None
    families = run.read_families()
    page = render(records, f"Sweep report: {run.path.name}", run.read_env(), header, spec_path,
                  budget=budget, sweep=sweep, n_cells=n_cells, families=families, limits=limits,
                  epochs_budget=epochs_budget)
    write_exports(records, run.path, families)
    return atomic_write_text(run.report_file, page)

