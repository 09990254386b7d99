"""The local control plane is real: API server, scheduler, controller-manager, KWOK, LWS.

These tests check the cluster itself (issue 3), not Modelplane: GPU nodes Ready, GPU pods placed by
the real scheduler under node affinity and taints, LeaderWorkerSets run by the real LWS controller,
ServiceAccount kubeconfigs, and hack/up|down on a second cluster of their own.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_helpers import (
    REPO,
    Cluster,
    NotLoopbackError,
    hack_env,
    pods_of,
    require_loopback_kubeconfig,
    run_hack,
    running_pods,
)

FLEET = [d for d in yaml.safe_load_all((REPO / "examples/cluster/nodes.yaml").read_text()) if d]
EU_REGIONS = ["eu-west-1", "eu-central-1"]
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def gpu_deployment(
    name: str, gpus: int, replicas: int = 1, regions: list[str] | None = None
) -> dict[str, Any]:
    """A Deployment whose pods each ask for `gpus` GPUs (and tolerate the GPU taint)."""
    pod_spec: dict[str, Any] = {
        "tolerations": [GPU_TOLERATION],
        "containers": [
            {
                "name": "server",
                "image": "registry.invalid/never-pulled:1",  # KWOK runs no container
                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
            }
        ],
    }
    if regions:
        pod_spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "topology.kubernetes.io/region", "operator": "In", "values": regions}
                            ]
                        }
                    ]
                }
            }
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def test_every_node_of_the_fleet_is_ready_with_its_gpus(cluster: Cluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in cluster.items("nodes")}
    assert len(FLEET) >= 15
    for want in FLEET:
        name = want["metadata"]["name"]
        node = nodes[name]
        ready = [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready == ["True"], name
        assert node["metadata"]["labels"] == node["metadata"]["labels"] | want["metadata"]["labels"], name
        want_gpus = want["status"]["allocatable"].get("nvidia.com/gpu", "0")
        assert node["status"]["allocatable"].get("nvidia.com/gpu", "0") == want_gpus, name
        assert not [
            t for t in node["spec"].get("taints", []) if t["key"].startswith("node.kubernetes.io/")
        ], name
    products = {n["metadata"]["labels"].get("nvidia.com/gpu.product") for n in FLEET} - {None}
    assert len(products) >= 4


def test_gpu_pods_land_on_a_4_gpu_eu_node_through_the_scheduler(cluster: Cluster, namespace: str) -> None:
    cluster.apply(gpu_deployment("eu-gpu", gpus=4, replicas=2, regions=EU_REGIONS), namespace)
    pods = cluster.wait_for(
        lambda: running_pods(cluster, namespace, "app=eu-gpu", 2),
        timeout=60,
        describe="2 Running pods of deployment eu-gpu",
        show=[("deployment", "eu-gpu", namespace)],
        namespace=namespace,
    )
    nodes = {n["metadata"]["name"]: n for n in cluster.items("nodes")}
    for pod in pods:
        node = nodes[pod["spec"]["nodeName"]]
        assert node["metadata"]["labels"]["topology.kubernetes.io/region"] in EU_REGIONS
        assert int(node["status"]["allocatable"]["nvidia.com/gpu"]) >= 4
        # The IP comes from KWOK's made-up pod CIDR; nothing ever connects to it.
        assert pod["status"]["podIP"].startswith("10.244.")
    cluster.wait_condition("deployment", "eu-gpu", namespace, "Available")
    scheduled = [e for e in cluster.events(namespace) if e["reason"] == "Scheduled"]
    assert len(scheduled) == 2
    assert {_reporter(e) for e in scheduled} == {"default-scheduler"}


def _reporter(event: dict[str, Any]) -> str:
    return str(event.get("reportingComponent") or event.get("source", {}).get("component", ""))


def test_a_pod_asking_for_more_gpus_than_any_node_has_stays_pending(cluster: Cluster, namespace: str) -> None:
    most = max(int(n["status"]["allocatable"].get("nvidia.com/gpu", "0")) for n in FLEET)
    cluster.apply(gpu_deployment("too-big", gpus=most * 2), namespace)

    def failed_scheduling() -> dict[str, Any] | None:
        events = [e for e in cluster.events(namespace) if e["reason"] == "FailedScheduling"]
        return events[-1] if events else None

    event = cluster.wait_for(
        failed_scheduling,
        timeout=60,
        describe="a FailedScheduling event",
        show=[("deployment", "too-big", namespace)],
        namespace=namespace,
    )
    assert "Insufficient nvidia.com/gpu" in event["message"]
    (pod,) = pods_of(cluster, namespace, "app=too-big")
    assert pod["status"]["phase"] == "Pending"
    assert "nodeName" not in pod["spec"]


def test_a_gpu_pod_that_does_not_tolerate_the_gpu_taint_stays_pending(
    cluster: Cluster, namespace: str
) -> None:
    deployment = gpu_deployment("no-toleration", gpus=1)
    deployment["spec"]["template"]["spec"]["tolerations"] = []
    cluster.apply(deployment, namespace)
    event = cluster.wait_for(
        lambda: next((e for e in cluster.events(namespace) if e["reason"] == "FailedScheduling"), None),
        timeout=60,
        describe="a FailedScheduling event",
        namespace=namespace,
    )
    assert "untolerated taint" in event["message"]
    assert "nvidia.com/gpu" in event["message"]


def test_a_leaderworkerset_of_size_2_runs_its_leader_and_worker(lws: Cluster, namespace: str) -> None:
    template = {
        "spec": {
            "tolerations": [GPU_TOLERATION],
            "containers": [
                {
                    "name": "vllm",
                    "image": "registry.invalid/never-pulled:1",
                    "resources": {"limits": {"nvidia.com/gpu": "8"}},
                }
            ],
        }
    }
    lws.apply(
        {
            "apiVersion": "leaderworkerset.x-k8s.io/v1",
            "kind": "LeaderWorkerSet",
            "metadata": {"name": "llm"},
            "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": 2, "workerTemplate": template}},
        },
        namespace,
    )
    pods = lws.wait_for(
        lambda: running_pods(lws, namespace, "leaderworkerset.sigs.k8s.io/name=llm", 2),
        timeout=90,
        describe="the leader and worker pods of LeaderWorkerSet llm Running",
        show=[("leaderworkerset", "llm", namespace)],
        namespace=namespace,
    )
    by_index = {p["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/worker-index"]: p for p in pods}
    assert set(by_index) == {"0", "1"}
    assert by_index["0"]["metadata"]["name"] == "llm-0"  # the leader
    assert by_index["1"]["metadata"]["name"] == "llm-0-1"  # its worker
    # The pod webhook (served on 127.0.0.1 by the controller) stamped the leader's address.
    for pod in pods:
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}
        assert env.get("LWS_LEADER_ADDRESS", "").startswith("llm-0.llm."), env
        assert env.get("LWS_GROUP_SIZE") == "2", env
    lws.wait_condition("leaderworkerset", "llm", namespace, "Available", timeout=60)


def test_lws_can_be_absent(no_lws: Cluster) -> None:
    resources = no_lws.kubectl("api-resources", "--api-group=leaderworkerset.x-k8s.io", "-o", "name")
    assert resources.strip() == ""
    webhooks = no_lws.kubectl("get", "mutatingwebhookconfigurations", "-o", "name")
    assert "lws" not in webhooks


def test_a_serviceaccount_kubeconfig_has_exactly_its_rbac(
    cluster: Cluster, namespace: str, sa_kubeconfig: Callable[[str, str], Path]
) -> None:
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    cluster.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace)
    cluster.kubectl(
        "create",
        "rolebinding",
        "reader",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:reader",
        "-n",
        namespace,
    )
    path = sa_kubeconfig(namespace, "reader")
    as_sa = Cluster(run_dir=cluster.run_dir, kubectl_path=cluster.kubectl_path, env=cluster.env)

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return as_sa.kubectl_result(f"--kubeconfig={path}", *args)

    whoami = kubectl("auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    assert (
        json.loads(whoami.stdout)["status"]["userInfo"]["username"]
        == f"system:serviceaccount:{namespace}:reader"
    )
    assert kubectl("get", "pods", "-n", namespace).returncode == 0
    denied = kubectl("get", "nodes")
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()


def test_a_kubeconfig_that_is_not_loopback_is_refused(tmp_path: Path) -> None:
    for server in [
        "https://10.0.0.1:6443",
        "https://example.com:443",
        "http://127.0.0.1:8080",
        "https://127.0.0.1.example.com:6443",
        "https://127.0.0.1",
    ]:
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump({"clusters": [{"name": "x", "cluster": {"server": server}}]}))
        with pytest.raises(NotLoopbackError):
            require_loopback_kubeconfig(path)
    path.write_text(
        yaml.safe_dump({"clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:16443"}}]})
    )
    require_loopback_kubeconfig(path)


def test_the_cluster_listens_and_connects_only_on_127_0_0_1(lws: Cluster) -> None:
    """A snapshot of every TCP socket of every process of the cluster (LWS included)."""
    pids = set(_pids(lws.run_dir).values())
    sockets = subprocess.run(["ss", "-Htanp"], capture_output=True, text=True, check=True).stdout
    seen = 0
    for line in sockets.splitlines():
        owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        if not owners & pids:
            continue
        seen += 1
        state, _, _, local, peer = line.split()[:5]
        assert local.rsplit(":", 1)[0] == "127.0.0.1", line
        if state != "LISTEN":
            assert peer.rsplit(":", 1)[0] == "127.0.0.1", line
    assert seen >= 2 * len(pids)  # each listens, and each talks to etcd or the API server


# ----------------------------------------------------------------- hack/up and hack/down
def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _pids(run_dir: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in (run_dir / "pids").glob("*.pid")}


def _processes_naming(run_dir: Path) -> list[str]:
    """Command lines of every live process that names the run directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"{run_dir}/" in cmdline and proc.name != str(os.getpid()):
            found.append(f"{proc.name}: {cmdline}")
    return found


