"""The planner's speed: one `plan_deployment` per example ModelDeployment, on the example fleet
(18 nodes) and on a synthetic fleet of 2,000 nodes (10 accelerator types x 12 regions).

The fleet is turned into an inventory and split by the example's residency policy once, outside
the timed call, as the operator has it at hand; the timed call is the planner alone: every
accelerator type, every shape, the choice, the rejected candidates and the plan.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelplane import api
from modelplane.config import OperatorConfig
from modelplane.placement import fleet_from_nodes
from modelplane.placement.residency import resolve_residency
from modelplane.reconcile import split_fleet
from modelplane.sizing import PlanResult, plan_deployment

from .common import (
    SYNTHETIC_REGIONS,
    SYNTHETIC_SHAPES,
    example_model_deployments,
    example_nodes,
    heading,
    machine,
    measure,
    ms,
    synthetic_nodes,
    table,
)

SYNTHETIC_NODES = 2000


@dataclass(frozen=True)
class Case:
    example: str
    name: str
    fleet: str
    nodes: int
    call: Callable[[], PlanResult]


def _cases(fleet_name: str, nodes: list[dict[str, Any]], config: OperatorConfig) -> list[Case]:
    cases: list[Case] = []
    for file, doc, raw_policies, namespace_labels in example_model_deployments():
        md = api.parse_model_deployment(doc)
        namespace = md.metadata.namespace or "default"
        policies = [api.parse_residency_policy(p) for p in raw_policies]
        decision = resolve_residency(
            namespace,
            namespace_labels.get(namespace, {}),
            md.spec.placement.residency,
            policies,
            config.default_residency_policy,
        )
        allowed, excluded = split_fleet(fleet_from_nodes(nodes), md.spec, decision.policy, config)
        call = functools.partial(plan_deployment, md.spec, allowed, config, excluded=excluded)
        cases.append(Case(file, md.metadata.name, fleet_name, len(allowed) + len(excluded), call))
    return cases


def run() -> None:
    config = OperatorConfig()
    print(heading("planner: plan_deployment per example ModelDeployment"))
    print(machine())
    print(
        f"fleets: examples/cluster/nodes.yaml (18 nodes); synthetic ({SYNTHETIC_NODES} nodes, "
        f"{len(SYNTHETIC_SHAPES)} accelerator types x {len(SYNTHETIC_REGIONS)} regions x 3 zones)"
    )
    print("timed: plan_deployment(spec, allowed, config, excluded); >= 50 calls and >= 0.5 s per row\n")
    rows = []
    fleets = [
        ("example-18", example_nodes()),
        (f"synthetic-{SYNTHETIC_NODES}", synthetic_nodes(SYNTHETIC_NODES)),
    ]
    for fleet_name, nodes in fleets:
        for case in _cases(fleet_name, nodes, config):
            result: PlanResult = case.call()
            outcome = (
                result.plan.accelerator_summary if result.plan is not None else f"no plan ({result.reason})"
            )
            timing = measure(case.call)
            rows.append(
                [
                    case.example,
                    case.fleet,
                    case.nodes,
                    outcome,
                    timing.runs,
                    ms(timing.median),
                    ms(timing.p95),
                    f"{timing.per_second:,.0f}",
                ]
            )
    print(
        table(
            ["example", "fleet", "nodes", "plan", "runs", "median ms", "p95 ms", "plans/s"],
            rows,
            align="llrlrrrr",
        )
    )
