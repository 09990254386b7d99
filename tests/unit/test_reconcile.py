"""The pure reconcile: a snapshot in, children/status/events out — no cluster needed."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.config import OperatorConfig
from modelplane.manifests import SPEC_HASH_ANNOTATION
from modelplane.reconcile import Decision, Snapshot, decide, groups_to_admit, merge_patch

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
NODES = [d for d in yaml.safe_load_all((ROOT / "examples/cluster/nodes.yaml").read_text()) if d]

EU_POLICY = {
    "apiVersion": "modelplane.dev/v1alpha1",
    "kind": "ResidencyPolicy",
    "metadata": {"name": "eu"},
    "spec": {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [
                    {
                        "key": "topology.kubernetes.io/region",
                        "operator": "In",
                        "values": ["eu-west-1", "eu-central-1"],
                    }
                ]
            }
        ],
        "namespaceSelector": {"matchLabels": {"modelplane.dev/residency": "eu"}},
    },
}


def mdep(spec: dict[str, Any], name: str = "bot", namespace: str = "team-a", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "uid-1",
            "generation": 1,
            "resourceVersion": "10",
        },
        "spec": spec,
        "status": status,
    }


SLM = {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "replicas": 2}


def snapshot(body: dict[str, Any], **kw: Any) -> Snapshot:
    args: dict[str, Any] = {
        "body": body,
        "nodes": NODES,
        "policies": [],
        "namespace_labels": {},
        "children": [],
        "pods": [],
        "multi_node_available": True,
        "config": OperatorConfig(),
        "now": NOW,
    }
    args.update(kw)
    return Snapshot(**args)


def cond(decision: Decision, type_: str) -> dict[str, Any]:
    return next(c for c in decision.status["conditions"] if c["type"] == type_)


def settle(
    body: dict[str, Any], decision: Decision, ready: int | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What the cluster looks like after the decision is carried out (and the workload is ready)."""
    body = copy.deepcopy(body)
    body["status"] = merge_patch(body.get("status") or {}, decision.status)
    children = []
    for child in decision.apply:
        live = copy.deepcopy(child)
        live["metadata"]["generation"] = 1
        if child["kind"] in ("Deployment", "LeaderWorkerSet"):
            n = child["spec"]["replicas"] if ready is None else ready
            live["status"] = {
                "replicas": n,
                "readyReplicas": n,
                "updatedReplicas": n,
                "observedGeneration": 1,
            }
        children.append(live)
    return body, children


def test_first_reconcile_creates_children_and_plans() -> None:
    d = decide(snapshot(mdep(SLM)))
    assert sorted(c["kind"] for c in d.apply) == ["Deployment", "Service"]
    assert d.delete == []
    assert d.status_changed
    assert d.status["plan"]["accelerator"] == "nvidia-l4"
    assert d.status["plan"]["acceleratorSummary"] == "1x nvidia-l4"
    assert cond(d, "Planned")["status"] == "True"
    assert cond(d, "Ready")["status"] == "False"
    assert d.status["phase"] == "Progressing"
    assert d.status["selector"] == "modelplane.dev/deployment=bot"
    assert d.status["endpoint"] == "http://bot.team-a.svc:8000/v1"
    assert {e.reason for e in d.events} >= {"Created", "Planned"}


def test_steady_state_writes_nothing() -> None:
    body = mdep(SLM)
    first = decide(snapshot(body))
    body, children = settle(body, first)
    second = decide(snapshot(body, children=children))
    assert second.status["phase"] == "Ready"
    body, _ = settle(body, second)
    third = decide(snapshot(body, children=children))
    assert third.apply == []
    assert third.delete == []
    assert not third.status_changed
    assert third.events == []


