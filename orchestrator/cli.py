"""``orchestrator``: sweep, prepare its caches, run one trial, pretrain, embed, report."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from rich.console import Console

console = Console(highlight=False, soft_wrap=True, markup=False)  # messages hold [brackets]


def _parse_assignments(items: list[str]) -> dict:
    """``--set KEY=VALUE`` items; values read as YAML, as strictly as a spec."""
    import yaml

    from orchestrator.spec import AliasRefused, read_yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"error: --set expects KEY=VALUE, got '{item}'")
        k, v = item.split("=", 1)
        try:
            out[k] = read_yaml(v)
        except AliasRefused as e:
            raise SystemExit(f"error: --set {k}: {e}") from None
        except yaml.YAMLError:
            raise SystemExit(f"error: --set {k}: cannot read value '{v}'") from None
    return out


def cmd_sweep(args) -> int:
    from orchestrator.spec import SpecError, load_spec
    from orchestrator.sweep import Sweep
    from reports.html import build_report

    spec = load_spec(args.spec, args.override or ())
    try:
        run = Sweep(spec, console=console).execute(address=args.address, num_cpus=args.num_cpus,
                                                    executor=args.executor)
    except SpecError as e:  # found by the driver before any work: name the file it came from
        raise SpecError(f"{args.spec}: {e}") from None
    report = build_report(run.path)
    console.print(f"report: {report}")
    print(report)
    return 0


def cmd_run(args) -> int:
    from orchestrator.spec import RouteError, load_spec, routable, route
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
    entry = spec.methods[method]
    params = {k: p.default() for k, p in entry.search.items()}
    overrides = _parse_assignments(args.set or [])
    unknown = []  # each key goes where a searched one would (the rule spec validation and trials use)
    for key in overrides:
        try:
            route(key, entry.method_name(method), entry.plugins)
        except RouteError:
            unknown.append(key)
    if unknown:
        known = routable(entry.method_name(method), entry.plugins)
        raise SystemExit(f"error: --set {', '.join(sorted(unknown))}: unknown; known: {', '.join(known)}")
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
    record.assign(cell=cell.id, dataset=cell.dataset, backbone=cell.backbone, method=cell.method, number=None,
                  params=params, objective_names=spec.cell_objectives(cell))
    if args.out:
        from runfolder import atomic_write_text

        atomic_write_text(Path(args.out), record.to_json())
        console.print(f"wrote {args.out}")
    console.print(f"{cell.id} {params}: {record.summary_line()}")
    return 0


def _say(msg: str) -> None:
    console.print(msg, markup=False, highlight=False)  # plain: progress notes hold [brackets]


def _step_lines():
    """A long step's progress as plain lines: every 5 s on a terminal, else every 10 s."""
    from workloads.progress import line_sink

    return line_sink(_say, every_s=5 if console.is_terminal else 10)


def cmd_pretrain(args) -> int:
    """The backbones part of ``prepare``, with what each checkpoint holds under ``-v``."""
    from orchestrator.prepare import prepare_backbones
    from orchestrator.spec import load_spec
    from workloads.progress import reporting

    spec = load_spec(args.spec, args.override or ())
    with reporting(_step_lines()):
        prepare_backbones(spec, _say, show=args.verbose)
    return 0


def cmd_prepare(args) -> int:
    """Every cache SPEC's trials read (featurized sets, LM states, checkpoints), built ahead
    of a sweep: LM states on Ray Data actors where they win (GPUs, a CPU cluster of several
    machines), else in this process, as with ``--executor inprocess``."""
    import contextlib

    from orchestrator.prepare import prepare
    from orchestrator.spec import load_spec
    from orchestrator.sweep import Sweep

    spec = load_spec(args.spec, args.override or ())
    ex = Sweep(spec, console=console).make_executor(args.executor, args.address, args.num_cpus)
    with contextlib.closing(ex):
        ex.connect()
        prepare(spec, _say, _step_lines(), ex.state_builder())
    return 0


