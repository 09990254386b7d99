"""Sharded LLMs across nodes on the real local control plane with the real LeaderWorkerSet
controller (issue 5's "must show"): one replica = one LWS group of pods, one per 8-GPU node, in one
zone, inside the residency regions; the Service selects the leaders only; scaling moves whole
groups; without the LWS API the deployment says what to install and recovers by itself.

KWOK marks the pods Running and Ready; no Ray, no vLLM runs, and nothing connects to a pod IP.
The H100 fleet: two 8-GPU nodes in zone eu-west-1c, two in us-east-1d (examples/cluster/nodes.yaml).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_helpers import Cluster, pods_of, running_pods
from operator_process import OperatorProcess
from test_operator import condition, example, wait_ready

READY_TIMEOUT = 90
H100_PRODUCT = "NVIDIA-H100-80GB-HBM3"
GROUP_INDEX = "leaderworkerset.sigs.k8s.io/group-index"
WORKER_INDEX = "leaderworkerset.sigs.k8s.io/worker-index"
REGION = "topology.kubernetes.io/region"
ZONE = "topology.kubernetes.io/zone"
EU_REGIONS = ["eu-west-1", "eu-central-1"]
NAME = "llama-405b"  # examples/llm-405b-multinode.yaml
SELECTOR = f"modelplane.dev/deployment={NAME}"


# ----------------------------------------------------------------------------- helpers


def h100_nodes(cluster: Cluster) -> dict[str, dict[str, Any]]:
    return {
        n["metadata"]["name"]: n
        for n in cluster.items("nodes", selector=f"nvidia.com/gpu.product={H100_PRODUCT}")
    }


def pods_on(cluster: Cluster, nodes: set[str]) -> list[str]:
    """Pods (any namespace, any phase) bound to one of `nodes` or asking for them while Pending."""
    return [
        f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        for p in cluster.items("pods")
        if p["spec"].get("nodeName") in nodes
    ]


@pytest.fixture
def h100(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """The H100 nodes, once no pod of an earlier test holds them (namespaces are deleted lazily)."""
    nodes = h100_nodes(cluster)
    assert len(nodes) == 4, sorted(nodes)
    cluster.wait_for(
        lambda: not pods_on(cluster, set(nodes)) or None,
        timeout=90,
        describe="the H100 nodes free of pods from earlier tests",
    )
    return nodes


@pytest.fixture
def eu_policy(cluster: Cluster) -> Iterator[tuple[str, dict[str, str]]]:
    """A ResidencyPolicy of our own (EU regions) and the namespace labels that bind a namespace to it."""
    name = f"e2e-eu-{secrets.token_hex(3)}"
    binding = {"modelplane.dev/residency": name}
    cluster.apply(
        {
            "apiVersion": "modelplane.dev/v1alpha1",
            "kind": "ResidencyPolicy",
            "metadata": {"name": name},
            "spec": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": REGION, "operator": "In", "values": EU_REGIONS}]}
                ],
                "namespaceSelector": {"matchLabels": binding},
            },
        }
    )
    yield name, binding
    cluster.kubectl("delete", "residencypolicy", name, "--ignore-not-found", "--wait=false")


def groups(pods: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Pods by their LWS group index."""
    out: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        out.setdefault(pod["metadata"]["labels"][GROUP_INDEX], []).append(pod)
    return out