def test_child_edited_by_hand_is_restored() -> None:
    body = mdep(SLM)
    first = decide(snapshot(body))
    body, children = settle(body, first)
    edited = copy.deepcopy(children)
    edited[0]["metadata"]["annotations"][SPEC_HASH_ANNOTATION] = "tampered"
    d = decide(snapshot(body, children=edited))
    assert [c["kind"] for c in d.apply] == [edited[0]["kind"]]
    deleted = decide(snapshot(body, children=children[1:]))
    assert [c["kind"] for c in deleted.apply] == [children[0]["kind"]]


def test_context_change_rolls_the_deployment() -> None:
    body = mdep(SLM)
    body, children = settle(body, decide(snapshot(body)))
    changed = copy.deepcopy(body)
    changed["spec"]["serving"] = {"maxContextLength": 4096}
    changed["metadata"]["generation"] = 2
    d = decide(snapshot(changed, children=children))
    assert [c["kind"] for c in d.apply] == ["Deployment"]
    args = " ".join(d.apply[0]["spec"]["template"]["spec"]["containers"][0].get("args", []))
    assert "4096" in args


def test_invalid_spec_is_reported_and_keeps_children() -> None:
    body = mdep(SLM)
    body, children = settle(body, decide(snapshot(body)))
    bad = copy.deepcopy(body)
    bad["spec"]["model"] = {"name": "acme/unknown-model"}
    d = decide(snapshot(bad, children=children))
    assert d.apply == []
    assert d.delete == []
    ready = cond(d, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "InvalidSpec"
    assert "spec.model.architecture" in ready["message"]
    assert any(e.type == "Warning" and e.reason == "InvalidSpec" for e in d.events)
    again, _ = settle(bad, d)
    assert not decide(snapshot(again, children=children)).status_changed  # no loop


def test_nothing_fits_reports_the_planner_reasons_without_children() -> None:
    spec = {
        "model": {"name": "meta-llama/Llama-3.1-405B-Instruct", "precision": "bf16"},
        "resources": {"accelerators": ["nvidia-l4"]},
    }
    d = decide(snapshot(mdep(spec)))
    assert d.apply == []
    planned = cond(d, "Planned")
    assert planned["status"] == "False"
    assert planned["reason"] == "NoFeasibleShape"
    assert "nvidia-l4" in planned["message"]


def test_multi_node_without_lws_is_not_degraded_silently() -> None:
    spec = {
        "model": {"name": "meta-llama/Llama-3.1-405B-Instruct", "precision": "bf16"},
        "resources": {"accelerators": ["nvidia-h100-80gb"]},
    }
    d = decide(snapshot(mdep(spec), multi_node_available=False))
    assert d.apply == []
    ready = cond(d, "Ready")
    assert ready["reason"] == "MultiNodeUnavailable"
    assert "LeaderWorkerSet" in ready["message"]
    with_lws = decide(snapshot(mdep(spec)))
    assert sorted(c["kind"] for c in with_lws.apply) == ["LeaderWorkerSet", "Service"]


def test_unschedulable_pods_surface_the_scheduler_message() -> None:
    body = mdep(SLM)
    body, children = settle(body, decide(snapshot(body)), ready=0)
    pods = [
        {
            "metadata": {"name": "bot-abc", "labels": {}},
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/18 nodes are available: 18 Insufficient nvidia.com/gpu.",
                    }
                ],
            },
        }
    ]
    d = decide(snapshot(body, children=children, pods=pods))
    scheduled = cond(d, "Scheduled")
    assert scheduled["status"] == "False"
    assert "Insufficient nvidia.com/gpu" in scheduled["message"]
    assert d.status["phase"] == "Pending"


def test_eu_bound_namespace_plans_only_in_eu() -> None:
    d = decide(snapshot(mdep(SLM), policies=[EU_POLICY], namespace_labels={"modelplane.dev/residency": "eu"}))
    assert set(d.status["plan"]["regions"]) <= {"eu-west-1", "eu-central-1"}
    deployment = next(c for c in d.apply if c["kind"] == "Deployment")
    terms = deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    for term in terms:
        keys = {e["key"]: e for e in term["matchExpressions"]}
        assert set(keys["topology.kubernetes.io/region"]["values"]) <= {"eu-west-1", "eu-central-1"}


