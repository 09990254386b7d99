"""Table tests of which ResidencyPolicy governs a ModelDeployment, and of the regions it allows."""

from __future__ import annotations

from typing import Any

import pytest

from modelplane.api import ResidencyPolicy, parse_residency_policy
from modelplane.placement.residency import (
    AMBIGUOUS_POLICY,
    DEFAULT_POLICY,
    NAMESPACE_BOUND,
    NO_POLICY,
    POLICY_CONFLICT,
    POLICY_MISSING,
    POLICY_REQUESTED,
    REGION_LABEL,
    ResidencyDecision,
    binding_policies,
    policy_admits,
    policy_regions,
    resolve_residency,
)

RESIDENCY_NS_LABEL = "modelplane.dev/residency"


def policy(
    name: str, regions: list[str], namespace_selector: dict[str, Any] | None = None
) -> ResidencyPolicy:
    spec: dict[str, Any] = {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": REGION_LABEL, "operator": "In", "values": regions}]}
        ]
    }
    if namespace_selector is not None:
        spec["namespaceSelector"] = namespace_selector
    return parse_residency_policy(
        {
            "apiVersion": "modelplane.dev/v1alpha1",
            "kind": "ResidencyPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


EU = policy("eu", ["eu-west-1", "eu-central-1"], {"matchLabels": {RESIDENCY_NS_LABEL: "eu"}})
US = policy("us", ["us-east-1"], {"matchLabels": {RESIDENCY_NS_LABEL: "us"}})
GLOBAL = policy("global", ["eu-west-1", "eu-central-1", "us-east-1", "ap-southeast-1"])  # binds nothing
# Binds by the label the API server puts on every namespace.
HEALTH = policy(
    "health",
    ["eu-central-1"],
    {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["health"]}]},
)
ALL = [EU, US, GLOBAL, HEALTH]

EU_NS = {"kubernetes.io/metadata.name": "team-a", RESIDENCY_NS_LABEL: "eu"}
PLAIN_NS = {"kubernetes.io/metadata.name": "team-b"}


def resolve(
    labels: dict[str, str],
    requested: str | None,
    policies: list[ResidencyPolicy] = ALL,
    default: str | None = None,
    last_applied: str | None = None,
) -> ResidencyDecision:
    namespace = labels.get("kubernetes.io/metadata.name", "ns")
    return resolve_residency(namespace, labels, requested, policies, default, last_applied=last_applied)


def test_bound_namespace_without_request_gets_its_policy() -> None:
    d = resolve(EU_NS, None)
    assert (d.policy, d.status, d.reason, d.bound, d.refused, d.keep_existing) == (
        EU,
        "True",
        NAMESPACE_BOUND,
        True,
        False,
        False,
    )
    assert d.policy_name == "eu"
    assert "team-a" in d.message
    assert "eu" in d.message


def test_bound_namespace_with_the_same_request_gets_its_policy() -> None:
    d = resolve(EU_NS, "eu")
    assert (d.policy, d.status, d.reason, d.refused) == (EU, "True", NAMESPACE_BOUND, False)


def test_bound_namespace_ignores_the_operator_default() -> None:
    d = resolve(EU_NS, None, default="global")
    assert (d.policy, d.reason) == (EU, NAMESPACE_BOUND)


@pytest.mark.parametrize("requested", ["us", "global", "does-not-exist"])
def test_bound_namespace_asking_for_another_policy_is_refused(requested: str) -> None:
    d = resolve(EU_NS, requested)
    assert (d.policy, d.status, d.reason, d.bound, d.refused, d.keep_existing) == (
        None,
        "False",
        POLICY_CONFLICT,
        True,
        True,
        False,
    )
    assert "eu" in d.message
    assert requested in d.message  # names both
    assert d.involved == tuple(sorted({"eu", requested}))


def test_two_policies_binding_a_namespace_is_refused_not_resolved_by_chance() -> None:
    eu_too = policy("eu-strict", ["eu-central-1"], {"matchLabels": {RESIDENCY_NS_LABEL: "eu"}})
    for order in ([EU, eu_too, US], [eu_too, US, EU]):
        d = resolve(EU_NS, None, policies=order)
        assert (d.policy, d.status, d.reason, d.bound, d.refused) == (
            None,
            "False",
            AMBIGUOUS_POLICY,
            True,
            True,
        )
        assert "eu, eu-strict" in d.message
        assert d.involved == ("eu", "eu-strict")
    # Asking for one of them does not settle it either.
    d = resolve(EU_NS, "eu", policies=[EU, eu_too])
    assert (d.reason, d.refused) == (AMBIGUOUS_POLICY, True)


def test_empty_namespace_selector_binds_every_namespace() -> None:
    everywhere = policy("everywhere", ["eu-west-1"], {})
    d = resolve(PLAIN_NS, "us", policies=[everywhere, US])
    assert (d.reason, d.refused, d.policy_name) == (POLICY_CONFLICT, True, "everywhere")


def test_namespace_bound_by_its_name_label() -> None:
    d = resolve({"kubernetes.io/metadata.name": "health"}, None)
    assert (d.policy, d.reason) == (HEALTH, NAMESPACE_BOUND)


