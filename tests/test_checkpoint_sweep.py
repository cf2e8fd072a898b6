"""A sweep through the driver on a checkpoint backbone: every graph method and plug-in, and
the reference baselines beside them, on an HF Graphormer fixture (made by transformers
4.40.2, tests/fixtures/hf_graphormer), one epoch on a FreeSolv slice, through Ray."""
from pathlib import Path

import pytest
import ray

from orchestrator.spec import parse_spec
from orchestrator.sweep import Sweep

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "hf_graphormer" / "prenorm_multihop"

METHODS = {
    "full": {}, "linear_probe": {}, "bitfit": {},
    "lora": {"params": {"r": 2}},
    "adapter": {"params": {"bottleneck": 4, "placement": "houlsby"}},
    "adapter_pfeiffer": {"method": "adapter", "params": {"bottleneck": 4, "placement": "pfeiffer"}},
    "g_adapter": {"params": {"bottleneck": 4}},
    "gpf": {}, "gpf_plus": {"params": {"num_basis": 2}}, "prompt_tokens": {"params": {"num_tokens": 2}},
    "g_adapter_proximal": {"method": "g_adapter", "params": {"bottleneck": 4}, "plugins": {"proximal": {"weight": 0.1}}},
    "lora_gist": {"method": "lora", "params": {"r": 2}, "plugins": {"gist": {}}},
    "g_adapter_proximal_gist": {"method": "g_adapter", "params": {"bottleneck": 4},
                                "plugins": {"proximal": {"weight": 0.1}, "gist": {}}},
    "full_random_init": {"method": "full", "random_init": True},
    "constant": {}, "ecfp_rf": {},
}


@pytest.fixture(scope="module")
def local_ray():
    yield
    if ray.is_initialized():
        ray.shutdown()


def test_every_method_and_plugin_trains_on_a_checkpoint(tmp_path, cache_dir, local_ray):
    from rich.console import Console

    spec = parse_spec({
        "name": "ckpt",
        "datasets": [{"name": "freesolv", "max_molecules": 100}],
        "backbones": [{"name": "graphormer", "checkpoint": {"format": "hf_graphormer", "path": str(FIXTURE),
                                                            "spatial_pos_max": 20}}],
        "train": {"epochs": 1, "batch_size": 32},
        "profile": {"latency_batch_size": 8, "latency_warmup": 1, "latency_repeats": 2},
        "methods": METHODS,
        "budget": {"trials_per_cell": 1, "n_startup_trials": 1, "seeds": 1},
        "resources": {"num_workers": 1, "cpus_per_worker": 1, "max_concurrent_trials": 2},
        "storage": {"root": str(tmp_path / "runs"), "cache_dir": str(cache_dir)},
    })
    with open(tmp_path / "log.txt", "w") as log:
        run = Sweep(spec, console=Console(file=log, width=200)).execute(num_cpus=2)
    records = {r.cell.split("__")[-1]: r for r in run.trial_records()}
    assert set(records) == set(METHODS)
    bad = {k: (r.status, r.error) for k, r in records.items() if r.status != "ok"}
    assert not bad, bad
    trained = {k: r for k, r in records.items() if k not in ("constant", "ecfp_rf")}
    for name, r in trained.items():
        assert r.config["backbone"]["checkpoint"]["path"] == str(FIXTURE)
        if name == "full_random_init":
            assert r.pretrained == {"checkpoint": None}  # the same architecture, not the weights
        else:
            assert r.pretrained["format"] == "hf_graphormer" and r.pretrained["checkpoint"] == str(FIXTURE)
    full = trained["full"].trainable_params
    assert all(r.trainable_params < full for k, r in trained.items() if not k.startswith("full"))
    # the checkpoint is read once per worker process and reused after (by content hash); the
    # counters are the process's totals when the record was made
    reads: dict = {}
    for r in trained.values():
        reads.setdefault(r.process.pid, []).append(r.process.loads["checkpoint_reads"])
    assert all(max(v) == 1 for v in reads.values()), reads
    assert sum(r.process.loads["checkpoint_reuses"] for r in trained.values()) > 0
