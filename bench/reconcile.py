"""The pure reconcile's cost per call, and the node-affinity build.

`decide(Snapshot(...))` is what every reconcile runs (a watch event, a Node change, a periodic
resync): parse the spec, resolve residency, split the fleet, plan (twice in a steady state: the
fresh plan and the running plan's shape), build the children, compare them with the live ones and
work out the status. The benchmark times it for deployments whose children are already live and
settled — the case that happens most and must write nothing (each row checks that it writes
nothing) — on the example fleet (18 nodes) and on a synthetic fleet of 2,000 nodes.

The affinity rows time `build_node_affinity` for a residency policy with P terms AND the user's
required affinity with U terms (the AND of ORed term lists is their cross product: P x U terms).
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
from typing import Any

from modelplane import api
from modelplane.config import OperatorConfig
from modelplane.placement import fleet_from_nodes
from modelplane.placement.affinity import accelerator_node_terms, build_node_affinity
from modelplane.reconcile import Decision, Snapshot, decide, merge_patch

from .common import (
    example_model_deployments,
    example_nodes,
    heading,
    machine,
    measure,
    ms,
    synthetic_nodes,
    table,
)

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
EXAMPLES = ("chat-slm.yaml", "eu-residency.yaml", "llm-70b-sharded.yaml", "llm-405b-multinode.yaml")
WORKLOADS = ("Deployment", "LeaderWorkerSet")


def _body(doc: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(doc)
    body["metadata"] = {
        **body["metadata"],
        "namespace": body["metadata"].get("namespace", "team-a"),
        "uid": "uid-bench",
        "generation": 1,
        "resourceVersion": "1",
    }
    body["status"] = {}
    return body


def _settle(
    body: dict[str, Any], decision: Decision, children: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The cluster after the decision is carried out and the workload is Ready: (body, children, pods)."""
    body = copy.deepcopy(body)
    body["status"] = merge_patch(body.get("status") or {}, decision.status)
    live = {(c["kind"], c["metadata"]["name"]): c for c in children}
    for child in decision.apply:
        obj = copy.deepcopy(child)
        obj["metadata"]["generation"] = 1
        if obj["kind"] in WORKLOADS:
            n = obj["spec"]["replicas"]
            obj["status"] = {"replicas": n, "readyReplicas": n, "updatedReplicas": n, "observedGeneration": 1}
        live[(obj["kind"], obj["metadata"]["name"])] = obj
    pods = []
    name = body["metadata"]["name"]
    for child in live.values():
        if child["kind"] in WORKLOADS:
            for i in range(child["spec"]["replicas"]):
                pods.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": f"{name}-{i}", "labels": {"modelplane.dev/deployment": name}},
                        "status": {
                            "phase": "Running",
                            "conditions": [
                                {"type": "PodScheduled", "status": "True"},
                                {"type": "Ready", "status": "True"},
                            ],
                        },
                    }
                )
    return body, list(live.values()), pods


def steady_snapshot(
    doc: dict[str, Any],
    nodes: list[dict[str, Any]],
    policies: list[dict[str, Any]],
    namespace_labels: dict[str, Any],
    config: OperatorConfig,
) -> Snapshot:
    """A snapshot of `doc` after its reconciles have converged: decide() on it must write nothing."""
    body = _body(doc)
    labels = namespace_labels.get(body["metadata"]["namespace"], {})
    children: list[dict[str, Any]] = []
    pods: list[dict[str, Any]] = []
    fleet = fleet_from_nodes(nodes)  # the operator keeps it between reconciles, until a Node changes
    for _ in range(4):
        snap = Snapshot(body, nodes, policies, labels, children, pods, True, config, NOW, fleet=fleet)
        decision = decide(snap)
        if not decision.apply and not decision.delete and not decision.status_changed:
            return snap
        body, children, pods = _settle(body, decision, children)
    raise RuntimeError(f"{doc['metadata']['name']} did not settle: {decision}")


def _affinity_case(policy_terms: int, user_terms: int) -> tuple[Any, int]:
    def term(prefix: str, i: int) -> dict[str, Any]:
        return {
            "matchExpressions": [
                {"key": f"{prefix}.example.com/zone", "operator": "In", "values": [f"z{i}a", f"z{i}b"]},
                {"key": f"{prefix}.example.com/tier", "operator": "NotIn", "values": ["spot"]},
            ]
        }

    policy = api.parse_residency_policy(
        {
            "apiVersion": "modelplane.dev/v1alpha1",
            "kind": "ResidencyPolicy",
            "metadata": {"name": "bench"},
            "spec": {"nodeSelectorTerms": [term("policy", i) for i in range(policy_terms)]},
        }
    )
    placement = api.PlacementSpec.model_validate(
        {
            "nodeSelector": {"team": "a", "pool": "serving"},
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [term("user", i) for i in range(user_terms)]
                }
            },
        }
    )
    accelerator = accelerator_node_terms(["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-SXM5-80GB"])

    def call() -> dict[str, object]:
        return build_node_affinity(accelerator, policy, placement)

    out = call()
    required: Any = out["requiredDuringSchedulingIgnoredDuringExecution"]
    return call, len(required["nodeSelectorTerms"])


def run() -> None:
    config = OperatorConfig()
    print(heading("reconcile: decide(Snapshot) in a steady state (children live and Ready)"))
    print(machine())
    print("timed: decide(snapshot); >= 50 calls and >= 0.5 s per row; every row writes nothing\n")
    docs = {file: (doc, policies, labels) for file, doc, policies, labels in example_model_deployments()}
    rows = []
    for fleet_name, nodes in (("example-18", example_nodes()), ("synthetic-2000", synthetic_nodes(2000))):
        for file in EXAMPLES:
            doc, policies, labels = docs[file]
            snap = steady_snapshot(doc, nodes, policies, labels, config)
            decision = decide(snap)
            writes = len(decision.apply) + len(decision.delete) + int(decision.status_changed)
            timing = measure(functools.partial(decide, snap))
            kinds = "+".join(sorted(c["kind"] for c in snap.children))
            rows.append(
                [
                    file,
                    fleet_name,
                    len(nodes),
                    kinds,
                    writes,
                    timing.runs,
                    ms(timing.median),
                    ms(timing.p95),
                    f"{timing.per_second:,.0f}",
                ]
            )
    print(
        table(
            ["example", "fleet", "nodes", "children", "writes", "runs", "median ms", "p95 ms", "calls/s"],
            rows,
            align="llrlrrrrr",
        )
    )

    print(heading("affinity: build_node_affinity(accelerator, policy with P terms, user with U terms)"))
    rows = []
    for p, u in ((1, 1), (4, 4), (8, 8), (16, 16)):
        call, terms = _affinity_case(p, u)
        timing = measure(call)
        rows.append(
            [f"{p} x {u}", terms, timing.runs, ms(timing.median), ms(timing.p95), f"{timing.per_second:,.0f}"]
        )
    print(table(["P x U", "terms out", "runs", "median ms", "p95 ms", "builds/s"], rows))