def test_unbound_namespace_may_name_a_policy() -> None:
    d = resolve(PLAIN_NS, "us")
    assert (d.policy, d.status, d.reason, d.bound, d.refused) == (US, "True", POLICY_REQUESTED, False, False)
    d = resolve(PLAIN_NS, "global", default="eu")  # a request beats the default
    assert (d.policy, d.reason) == (GLOBAL, POLICY_REQUESTED)


def test_unbound_namespace_naming_a_missing_policy_keeps_what_runs() -> None:
    d = resolve(PLAIN_NS, "apac")
    assert (d.policy, d.status, d.reason, d.bound, d.refused, d.keep_existing) == (
        None,
        "Unknown",
        POLICY_MISSING,
        False,
        False,
        True,
    )
    assert d.policy_name == "apac"
    assert "apac" in d.message
    # Distinguishable from "no residency": never a reason to drop the constraint.
    assert d != resolve(PLAIN_NS, None)


def test_operator_default_policy() -> None:
    d = resolve(PLAIN_NS, None, default="global")
    assert (d.policy, d.status, d.reason, d.refused) == (GLOBAL, "True", DEFAULT_POLICY, False)


def test_missing_operator_default_keeps_what_runs() -> None:
    d = resolve(PLAIN_NS, None, default="gone")
    assert (d.status, d.reason, d.keep_existing, d.policy_name) == ("Unknown", POLICY_MISSING, True, "gone")


def test_no_policy() -> None:
    d = resolve(PLAIN_NS, None)
    assert d == ResidencyDecision(
        policy=None,
        status="True",
        reason=NO_POLICY,
        message="no residency policy applies",
        bound=False,
        refused=False,
    )
    assert resolve(PLAIN_NS, None, policies=[]).reason == NO_POLICY


def test_deleted_bound_policy_is_missing_not_dropped() -> None:
    # eu bound team-a and was applied; then the platform team deleted it.
    without_eu = [US, GLOBAL]
    d = resolve(EU_NS, None, policies=without_eu, default="global", last_applied="eu")
    assert (d.status, d.reason, d.keep_existing, d.policy_name) == ("Unknown", POLICY_MISSING, True, "eu")
    # Without the record of what was applied, the namespace would look unbound: that is why
    # last_applied is passed.
    assert resolve(EU_NS, None, policies=without_eu, default="global").reason == DEFAULT_POLICY


def test_last_applied_that_still_exists_does_not_pin() -> None:
    # The namespace was unbound (label removed) while eu still exists: the default applies now.
    d = resolve(PLAIN_NS, None, default="global", last_applied="eu")
    assert (d.policy, d.reason) == (GLOBAL, DEFAULT_POLICY)


def test_binding_policies_sorted_and_selectorless_policies_bind_nothing() -> None:
    eu_too = policy("a-eu", ["eu-west-1"], {"matchLabels": {RESIDENCY_NS_LABEL: "eu"}})
    assert [p.metadata.name for p in binding_policies(EU_NS, [EU, GLOBAL, eu_too])] == ["a-eu", "eu"]
    assert binding_policies(PLAIN_NS, [GLOBAL]) == []


NODES = [
    {REGION_LABEL: "eu-west-1", "nvidia.com/gpu.product": "NVIDIA-L4"},
    {REGION_LABEL: "eu-central-1", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
    {REGION_LABEL: "eu-central-1", "nvidia.com/gpu.product": "NVIDIA-L4"},
    {REGION_LABEL: "us-east-1", "nvidia.com/gpu.product": "NVIDIA-L4"},
    {REGION_LABEL: "ap-southeast-1"},
    {"nvidia.com/gpu.product": "NVIDIA-L4"},  # no region label
]


def test_policy_regions() -> None:
    assert policy_regions(EU, NODES) == ["eu-central-1", "eu-west-1"]
    assert policy_regions(US, NODES) == ["us-east-1"]
    assert policy_regions(None, NODES) == ["ap-southeast-1", "eu-central-1", "eu-west-1", "us-east-1"]
    assert policy_regions(EU, []) == []
    assert policy_regions(policy("mars", ["mars-1"]), NODES) == []


def test_policy_regions_with_residency_label_not_region() -> None:
    by_label = parse_residency_policy(
        {
            "apiVersion": "modelplane.dev/v1alpha1",
            "kind": "ResidencyPolicy",
            "metadata": {"name": "eu"},
            "spec": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "node-restriction.kubernetes.io/residency",
                                "operator": "In",
                                "values": ["eu"],
                            }
                        ]
                    }
                ]
            },
        }
    )
    nodes = [
        {REGION_LABEL: "eu-west-1", "node-restriction.kubernetes.io/residency": "eu"},
        {REGION_LABEL: "eu-west-1"},  # in an EU region, but not vetted by the platform: excluded
        {REGION_LABEL: "us-east-1", "node-restriction.kubernetes.io/residency": "us"},
    ]
    assert policy_regions(by_label, nodes) == ["eu-west-1"]
    assert not policy_admits(by_label, nodes[1])
    assert policy_admits(None, nodes[1])
