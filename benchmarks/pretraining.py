"""Is the pretraining budget worth adapting? Pretraining curves, and the downstream
test score of fine-tuned and linearly probed backbones pretrained on more or fewer
MOSES molecules, against random initialisation.

    .venv/bin/python benchmarks/pretraining.py       # writes docs/benchmarks/pretraining.md

Each downstream figure is a real ``run_trial`` (validation-selected epoch, 3 seeds).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runfolder.io import atomic_write_json, atomic_write_text  # noqa: E402
from workloads.config import BackboneConfig, TrialConfig  # noqa: E402
from workloads.datasets.config import DatasetConfig  # noqa: E402
from workloads.pretrain import ensure_pretrained, load_pretrained  # noqa: E402
from workloads.train import run_trial  # noqa: E402
from workloads.util import default_cache_dir  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
ARCH = {"hidden_dim": 32, "num_layers": 3, "num_heads": 4, "ffn_dim": 64}


def _quick_backbone() -> tuple[dict, dict]:
    """The architecture and pretraining recipe of sweeps/quick.yaml's Graphormer (what
    `make sweep` adapts), read from the file so the row follows it."""
    import yaml

    spec = yaml.safe_load((ROOT / "sweeps" / "quick.yaml").read_text())
    bb = next(b for b in spec["backbones"] if b["name"] == "graphormer")
    return bb["params"], bb["pretrain"]


QUICK_ARCH, QUICK_RECIPE = _quick_backbone()
# label -> (architecture, pretraining recipe or None for random initialisation)
BUDGETS = {"random init": (ARCH, None),
           "1k molecules × 1 epoch": (ARCH, {"max_molecules": 1000, "epochs": 1, "batch_size": 128, "lr": 0.001}),
           "5k × 2": (ARCH, {"max_molecules": 5000, "epochs": 2, "batch_size": 128, "lr": 0.001}),
           "20k × 2 (table.py's)": (ARCH, {"max_molecules": 20000, "epochs": 2, "batch_size": 128, "lr": 0.001}),
           "quick.yaml's backbone, random init": (QUICK_ARCH, None),
           "quick.yaml's backbone and recipe": (QUICK_ARCH, QUICK_RECIPE)}
METHODS = {"full": 1e-3, "linear_probe": 1e-2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="freesolv")
    ap.add_argument("--backbones", nargs="+", default=["graphormer", "mat"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()
    cache = default_cache_dir()
    t0 = time.perf_counter()
    rows, curves = [], {}
    for backbone in args.backbones:
        for label, (arch, recipe) in BUDGETS.items():
            if arch is QUICK_ARCH and backbone != "graphormer":
                continue  # quick.yaml adapts a Graphormer only
            bb = BackboneConfig(name=backbone, params=arch, pretrain=recipe)
            t = time.perf_counter()
            ckpt = ensure_pretrained(bb, cache)
            if ckpt is not None:
                from workloads.backbones import BACKBONES

                info = load_pretrained(BACKBONES.get(backbone).build(bb.arch()), ckpt)
                curves[f"{backbone} / {label}"] = info["history"]
            for method, lr in METHODS.items():
                cfg = TrialConfig(dataset=DatasetConfig(name=args.dataset), backbone=bb, method={"name": method},
                                  seeds=args.seeds, train={"epochs": args.epochs, "lr": lr, "batch_size": 64},
                                  profile={"latency_repeats": 3, "memory_steps": 5}, cache_dir=str(cache),
                                  device="cpu")
                r = run_trial(cfg, progress=lambda m: None)
                m = r.metrics
                rows.append({"backbone": backbone, "budget": label, "method": method, "metric": m.metric,
                             "test_mean": m.test_score, "test_std": m.test_std, "val_mean": m.val_score})
                print(f"{backbone} / {label} / {method}: test {m.metric} {m.test_score:.3f} ± "
                      f"{m.test_std:.3f} [{time.perf_counter() - t:.0f}s]", flush=True)
    res = {"rows": rows, "curves": curves, "args": vars(args), "wall_s": time.perf_counter() - t0}
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_json(OUT / "pretraining.json", res)
    atomic_write_text(OUT / "pretraining.md", render(res))
    print(f"wrote {OUT / 'pretraining.md'}")


def _beats_random(res: dict, backbone: str, label: str, base_label: str) -> bool:
    """Fine-tuned score better than random initialisation's by more than both stds together."""
    rows = {(r["budget"], r["method"]): r for r in res["rows"] if r["backbone"] == backbone}
    base, r = rows.get((base_label, "full")), rows.get((label, "full"))
    if base is None or r is None:
        return False
    sign = 1 if r["metric"] == "rmse" else -1
    return sign * (base["test_mean"] - r["test_mean"]) > base["test_std"] + r["test_std"]


