"""Residency: which ResidencyPolicy governs a ModelDeployment, and where that lets it run.

`resolve_residency` decides; the operator turns the decision into the `ResidencySatisfied`
condition, an event, and (unless refused) pods whose required node affinity comes from
`build_node_affinity` (re-exported here from `placement.affinity`). Nothing here does I/O.

The rules, in order:

1. A namespace bound by two or more policies (their namespaceSelectors match its labels) is
   refused (`AmbiguousPolicy`): the operator never picks one by chance.
2. A namespace bound by one policy gets that policy whatever the spec asks (`NamespaceBound`);
   a spec naming a different policy is refused (`PolicyConflict`).
3. Outside bound namespaces the spec may name a policy (`PolicyRequested`).
4. Else the operator's default policy, when configured (`DefaultPolicy`).
5. Else no residency constraint (`NoPolicy`).

A policy that is named (by the spec, by the operator's default, or as the one last applied to the
deployment) but does not exist gives `Unknown`/`PolicyMissing` with `keep_existing`: the operator
must not drop the constraint. It creates nothing new and leaves running pods, whose affinity still
carries the last applied policy, where they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from modelplane.api import ResidencyPolicy

from .affinity import (
    GPU_PRODUCT_LABEL,
    NODE_NAME_FIELD,
    PREFERRED,
    REQUIRED,
    accelerator_node_terms,
    admits,
    build_node_affinity,
    matches_node_selector_requirement,
    matches_node_selector_terms,
    node_fields,
    tolerates,
    toleration_tolerates_taint,
)

__all__ = [
    "AMBIGUOUS_POLICY",
    "DEFAULT_POLICY",
    "GPU_PRODUCT_LABEL",
    "NAMESPACE_BOUND",
    "NODE_NAME_FIELD",
    "NO_POLICY",
    "PODS_OUTSIDE_POLICY",
    "POLICY_CONFLICT",
    "POLICY_MISSING",
    "POLICY_REQUESTED",
    "PREFERRED",
    "REGION_LABEL",
    "REQUIRED",
    "ResidencyDecision",
    "accelerator_node_terms",
    "admits",
    "binding_policies",
    "build_node_affinity",
    "matches_node_selector_requirement",
    "matches_node_selector_terms",
    "node_fields",
    "policy_admits",
    "policy_regions",
    "resolve_residency",
    "tolerates",
    "toleration_tolerates_taint",
]

REGION_LABEL = "topology.kubernetes.io/region"

# Reasons of the ResidencySatisfied condition.
NAMESPACE_BOUND = "NamespaceBound"
POLICY_REQUESTED = "PolicyRequested"
DEFAULT_POLICY = "DefaultPolicy"
NO_POLICY = "NoPolicy"
POLICY_CONFLICT = "PolicyConflict"
AMBIGUOUS_POLICY = "AmbiguousPolicy"
POLICY_MISSING = "PolicyMissing"
# The policy governs, but pods placed before it did still run on nodes it does not allow.
PODS_OUTSIDE_POLICY = "PodsOutsidePolicy"

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class ResidencyDecision:
    """Which policy governs a ModelDeployment, as a ResidencySatisfied condition plus what to do.

    - `policy`: the policy to merge into the pods' required node affinity; None when refused,
      missing, or when no residency applies (`reason == NO_POLICY`).
    - `refused`: create or update no children (AmbiguousPolicy, PolicyConflict).
    - `keep_existing`: the governing policy is missing (PolicyMissing). Do not re-plan, create or
      change children; running pods keep the affinity they were given. Never treat this like
      NoPolicy: that would drop the constraint.
    - `policy_name`: the policy that governs (or should: the missing one); None for NoPolicy and
      AmbiguousPolicy. It is what the operator records as "last applied".
    - `involved`: every policy name the decision depends on, sorted; index deployments by these so
      that a change to any of them re-reconciles the deployment.
    """

    policy: ResidencyPolicy | None
    status: ConditionStatus
    reason: str
    message: str
    bound: bool
    refused: bool
    keep_existing: bool = False
    policy_name: str | None = None
    involved: tuple[str, ...] = field(default=())


def binding_policies(
    namespace_labels: Mapping[str, str], policies: Iterable[ResidencyPolicy]
) -> list[ResidencyPolicy]:
    """The policies whose namespaceSelector matches the namespace, sorted by name.

    A policy without a namespaceSelector binds no namespace; an empty selector (`{}`) binds every
    namespace, as label selectors do.
    """
    labels = dict(namespace_labels)
    bound = [
        p
        for p in policies
        if p.spec.namespace_selector is not None and p.spec.namespace_selector.matches(labels)
    ]
    return sorted(bound, key=lambda p: p.metadata.name)


def _missing(name: str, why: str, *, bound: bool = False) -> ResidencyDecision:
    return ResidencyDecision(
        policy=None,
        status="Unknown",
        reason=POLICY_MISSING,
        message=(
            f"residency policy {name} ({why}) does not exist; nothing new is created and running "
            "pods keep the placement last applied"
        ),
        bound=bound,
        refused=False,
        keep_existing=True,
        policy_name=name,
        involved=(name,),
    )


def resolve_residency(
    namespace: str,
    namespace_labels: Mapping[str, str],
    requested: str | None,
    policies: Sequence[ResidencyPolicy],
    default_policy: str | None,
    *,
    last_applied: str | None = None,
) -> ResidencyDecision:
    """Which policy governs a ModelDeployment in `namespace` that asks for `requested`.

    `policies` are all ResidencyPolicies that exist; `default_policy` is the operator's configured
    default. `last_applied` is the policy the deployment's pods were last built with, if any: when
    it no longer exists and nothing else (a binding, or an existing requested policy) takes its
    place, the decision is PolicyMissing rather than a silent fall back to the default or to none.
    """
    by_name = {p.metadata.name: p for p in policies}
    bound = binding_policies(namespace_labels, policies)

    if len(bound) > 1:
        names = tuple(p.metadata.name for p in bound)
        return ResidencyDecision(
            policy=None,
            status="False",
            reason=AMBIGUOUS_POLICY,
            message=(
                f"namespace {namespace} is bound by {len(names)} residency policies ({', '.join(names)}); "
                "a namespace may be bound by one only, so nothing is created until the platform team "
                "fixes their namespaceSelectors"
            ),
            bound=True,
            refused=True,
            involved=tuple(sorted({*names, *([requested] if requested else [])})),
        )

    if len(bound) == 1:
        policy = bound[0]
        name = policy.metadata.name
        if requested is not None and requested != name:
            return ResidencyDecision(
                policy=None,
                status="False",
                reason=POLICY_CONFLICT,
                message=(
                    f"namespace {namespace} is bound to residency policy {name}, but "
                    f"spec.placement.residency asks for {requested}; a bound namespace cannot use "
                    f"another policy (remove spec.placement.residency or set it to {name})"
                ),
                bound=True,
                refused=True,
                policy_name=name,
                involved=tuple(sorted({name, requested})),
            )
        return ResidencyDecision(
            policy=policy,
            status="True",
            reason=NAMESPACE_BOUND,
            message=f"namespace {namespace} is bound to residency policy {name}",
            bound=True,
            refused=False,
            policy_name=name,
            involved=(name,),
        )

    if requested is not None:
        if requested not in by_name:
            return _missing(requested, "named by spec.placement.residency")
        return ResidencyDecision(
            policy=by_name[requested],
            status="True",
            reason=POLICY_REQUESTED,
            message=f"residency policy {requested} requested by spec.placement.residency",
            bound=False,
            refused=False,
            policy_name=requested,
            involved=(requested,),
        )

    if last_applied is not None and last_applied not in by_name:
        return _missing(last_applied, "last applied to this deployment")

    if default_policy is not None:
        if default_policy not in by_name:
            return _missing(default_policy, "the operator's default")
        return ResidencyDecision(
            policy=by_name[default_policy],
            status="True",
            reason=DEFAULT_POLICY,
            message=f"residency policy {default_policy} applies as the operator's default",
            bound=False,
            refused=False,
            policy_name=default_policy,
            involved=(default_policy,),
        )

    return ResidencyDecision(
        policy=None,
        status="True",
        reason=NO_POLICY,
        message="no residency policy applies",
        bound=False,
        refused=False,
    )


def policy_admits(
    policy: ResidencyPolicy | None, node_labels: Mapping[str, str], node_name: str | None = None
) -> bool:
    """Whether the policy allows a node (no policy allows every node)."""
    if policy is None:
        return True
    return matches_node_selector_terms(node_labels, policy.spec.node_selector_terms, node_fields(node_name))


def policy_regions(policy: ResidencyPolicy | None, nodes_labels: Iterable[Mapping[str, str]]) -> list[str]:
    """The sorted regions (topology.kubernetes.io/region) of the nodes the policy admits.

    Nodes without a region label count for no region. Only labels are known here, so a policy
    term that selects by node name (matchFields) admits none of these nodes.
    """
    regions = {
        labels[REGION_LABEL]
        for labels in nodes_labels
        if REGION_LABEL in labels and policy_admits(policy, labels)
    }
    return sorted(regions)