def test_bound_namespace_asking_for_another_policy_is_refused_and_loses_its_children() -> None:
    body = mdep({**SLM, "placement": {"residency": "us"}})
    us = copy.deepcopy(EU_POLICY)
    us["metadata"]["name"] = "us"
    us["spec"]["namespaceSelector"] = {"matchLabels": {"modelplane.dev/residency": "us"}}
    children = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "bot", "ownerReferences": [{"uid": "uid-1", "controller": True}]},
        }
    ]
    d = decide(
        snapshot(
            body,
            policies=[EU_POLICY, us],
            namespace_labels={"modelplane.dev/residency": "eu"},
            children=children,
        )
    )
    rs = cond(d, "ResidencySatisfied")
    assert rs["status"] == "False"
    assert rs["reason"] == "PolicyConflict"
    assert d.apply == []
    assert [(r.kind, r.name) for r in d.delete] == [("Deployment", "bot")]


def test_running_plan_is_kept_while_feasible_and_a_cheaper_one_is_named() -> None:
    spec = {**SLM, "resources": {"accelerators": ["nvidia-l4", "nvidia-a100-80gb"]}}
    pinned = {**SLM, "resources": {"accelerators": ["nvidia-a100-80gb"]}}
    body = mdep(pinned)
    body, children = settle(body, decide(snapshot(body)))
    assert body["status"]["plan"]["accelerator"] == "nvidia-a100-80gb"
    widened = copy.deepcopy(body)
    widened["spec"] = spec
    d = decide(snapshot(widened, children=children))
    assert d.status["plan"]["accelerator"] == "nvidia-a100-80gb"
    planned = cond(d, "Planned")
    assert planned["reason"] == "CheaperPlanAvailable"
    assert "nvidia-l4" in planned["message"]


def test_plan_is_replaced_when_its_nodes_are_gone() -> None:
    pinned = {**SLM, "resources": {"accelerators": ["nvidia-a100-80gb", "nvidia-l4"]}}
    body = mdep(pinned)
    body["status"] = {"plan": {**decide(snapshot(mdep(pinned))).status["plan"], "accelerator": "nvidia-h200"}}
    d = decide(snapshot(body))
    assert d.status["plan"]["accelerator"] == "nvidia-l4"


