"""The critical-difference diagram (Demšar 2006, JMLR 7:1–30, Fig. 1) of a Friedman/Nemenyi
rank test, drawn by ``scikit_posthocs.critical_difference_diagram``. The only module in
``reports/`` that imports matplotlib, and only inside the function: it draws on a bare
``Figure`` with the Agg canvas, so neither pyplot's global state nor a display is touched."""
from __future__ import annotations

from pathlib import Path

from reports.stats import RankTest
from runfolder.io import atomic_write

FORMATS = {".svg": "svg", ".png": "png"}


def write_cd_diagram(rank_test: RankTest, path: str | Path) -> Path:
    """Draw the average ranks (1 = best, on the left), a bar joining the methods the Nemenyi
    test does not separate at ``rank_test.alpha``, and the CD interval; write it atomically
    (temporary file in the same folder, then ``os.replace``) as SVG or PNG by ``path``'s suffix."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path.name}: the diagram is written as .svg or .png, not {path.suffix!r}")
    if rank_test.nemenyi is None:
        raise ValueError(f"no critical-difference diagram without a rank test ({rank_test.reason})")
    import pandas as pd
    import scikit_posthocs as sp
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    methods = list(rank_test.methods)
    ranks = pd.Series({m: rank_test.average_ranks[m] for m in methods})
    sig = pd.DataFrame(rank_test.nemenyi, index=methods, columns=methods).loc[methods, methods]
    fig = Figure(figsize=(7, 1.2 + 0.3 * len(methods)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    sp.critical_difference_diagram(ranks, sig, alpha=rank_test.alpha, ax=ax)
    # the CD bar drawn here, not by scikit-posthocs (it puts it at y = 0.5, over the tick labels)
    x0 = min(rank_test.average_ranks.values())
    ax.plot([x0, x0 + rank_test.cd], [1.2, 1.2], color="k", linewidth=2)
    ax.text(x0 + rank_test.cd / 2, 1.35, f"CD = {rank_test.cd:.2f}", ha="center", va="bottom", fontsize=9)
    ax.set_ylim(top=2.0)
    ax.set_title(f"average rank (1 = best) over {rank_test.n_blocks} blocks; "
                 f"Friedman p = {rank_test.p:.3g}", fontsize=9)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, bbox_inches="tight"))
