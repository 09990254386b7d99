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
from mdep_helpers import condition, example, wait_ready
from operator_process import OperatorProcess

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


def test_without_the_lws_api_it_says_what_to_install_and_recovers_when_lws_appears(
    no_lws: Cluster, operator: OperatorProcess, namespace: str, h100: dict[str, dict[str, Any]]
) -> None:
    cluster, ns = no_lws, namespace
    try:
        assert cluster.kubectl("api-resources", "--api-group=leaderworkerset.x-k8s.io", "-o", "name") == ""
        cluster.apply(example("llm-405b-multinode.yaml"), ns)
        singles = ["chat-slm.yaml", "edge-slm.yaml", "custom-architecture.yaml"]
        names = []
        for file in singles:
            obj = example(file)
            names.append(obj["metadata"]["name"])
            cluster.apply(obj, ns)

        md = cluster.wait_condition("mdep", NAME, ns, "Ready", "False", timeout=30)
        md = cluster.wait_for(
            lambda: (
                (o := cluster.get("mdep", NAME, ns))
                and condition(o, "Ready")["reason"] == "MultiNodeUnavailable"
                and o
            ),
            timeout=30,
            describe="Ready=False MultiNodeUnavailable",
            show=[("mdep", NAME, ns)],
        )
        ready = condition(md, "Ready")
        for words in (
            "LeaderWorkerSet",
            "leaderworkerset.x-k8s.io/v1",
            "not installed",
            "install",
            "platform team",
        ):
            assert words in ready["message"], ready["message"]
        assert md["status"]["phase"] == "Failed"
        assert md["status"]["plan"]["nodesPerReplica"] == 2, "it is planned, just not runnable here"
        assert condition(md, "Planned")["status"] == "True"
        generation = md["metadata"]["generation"]
        warnings = cluster.wait_for(
            lambda: [
                e
                for e in cluster.events(ns)
                if e["type"] == "Warning"
                and e["reason"] == "MultiNodeUnavailable"
                and e["involvedObject"]["name"] == NAME
            ],
            timeout=30,
            describe="a MultiNodeUnavailable Warning event",
            namespace=ns,
        )
        assert "LeaderWorkerSet" in warnings[0]["message"]
        # No children of any kind, no pods: nothing half-provisioned.
        assert cluster.get("deployment", NAME, ns) is None
        assert cluster.get("service", NAME, ns) is None
        assert pods_of(cluster, ns, SELECTOR) == []

        # The single-node deployments in the same namespace do not care.
        for name in names:
            wait_ready(cluster, name, ns)

        # LWS arrives: the operator notices the CRD and provisions, nobody touches the deployment.
        cluster.hack("lws-up")
        md = wait_ready(cluster, NAME, ns, timeout=READY_TIMEOUT)
        assert md["metadata"]["generation"] == generation
        assert lws_of(cluster, ns) == [f"leaderworkerset.leaderworkerset.x-k8s.io/{NAME}"]
        by_group = cluster.wait_for(
            lambda: ready_groups(cluster, ns, 1), timeout=30, describe="group 0 running", namespace=ns
        )
        check_group(cluster, by_group["0"], h100, ["eu-west-1", "us-east-1"])
    finally:
        cluster.hack("lws-up")  # the rest of the session needs LeaderWorkerSet


def test_405b_fp8_is_one_single_node_replica_of_8_h100s_without_a_leaderworkerset(
    lws: Cluster, operator: OperatorProcess, namespace: str, h100: dict[str, dict[str, Any]]
) -> None:
    cluster, ns = lws, namespace
    obj = example("llm-405b-fp8.yaml")
    name = obj["metadata"]["name"]
    cluster.apply(obj, ns)
    md = wait_ready(cluster, name, ns, timeout=READY_TIMEOUT)
    plan = md["status"]["plan"]
    assert (plan["nodesPerReplica"], plan["gpusPerReplica"], plan["tensorParallel"]) == (1, 8, 8)
    assert plan["pipelineParallel"] == 1
    assert plan["accelerator"] == "nvidia-h100-80gb"
    assert deployments_of(cluster, ns) == [f"deployment.apps/{name}"]
    assert lws_of(cluster, ns) == []
    (pod,) = cluster.wait_for(
        lambda: running_pods(cluster, ns, f"modelplane.dev/deployment={name}", 1),
        timeout=30,
        describe="the one pod",
        namespace=ns,
    )
    assert pod["spec"]["nodeName"] in h100
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert GROUP_INDEX not in pod["metadata"]["labels"]
    service = cluster.get("service", name, ns)
    assert service is not None
    assert WORKER_INDEX not in service["spec"]["selector"]


def _child_pods(cluster: Cluster, ns: str, kind: str, count: int) -> list[dict[str, Any]] | None:
    """`count` Running+Ready pods of the deployment, all made by `kind` (LWS or Deployment) and none
    of the other kind left."""
    pods = pods_of(cluster, ns, SELECTOR)
    by_lws = [p for p in pods if "leaderworkerset.sigs.k8s.io/name" in p["metadata"]["labels"]]
    by_deployment = [p for p in pods if "pod-template-hash" in p["metadata"]["labels"]]
    mine, other = (by_lws, by_deployment) if kind == "LeaderWorkerSet" else (by_deployment, by_lws)
    if other or len(mine) != len(pods):
        return None
    return running_pods(cluster, ns, SELECTOR, count)