@pytest.mark.parametrize(
    ("old", "patch", "expected"),
    [
        ({"a": 1}, {"a": None}, {}),
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}, {"a": {"c": 2}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ],
)
def test_merge_patch(old: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    assert merge_patch(old, patch) == expected


def test_deleted_policy_keeps_pods_where_they_are() -> None:
    labels = {"modelplane.dev/residency": "eu"}
    body = mdep(SLM)
    first = decide(snapshot(body, policies=[EU_POLICY], namespace_labels=labels))
    body, children = settle(body, first)
    assert body["status"]["residencyPolicy"] == "eu"
    d = decide(snapshot(body, policies=[], namespace_labels=labels, children=children))
    rs = cond(d, "ResidencySatisfied")
    assert rs["status"] == "Unknown"
    assert rs["reason"] == "PolicyMissing"
    assert d.apply == []
    assert d.delete == []
    assert cond(d, "Ready")["status"] == "True"  # still serving, where it was


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_plans_and_builds_on_the_example_fleet(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    policies = [d for d in docs if d["kind"] == "ResidencyPolicy"]
    namespaces = {
        d["metadata"]["name"]: d["metadata"].get("labels", {}) for d in docs if d["kind"] == "Namespace"
    }
    for doc in docs:
        if doc["kind"] != "ModelDeployment":
            continue
        body = copy.deepcopy(doc)
        body["metadata"].setdefault("namespace", "demo")
        body["metadata"].update({"uid": "uid-1", "generation": 1})
        labels = namespaces.get(body["metadata"]["namespace"], {})
        d = decide(snapshot(body, policies=policies, namespace_labels=labels))
        problems = [c for c in d.status["conditions"] if c["status"] == "False"]
        assert not [c for c in problems if c["reason"] not in ("ReplicasStarting", "AutoscalerNotActive")], (
            problems
        )
        assert d.apply, f"{path.name}: no children"


def test_drift_in_a_field_we_own_is_restored_but_additions_by_others_are_left_alone() -> None:
    body = mdep(SLM)
    body, children = settle(body, decide(snapshot(body)))
    deployment = next(c for c in children if c["kind"] == "Deployment")
    # What the API server hands back: quantities as strings, defaults filled in, others' additions.
    served = copy.deepcopy(deployment)
    pod = served["spec"]["template"]["spec"]
    for container in pod["containers"]:
        container["terminationMessagePath"] = "/dev/termination-log"
        for part in ("limits", "requests"):
            res = container.get("resources", {}).get(part, {})
            for key, value in res.items():
                res[key] = str(value)
    pod["tolerations"].append(
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}
    )
    served["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    others = [c for c in children if c["kind"] != "Deployment"]
    assert decide(snapshot(body, children=[served, *others])).apply == []
    edited = copy.deepcopy(served)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/evil:1"
    again = decide(snapshot(body, children=[edited, *others]))
    assert [c["kind"] for c in again.apply] == ["Deployment"]


LLAMA_405B = {
    "model": {"name": "meta-llama/Llama-3.1-405B-Instruct", "precision": "bf16"},
    "resources": {"accelerators": ["nvidia-h100-80gb"]},
}


@pytest.mark.parametrize(
    ("before", "after", "new_kind", "old_kind"),
    [
        ("bf16", "fp8", "Deployment", "LeaderWorkerSet"),
        ("fp8", "bf16", "LeaderWorkerSet", "Deployment"),
    ],
)
def test_a_new_precision_plans_afresh_and_replaces_the_child_of_the_other_kind(
    before: str, after: str, new_kind: str, old_kind: str
) -> None:
    spec = copy.deepcopy(LLAMA_405B)
    spec["model"]["precision"] = before
    body = mdep(spec)
    body, children = settle(body, decide(snapshot(body)))
    assert [c["kind"] for c in children] == [old_kind, "Service"]
    changed = copy.deepcopy(body)
    changed["spec"]["model"]["precision"] = after
    changed["metadata"]["generation"] = 2
    d = decide(snapshot(changed, children=children))
    assert d.status["plan"]["precision"] == after
    assert d.status["plan"]["nodesPerReplica"] == (2 if new_kind == "LeaderWorkerSet" else 1)
    assert cond(d, "Planned")["reason"] == "Planned"
    assert [c["kind"] for c in d.apply] == [new_kind, "Service"]
    assert [(r.kind, r.name) for r in d.delete] == [(old_kind, "bot")]


def test_a_running_plan_the_spec_no_longer_allows_is_replaced() -> None:
    body = mdep({**SLM, "resources": {"accelerators": ["nvidia-l4"]}})
    body, children = settle(body, decide(snapshot(body)))
    assert body["status"]["plan"]["accelerator"] == "nvidia-l4"
    for resources, expected in [
        ({"accelerators": ["nvidia-a100-80gb"]}, ("nvidia-a100-80gb", 1)),
        ({"accelerators": ["nvidia-l4"], "gpusPerReplica": 2}, ("nvidia-l4", 2)),
    ]:
        moved = copy.deepcopy(body)
        moved["spec"]["resources"] = resources
        d = decide(snapshot(moved, children=children))
        assert (d.status["plan"]["accelerator"], d.status["plan"]["gpusPerReplica"]) == expected
        assert cond(d, "Planned")["reason"] == "Planned"


def test_pods_left_outside_a_policy_that_now_governs_are_reported_without_a_write_loop() -> None:
    # Deployed unbound, then the namespace is bound to "eu": the rollout replaces pods one at a
    # time, and stalls when the EU is full, so a pod made before may keep running in the US.
    labels = {"modelplane.dev/residency": "eu"}
    body = mdep(SLM)
    body, children = settle(body, decide(snapshot(body, policies=[EU_POLICY], namespace_labels=labels)))

    def pod(name: str, node: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": {}}, "spec": {"nodeName": node}, "status": {}}

    pods = [pod("bot-eu", "eu-west-1a-l4-0"), pod("bot-us", "us-east-1a-l4-0")]
    kw: dict[str, Any] = {"policies": [EU_POLICY], "namespace_labels": labels, "children": children}
    d = decide(snapshot(body, pods=pods, **kw))
    rs = cond(d, "ResidencySatisfied")
    assert (rs["status"], rs["reason"]) == ("False", "PodsOutsidePolicy")
    assert "bot-us" in rs["message"]
    assert "us-east-1" in rs["message"]
    assert "bot-eu" not in rs["message"]
    assert any(e.type == "Warning" and e.reason == "PodsOutsidePolicy" for e in d.events)
    # Compliance before availability: the Deployment switches to a Recreate rollout.
    recreate = [c for c in d.apply if c["kind"] == "Deployment"]
    assert [c["spec"]["strategy"] for c in recreate] == [{"type": "Recreate"}]
    body["status"] = merge_patch(body["status"], d.status)
    assert not decide(snapshot(body, pods=pods, **kw)).status_changed, "said once, not rewritten"
    # A pod on its way out no longer counts; once none is outside, the policy is satisfied again.
    leaving = [pods[0], {**pods[1], "metadata": {**pods[1]["metadata"], "deletionTimestamp": "now"}}]
    back = decide(snapshot(body, pods=leaving, **kw))
    rs = cond(back, "ResidencySatisfied")
    assert (rs["status"], rs["reason"]) == ("True", "NamespaceBound")
    assert [c for c in back.apply if c["kind"] == "Deployment"] == [], "the usual rollout is back in place"
    # Without a policy nothing is outside it.
    rs = cond(decide(snapshot(mdep(SLM), pods=pods)), "ResidencySatisfied")
    assert (rs["status"], rs["reason"]) == ("True", "NoPolicy")


def test_autoscaling_is_reported_as_not_active_and_bounds_the_replicas() -> None:
    spec = {**SLM, "replicas": 9, "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 3}}
    d = decide(snapshot(mdep(spec)))
    auto = cond(d, "Autoscaling")
    assert auto["status"] == "False"
    assert auto["reason"] == "AutoscalerNotActive"
    assert d.status["desiredReplicas"] == 3
    deployment = next(c for c in d.apply if c["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 3
    off = decide(snapshot(mdep(SLM)))
    assert not [c for c in off.status["conditions"] if c["type"] == "Autoscaling"]


def group_pod(name: str, group: int, node: str | None, **meta: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "metadata": {"name": name, "labels": {"leaderworkerset.sigs.k8s.io/group-index": str(group)}, **meta},
        "spec": {"nodeName": node},
        "status": {"phase": "Running" if node else "Pending", "conditions": []},
    }
    if node is None:
        pod["status"]["conditions"] = [
            {"type": "PodScheduled", "status": "False", "message": "0/18 nodes are available"}
        ]
    return pod


@pytest.mark.parametrize(
    ("wanted", "live", "placed", "expected"),
    [
        (3, 0, [], 1),  # a new set starts with one group
        (3, 1, [(0, "a")], 1),  # group 0's worker is not placed yet: wait
        (3, 1, [(0, "a"), (0, "b")], 2),  # group 0 complete: admit group 1
        (3, 2, [(0, "a"), (0, "b"), (1, "c"), (1, None)], 2),  # group 1 waits: no group 2 yet
        (3, 3, [(0, "a"), (0, None)], 3),  # never shrinks (a rolling update, a lost node)
        (1, 3, [(0, "a"), (0, "b"), (1, "c"), (1, "d")], 1),  # scaling down is immediate
        (0, 2, [], 0),
    ],
)
def test_groups_are_admitted_one_at_a_time(
    wanted: int, live: int, placed: list[tuple[int, str | None]], expected: int
) -> None:
    pods = [group_pod(f"p{i}", g, node) for i, (g, node) in enumerate(placed)]
    assert groups_to_admit(wanted, live, pods, 2) == expected
    gone = [
        group_pod(f"d{i}", g, node, deletionTimestamp="2026-01-01T00:00:00Z")
        for i, (g, node) in enumerate(placed)
    ]
    assert groups_to_admit(wanted, live, gone, 2) == min(wanted, max(live, 1))


def test_a_multi_node_deployment_grows_by_placed_groups_and_names_the_waiting_one() -> None:
    body = mdep({**LLAMA_405B, "replicas": 3}, name="llama")
    first = decide(snapshot(body))
    (lws,) = [c for c in first.apply if c["kind"] == "LeaderWorkerSet"]
    assert lws["spec"]["replicas"] == 1
    assert first.status["desiredReplicas"] == 3
    body, children = settle(body, first, ready=1)
    placed = [group_pod("llama-0", 0, "n0"), group_pod("llama-0-1", 0, "n1")]
    second = decide(snapshot(body, children=children, pods=placed))
    (lws,) = [c for c in second.apply if c["kind"] == "LeaderWorkerSet"]
    assert lws["spec"]["replicas"] == 2
    service = [c for c in children if c["kind"] == "Service"]
    body, children = settle(body, second, ready=1)
    children += service  # unchanged, so not in second.apply
    waiting = [*placed, group_pod("llama-1", 1, None), group_pod("llama-1-1", 1, None)]
    third = decide(snapshot(body, children=children, pods=waiting))
    assert third.apply == [], "group 2 is not created while group 1 waits"
    scheduled = cond(third, "Scheduled")
    assert scheduled["status"] == "False"
    assert "group llama-1 (pod llama-1)" in scheduled["message"]
    assert third.status["readySummary"] == "1/3"
    assert third.status["phase"] == "Pending"


def test_a_fleet_kept_between_reconciles_decides_the_same() -> None:
    from modelplane.placement import fleet_from_nodes

    labels = {"modelplane.dev/residency": "eu"}
    body = mdep(SLM)
    plain = decide(snapshot(body, policies=[EU_POLICY], namespace_labels=labels))
    kept = decide(
        snapshot(body, policies=[EU_POLICY], namespace_labels=labels, fleet=fleet_from_nodes(NODES))
    )
    assert kept == plain
    # A taint the pods do not tolerate keeps a node out, read from the kept inventory too.
    tainted = [copy.deepcopy(n) for n in NODES]
    for node in tainted:
        node.setdefault("spec", {})["taints"] = [{"key": "maintenance", "value": "x", "effect": "NoSchedule"}]
    none = decide(snapshot(body, nodes=tainted, fleet=fleet_from_nodes(tainted)))
    assert cond(none, "Planned")["status"] == "False"


def test_a_child_the_api_server_refuses_is_reported_once_not_retried() -> None:
    from modelplane.reconcile import refused_by_api_server

    body = mdep(SLM)
    d = decide(snapshot(body))
    message = 'Deployment.apps "bot" is invalid: spec.template.spec.containers[0].env[0].valueFrom: Invalid'
    report = refused_by_api_server(d, body["status"], 1, NOW, message)
    assert report.apply == []
    assert report.delete == []
    ready = cond(report, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "ApplyFailed"
    assert "valueFrom" in ready["message"]
    assert report.status["phase"] == "Failed"
    assert report.status["plan"] == d.status["plan"], "the plan it tried to run is still shown"
    assert any(e.type == "Warning" and e.reason == "ApplyFailed" for e in report.events)
    stored = merge_patch(body["status"], report.status)
    # The next reconcile tries once more, is refused the same way, and writes nothing new.
    again = refused_by_api_server(decide(snapshot({**body, "status": stored})), stored, 1, NOW, message)
    assert not again.status_changed
    assert again.events == []