def cmd_status(args) -> int:
    from orchestrator.progress import status_table, sweep_status

    cells, note = sweep_status(args.run_dir)
    done = sum(c.ended for c in cells.values())
    caps = [c.budget for c in cells.values()]
    of = f" of {sum(caps)}" if all(b is not None for b in caps) else ""  # an epoch budget: trials are not fixed
    out = console if console.is_terminal else Console(highlight=False, width=160)  # a pipe: no squeezed columns
    out.print(status_table(cells, f"{Path(args.run_dir).resolve().name}: {done}{of} trials ended", note))
    return 0


def cmd_report(args) -> int:
    from reports.html import build_report

    path = build_report(args.run_dir)
    print(path)
    return 0


def cmd_embed(args) -> int:
    from orchestrator.resolve import cache_dir_for
    from orchestrator.spec import load_spec
    from workloads.embed import embed, featurize, load_backbone, read_smiles, save_npy

    spec = load_spec(args.spec, args.override or ())
    names = [b.name for b in spec.backbones]
    if args.backbone not in names:
        raise ValueError(f"--backbone: '{args.backbone}' is not a backbone of {args.spec}; it has {', '.join(names)}")
    cfg = spec.backbones[names.index(args.backbone)]
    out = Path(args.out)
    if out.suffix != ".npy":
        raise ValueError(f"--out: '{out}' must end in .npy")
    smiles = read_smiles(Path(args.smiles))
    graphs = featurize(smiles, cfg.arch(), where=args.smiles)  # every line parsed before any model work
    backbone, source = load_backbone(cfg, cache_dir_for(spec))
    device = "cuda" if args.device == "auto" and _cuda() else ("cpu" if args.device == "auto" else args.device)
    z = embed(backbone, graphs, batch_size=args.batch_size, device=device)
    save_npy(out, z)
    console.print(f"embed: {len(smiles)} molecules -> {out} (float32 {list(z.shape)}; {args.backbone} from {source})")
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


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
    from orchestrator.executor.registry import DEFAULT_EXECUTOR, EXECUTORS

    s.add_argument("--executor", choices=EXECUTORS.names(), default=DEFAULT_EXECUTOR,
                   help="; ".join(f"{n}: {EXECUTORS.get(n).description}" for n in EXECUTORS.names()))
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

    pr = sub.add_parser("prepare", help="build every cache a spec needs (datasets, LM states, checkpoints) "
                        "ahead of a sweep", description="Featurize SPEC's datasets, build its LM-state caches "
                        "(on Ray Data actors across the cluster, GPUs when resources.use_gpu; in this process on one CPU "
                        "machine) and pretrain its "
                        "backbones, with progress; a sweep then finds them all built.")
    pr.add_argument("spec")
    pr.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                    help="Ray cluster to join (default: $RAY_ADDRESS, else start Ray locally)")
    pr.add_argument("--num-cpus", type=int, default=None, help="CPUs for a local Ray (default: all)")
    pr.add_argument("--executor", choices=EXECUTORS.names(), default=DEFAULT_EXECUTOR,
                    help="the executor whose cache builder to use (inprocess: this process, no Ray)")
    _add_override(pr)
    pr.set_defaults(fn=cmd_prepare)

    em = sub.add_parser("embed", help="write the graph representation of each SMILES in a file (.npy)",
                        description="Embed each SMILES line of FILE with a graph backbone of SPEC (its checkpoint, or "
                        "the project's pretraining, run first if not cached) and write float32 [n, D] to OUT, row i "
                        "for line i: the representation that task heads read (HF Graphormer: last_hidden_state[:, 0]).")
    em.add_argument("spec")
    em.add_argument("--backbone", required=True, help="a backbone name of SPEC")
    em.add_argument("--smiles", required=True, metavar="FILE", help="one SMILES per line")
    em.add_argument("--out", required=True, metavar="FILE.npy", help="where to write the embeddings")
    em.add_argument("--batch-size", type=int, default=64, help="molecules per forward pass (default 64)")
    em.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    _add_override(em)
    em.set_defaults(fn=cmd_embed)

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