def test_a_precision_change_moves_between_single_and_multi_node_without_orphans(
    lws: Cluster, operator: OperatorProcess, namespace: str, h100: dict[str, dict[str, Any]]
) -> None:
    cluster, ns = lws, namespace
    obj = example("llm-405b-multinode.yaml")
    obj["spec"]["model"]["precision"] = "fp8"
    cluster.apply(obj, ns)
    md = wait_ready(cluster, NAME, ns, timeout=READY_TIMEOUT)
    assert md["status"]["plan"]["nodesPerReplica"] == 1
    cluster.wait_for(
        lambda: _child_pods(cluster, ns, "Deployment", 1), timeout=30, describe="1 pod", namespace=ns
    )
    service_uid = cluster.get("service", NAME, ns)["metadata"]["uid"]  # type: ignore[index]

    for precision, kind, pods, gone in [
        ("bf16", "LeaderWorkerSet", 2, ("deployments", "replicasets")),
        ("fp8", "Deployment", 1, ("leaderworkersets", "statefulsets")),
    ]:
        obj["spec"]["model"]["precision"] = precision
        cluster.apply(obj, ns)
        cluster.wait_for(
            lambda precision=precision: (
                (o := cluster.get("mdep", NAME, ns))
                and o["status"]["observedGeneration"] == o["metadata"]["generation"]
                and o["status"]["plan"]["precision"] == precision
                and condition(o, "Ready")["status"] == "True"
            ),
            timeout=READY_TIMEOUT,
            describe=f"Ready on the {precision} plan",
            show=[("mdep", NAME, ns)],
        )
        md = cluster.get("mdep", NAME, ns)
        assert md is not None
        assert md["status"]["plan"]["nodesPerReplica"] == pods
        assert condition(md, "Planned")["reason"] == "Planned", (
            "a new precision is a new plan, not a kept one"
        )
        # The new child runs; the old one and everything it made are gone.
        cluster.wait_for(
            lambda kind=kind, pods=pods: _child_pods(cluster, ns, kind, pods),
            timeout=60,
            describe=f"{pods} pod(s) of the {kind} and none of the old child",
            namespace=ns,
        )
        for resource in gone:
            cluster.wait_for(
                lambda resource=resource: cluster.kubectl("get", resource, "-n", ns, "-o", "name") == "",
                timeout=30,
                describe=f"no {resource} left",
                namespace=ns,
            )
        if kind == "LeaderWorkerSet":
            assert lws_of(cluster, ns) == [f"leaderworkerset.leaderworkerset.x-k8s.io/{NAME}"]
        else:
            assert deployments_of(cluster, ns) == [f"deployment.apps/{NAME}"]
        old = "Deployment" if kind == "LeaderWorkerSet" else "LeaderWorkerSet"
        assert any(
            e["reason"] == "Deleted" and f"{old} {NAME}" in e["message"] for e in cluster.events(ns)
        ), f"an event says the {old} was deleted"
        # The Service stays (same object) and follows: leaders only across nodes, every pod on one.
        service = cluster.get("service", NAME, ns)
        assert service is not None
        assert service["metadata"]["uid"] == service_uid
        assert (WORKER_INDEX in service["spec"]["selector"]) == (kind == "LeaderWorkerSet")


def test_three_groups_where_one_fits_run_one_and_name_the_next_instead_of_deadlocking(
    lws: Cluster,
    operator: OperatorProcess,
    namespace_factory: Any,
    eu_policy: tuple[str, dict[str, str]],
    h100: dict[str, dict[str, Any]],
) -> None:
    """The EU has one pair of H100 nodes in one zone: room for one group. Without gang scheduling,
    three groups created at once let two leaders take a node each and nothing serves; the operator
    admits a group only once the groups before it are placed, so group 0 runs and group 1 waits."""
    cluster = lws
    _, binding = eu_policy
    ns = namespace_factory(labels=binding)
    obj = example("llm-405b-multinode.yaml")
    obj["spec"]["replicas"] = 3
    cluster.apply(obj, ns)
    md = cluster.wait_for(
        lambda: (
            (o := cluster.get("mdep", NAME, ns))
            and condition(o, "Scheduled").get("status") == "False"
            and (o["status"].get("readyReplicas") == 1)
            and o
        ),
        timeout=60,
        describe="group 0 ready and Scheduled=False",
        show=[("mdep", NAME, ns)],
    )
    scheduled = condition(md, "Scheduled")
    assert f"group {NAME}-1 " in scheduled["message"], scheduled["message"]
    assert md["status"]["readySummary"] == "1/3"
    assert md["status"]["phase"] == "Pending"
    by_group = groups(pods_of(cluster, ns, SELECTOR))
    assert sorted(by_group) == ["0", "1"], "group 2 is not created while group 1 waits"
    check_group(cluster, by_group["0"], h100, EU_REGIONS)
    assert all(not p["spec"].get("nodeName") for p in by_group["1"])
    assert cluster.get("leaderworkerset", NAME, ns)["spec"]["replicas"] == 2  # type: ignore[index]
