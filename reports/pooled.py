"""Claims pooled across datasets in a sweep's report: each searched variant against full
fine-tuning, per task family and backbone, over the datasets whose groups compared
confirmation runs (``budget.confirm_seeds``), with the random-effects test of
:mod:`reports.meta` (the one ``docs/benchmarks/table.md`` uses). Computed apart from any
rendering; :mod:`reports.html` draws it."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from reports.meta import SHARED_MOLECULES, DatasetInput, PooledVerdict, claim_verdicts, pooled_claim
from reports.verdicts import seed_scores


def pooled_versus_full(summary: Mapping[str, dict], alpha: float = 0.05) -> dict[str, list[PooledVerdict]]:
    """``"family / backbone"`` → one verdict per searched variant, "the variant beats full
    fine-tuning", Holm over the variants of that family and backbone. Only where at least two
    datasets (blocks) have confirmed comparisons with a constant baseline and full fine-tuning;
    the search's own runs are never pooled (their configurations were chosen on them)."""
    by: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for group, entry in summary.items():
        v = entry.get("verdicts") or {}
        if not v.get("confirmed") or v.get("constant") is None or entry.get("full_reference") is None:
            continue
        dataset, backbone = group.split(" / ", 1)
        by[f"{entry['family']} / {backbone}"].append((dataset, entry))
    out: dict[str, list[PooledVerdict]] = {}
    for key, entries in sorted(by.items()):
        if len({SHARED_MOLECULES.get(d, d) for d, _ in entries}) < 2:
            continue
        full = entries[0][1]["full_reference"].method
        variants = sorted({m for _, e in entries for m, r in e["verdicts"]["chosen"].items()
                           if r.reference is None and m != full})
        claims = []
        for m in variants:
            inputs = []
            for dataset, e in entries:
                chosen, direction = e["verdicts"]["chosen"], e["direction"]
                if m not in chosen or full not in chosen:
                    continue
                means = [r.metrics.test_score for r in chosen.values() if r.metrics is not None]
                best = (max if direction == "maximize" else min)(means)
                inputs.append(DatasetInput(dataset, seed_scores(chosen[m]), seed_scores(chosen[full]), direction,
                                           e["verdicts"]["constant"], best, SHARED_MOLECULES.get(dataset)))
            claims.append(pooled_claim(f"{m} beats {full}", m, full, inputs))
        out[key] = claim_verdicts(claims, alpha=alpha)
    return out
