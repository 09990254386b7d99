"""Data residency on the real local control plane and the four-region fleet (issue 6's "must show").

Every ResidencyPolicy here is cluster-scoped, so each test names its own after its namespace and
deletes it afterwards. Where a pod runs is checked against the Node it was bound to: its
`topology.kubernetes.io/region` label, never the operator's own account of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
import yaml
from e2e_helpers import REPO, Cluster, pods_of, running_pods
from mdep_helpers import condition, mdep, wait_quiet, warning_events
from operator_process import OperatorProcess

REGION = "topology.kubernetes.io/region"
PRODUCT = "nvidia.com/gpu.product"
GPU = "nvidia.com/gpu"
EU = ["eu-west-1", "eu-central-1"]
US = ["us-east-1"]
APAC = ["ap-southeast-1"]
BINDING_LABEL = "modelplane.dev/residency"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
SMALL_MODEL = "meta-llama/Llama-3.2-1B-Instruct"
READY_TIMEOUT = 90

NamespaceFactory = Callable[..., str]
PolicyFactory = Callable[..., str]


# ----------------------------------------------------------------------------- the fleet


def fleet() -> list[dict[str, Any]]:
    """The Node objects of the simulated fleet, as hack/nodes creates them."""
    docs = yaml.safe_load_all((REPO / "examples" / "cluster" / "nodes.yaml").read_text())
    return [d for d in docs if d and d.get("kind") == "Node"]


def gpus(regions: Sequence[str], product: str) -> int:
    """How many GPUs of `product` the fleet has in `regions`."""
    return sum(
        int(n["status"]["capacity"].get(GPU, 0))
        for n in fleet()
        if n["metadata"]["labels"].get(REGION) in regions and n["metadata"]["labels"].get(PRODUCT) == product
    )


# ----------------------------------------------------------------------------- objects


def small(replicas: int = 1, residency: str | None = None, **resources: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": {"name": SMALL_MODEL}, "replicas": replicas}
    if resources:
        spec["resources"] = resources
    if residency is not None:
        spec["placement"] = {"residency": residency}
    return spec


def policy_object(name: str, regions: Sequence[str], binds: Mapping[str, str] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "description": f"e2e: only {', '.join(regions)}",
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": REGION, "operator": "In", "values": list(regions)}]}
        ],
    }
    if binds is not None:
        spec["namespaceSelector"] = {"matchLabels": dict(binds)}
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ResidencyPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


@pytest.fixture
def policy(cluster: Cluster) -> Iterator[PolicyFactory]:
    """make(name, regions, binds=None) -> name: a ResidencyPolicy over `regions` whose
    namespaceSelector matches the labels `binds` (none: it binds no namespace); deleted after the test."""
    made: list[str] = []

    def make(name: str, regions: Sequence[str], binds: Mapping[str, str] | None = None) -> str:
        cluster.apply(policy_object(name, regions, binds))
        if name not in made:
            made.append(name)
        return name

    yield make
    for name in made:
        cluster.kubectl("delete", "residencypolicy", name, "--ignore-not-found", "--wait=false")


@pytest.fixture
def eu_namespace(namespace_factory: NamespaceFactory, policy: PolicyFactory) -> tuple[str, str]:
    """(namespace, policy): a namespace labelled residency=eu and an EU policy binding that label."""
    ns = namespace_factory(labels={BINDING_LABEL: "eu"})
    return ns, policy(f"eu-{ns}", EU, {BINDING_LABEL: "eu"})


# ----------------------------------------------------------------------------- reading state


def wait_reason(
    cluster: Cluster, name: str, ns: str, type_: str, status: str, reason: str, timeout: float = 60
) -> dict[str, Any]:
    """Wait until the ModelDeployment's condition `type_` has `status` and `reason`."""

    def met() -> dict[str, Any] | None:
        md = cluster.get("mdep", name, ns)
        cond = condition(md, type_)
        return md if cond.get("status") == status and cond.get("reason") == reason else None

    return cluster.wait_for(
        met, timeout=timeout, describe=f"mdep/{name} {type_}={status} ({reason})", show=[("mdep", name, ns)]
    )