def check_group(
    cluster: Cluster, pods: list[dict[str, Any]], nodes: dict[str, dict[str, Any]], regions: list[str]
) -> str:
    """A group is a leader and a worker on two distinct 8-GPU H100 nodes of one zone, each pod
    asking for all 8 GPUs, in `regions`. Returns the zone."""
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    assert sorted(p["metadata"]["labels"][WORKER_INDEX] for p in pods) == ["0", "1"]
    placed = [p["spec"]["nodeName"] for p in pods]
    assert len(set(placed)) == 2, f"one pod per node: {placed}"
    zones = set()
    for pod, node_name in zip(pods, placed, strict=True):
        assert node_name in nodes, f"{pod['metadata']['name']} on {node_name}, not an H100 node"
        labels = nodes[node_name]["metadata"]["labels"]
        assert labels["nvidia.com/gpu.count"] == "8"
        assert labels[REGION] in regions
        zones.add(labels[ZONE])
        container = pod["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert container["resources"]["requests"]["nvidia.com/gpu"] == "8"
    assert len(zones) == 1, f"a group stays in one zone: {zones}"
    return zones.pop()


def leader_endpoints(cluster: Cluster, namespace: str, service: str) -> list[str] | None:
    """Names of the pods behind the Service's EndpointSlices (ready endpoints), sorted."""
    slices = cluster.items("endpointslices", namespace, selector=f"kubernetes.io/service-name={service}")
    names = [
        ep["targetRef"]["name"]
        for s in slices
        for ep in s.get("endpoints") or []
        if (ep.get("conditions") or {}).get("ready") and ep.get("targetRef")
    ]
    return sorted(names)


def ready_groups(cluster: Cluster, namespace: str, count: int) -> dict[str, list[dict[str, Any]]] | None:
    """`count` whole groups (2 Running+Ready pods each), and the ModelDeployment counting them."""
    pods = running_pods(cluster, namespace, SELECTOR, 2 * count)
    md = cluster.get("mdep", NAME, namespace)
    if pods is None or md is None or (md.get("status") or {}).get("readyReplicas") != count:
        return None
    return groups(pods)


def uids(pods: list[dict[str, Any]]) -> list[str]:
    return sorted(p["metadata"]["uid"] for p in pods)


def lws_of(cluster: Cluster, namespace: str) -> list[str]:
    out = cluster.kubectl("get", "leaderworkersets", "-n", namespace, "-o", "name")
    return out.split()


def deployments_of(cluster: Cluster, namespace: str) -> list[str]:
    return cluster.kubectl("get", "deployments", "-n", namespace, "-o", "name").split()


# ----------------------------------------------------------------------------- tests


def test_405b_bf16_runs_as_one_group_on_two_h100_nodes_of_one_zone_inside_its_residency(
    lws: Cluster,
    operator: OperatorProcess,
    namespace_factory: Any,
    eu_policy: tuple[str, dict[str, str]],
    h100: dict[str, dict[str, Any]],
) -> None:
    cluster = lws
    policy, binding = eu_policy
    ns = namespace_factory(labels=binding)
    cluster.apply(example("llm-405b-multinode.yaml"), ns)
    md = wait_ready(cluster, NAME, ns, timeout=READY_TIMEOUT)
    status = md["status"]
    plan = status["plan"]
    assert (plan["nodesPerReplica"], plan["tensorParallel"], plan["pipelineParallel"]) == (2, 8, 2)
    assert plan["gpusPerReplica"] == 16
    assert plan["accelerator"] == "nvidia-h100-80gb"
    assert set(plan["regions"]) <= set(EU_REGIONS), plan["regions"]
    assert status["residencyPolicy"] == policy
    assert condition(md, "ResidencySatisfied")["status"] == "True"
    assert condition(md, "Scheduled")["status"] == "True"
    assert (status["readyReplicas"], status["readySummary"], status["phase"]) == (1, "1/1", "Ready")

    # The child is a LeaderWorkerSet of groups of 2; no Deployment.
    assert lws_of(cluster, ns) == [f"leaderworkerset.leaderworkerset.x-k8s.io/{NAME}"]
    assert deployments_of(cluster, ns) == []
    child = cluster.get("leaderworkerset", NAME, ns)
    assert child is not None
    assert child["spec"]["replicas"] == 1
    assert child["spec"]["leaderWorkerTemplate"]["size"] == 2
    assert child["status"]["readyReplicas"] == 1

    by_group = ready_groups(cluster, ns, 1)
    assert by_group is not None
    assert list(by_group) == ["0"]
    zone = check_group(cluster, by_group["0"], h100, EU_REGIONS)
    assert zone.startswith("eu-west-1")

    # The Service's endpoints are the leader only (worker-index 0), never the worker.
    leader = next(p for p in by_group["0"] if p["metadata"]["labels"][WORKER_INDEX] == "0")
    endpoints = cluster.wait_for(
        lambda: leader_endpoints(cluster, ns, NAME),
        timeout=30,
        describe=f"EndpointSlices of Service {NAME}",
        namespace=ns,
    )
    assert endpoints == [leader["metadata"]["name"]] == [NAME + "-0"]
    service = cluster.get("service", NAME, ns)
    assert service is not None
    assert service["spec"]["selector"][WORKER_INDEX] == "0"


def test_scaling_adds_and_removes_whole_groups_and_names_the_group_that_cannot_be_placed(
    lws: Cluster, operator: OperatorProcess, namespace: str, h100: dict[str, dict[str, Any]]
) -> None:
    cluster, ns = lws, namespace
    cluster.apply(example("llm-405b-multinode.yaml"), ns)
    wait_ready(cluster, NAME, ns, timeout=READY_TIMEOUT)
    first = cluster.wait_for(
        lambda: ready_groups(cluster, ns, 1), timeout=30, describe="group 0", namespace=ns
    )
    zone0 = check_group(cluster, first["0"], h100, ["eu-west-1", "us-east-1"])

    # 1 -> 2: a whole second group (2 more pods) in the other zone with two free H100 nodes.
    cluster.kubectl("scale", "mdep", NAME, "-n", ns, "--replicas=2")
    two = cluster.wait_for(
        lambda: ready_groups(cluster, ns, 2), timeout=60, describe="2 ready groups", namespace=ns
    )
    assert sorted(two) == ["0", "1"]
    assert uids(two["0"]) == uids(first["0"]), "group 0 was left alone"
    zone1 = check_group(cluster, two["1"], h100, ["eu-west-1", "us-east-1"])
    assert zone1 != zone0
    md = wait_ready(cluster, NAME, ns)
    assert md["status"]["readySummary"] == "2/2"
    assert cluster.get("leaderworkerset", NAME, ns)["spec"]["replicas"] == 2  # type: ignore[index]
    assert cluster.wait_for(
        lambda: (e := leader_endpoints(cluster, ns, NAME)) and len(e) == 2 and e,
        timeout=30,
        describe="two leaders behind the Service",
        namespace=ns,
    ) == [f"{NAME}-0", f"{NAME}-1"]

    # 2 -> 3: no zone has two free H100 nodes left, so group 2 waits, and the condition names it.
    cluster.kubectl("scale", "mdep", NAME, "-n", ns, "--replicas=3")
    md = cluster.wait_condition("mdep", NAME, ns, "Scheduled", "False", timeout=60)
    scheduled = condition(md, "Scheduled")
    assert scheduled["reason"] == "Unschedulable"
    assert f"group {NAME}-2 " in scheduled["message"], scheduled["message"]
    assert f"{NAME}-0" not in scheduled["message"]
    assert f"{NAME}-1 " not in scheduled["message"]
    pending = [p for p in pods_of(cluster, ns, SELECTOR) if not p["spec"].get("nodeName")]
    assert pending
    assert {p["metadata"]["labels"][GROUP_INDEX] for p in pending} == {"2"}
    md = cluster.wait_for(
        lambda: (o := cluster.get("mdep", NAME, ns)) and o["status"]["phase"] == "Pending" and o,
        timeout=30,
        describe="phase Pending",
        namespace=ns,
    )
    assert condition(md, "Ready")["status"] == "False"
    assert md["status"]["readyReplicas"] == 2, "the two placed groups still count"

    # 3 -> 1: whole groups go (both pods of groups 1 and 2); group 0 stays.
    cluster.kubectl("scale", "mdep", NAME, "-n", ns, "--replicas=1")
    one = cluster.wait_for(
        lambda: (g := ready_groups(cluster, ns, 1)) and len(pods_of(cluster, ns, SELECTOR)) == 2 and g,
        timeout=60,
        describe="only group 0 left",
        namespace=ns,
    )
    assert list(one) == ["0"]
    assert uids(one["0"]) == uids(first["0"])
    md = wait_ready(cluster, NAME, ns)
    assert md["status"]["readySummary"] == "1/1"
    assert condition(md, "Scheduled")["status"] == "True"
