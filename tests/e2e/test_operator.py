"""The operator on the real local control plane: ModelDeployments in, serving pods and a truthful
status out (issue 4's "must show")."""

from __future__ import annotations

import time
from typing import Any

import pytest
from e2e_helpers import Cluster, pods_of, running_pods
from mdep_helpers import condition, example, mdep, wait_quiet, wait_ready
from operator_process import OperatorProcess

from modelplane.catalog import get_accelerator


@pytest.mark.parametrize(
    "file",
    [
        "chat-slm.yaml",
        "edge-slm.yaml",
        "llm-70b-sharded.yaml",
        "llm-405b-fp8.yaml",
        "custom-architecture.yaml",
    ],
)
def test_single_node_example_reaches_ready_on_its_planned_accelerator(
    cluster: Cluster, operator: OperatorProcess, namespace: str, file: str
) -> None:
    obj = example(file)
    name = obj["metadata"]["name"]
    cluster.apply(obj, namespace)
    md = wait_ready(cluster, name, namespace)
    plan = md["status"]["plan"]
    assert plan["nodesPerReplica"] == 1
    replicas = obj["spec"].get("replicas", 1)
    pods = cluster.wait_for(
        lambda: running_pods(cluster, namespace, f"modelplane.dev/deployment={name}", replicas),
        timeout=30,
        describe=f"{replicas} running pods of {name}",
        namespace=namespace,
    )
    accelerator = get_accelerator(plan["accelerator"])
    assert accelerator is not None
    for pod in pods:
        node = cluster.get("node", pod["spec"]["nodeName"])
        assert node is not None
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"] in accelerator.products
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        assert int(limits["nvidia.com/gpu"]) == plan["gpusPerReplica"]
        assert node["metadata"]["labels"]["topology.kubernetes.io/region"] in plan["regions"]
    assert md["status"]["readyReplicas"] == replicas
    assert md["status"]["readySummary"] == f"{replicas}/{replicas}"
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
    service = cluster.get("service", name, namespace)
    assert service is not None
    assert (
        md["status"]["endpoint"] == f"http://{name}.{namespace}.svc:{service['spec']['ports'][0]['port']}/v1"
    )