def render(res: dict) -> str:
    a = res["args"]
    arch = lambda d: f"{d['hidden_dim']} wide, {d['num_layers']} layers"  # noqa: E731
    lines = ["# Pretraining budget against random initialisation", "",
             f"Regenerate: `.venv/bin/python benchmarks/pretraining.py --dataset {a['dataset']} --backbones "
             f"{' '.join(a['backbones'])}` (this run: {res['wall_s'] / 60:.0f} min on 2 CPU cores). Backbones "
             f"{arch(ARCH)}, pretrained on MOSES (masked atoms + ten RDKit descriptors); the last rows are "
             f"`sweeps/quick.yaml`'s Graphormer ({arch(QUICK_ARCH)}, {QUICK_RECIPE['max_molecules']:,} molecules × "
             f"{QUICK_RECIPE['epochs']} epochs, lr {QUICK_RECIPE['lr']}), what `make sweep` adapts.", "",
             "## Pretraining curves (per epoch)", "",
             "| backbone / budget | epoch | loss | masked-atom accuracy | descriptor R² |", "|---|---|---|---|---|"]
    for label, hist in res["curves"].items():
        for h in hist:
            lines.append(f"| {label} | {h['epoch']} | {h['train_loss']:.3f} | {h['masked_atom_acc']:.3f} | "
                         f"{h.get('descriptor_r2', float('nan')):.3f} |")
    metric = res["rows"][0]["metric"]
    lines += ["", f"## Downstream: {a['dataset']}, test score (mean ± std over {a['seeds']} seeds, "
              f"{a['epochs']} epochs, validation-selected epoch; {'lower' if metric == 'rmse' else 'higher'} "
              f"is better, {metric})", "",
              "| backbone | budget | full fine-tuning | linear probe | beats random init |", "|---|---|---|---|---|"]
    fmt = lambda r: f"{r['test_mean']:.3f} ± {r['test_std']:.3f}" if r else "–"  # noqa: E731
    verdicts = []
    for backbone in a["backbones"]:
        for label, (arch, recipe) in BUDGETS.items():
            cells = {r["method"]: r for r in res["rows"] if r["backbone"] == backbone and r["budget"] == label}
            if not cells:
                continue
            # against random initialisation of the same architecture
            base = next(b for b, (a2, r2) in BUDGETS.items() if a2 is arch and r2 is None)
            beats = "" if recipe is None else ("yes" if _beats_random(res, backbone, label, base) else "no")
            if beats:
                verdicts.append((backbone, label, beats == "yes"))
            lines.append(f"| {backbone} | {label} | {fmt(cells.get('full'))} | {fmt(cells.get('linear_probe'))} "
                         f"| {beats} |")
    lines += ["", "\"Beats random init\": the fine-tuned score is better than the same architecture's from random "
              "initialisation by more than the two standard deviations together."]
    for backbone in a["backbones"]:
        yes = [label for b, label, ok in verdicts if b == backbone and ok]
        lines.append(f"- {backbone}: {', '.join(yes) if yes else 'no budget here'} "
                     + ("does." if len(yes) == 1 else "do." if yes else "shows the effect."))
    lines += ["", "Smaller budgets can even hurt, starting the weights somewhere worse than random; the benchmarks "
              "that compare methods should pretrain on a budget that beats random initialisation here.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
