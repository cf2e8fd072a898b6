"""What every trial of a sweep reads, built once before any trial starts: featurized
datasets (and 3D conformers), LM-state caches, pretrained backbones.

The sweep calls it between reaching its cluster and starting its slots, with the
executor's cache builder (on Ray: Ray Data actors where they win, see
:meth:`workloads.textgraphs.lm_cache_ray.RayDataBuilder.where`); ``orchestrator prepare SPEC`` calls
it alone, ahead of a sweep. Each long step reports counts, rate and ETA to the given
progress sink (:mod:`workloads.progress`)."""
from __future__ import annotations

import time
from typing import Callable

from orchestrator.resolve import backbone_config, cache_dir_for
from orchestrator.spec import SweepSpec

__all__ = ["prepare", "prepare_backbones"]


def prepare(spec: SweepSpec, say: Callable[[str], None], sink, builder=None) -> None:
    """Build every cache ``spec``'s cells need; ``say`` a line per dataset and backbone.
    ``sink``: where the steps' progress goes; ``builder``: who builds LM-state caches
    (None: this process)."""
    from workloads.progress import reporting
    from workloads.tasks import task_of

    cache = cache_dir_for(spec)
    cells = spec.cells()
    with reporting(sink):
        for di, d in enumerate(spec.datasets):
            t0 = time.perf_counter()
            used = sorted({c.backbone_index for c in cells if c.dataset_index == di})
            line = task_of(d).prepare(d, [backbone_config(spec, i) for i in used], cache, builder=builder)
            say(f"dataset {d.name}: {line} [{time.perf_counter() - t0:.1f}s]")
        prepare_backbones(spec, say)


def prepare_backbones(spec: SweepSpec, say: Callable[[str], None], show: bool = False) -> None:
    """Pretrain (or find cached) each backbone of ``spec`` that is pretrained here; ``say``
    a line per backbone (``show``: with what its checkpoint holds). Its progress goes to the
    sink in force (:func:`workloads.progress.reporting`)."""
    from workloads.backbones import BACKBONES
    from workloads.pretrain import describe, ensure_pretrained

    cache = cache_dir_for(spec)
    for i, b in enumerate(spec.backbones):
        if not BACKBONES.get(b.name).pretrainable:
            say(f"backbone {b.name}: loaded as is (a pretrained language model); nothing to pretrain")
            continue
        path = ensure_pretrained(backbone_config(spec, i), cache, progress=say)
        if path is None:
            say(f"backbone {b.name}: pretrain is null in the spec; trials start from random weights")
            continue
        say(f"backbone {b.name}: checkpoint {path}")
        if show:
            say(describe(path))
