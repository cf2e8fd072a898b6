"""``orchestrator``: sweep, run one trial, pretrain, report."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from rich.console import Console

console = Console(highlight=False, soft_wrap=True, markup=False)  # messages hold [brackets]


def _parse_assignments(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"error: --set expects KEY=VALUE, got '{item}'")
        k, v = item.split("=", 1)
        try:
            out[k] = yaml.safe_load(v)
        except yaml.YAMLError:
            raise SystemExit(f"error: --set {k}: cannot read value '{v}'") from None
    return out


def cmd_sweep(args) -> int:
    from orchestrator.spec import load_spec
    from orchestrator.sweep import Sweep
    from reports.html import build_report

    from orchestrator.spec import SpecError

    spec = load_spec(args.spec, args.override or ())
    executor = None
    if args.executor == "inprocess":
        from orchestrator.executor import InProcessExecutor

        executor = InProcessExecutor()
    try:
        run = Sweep(spec, console=console).execute(address=args.address, num_cpus=args.num_cpus, executor=executor)
    except SpecError as e:  # found by the driver before any work: name the file it came from
        raise SpecError(f"{args.spec}: {e}") from None
    report = build_report(run.path)
    console.print(f"report: {report}")
    print(report)
    return 0


def cmd_run(args) -> int:
    from orchestrator.spec import load_spec
    from orchestrator.sweep import trial_config
    from workloads import run_trial

    spec = load_spec(args.spec, args.override or ())
    dataset = args.dataset or spec.datasets[0].name
    method = args.method or next(iter(spec.methods))
    match = [c for c in spec.cells() if c.dataset == dataset and c.method == method
             and (args.backbone is None or c.backbone == args.backbone)]
    if not match:
        raise SystemExit(
            f"error: no cell ({dataset}, {args.backbone or 'any backbone'}, {method}) in {args.spec}; datasets: "
            f"{', '.join(d.name for d in spec.datasets)}; backbones: {', '.join(b.name for b in spec.backbones)}; "
            f"methods: {', '.join(spec.methods)}"
        )
    if len(match) > 1:
        raise SystemExit(f"error: ({dataset}, {method}) runs on {', '.join(c.backbone for c in match)}; "
                         "choose one with --backbone")
    cell = match[0]
    space = spec.methods[method].search
    params = {k: p.default() for k, p in space.items()}
    overrides = _parse_assignments(args.set or [])
    unknown = set(overrides) - set(space) - set(spec.methods[method].params)
    from workloads.config import TrainConfig
    from workloads.peft import METHODS
    from workloads.plugins import PLUGINS

    entry = spec.methods[method]
    allowed = set(METHODS.get(entry.method_name(method)).config_cls.model_fields) | set(TrainConfig.model_fields)
    allowed |= {f"{p}.{f}" for p in entry.plugins for f in PLUGINS.get(p).config_cls.model_fields}
    if unknown - allowed:
        raise SystemExit(f"error: --set {', '.join(sorted(unknown - allowed))}: unknown; known: {', '.join(sorted(allowed))}")
    params.update(overrides)
    cfg = trial_config(spec, cell, params, f"{cell.id}/run")
    if args.epochs is not None:
        if args.epochs < 1:
            raise SystemExit(f"error: --epochs must be at least 1, got {args.epochs}")
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": args.epochs})})
    if args.seeds is not None:
        if args.seeds < 1:
            raise SystemExit(f"error: --seeds must be at least 1, got {args.seeds}")
        cfg = cfg.model_copy(update={"seeds": args.seeds})
    record = run_trial(cfg, progress=console.print)
    text = json.dumps(record, indent=2, default=str)
    if args.out:
        from workloads.util import atomic_write_text

        atomic_write_text(Path(args.out), text + "\n")
        console.print(f"wrote {args.out}")
    o, m = record["objectives"], record["metrics"]
    console.print(
        f"{cell.id} {params}: val {m['metric']} {m['val_score']:.4f}±{m['val_std']:.4f}, "
        f"test {m['test_score']:.4f}±{m['test_std']:.4f} ({len(m['val_scores'])} seeds), "
        + ", ".join(f"{k} {v:.3f}" for k, v in o.items() if k != "score") + ", "
        f"{record['trainable_params']:,} trainable of {record['total_params']:,}"
    )
    return 0


def cmd_pretrain(args) -> int:
    from orchestrator.spec import load_spec
    from orchestrator.sweep import backbone_config, cache_dir_for
    from workloads.pretrain import describe, ensure_pretrained

    from workloads.backbones import BACKBONES

    spec = load_spec(args.spec, args.override or ())
    for i, b in enumerate(spec.backbones):
        if not BACKBONES.get(b.name).pretrainable:
            console.print(f"{b.name}: loaded as is (a pretrained language model); nothing to pretrain")
            continue
        path = ensure_pretrained(backbone_config(spec, i), cache_dir_for(spec), progress=console.print)
        if path is None:
            console.print(f"{b.name}: pretrain is null in the spec; trials start from random weights")
            continue
        console.print(f"{b.name}: {path}")
        if args.verbose:
            console.print(describe(path))
    return 0


def cmd_status(args) -> int:
    from orchestrator.progress import status_table, sweep_status

    cells, note = sweep_status(args.run_dir)
    done = sum(c.done + c.failed + c.infeasible for c in cells.values())
    budget = sum(c.budget for c in cells.values())
    out = console if console.is_terminal else Console(highlight=False, width=160)  # a pipe: no squeezed columns
    out.print(status_table(cells, f"{Path(args.run_dir).resolve().name}: {done} of {budget} trials ended", note))
    return 0


def cmd_report(args) -> int:
    from reports.html import build_report

    path = build_report(args.run_dir)
    print(path)
    return 0


def _add_override(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--override", nargs="+", metavar="KEY.PATH=VALUE",
                   help="change the spec before it is checked, e.g. budget.trials_per_cell=1 train.epochs=2 "
                   "backbones.mat.pretrain.max_molecules=2000 (lists by index or by an item's name; values are YAML)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="orchestrator",
        description="Sweep PEFT methods on pretrained graph transformers: Optuna search, Ray execution, "
        "Pareto reports of memory and latency against score.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("sweep", help="run (or resume) a sweep from a YAML spec, then write its report",
                       description="Run every study (dataset × backbone × method) of SPEC on Ray; resumes "
                       "from runs/<name>/ if the sweep was started before.")
    s.add_argument("spec", help="sweep spec, e.g. sweeps/quick.yaml")
    s.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                   help="Ray cluster to join (default: $RAY_ADDRESS, else start Ray locally)")
    s.add_argument("--num-cpus", type=int, default=None, help="CPUs for a local Ray (default: all)")
    s.add_argument("--executor", choices=["ray", "inprocess"], default="ray",
                   help="ray: long-lived Ray Train worker groups (default); inprocess: one trial at a time in "
                   "this process, no Ray (debugging, small machines)")
    _add_override(s)
    s.set_defaults(fn=cmd_sweep)

    r = sub.add_parser("run", help="run one trial in this process, without Ray (for debugging)",
                       description="Run one trial of a cell of SPEC in-process. Searched parameters take "
                       "the middle of their range (the first choice if categorical) unless given with --set.")
    r.add_argument("spec")
    r.add_argument("--dataset", help="dataset name (default: the spec's first)")
    r.add_argument("--method", help="method variant, a key of the spec's methods (default: the first)")
    r.add_argument("--backbone", help="backbone name, where the dataset and method run on several (default: the one)")
    r.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="parameter values, e.g. r=8 lr=1e-3")
    r.add_argument("--epochs", type=int, help="override training epochs")
    r.add_argument("--seeds", type=int, help="override the number of seeds (default: the spec's budget.seeds)")
    r.add_argument("--out", help="write the trial record (JSON) here")
    _add_override(r)
    r.set_defaults(fn=cmd_run)

    t = sub.add_parser("pretrain", help="pretrain (or find cached) backbones named in a spec",
                       description="Pretrain each backbone of SPEC on MOSES molecules (masked atoms + RDKit "
                       "descriptors); checkpoints are cached by config and reused by sweeps.")
    t.add_argument("spec")
    _add_override(t)
    t.set_defaults(fn=cmd_pretrain)

    st = sub.add_parser("status", help="per-cell progress of a sweep, running or finished",
                        description="Trials done, running, failed and infeasible per cell against the budget, "
                        "and the best validation score so far, from the run folder and its Optuna storage.")
    st.add_argument("run_dir", help="e.g. runs/quick")
    st.set_defaults(fn=cmd_status)

    rp = sub.add_parser("report", help="write runs/<sweep>/report.html, results.csv and results.parquet "
                        "(at any moment: a running sweep's finished trials)")
    rp.add_argument("run_dir", help="e.g. runs/quick")
    rp.set_defaults(fn=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    from orchestrator.spec import SpecError, mask_secrets

    try:
        return args.fn(args)
    except (SpecError, FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {mask_secrets(str(e))}", file=sys.stderr)  # a URL's password, wherever it came from
        return 2


if __name__ == "__main__":
    sys.exit(main())
