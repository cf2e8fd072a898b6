"""The cluster launcher config passes the checks `ray up` runs on it."""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def ray_up_checks(cfg: dict) -> dict:
    """What `ray up` does to a config before touching any machine: fill defaults
    (the local provider moves min/max_workers onto its worker node type), then
    validate against Ray's schema. Ray has no public API for this; these are the
    functions `ray up` itself calls (ray.autoscaler._private.commands._bootstrap_config)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(cfg)
    validate_config(prepared)
    return prepared


def test_ray_launcher_config_passes_the_checks_ray_up_runs():
    cfg = yaml.safe_load((ROOT / "cluster" / "ray-cluster.yaml").read_text())
    prepared = ray_up_checks(cfg)
    # the local provider has one node type for head and workers; every listed host starts
    (node_type,) = prepared["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == len(cfg["provider"]["worker_ips"])
    starts = cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]
    assert all(c.startswith("~/graph-peft-sweep/.venv/bin/ray ") for c in starts)  # the project's own Ray
    with pytest.raises(Exception, match="min_worker"):  # a misspelt key is refused, as `ray up` would
        ray_up_checks(dict(cfg, min_worker=2))
