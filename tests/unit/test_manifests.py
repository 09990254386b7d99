"""Manifests: labels, ownership, the Deployment / LeaderWorkerSet / Service shapes, the spec hash."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from modelplane import api
from modelplane.config import load_config
from modelplane.manifests import (
    DEPLOYMENT_LABEL,
    SPEC_HASH_ANNOTATION,
    ChildInputs,
    build_children,
    owner_reference,
    selector_string,
    service_endpoint,
    spec_hash,
)

AFFINITY = {
    "requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [
                    {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-H100"]}
                ]
            }
        ]
    }
}
TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
MULTI = {
    "class": "LLM",
    "gpusPerReplica": 16,
    "tensorParallel": 8,
    "pipelineParallel": 2,
    "nodesPerReplica": 2,
}


def deployment(**spec_over: Any) -> api.ModelDeployment:
    spec: dict[str, Any] = {"model": {"name": "meta-llama/Llama-3.1-70B-Instruct", "precision": "bf16"}}
    spec.update(spec_over)
    return api.parse_model_deployment(
        {
            "apiVersion": "modelplane.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "chat", "namespace": "team-a", "uid": "uid-1"},
            "spec": spec,
        }
    )


def plan(**over: Any) -> api.Plan:
    raw: dict[str, Any] = {
        "class": "LLM",
        "accelerator": "nvidia-h100-80gb",
        "gpusPerReplica": 4,
        "tensorParallel": 4,
        "pipelineParallel": 1,
        "nodesPerReplica": 1,
        "precision": "bf16",
        "maxContextLength": 8192,
        "weightsGiB": 131.0,
        "kvCacheTokens": 400000,
        "estTimePerOutputTokenMs": 17,
        "costPerReplicaHour": "12.00",
    }
    raw.update(over)
    return api.Plan.model_validate(raw)


def inputs(md: api.ModelDeployment | None = None, p: api.Plan | None = None, **over: Any) -> ChildInputs:
    fields: dict[str, Any] = {
        "deployment": md or deployment(),
        "plan": p or plan(),
        "config": load_config({}),
        "node_affinity": AFFINITY,
        "tolerations": TOLERATIONS,
        "gpu_resource": "nvidia.com/gpu",
        "replicas": 2,
    }
    fields.update(over)
    return ChildInputs(**fields)


def by_kind(children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["kind"]: c for c in children}


def templates(workload: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    spec = workload["spec"]
    if "template" in spec:
        yield spec["template"]
    else:
        yield spec["leaderWorkerTemplate"]["leaderTemplate"]
        yield spec["leaderWorkerTemplate"]["workerTemplate"]


# ------------------------------------------------------------------------- metadata, ownership


@pytest.mark.parametrize("p", [plan(), plan(**MULTI)], ids=["single", "multi"])
def test_every_child_is_named_labelled_and_owned(p: api.Plan) -> None:
    for child in build_children(inputs(p=p)):
        meta = child["metadata"]
        assert (meta["name"], meta["namespace"]) == ("chat", "team-a")
        assert meta["labels"] == {
            "app.kubernetes.io/name": "modelplane-server",
            "app.kubernetes.io/instance": "chat",
            "app.kubernetes.io/managed-by": "modelplane",
            "app.kubernetes.io/component": "server",
            "modelplane.dev/deployment": "chat",
            "modelplane.dev/accelerator": "nvidia-h100-80gb",
        }
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "modelplane.dev/v1alpha1",
                "kind": "ModelDeployment",
                "name": "chat",
                "uid": "uid-1",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def test_an_owner_without_uid_is_refused() -> None:
    md = deployment().model_copy(update={"metadata": deployment().metadata.model_copy(update={"uid": None})})
    with pytest.raises(ValueError, match="uid"):
        owner_reference(md)


def test_selector_and_endpoint() -> None:
    assert selector_string("chat") == "modelplane.dev/deployment=chat"
    assert service_endpoint(inputs()) == "http://chat.team-a.svc:8000/v1"


# ---------------------------------------------------------------------------------- Deployment


def test_single_node_is_a_deployment_and_a_service() -> None:
    children = build_children(inputs())
    assert [c["kind"] for c in children] == ["Deployment", "Service"]
    dep = children[0]
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"] == {"matchLabels": {DEPLOYMENT_LABEL: "chat"}}
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
    }
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels[DEPLOYMENT_LABEL] == "chat"
    assert labels["app.kubernetes.io/component"] == "server"


def test_the_pod_holds_the_replicas_gpus() -> None:
    dep = build_children(inputs(p=plan(gpusPerReplica=4), gpu_resource="amd.com/gpu"))[0]
    [container] = dep["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"] == {"amd.com/gpu": "4"}
    assert container["resources"]["requests"]["amd.com/gpu"] == "4"
    assert container["image"] == "docker.io/vllm/vllm-openai:v0.11.0"


def test_images_come_from_the_operator_config() -> None:
    cfg = load_config({"engines": {"vllm": {"image": "registry.local/vllm:pinned", "pullPolicy": "Always"}}})
    [container] = build_children(inputs(config=cfg))[0]["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["imagePullPolicy"]) == ("registry.local/vllm:pinned", "Always")


def test_an_engine_without_an_image_is_an_invalid_spec() -> None:
    cfg = load_config({"engines": {"vllm": {"image": "v"}}})
    with pytest.raises(api.SpecError, match=r"spec\.engine\.name"):
        build_children(inputs(deployment(engine={"name": "sglang"}), config=cfg))


# Pod Security Standards, "restricted" profile (v1.36): the checks a pod template must pass.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
    "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip


def assert_restricted(template: Mapping[str, Any]) -> None:
    pod = template["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] != 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    for host_namespace in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(host_namespace)
    for volume in pod["volumes"]:
        assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, volume
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert not sc.get("privileged")
        assert "hostPort" not in str(container.get("ports", []))
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False


@pytest.mark.parametrize(
    "md",
    [
        deployment(),
        deployment(model={"name": "m", "source": "oci://r/m:1", "precision": "bf16"}),
        deployment(model={"name": "m", "source": "pvc://c/m", "precision": "bf16"}),
        deployment(engine={"name": "sglang"}),
    ],
)
@pytest.mark.parametrize("p", [plan(), plan(**MULTI)], ids=["single", "multi"])
def test_every_pod_meets_the_restricted_profile(md: api.ModelDeployment, p: api.Plan) -> None:
    if md.spec.engine.name is not api.EngineName.VLLM and p.nodes_per_replica > 1:
        with pytest.raises(api.SpecError):
            build_children(inputs(md, p))
        return
    workload = build_children(inputs(md, p))[0]
    for template in templates(workload):
        assert_restricted(template)


# ----------------------------------------------------------------------------- LeaderWorkerSet


def test_multi_node_is_a_leaderworkerset_and_a_leader_only_service() -> None:
    children = by_kind(build_children(inputs(p=plan(**MULTI), replicas=3)))
    assert set(children) == {"LeaderWorkerSet", "Service"}
    lws = children["LeaderWorkerSet"]
    assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
    spec = lws["spec"]
    assert spec["replicas"] == 3
    assert spec["startupPolicy"] == "LeaderCreated"
    assert spec["networkConfig"] == {"subdomainPolicy": "UniquePerReplica"}
    lwt = spec["leaderWorkerTemplate"]
    assert lwt["size"] == 2
    assert lwt["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert children["Service"]["spec"]["selector"] == {
        DEPLOYMENT_LABEL: "chat",
        "leaderworkerset.sigs.k8s.io/worker-index": "0",
    }


def test_every_group_pod_takes_a_whole_node_and_stays_in_the_groups_zone() -> None:
    lws = build_children(inputs(p=plan(**MULTI)))[0]
    components = []
    for template in templates(lws):
        pod = template["spec"]
        components.append(template["metadata"]["labels"]["app.kubernetes.io/component"])
        [container] = pod["containers"]
        assert container["resources"]["limits"] == {"nvidia.com/gpu": "8"}
        [term] = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "topology.kubernetes.io/zone"
        assert term["matchLabelKeys"] == ["leaderworkerset.sigs.k8s.io/group-key"]
        assert term["labelSelector"] == {"matchLabels": {"leaderworkerset.sigs.k8s.io/name": "chat"}}
        assert pod["tolerations"] == TOLERATIONS
    assert components == ["leader", "worker"]


def test_only_the_leader_serves_http() -> None:
    lws = build_children(inputs(p=plan(**MULTI)))[0]
    leader, worker = (t["spec"]["containers"][0] for t in templates(lws))
    assert leader["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert leader["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert "ports" not in worker
    assert "readinessProbe" not in worker


def test_probes_allow_a_slow_model_load() -> None:
    dep = build_children(inputs())[0]
    [container] = dep["spec"]["template"]["spec"]["containers"]
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30 * 60
    assert dep["spec"]["progressDeadlineSeconds"] > startup["periodSeconds"] * startup["failureThreshold"]


# ------------------------------------------------------------------------------------ Service


def test_service_port_follows_the_spec() -> None:
    svc = build_children(inputs(deployment(serving={"port": 8080})))[1]
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    [container] = build_children(inputs(deployment(serving={"port": 8080})))[0]["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["ports"][0]["containerPort"] == 8080


# ---------------------------------------------------------------------------------- spec hash


def test_spec_hash_is_stable_and_ignores_key_order_and_its_own_annotation() -> None:
    a = {"kind": "X", "metadata": {"name": "n", "labels": {"a": "1", "b": "2"}}, "spec": {"x": [1, 2]}}
    b = {"spec": {"x": [1, 2]}, "metadata": {"labels": {"b": "2", "a": "1"}, "name": "n"}, "kind": "X"}
    assert spec_hash(a) == spec_hash(b)
    c = copy.deepcopy(a)
    c["metadata"]["annotations"] = {SPEC_HASH_ANNOTATION: "anything"}
    assert spec_hash(c) == spec_hash(a)
    c["metadata"]["annotations"]["other"] = "1"
    assert spec_hash(c) != spec_hash(a)
    assert spec_hash({**a, "spec": {"x": [2, 1]}}) != spec_hash(a)


def test_building_twice_gives_the_same_children() -> None:
    assert build_children(inputs()) == build_children(inputs())


def test_a_model_change_rolls_the_workload_but_not_the_service() -> None:
    before = by_kind(build_children(inputs()))
    after = by_kind(build_children(inputs(deployment(model={"name": "org/other", "precision": "bf16"}))))
    h = SPEC_HASH_ANNOTATION
    assert (
        after["Deployment"]["metadata"]["annotations"][h]
        != before["Deployment"]["metadata"]["annotations"][h]
    )
    assert after["Service"]["metadata"]["annotations"][h] == before["Service"]["metadata"]["annotations"][h]


def test_a_context_change_changes_the_hash() -> None:
    a = build_children(inputs(p=plan(maxContextLength=8192)))[0]
    b = build_children(inputs(p=plan(maxContextLength=16384)))[0]
    assert (
        a["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
        != b["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    )


def test_negative_replicas_are_refused() -> None:
    with pytest.raises(ValueError, match="replicas"):
        inputs(replicas=-1)
