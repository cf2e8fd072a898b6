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


# The ray.io/v1 fields (KubeRay 1.x's RayCluster and RayJob CRDs) these manifests use, as
# strict models: a misspelt or misplaced key is an error. Pod templates are checked against
# Kubernetes' own API models (the `kubernetes` client, generated from the OpenAPI spec).
def _kuberay_models():
    from typing import Literal

    from pydantic import BaseModel, ConfigDict, Field

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", populate_by_name=True)

    class HeadGroup(Strict):
        rayStartParams: dict[str, str] = {}
        template: dict

    class WorkerGroup(Strict):
        groupName: str
        replicas: int = Field(ge=0)
        minReplicas: int = Field(ge=0)
        maxReplicas: int = Field(ge=0)
        rayStartParams: dict[str, str] = {}
        template: dict

    class RayClusterSpec(Strict):
        rayVersion: str
        headGroupSpec: HeadGroup
        workerGroupSpecs: list[WorkerGroup]

    class RayJobSpec(Strict):
        entrypoint: str
        submissionMode: Literal["K8sJobMode", "HTTPMode", "SidecarMode", "InteractiveMode"] = "K8sJobMode"
        shutdownAfterJobFinishes: bool = False
        ttlSecondsAfterFinished: int = Field(default=0, ge=0)
        rayClusterSpec: RayClusterSpec

    class Metadata(Strict):
        name: str

    class RayCluster(Strict):
        apiVersion: Literal["ray.io/v1"]
        kind: Literal["RayCluster"]
        metadata: Metadata
        spec: RayClusterSpec

    class RayJob(Strict):
        apiVersion: Literal["ray.io/v1"]
        kind: Literal["RayJob"]
        metadata: Metadata
        spec: RayJobSpec

    return {"RayCluster": RayCluster, "RayJob": RayJob}


def _pod_template_round_trips(template: dict) -> None:
    """Deserialize into V1PodTemplateSpec and back: any key Kubernetes does not know is dropped
    on the way, so the round trip differs from the original."""
    import json

    from kubernetes.client import ApiClient

    api = ApiClient()
    obj = api.deserialize(json.dumps(template), "V1PodTemplateSpec", "application/json")
    assert api.sanitize_for_serialization(obj) == template


def _cluster_specs(doc: dict) -> list[dict]:
    spec = doc["spec"]["rayClusterSpec"] if doc["kind"] == "RayJob" else doc["spec"]
    return [spec["headGroupSpec"]] + spec["workerGroupSpecs"]


@pytest.mark.parametrize("name", ["kuberay-cluster.yaml", "kuberay-job.yaml"])
def test_kuberay_manifests_use_known_fields_and_ray_version(name):
    import tomllib

    import ray

    models = _kuberay_models()
    docs = [d for d in yaml.safe_load_all((ROOT / "cluster" / name).read_text()) if d]
    kinds = [d["kind"] for d in docs]
    assert ("RayJob" in kinds) == (name == "kuberay-job.yaml")
    for doc in docs:
        if doc["kind"] not in models:
            continue
        models[doc["kind"]].model_validate(doc)
        spec = doc["spec"]["rayClusterSpec"] if doc["kind"] == "RayJob" else doc["spec"]
        assert spec["rayVersion"] == ray.__version__  # the Ray that pyproject.toml resolves here
        for group in _cluster_specs(doc):
            _pod_template_round_trips(group["template"])
            assert group["rayStartParams"].get("dashboard-host", "127.0.0.1") == "127.0.0.1"
        if doc["kind"] == "RayJob":  # a dashboard on the head's localhost is reached from the head pod only
            head = spec["headGroupSpec"]
            assert doc["spec"]["submissionMode"] == "SidecarMode"
            assert head["template"]["spec"]["restartPolicy"] == "Never"  # what SidecarMode requires
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("ray[") and d.endswith(f"=={ray.__version__}") for d in deps)  # pinned: same on every node


def test_kuberay_checks_catch_a_misspelt_key():
    models = _kuberay_models()
    doc = yaml.safe_load((ROOT / "cluster" / "kuberay-job.yaml").read_text())
    bad = yaml.safe_load(yaml.safe_dump(doc))
    bad["spec"]["entryPoint"] = bad["spec"].pop("entrypoint")
    with pytest.raises(Exception, match="entryPoint"):
        models["RayJob"].model_validate(bad)
    template = doc["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]
    template["spec"]["containers"][0]["volumeMount"] = template["spec"]["containers"][0].pop("volumeMounts")
    with pytest.raises(AssertionError):
        _pod_template_round_trips(template)
