"""A real multi-node Ray cluster on this machine: a head and a worker started as
separate `ray start` processes on loopback, each with its own custom resource and
one CPU, so the sweep's two slots must land on different nodes. The driver joins it
with `--address` as a user would, and the records say which node ran each trial."""
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from runfolder import RunDir
from tests.conftest import tiny_spec

pytestmark = pytest.mark.e2e
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Every process of the cluster and the driver share one token (Ray's token authentication,
# as cluster/README.md sets it up); the GCS refuses requests without it.
ENV = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {
    "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats", *args], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, env=ENV, start_new_session=True)


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)  # --block: the node's processes go with this group
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


@pytest.fixture
def two_node_cluster(tmp_path):
    port = _free_port()
    head = _start(["--head", f"--port={port}", "--num-cpus=1",
                   "--include-dashboard=false", '--resources={"head_node": 1}',
                   f"--temp-dir={tempfile.mkdtemp(prefix='ray', dir='/tmp')}"],  # socket paths must stay short
                  tmp_path / "head.log")
    worker = None
    try:
        address = f"127.0.0.1:{port}"
        _wait_for_nodes(address, 1, head)
        worker = _start([f"--address={address}", "--num-cpus=1",
                         '--resources={"worker_node": 1}'], tmp_path / "worker.log")
        nodes = _wait_for_nodes(address, 2, worker)
        yield address, nodes
    finally:
        for p in (worker, head):
            if p is not None:
                _stop(p)


def _wait_for_nodes(address: str, n: int, proc: subprocess.Popen, timeout: float = 120) -> dict:
    """Node id -> its custom resources, once ``n`` nodes are alive (asked from a fresh process)."""
    probe = ("import json, ray; ray.init(address=%r, log_to_driver=False); print(json.dumps({x['NodeID']: "
             "[k for k in x['Resources'] if k.endswith('_node')] for x in ray.nodes() if x['Alive']}))" % address)
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}")
        try:
            out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=ENV)
        except subprocess.TimeoutExpired:
            continue
        if out.returncode == 0:
            nodes = json.loads(out.stdout.strip().splitlines()[-1])
            if len(nodes) >= n:
                return nodes
        time.sleep(2)
    raise TimeoutError(f"{n} Ray nodes did not come up at {address}")


def test_sweep_on_a_two_node_cluster_uses_both_nodes(tmp_path, cache_dir, two_node_cluster):
    address, nodes = two_node_cluster
    d = tiny_spec(tmp_path, cache_dir, {"linear_probe": {"search": {"lr": {
        "type": "float", "low": 0.001, "high": 0.01, "log": True}}}}, name="multi",
        train={"epochs": 1, "batch_size": 32}, budget={"trials_per_cell": 4},
        resources={"num_workers": 1, "cpus_per_worker": 1, "max_concurrent_trials": 2})
    spec = tmp_path / "multi.yaml"
    spec.write_text(yaml.safe_dump(d))
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "sweep", str(spec), "--address", address],
                         capture_output=True, text=True, timeout=600, env=ENV)
    assert out.returncode == 0, out.stderr[-3000:]
    recs = RunDir(tmp_path / "runs" / "multi").trial_records()
    assert len(recs) == 4 and all(r.status == "ok" for r in recs)
    ran_on = {r.executor.node_id for r in recs}
    assert ran_on == set(nodes)  # both nodes ran trials
    assert sorted(sum((nodes[n] for n in ran_on), [])) == ["head_node", "worker_node"]
    page = (tmp_path / "runs" / "multi" / "report.html").read_text()
    assert all(n[:8] in page for n in nodes)  # the overview lists both nodes


def test_the_lm_cache_is_pooled_by_ray_data_actors_on_both_nodes(tmp_path, two_node_cluster):
    """The LM-state cache across the cluster: one Ray Data actor per node's CPU, both writing
    shards into the one cache folder (shared storage; one host here, so it is), the states
    equal to the in-process builder's. The size threshold is lifted: 200 texts would pool in
    the driver otherwise."""
    address, nodes = two_node_cluster
    script = f"""
import json, numpy as np, ray
from workloads.textgraphs import load_wordnet_subset
from workloads.textgraphs.lm_cache import cached_states
from workloads.textgraphs.lm_cache_ray import RayDataBuilder
ray.init(address={address!r}, log_to_driver=False)
texts = load_wordnet_subset().texts[:200]
lines = []
a, info = cached_states(texts, [0, 6], {str(tmp_path / "ray")!r}, max_length=32,
                        builder=RayDataBuilder(shard_nodes=50, min_cpu_nodes=0),
                        progress=lambda state, final: lines.append(state.line()))
b, _ = cached_states(texts, [0, 6], {str(tmp_path / "local")!r}, max_length=32)
print(json.dumps({{"builder": info["builder"], "diff": float(np.abs(a - b).max()), "line": lines[-1]}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=ENV)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["builder"] == "ray-data" and got["diff"] < 1e-5
    assert "200/200 nodes (100%)" in got["line"] and "[2 Ray Data actors, on 2 Ray nodes]" in got["line"], got