def selector(name: str) -> str:
    return f"modelplane.dev/deployment={name}"


def node_regions(cluster: Cluster) -> dict[str, str]:
    """Node name -> its region label, as the API server has it."""
    return {n["metadata"]["name"]: n["metadata"]["labels"].get(REGION, "") for n in cluster.items("nodes")}


def regions_of(cluster: Cluster, pods: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Pod name -> the region of the node it is bound to ("" while unbound)."""
    where = node_regions(cluster)
    return {p["metadata"]["name"]: where.get(p["spec"].get("nodeName") or "", "") for p in pods}


def required_terms(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    node_affinity = ((pod["spec"].get("affinity") or {}).get("nodeAffinity")) or {}
    return list((node_affinity.get(REQUIRED) or {}).get("nodeSelectorTerms") or [])


def assert_required_region_affinity(pod: Mapping[str, Any], regions: Sequence[str]) -> None:
    """Every ORed term of the pod's required node affinity carries the policy's region requirement,
    and no preferred term mentions regions: the policy is required, never preferred only."""
    terms = required_terms(pod)
    assert terms, f"pod {pod['metadata']['name']} has no required node affinity"
    want = {"key": REGION, "operator": "In", "values": sorted(regions)}
    for term in terms:
        exprs = [{**e, "values": sorted(e.get("values") or [])} for e in term.get("matchExpressions") or []]
        assert want in exprs, f"term {term} lacks the policy's {want}"
    node_affinity = pod["spec"]["affinity"]["nodeAffinity"]
    for pref in node_affinity.get(PREFERRED) or []:
        keys = [e["key"] for e in pref["preference"].get("matchExpressions") or []]
        assert REGION not in keys, f"a preferred term constrains the region: {pref}"


def owned_children(cluster: Cluster, ns: str, name: str) -> list[str]:
    """The kinds/names of anything the operator made for `name` in `ns` (workloads, Services, pods)."""
    found = []
    for kind in ("deployments", "services", "pods"):
        found += [f"{kind}/{o['metadata']['name']}" for o in cluster.items(kind, ns, selector(name))]
    return found


def all_running_in(
    cluster: Cluster, ns: str, name: str, count: int, regions: Sequence[str]
) -> list[dict[str, Any]] | None:
    """Exactly `count` pods of `name`, all Running and Ready on nodes in `regions`, none elsewhere."""
    pods = running_pods(cluster, ns, selector(name), count)
    if pods is None:
        return None
    return pods if all(r in regions for r in regions_of(cluster, pods).values()) else None


# ----------------------------------------------------------------------------- tests


def test_an_eu_bound_namespace_runs_only_on_eu_nodes_under_a_required_affinity(
    cluster: Cluster, operator: OperatorProcess, eu_namespace: tuple[str, str]
) -> None:
    ns, eu = eu_namespace
    cluster.apply(mdep("claims", small(replicas=3)), ns)
    md = cluster.wait_condition("mdep", "claims", ns, "Ready", "True", timeout=READY_TIMEOUT)
    residency = condition(md, "ResidencySatisfied")
    assert (residency["status"], residency["reason"]) == ("True", "NamespaceBound")
    assert eu in residency["message"]
    assert md["status"]["residencyPolicy"] == eu
    assert md["status"]["plan"]["regions"] == sorted(EU)
    pods = cluster.wait_for(
        lambda: running_pods(cluster, ns, selector("claims"), 3),
        timeout=30,
        describe="3 running pods",
        namespace=ns,
    )
    where = regions_of(cluster, pods)
    assert all(region in EU for region in where.values()), where
    for pod in pods:
        assert_required_region_affinity(pod, EU)
    # The Deployment's template is what every future pod is made from: it carries the policy too.
    template = cluster.get("deployment", "claims", ns)["spec"]["template"]  # type: ignore[index]
    assert_required_region_affinity(template, EU)
    # kubectl get -o wide: the REGIONS column shows where the policy lets it run.
    header, row = cluster.kubectl("get", "mdep", "claims", "-n", ns, "-o", "wide").splitlines()[:2]
    assert "REGIONS" in header
    assert ",".join(sorted(EU)) in row.split()


def test_with_eu_gpus_exhausted_the_extra_replicas_stay_pending_in_the_eu(
    cluster: Cluster, operator: OperatorProcess, eu_namespace: tuple[str, str]
) -> None:
    ns, _ = eu_namespace
    eu_l4 = gpus(EU, "NVIDIA-L4")
    assert eu_l4 == 11, "examples/cluster/nodes.yaml changed: recount"
    # More L4 replicas than the EU has L4 GPUs, while the US and APAC have free L4s.
    assert gpus(US + APAC, "NVIDIA-L4") > 0
    replicas = eu_l4 + 3
    cluster.apply(mdep("flood", small(replicas=replicas, accelerators=["nvidia-l4"])), ns)
    md = wait_reason(cluster, "flood", ns, "Scheduled", "False", "Unschedulable", timeout=60)
    assert "cannot be placed" in condition(md, "Scheduled")["message"]
    assert "nodes are available" in condition(md, "Scheduled")["message"]  # the scheduler's own words
    # Let the scheduler place all it can: the bound pods then stop changing.
    bound: dict[str, str] = {}

    def settled() -> dict[str, str] | None:
        nonlocal bound
        pods = pods_of(cluster, ns, selector("flood"))
        now = {n: r for n, r in regions_of(cluster, pods).items() if r}
        stable = len(pods) == replicas and now == bound and len(now) >= 1
        bound = now
        return now if stable else None

    cluster.wait_for(settled, timeout=30, describe="the scheduler done placing", namespace=ns, interval=2.0)
    pods = pods_of(cluster, ns, selector("flood"))
    where = regions_of(cluster, pods)
    placed = {n: r for n, r in where.items() if r}
    pending = [p for p in pods if not p["spec"].get("nodeName")]
    assert all(region in EU for region in placed.values()), f"a pod left the EU: {placed}"
    assert len(placed) <= eu_l4
    assert len(pending) >= replicas - eu_l4, "the extra replicas wait; nothing spills over"
    for pod in pending:
        assert pod["status"]["phase"] == "Pending"
        assert_required_region_affinity(pod, EU)
    # The status catches up with the scheduler: phase Pending, and as many stuck pods as there are.
    md = cluster.wait_for(
        lambda: (
            (o := cluster.get("mdep", "flood", ns))
            and o["status"].get("phase") == "Pending"
            and condition(o, "Scheduled")["message"].startswith(f"{len(pending)} pod(s) cannot be placed")
            and o
        ),
        timeout=30,
        describe=f"phase Pending, {len(pending)} pods unschedulable",
        show=[("mdep", "flood", ns)],
    )
    assert condition(md, "Ready")["status"] == "False"
    assert condition(md, "ResidencySatisfied")["status"] == "True"
    # Give the GPUs back now rather than while the namespace terminates.
    cluster.kubectl("delete", "mdep", "flood", "-n", ns)
    cluster.wait_for(
        lambda: not pods_of(cluster, ns, selector("flood")), timeout=60, describe="pods gone", namespace=ns
    )


def test_a_policy_change_to_us_only_moves_the_workload(
    cluster: Cluster, operator: OperatorProcess, eu_namespace: tuple[str, str], policy: PolicyFactory
) -> None:
    ns, eu = eu_namespace
    # H100s exist in the EU and in the US, so the same shape runs on either side.
    replicas = 2
    cluster.apply(mdep("mover", small(replicas=replicas, accelerators=["nvidia-h100-80gb"])), ns)
    cluster.wait_condition("mdep", "mover", ns, "Ready", "True", timeout=READY_TIMEOUT)
    old = cluster.wait_for(
        lambda: all_running_in(cluster, ns, "mover", replicas, EU),
        timeout=30,
        describe="pods on EU nodes",
        namespace=ns,
    )
    old_names = {p["metadata"]["name"] for p in old}
    # The platform team changes the policy: the same name, now US only.
    start = time.monotonic()
    policy(eu, US, {BINDING_LABEL: "eu"})

    def replanned() -> dict[str, Any] | None:
        md = cluster.get("mdep", "mover", ns)
        return md if md and md["status"].get("plan", {}).get("regions") == US else None

    md = cluster.wait_for(
        replanned, timeout=30, describe="plan.regions == [us-east-1]", show=[("mdep", "mover", ns)]
    )
    replanned_after = time.monotonic() - start
    new = cluster.wait_for(
        lambda: all_running_in(cluster, ns, "mover", replicas, US),
        timeout=60,
        describe="every pod on a US node, the EU ones gone",
        namespace=ns,
        interval=0.2,
    )
    moved_after = time.monotonic() - start
    assert not old_names & {p["metadata"]["name"] for p in new}
    for pod in new:
        assert_required_region_affinity(pod, US)
    md = cluster.wait_condition("mdep", "mover", ns, "Ready", "True", timeout=30)
    assert md["status"]["regionsSummary"] == "us-east-1"
    wait_reason(cluster, "mover", ns, "ResidencySatisfied", "True", "NamespaceBound", timeout=30)
    print(
        f"\npolicy change → re-planned in {replanned_after:.1f}s, all pods on US nodes in {moved_after:.1f}s"
    )


def test_a_bound_namespace_asking_for_another_policy_is_refused(
    cluster: Cluster, operator: OperatorProcess, eu_namespace: tuple[str, str], policy: PolicyFactory
) -> None:
    ns, eu = eu_namespace
    us = policy(f"us-{ns}", US)
    cluster.apply(mdep("escape", small(residency=us)), ns)
    md = wait_reason(cluster, "escape", ns, "ResidencySatisfied", "False", "PolicyConflict")
    message = condition(md, "ResidencySatisfied")["message"]
    assert eu in message
    assert us in message
    assert md["status"]["phase"] == "Failed"
    assert condition(md, "Planned")["status"] == "False"
    cluster.wait_for(
        lambda: warning_events(cluster, ns, "PolicyConflict"), timeout=30, describe="a PolicyConflict event"
    )
    wait_quiet(operator, ns)
    assert owned_children(cluster, ns, "escape") == []


def test_two_policies_binding_one_namespace_refuse_until_one_is_left(
    cluster: Cluster, operator: OperatorProcess, eu_namespace: tuple[str, str], policy: PolicyFactory
) -> None:
    ns, eu = eu_namespace
    other = policy(f"eu2-{ns}", ["eu-central-1"], {BINDING_LABEL: "eu"})
    cluster.apply(mdep("torn", small()), ns)
    md = wait_reason(cluster, "torn", ns, "ResidencySatisfied", "False", "AmbiguousPolicy")
    message = condition(md, "ResidencySatisfied")["message"]
    assert eu in message
    assert other in message
    cluster.wait_for(
        lambda: warning_events(cluster, ns, "AmbiguousPolicy"),
        timeout=30,
        describe="an AmbiguousPolicy event",
    )
    wait_quiet(operator, ns)
    assert owned_children(cluster, ns, "torn") == []
    # The platform team removes one binding: the namespace is bound once, and the deployment runs.
    cluster.kubectl("delete", "residencypolicy", other)
    md = wait_reason(cluster, "torn", ns, "ResidencySatisfied", "True", "NamespaceBound")
    assert md["status"]["residencyPolicy"] == eu
    pods = cluster.wait_for(
        lambda: all_running_in(cluster, ns, "torn", 1, EU), timeout=READY_TIMEOUT, describe="a pod in the EU"
    )
    assert_required_region_affinity(pods[0], EU)


def test_deleting_a_policy_in_use_keeps_the_pods_and_reports_it_missing(
    cluster: Cluster, operator: OperatorProcess, eu_namespace: tuple[str, str], policy: PolicyFactory
) -> None:
    ns, eu = eu_namespace
    cluster.apply(mdep("kept", small(replicas=2)), ns)
    cluster.wait_condition("mdep", "kept", ns, "Ready", "True", timeout=READY_TIMEOUT)
    cluster.wait_for(
        lambda: all_running_in(cluster, ns, "kept", 2, EU),
        timeout=30,
        describe="2 pods in the EU",
        namespace=ns,
    )
    wait_quiet(operator, ns)

    def pods_now() -> dict[str, tuple[str, str, Any]]:
        return {
            p["metadata"]["name"]: (p["metadata"]["uid"], p["spec"]["nodeName"], p["spec"]["affinity"])
            for p in pods_of(cluster, ns, selector("kept"))
        }

    def workload() -> tuple[int, Any]:
        dep = cluster.get("deployment", "kept", ns)
        assert dep is not None
        return dep["metadata"]["generation"], dep["spec"]["template"]["spec"]["affinity"]

    pods_before, workload_before = pods_now(), workload()
    cluster.kubectl("delete", "residencypolicy", eu)
    md = wait_reason(cluster, "kept", ns, "ResidencySatisfied", "Unknown", "PolicyMissing")
    assert eu in condition(md, "ResidencySatisfied")["message"]
    assert md["status"]["residencyPolicy"] == eu, "the constraint last applied is remembered"
    wait_quiet(operator, ns)
    assert pods_now() == pods_before, "running pods stay where they are, as they are"
    assert workload() == workload_before, "the Deployment keeps the policy's affinity"
    # The policy comes back: satisfied again, and still nothing had to move.
    policy(eu, EU, {BINDING_LABEL: "eu"})
    md = wait_reason(cluster, "kept", ns, "ResidencySatisfied", "True", "NamespaceBound")
    cluster.wait_condition("mdep", "kept", ns, "Ready", "True", timeout=30)
    wait_quiet(operator, ns)
    assert pods_now() == pods_before
    assert workload() == workload_before


def test_outside_bound_namespaces_a_deployment_may_name_a_policy(
    cluster: Cluster, operator: OperatorProcess, namespace: str, policy: PolicyFactory
) -> None:
    west = policy(f"west-{namespace}", ["eu-west-1"])
    cluster.apply(mdep("asks", small(replicas=2, residency=west)), namespace)
    md = cluster.wait_condition("mdep", "asks", namespace, "Ready", "True", timeout=READY_TIMEOUT)
    residency = condition(md, "ResidencySatisfied")
    assert (residency["status"], residency["reason"]) == ("True", "PolicyRequested")
    assert md["status"]["plan"]["regions"] == ["eu-west-1"]
    pods = cluster.wait_for(
        lambda: all_running_in(cluster, namespace, "asks", 2, ["eu-west-1"]),
        timeout=30,
        describe="2 pods in eu-west-1",
        namespace=namespace,
    )
    for pod in pods:
        assert_required_region_affinity(pod, ["eu-west-1"])


def test_without_a_policy_a_deployment_runs_anywhere(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(mdep("free", small(accelerators=["nvidia-l4"])), namespace)
    md = cluster.wait_condition("mdep", "free", namespace, "Ready", "True", timeout=READY_TIMEOUT)
    residency = condition(md, "ResidencySatisfied")
    assert (residency["status"], residency["reason"]) == ("True", "NoPolicy")
    assert "residencyPolicy" not in md["status"] or md["status"]["residencyPolicy"] is None
    # Every region with an L4 is open to it.
    l4_regions = sorted(
        {
            n["metadata"]["labels"][REGION]
            for n in fleet()
            if n["metadata"]["labels"].get(PRODUCT) == "NVIDIA-L4"
        }
    )
    assert md["status"]["plan"]["regions"] == l4_regions == sorted([*EU, *US, *APAC])
    pods = cluster.wait_for(
        lambda: running_pods(cluster, namespace, selector("free"), 1), timeout=30, describe="a running pod"
    )
    for term in required_terms(pods[0]):
        assert REGION not in [e["key"] for e in term.get("matchExpressions") or []]


def test_a_model_that_fits_only_outside_the_policy_is_not_planned(
    cluster: Cluster, operator: OperatorProcess, namespace: str, policy: PolicyFactory
) -> None:
    apac = policy(f"apac-{namespace}", APAC)
    # APAC has T4s and L4s only; this deployment allows H100s only.
    assert gpus(APAC, "NVIDIA-H100-80GB-HBM3") == 0 < gpus(EU + US, "NVIDIA-H100-80GB-HBM3")
    cluster.apply(mdep("h100-only", small(residency=apac, accelerators=["nvidia-h100-80gb"])), namespace)
    md = wait_reason(cluster, "h100-only", namespace, "Planned", "False", "NoCompliantCapacity")
    message = condition(md, "Planned")["message"]
    for words in (
        "nvidia-h100-80gb",
        "outside the residency policy",
        "eu-west-1",
        "us-east-1",
        "NotInResidencyRegions",
    ):
        assert words in message, message
    assert "ap-southeast-1" not in message
    assert condition(md, "ResidencySatisfied")["reason"] == "PolicyRequested"
    assert md["status"]["phase"] == "Failed"
    cluster.wait_for(
        lambda: warning_events(cluster, namespace, "NoCompliantCapacity"),
        timeout=30,
        describe="a NoCompliantCapacity event",
    )
    wait_quiet(operator, namespace)
    assert owned_children(cluster, namespace, "h100-only") == []


def test_pods_left_outside_a_newly_bound_namespace_are_replaced_at_once(
    cluster: Cluster, operator: OperatorProcess, namespace: str, policy: PolicyFactory
) -> None:
    eu = policy(f"eu-{namespace}", EU, {BINDING_LABEL: "eu"})
    # More L4 replicas than the EU has L4s, in a namespace no policy binds yet: some run outside.
    eu_l4 = gpus(EU, "NVIDIA-L4")
    replicas = eu_l4 + 2
    cluster.apply(mdep("late", small(replicas=replicas, accelerators=["nvidia-l4"])), namespace)

    def some_outside() -> dict[str, str] | None:
        where = regions_of(cluster, pods_of(cluster, namespace, selector("late")))
        return where if any(r and r not in EU for r in where.values()) else None

    cluster.wait_for(some_outside, timeout=60, describe="a pod outside the EU", namespace=namespace)
    # Now the platform team binds the namespace. A rolling update could not fit every replica in
    # the EU and would keep old pods serving outside it; the operator says so and recreates.
    cluster.kubectl("label", "namespace", namespace, f"{BINDING_LABEL}=eu")
    cluster.wait_for(
        lambda: warning_events(cluster, namespace, "PodsOutsidePolicy"),
        timeout=30,
        describe="a PodsOutsidePolicy warning event",
    )
    message = next(e for e in warning_events(cluster, namespace, "PodsOutsidePolicy"))["message"]
    assert eu in message

    def compliant() -> bool:
        live = [
            p
            for p in pods_of(cluster, namespace, selector("late"))
            if not p["metadata"].get("deletionTimestamp")
        ]
        where = regions_of(cluster, live)
        placed = [r for r in where.values() if r]
        return len(live) == replicas and len(placed) == eu_l4 and all(r in EU for r in placed)

    cluster.wait_for(
        compliant, timeout=90, describe=f"{eu_l4} pods in the EU, the rest Pending", namespace=namespace
    )
    md = wait_reason(cluster, "late", namespace, "ResidencySatisfied", "True", "NamespaceBound")
    assert md["status"]["residencyPolicy"] == eu
    deployment = cluster.get("deployment", "late", namespace)
    assert deployment is not None
    cluster.wait_for(
        lambda: (
            (d := cluster.get("deployment", "late", namespace))
            and d["spec"]["strategy"]["type"] == "RollingUpdate"
        ),
        timeout=30,
        describe="the usual rolling update back in place",
        namespace=namespace,
    )
    # With fewer replicas every one of them runs, all in the EU.
    cluster.kubectl("scale", "mdep", "late", "-n", namespace, "--replicas=3")
    cluster.wait_for(
        lambda: all_running_in(cluster, namespace, "late", 3, EU),
        timeout=60,
        describe="3 pods, all in the EU",
        namespace=namespace,
    )
    md = wait_reason(cluster, "late", namespace, "ResidencySatisfied", "True", "NamespaceBound")
    assert md["status"]["residencyPolicy"] == eu