def test_up_is_idempotent_and_down_leaves_nothing_running(tmp_path: Path) -> None:
    """A second cluster (own ports, own state directory): up, up, restart a dead component,
    down, down, up, down."""
    run_dir = tmp_path / "run"
    ports = _free_ports(6)
    env = hack_env(
        run_dir,
        dict(
            zip(
                ["ETCD_PORT", "ETCD_PEER_PORT", "APISERVER_PORT", "KCM_PORT", "SCHEDULER_PORT", "KWOK_PORT"],
                map(str, ports),
                strict=True,
            )
        ),
    )
    components = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
    try:
        first = run_hack("up", env=env)
        assert "started etcd kube-apiserver kube-controller-manager kube-scheduler kwok" in first
        pids = _pids(run_dir)
        assert set(pids) == components
        require_loopback_kubeconfig(run_dir / "kubeconfig")
        assert f"https://127.0.0.1:{ports[2]}" in (run_dir / "kubeconfig").read_text()

        again = run_hack("up", env=env)
        assert "nothing started" in again
        assert _pids(run_dir) == pids

        os.kill(pids["kwok"], 15)  # a process this test started, by its PID
        deadline = time.monotonic() + 15
        while Path(f"/proc/{pids['kwok']}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        repaired = run_hack("up", env=env)
        assert "started kwok in" in repaired
        after = _pids(run_dir)
        assert after["kwok"] != pids["kwok"]
        assert {k: v for k, v in after.items() if k != "kwok"} == {
            k: v for k, v in pids.items() if k != "kwok"
        }

        run_hack("down", env=env)
        run_hack("down", env=env)  # nothing runs: still fine
        assert _pids(run_dir) == {}
        assert _processes_naming(run_dir) == []
        assert "started etcd" in run_hack("up", env=env)
        run_hack("down", env=env)
        assert _pids(run_dir) == {}
        assert _processes_naming(run_dir) == []
    finally:
        run_hack("down", env=env)
    assert _processes_naming(run_dir) == []