def test_kubectl_get_shows_where_things_stand(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(example("chat-slm.yaml"), namespace)
    wait_ready(cluster, "support-bot", namespace)
    out = cluster.kubectl("get", "mdep", "-n", namespace, "-o", "wide")
    header, row = out.splitlines()[:2]
    for column in ("MODEL", "CLASS", "ACCELERATOR", "READY", "P95", "PHASE", "AGE", "REGIONS", "COST/H"):
        assert column in header
    for value in ("meta-llama/Llama-3.1-8B-Instruct", "SLM", "1x nvidia-l4", "2/2", "Ready", "0.80"):
        assert value in row


def test_no_change_writes_nothing_and_a_change_rolls_the_deployment(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    obj = mdep(
        "roll", {"model": {"name": "meta-llama/Llama-3.2-1B-Instruct"}, "serving": {"maxContextLength": 4096}}
    )
    cluster.apply(obj, namespace)
    wait_ready(cluster, "roll", namespace)
    before = wait_quiet(operator, namespace)
    generation = cluster.get("deployment", "roll", namespace)["metadata"]["generation"]  # type: ignore[index]
    # Touch the ModelDeployment without changing what it asks for: events flow, nothing is written.
    cluster.kubectl("label", "mdep", "roll", "-n", namespace, "touched=yes")
    cluster.kubectl("annotate", "mdep", "roll", "-n", namespace, "note=hello")
    time.sleep(3)
    assert wait_quiet(operator, namespace) == before
    assert cluster.get("deployment", "roll", namespace)["metadata"]["generation"] == generation  # type: ignore[index]
    # Change the context: the Deployment rolls with the new --max-model-len.
    obj["spec"]["serving"]["maxContextLength"] = 2048
    cluster.apply(obj, namespace)

    def rolled() -> dict[str, Any] | None:
        dep = cluster.get("deployment", "roll", namespace)
        args = " ".join((dep or {})["spec"]["template"]["spec"]["containers"][0].get("args", []))
        return dep if dep and dep["metadata"]["generation"] > generation and "2048" in args else None

    cluster.wait_for(rolled, timeout=30, describe="the Deployment rolled to 2048 tokens", namespace=namespace)
    md = wait_ready(cluster, "roll", namespace)
    assert md["status"]["plan"]["maxContextLength"] == 2048


def test_children_deleted_by_hand_come_back_and_go_with_their_owner(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(mdep("heal", {"model": {"name": "Qwen/Qwen2.5-1.5B-Instruct"}}), namespace)
    wait_ready(cluster, "heal", namespace)
    for kind in ("deployment", "service"):
        uid = cluster.get(kind, "heal", namespace)["metadata"]["uid"]  # type: ignore[index]
        cluster.kubectl("delete", kind, "heal", "-n", namespace, "--wait=true")
        cluster.wait_for(
            lambda kind=kind, uid=uid: (
                (o := cluster.get(kind, "heal", namespace)) and o["metadata"]["uid"] != uid
            ),
            timeout=30,
            describe=f"{kind} heal restored",
            namespace=namespace,
        )
    # An edit by hand of something the operator owns is put back, too.
    image = cluster.get("deployment", "heal", namespace)["spec"]["template"]["spec"]["containers"][0]["image"]  # type: ignore[index]
    container = cluster.get("deployment", "heal", namespace)["spec"]["template"]["spec"]["containers"][0][
        "name"
    ]  # type: ignore[index]
    cluster.kubectl(
        "set", "image", "deployment/heal", "-n", namespace, f"{container}=registry.example/other:1"
    )
    cluster.wait_for(
        lambda: (
            cluster.get("deployment", "heal", namespace)["spec"]["template"]["spec"]["containers"][0]["image"]  # type: ignore[index]
            == image
        ),
        timeout=30,
        describe="the image restored",
        namespace=namespace,
    )
    wait_ready(cluster, "heal", namespace)
    cluster.kubectl("delete", "mdep", "heal", "-n", namespace)
    cluster.wait_for(
        lambda: (
            cluster.get("deployment", "heal", namespace) is None
            and cluster.get("service", "heal", namespace) is None
        ),
        timeout=60,
        describe="children garbage-collected",
        namespace=namespace,
    )


def test_a_model_that_fits_nowhere_is_reported_without_children_or_retry_storm(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    spec = {
        "model": {"name": "meta-llama/Llama-3.1-405B-Instruct", "precision": "bf16"},
        "resources": {"accelerators": ["nvidia-l4"]},
    }
    cluster.apply(mdep("too-big", spec), namespace)
    md = cluster.wait_condition("mdep", "too-big", namespace, "Planned", "False", timeout=30)
    planned = condition(md, "Planned")
    assert planned["reason"] == "NoFeasibleShape"
    assert "nvidia-l4" in planned["message"]
    assert md["status"]["phase"] == "Failed"
    assert cluster.get("deployment", "too-big", namespace) is None
    assert cluster.get("service", "too-big", namespace) is None
    warnings = [
        e
        for e in cluster.events(namespace)
        if e.get("type") == "Warning" and e["reason"] == "NoFeasibleShape"
    ]
    assert warnings, "a Warning event explains why"
    writes = wait_quiet(operator, namespace)
    version = cluster.get("mdep", "too-big", namespace)["metadata"]["resourceVersion"]  # type: ignore[index]
    time.sleep(5)
    assert operator.namespace_writes(namespace) == writes, "no retry loop for a plan that cannot exist"
    assert cluster.get("mdep", "too-big", namespace)["metadata"]["resourceVersion"] == version  # type: ignore[index]


def test_a_plan_without_free_capacity_stays_pending_with_the_schedulers_message(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    spec = {
        "model": {"name": "Qwen/Qwen2.5-0.5B-Instruct", "precision": "fp16"},
        "resources": {"accelerators": ["nvidia-t4"]},
        "replicas": 6,
    }
    cluster.apply(mdep("crowded", spec), namespace)
    md = cluster.wait_condition("mdep", "crowded", namespace, "Scheduled", "False", timeout=60)
    scheduled = condition(md, "Scheduled")
    assert scheduled["reason"] == "Unschedulable"
    assert "nodes are available" in scheduled["message"]
    assert condition(md, "Ready")["status"] == "False"
    pending = [
        p
        for p in pods_of(cluster, namespace, "modelplane.dev/deployment=crowded")
        if p["status"].get("phase") == "Pending"
    ]
    assert pending, "the extra replicas wait; nothing spills onto other accelerator types"
    running = [
        p
        for p in pods_of(cluster, namespace, "modelplane.dev/deployment=crowded")
        if p["spec"].get("nodeName")
    ]
    for pod in running:
        node = cluster.get("node", pod["spec"]["nodeName"])
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "Tesla-T4"  # type: ignore[index]
    cluster.wait_for(
        lambda: cluster.get("mdep", "crowded", namespace)["status"]["phase"] == "Pending",  # type: ignore[index]
        timeout=30,
        describe="phase Pending",
        namespace=namespace,
    )


def test_an_invalid_spec_the_schema_accepts_is_reported_and_recovers(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(mdep("fixme", {"model": {"name": "acme/not-in-the-catalog"}}), namespace)
    md = cluster.wait_condition("mdep", "fixme", namespace, "Ready", "False", timeout=30)
    ready = condition(md, "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert "spec.model.architecture" in ready["message"]
    assert any(e["reason"] == "InvalidSpec" and e["type"] == "Warning" for e in cluster.events(namespace))
    assert cluster.get("deployment", "fixme", namespace) is None
    writes = wait_quiet(operator, namespace)
    time.sleep(3)
    assert operator.namespace_writes(namespace) == writes, "no crash loop, no rewrite loop"
    arch = {
        "parameters": 1_500_000_000,
        "layers": 28,
        "hiddenSize": 1536,
        "attentionHeads": 12,
        "kvHeads": 2,
        "headDim": 128,
        "maxContextLength": 32768,
    }
    cluster.apply(
        mdep("fixme", {"model": {"name": "acme/not-in-the-catalog", "architecture": arch}}), namespace
    )
    wait_ready(cluster, "fixme", namespace)


def test_kubectl_scale_drives_the_replicas(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(mdep("scaled", {"model": {"name": "meta-llama/Llama-3.2-1B-Instruct"}}), namespace)
    wait_ready(cluster, "scaled", namespace)
    cluster.kubectl("scale", "mdep", "scaled", "-n", namespace, "--replicas=3")
    cluster.wait_for(
        lambda: running_pods(cluster, namespace, "modelplane.dev/deployment=scaled", 3),
        timeout=60,
        describe="3 running pods",
        namespace=namespace,
    )
    md = cluster.wait_for(
        lambda: (
            (o := cluster.get("mdep", "scaled", namespace)) and o["status"].get("readyReplicas") == 3 and o
        ),
        timeout=30,
        describe="3 ready replicas in status",
        namespace=namespace,
    )
    assert md["status"]["readySummary"] == "3/3"
    assert md["status"]["replicas"] == 3


def test_pods_follow_the_restricted_profile(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    cluster.apply(mdep("secure", {"model": {"name": "meta-llama/Llama-3.2-1B-Instruct"}}), namespace)
    wait_ready(cluster, "secure", namespace)  # the API server admitted its pods under `restricted`


def test_a_plan_stays_while_it_fits_and_moves_when_its_nodes_go(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    """The only L40S node is cordoned: the plan no longer fits and is replaced (pods move to H100).
    Uncordoned, the cheaper L40S is back, but the running plan stays and the status says so."""
    l40s = "us-east-1c-l40sx4-0"
    spec = {
        "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"},
        "resources": {"accelerators": ["nvidia-l40s", "nvidia-h100-80gb"]},
    }
    cluster.apply(mdep("moves", spec), namespace)
    md = wait_ready(cluster, "moves", namespace)
    assert md["status"]["plan"]["accelerator"] == "nvidia-l40s"
    selector = "modelplane.dev/deployment=moves"
    try:
        cluster.kubectl("cordon", l40s)
        cluster.wait_for(
            lambda: (
                (o := cluster.get("mdep", "moves", namespace))
                and o["status"]["plan"]["accelerator"] == "nvidia-h100-80gb"
            ),
            timeout=30,
            describe="re-planned onto H100",
            namespace=namespace,
        )

        def moved() -> bool:
            pods = running_pods(cluster, namespace, selector, 1)
            return bool(pods) and all(
                p["spec"]["nodeName"] != l40s and "h100" in p["spec"]["nodeName"] for p in pods or []
            )

        cluster.wait_for(moved, timeout=60, describe="the pod moved to an H100 node", namespace=namespace)
        wait_ready(cluster, "moves", namespace)
    finally:
        cluster.kubectl("uncordon", l40s)
    md = cluster.wait_for(
        lambda: (
            (o := cluster.get("mdep", "moves", namespace))
            and condition(o, "Planned").get("reason") == "CheaperPlanAvailable"
            and o
        ),
        timeout=30,
        describe="Planned says a cheaper plan exists",
        namespace=namespace,
    )
    assert md["status"]["plan"]["accelerator"] == "nvidia-h100-80gb", "a running plan is not moved"
    assert "nvidia-l40s" in condition(md, "Planned")["message"]


def test_a_child_the_api_server_refuses_is_reported_and_not_retried_in_a_loop(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    """The schema lets engine.env[].valueFrom through free-form; the API server refuses the
    Deployment built from an invalid one. The user sees why; the operator does not hammer it."""
    spec: dict[str, Any] = {
        "model": {"name": "meta-llama/Llama-3.2-1B-Instruct"},
        "engine": {"env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {}}}]},
    }
    cluster.apply(mdep("refused", spec), namespace)
    md = cluster.wait_for(
        lambda: (
            (o := cluster.get("mdep", "refused", namespace))
            and condition(o, "Ready").get("reason") == "ApplyFailed"
            and o
        ),
        timeout=30,
        describe="Ready=False ApplyFailed",
        namespace=namespace,
    )
    assert condition(md, "Ready")["status"] == "False"
    assert "secretKeyRef" in condition(md, "Ready")["message"]
    assert any(e["reason"] == "ApplyFailed" and e["type"] == "Warning" for e in cluster.events(namespace))
    writes = wait_quiet(operator, namespace)
    time.sleep(5)
    assert operator.namespace_writes(namespace) == writes, "no retry loop against the API server"
    spec["engine"]["env"][0]["valueFrom"] = {
        "secretKeyRef": {"name": "hf", "key": "HF_TOKEN", "optional": True}
    }
    cluster.apply(mdep("refused", spec), namespace)
    wait_ready(cluster, "refused", namespace)
