"""Table tests of node selector matching, tolerations and the built required node affinity."""

from __future__ import annotations

from typing import Any

import pytest

from modelplane.api import (
    NodeSelectorOperator,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    PlacementSpec,
    ResidencyPolicy,
    Toleration,
)
from modelplane.placement.affinity import (
    PREFERRED,
    REQUIRED,
    UNSATISFIABLE_KEY,
    accelerator_node_terms,
    admits,
    build_node_affinity,
    matches_node_selector_requirement,
    matches_node_selector_terms,
    tolerates,
)

REGION = "topology.kubernetes.io/region"
COUNT = "nvidia.com/gpu.count"
PRODUCT = "nvidia.com/gpu.product"


def req(key: str, op: str, *values: str) -> NodeSelectorRequirement:
    return NodeSelectorRequirement(key=key, operator=NodeSelectorOperator(op), values=list(values))


def term(
    *exprs: NodeSelectorRequirement, fields: tuple[NodeSelectorRequirement, ...] = ()
) -> NodeSelectorTerm:
    return NodeSelectorTerm(match_expressions=list(exprs), match_fields=list(fields))


def policy(name: str, terms: list[dict[str, Any]]) -> ResidencyPolicy:
    return ResidencyPolicy.model_validate(
        {
            "apiVersion": "modelplane.dev/v1alpha1",
            "kind": "ResidencyPolicy",
            "metadata": {"name": name},
            "spec": {"nodeSelectorTerms": terms},
        }
    )


EU = {REGION: "eu-west-1", COUNT: "8"}
NO_LABELS: dict[str, str] = {}


@pytest.mark.parametrize(
    ("labels", "requirement", "expected"),
    [
        (EU, req(REGION, "In", "eu-west-1", "eu-central-1"), True),
        (EU, req(REGION, "In", "us-east-1"), False),
        (NO_LABELS, req(REGION, "In", "eu-west-1"), False),
        (EU, req(REGION, "NotIn", "us-east-1"), True),
        (EU, req(REGION, "NotIn", "eu-west-1"), False),
        (NO_LABELS, req(REGION, "NotIn", "eu-west-1"), True),  # absent key: NotIn matches
        (EU, req(REGION, "Exists"), True),
        (NO_LABELS, req(REGION, "Exists"), False),
        (EU, req(REGION, "DoesNotExist"), False),
        (NO_LABELS, req(REGION, "DoesNotExist"), True),  # absent key: DoesNotExist matches
        (EU, req(COUNT, "Gt", "4"), True),
        (EU, req(COUNT, "Gt", "8"), False),  # strictly greater
        (EU, req(COUNT, "Lt", "9"), True),
        (EU, req(COUNT, "Lt", "8"), False),  # strictly less
        (EU, req(COUNT, "Gt", "-1"), True),
        (NO_LABELS, req(COUNT, "Gt", "0"), False),  # absent key: Gt never matches
        (NO_LABELS, req(COUNT, "Lt", "100"), False),  # absent key: Lt never matches
        ({COUNT: "eight"}, req(COUNT, "Gt", "1"), False),  # not an integer
        ({COUNT: "8.0"}, req(COUNT, "Lt", "100"), False),
        ({COUNT: " 8"}, req(COUNT, "Gt", "1"), False),  # Go's ParseInt takes no spaces
        ({COUNT: "+8"}, req(COUNT, "Gt", "1"), True),  # ...but takes a sign
        ({COUNT: "9223372036854775808"}, req(COUNT, "Gt", "1"), False),  # beyond int64
        ({COUNT: "-9223372036854775808"}, req(COUNT, "Lt", "0"), True),
        ({COUNT: "8"}, req(COUNT, "In", "8"), True),  # In compares strings
        ({COUNT: "08"}, req(COUNT, "In", "8"), False),
        ({COUNT: "08"}, req(COUNT, "Gt", "7"), True),  # Gt compares integers
    ],
)
def test_requirement(labels: dict[str, str], requirement: NodeSelectorRequirement, expected: bool) -> None:
    assert matches_node_selector_requirement(labels, requirement) is expected


def test_malformed_requirement_matches_nothing() -> None:
    # The API model refuses these; a requirement built around it (model_construct) must not match.
    not_in_without_values = NodeSelectorRequirement.model_construct(
        key=REGION, operator=NodeSelectorOperator.NOT_IN, values=[]
    )
    gt_two_values = NodeSelectorRequirement.model_construct(
        key=COUNT, operator=NodeSelectorOperator.GT, values=["1", "2"]
    )
    assert not matches_node_selector_requirement(EU, not_in_without_values)
    assert not matches_node_selector_requirement(EU, gt_two_values)
    # ...and only its own term fails: another term of the same list still matches.
    terms = [NodeSelectorTerm.model_construct(match_expressions=[gt_two_values], match_fields=[]), term()]
    assert not matches_node_selector_terms(EU, terms)
    terms.append(term(req(REGION, "Exists")))
    assert matches_node_selector_terms(EU, terms)


def test_terms_are_ored_and_expressions_anded() -> None:
    eu_and_big = term(req(REGION, "In", "eu-west-1"), req(COUNT, "Gt", "4"))
    us = term(req(REGION, "In", "us-east-1"))
    assert matches_node_selector_terms(EU, [eu_and_big])
    assert not matches_node_selector_terms({REGION: "eu-west-1", COUNT: "2"}, [eu_and_big])
    assert matches_node_selector_terms({REGION: "us-east-1"}, [eu_and_big, us])
    assert not matches_node_selector_terms({REGION: "ap-southeast-1"}, [eu_and_big, us])


def test_empty_terms_match_nothing() -> None:
    assert not matches_node_selector_terms(EU, [])
    assert not matches_node_selector_terms(EU, [term()])
    assert not matches_node_selector_terms(NO_LABELS, [term()])
    assert matches_node_selector_terms(EU, [term(), term(req(REGION, "Exists"))])


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"metadata.name": "node-a"}, True),
        ({"metadata.name": "node-b"}, False),
        (None, False),  # fields unknown: a matchFields term never admits by guess
    ],
)
def test_match_fields_in(fields: dict[str, str] | None, expected: bool) -> None:
    t = term(fields=(req("metadata.name", "In", "node-a"),))
    assert matches_node_selector_terms(EU, [t], fields) is expected


def test_match_fields_not_in_and_combined_with_expressions() -> None:
    not_a = term(req(REGION, "In", "eu-west-1"), fields=(req("metadata.name", "NotIn", "node-a"),))
    assert matches_node_selector_terms(EU, [not_a], {"metadata.name": "node-b"})
    assert not matches_node_selector_terms(EU, [not_a], {"metadata.name": "node-a"})
    assert not matches_node_selector_terms({REGION: "us-east-1"}, [not_a], {"metadata.name": "node-b"})
    # matchFields take In/NotIn with exactly one value; anything else makes the term match nothing.
    two_names = term(fields=(req("metadata.name", "In", "node-a", "node-b"),))
    exists = term(fields=(req("metadata.name", "Exists"),))
    assert not matches_node_selector_terms(EU, [two_names], {"metadata.name": "node-a"})
    assert not matches_node_selector_terms(EU, [exists], {"metadata.name": "node-a"})


GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
EVICT_TAINT = {"key": "maintenance", "effect": "NoExecute"}
SOFT_TAINT = {"key": "spot", "value": "true", "effect": "PreferNoSchedule"}


@pytest.mark.parametrize(
    ("taints", "tolerations", "expected"),
    [
        ([], [], True),
        ([GPU_TAINT], [], False),
        ([SOFT_TAINT], [], True),  # PreferNoSchedule never blocks
        ([GPU_TAINT], [Toleration(key="nvidia.com/gpu", operator="Exists")], True),
        ([GPU_TAINT], [Toleration(key="nvidia.com/gpu", operator="Equal", value="present")], True),
        ([GPU_TAINT], [Toleration(key="nvidia.com/gpu", value="present")], True),  # default operator Equal
        ([GPU_TAINT], [Toleration(key="nvidia.com/gpu", operator="Equal", value="absent")], False),
        ([GPU_TAINT], [Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoExecute")], False),
        ([GPU_TAINT], [Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")], True),
        ([GPU_TAINT, EVICT_TAINT], [Toleration(operator="Exists")], True),  # empty key + Exists: all
        ([GPU_TAINT, EVICT_TAINT], [Toleration(key="nvidia.com/gpu", operator="Exists")], False),
        (
            [GPU_TAINT, EVICT_TAINT],
            [
                Toleration(key="nvidia.com/gpu", operator="Exists"),
                Toleration(key="maintenance", operator="Exists"),
            ],
            True,
        ),
        ([EVICT_TAINT], [Toleration(key="maintenance", operator="Equal")], True),  # "" == absent value
        ([EVICT_TAINT], [Toleration(operator="Exists", effect="NoSchedule")], False),
    ],
)
def test_tolerates(taints: list[dict[str, str]], tolerations: list[Toleration], expected: bool) -> None:
    assert tolerates(taints, tolerations) is expected


EU_POLICY = policy(
    "eu", [{"matchExpressions": [{"key": REGION, "operator": "In", "values": ["eu-west-1", "eu-central-1"]}]}]
)


def test_accelerator_node_terms() -> None:
    terms = accelerator_node_terms(["NVIDIA-L4", "NVIDIA-A10G", "NVIDIA-L4"])
    assert terms == [term(req(PRODUCT, "In", "NVIDIA-A10G", "NVIDIA-L4"))]
    assert accelerator_node_terms(["x"], label_key="example.com/gpu")[0].match_expressions[0].key == (
        "example.com/gpu"
    )
    with pytest.raises(ValueError, match="at least one product"):
        accelerator_node_terms([])


def test_build_policy_and_accelerator_is_one_term() -> None:
    affinity = build_node_affinity(accelerator_node_terms(["NVIDIA-L4"]), EU_POLICY, PlacementSpec())
    assert affinity == {
        REQUIRED: {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": REGION, "operator": "In", "values": ["eu-west-1", "eu-central-1"]},
                        {"key": PRODUCT, "operator": "In", "values": ["NVIDIA-L4"]},
                    ]
                }
            ]
        }
    }
    assert PREFERRED not in affinity


def test_build_is_a_cross_product_of_ored_terms() -> None:
    two_regions = policy(
        "eu-or-us-big",
        [
            {"matchExpressions": [{"key": REGION, "operator": "In", "values": ["eu-west-1"]}]},
            {"matchExpressions": [{"key": REGION, "operator": "In", "values": ["us-east-1"]}]},
        ],
    )
    placement = PlacementSpec.model_validate(
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": COUNT, "operator": "Gt", "values": ["4"]}]},
                        {"matchExpressions": [{"key": "spot", "operator": "DoesNotExist"}]},
                    ]
                }
            }
        }
    )
    affinity = build_node_affinity([], two_regions, placement)
    required = affinity[REQUIRED]
    assert isinstance(required, dict)
    assert len(required["nodeSelectorTerms"]) == 4
    assert admits({REGION: "eu-west-1", COUNT: "8"}, affinity)
    assert admits({REGION: "us-east-1", COUNT: "1"}, affinity)  # no spot label
    assert not admits({REGION: "us-east-1", COUNT: "1", "spot": "true"}, affinity)
    assert not admits({REGION: "ap-southeast-1", COUNT: "8"}, affinity)


def test_build_folds_node_selector_into_required_terms() -> None:
    placement = PlacementSpec(node_selector={"pool": "serving", REGION: "eu-central-1"})
    affinity = build_node_affinity([], EU_POLICY, placement)
    assert affinity[REQUIRED] == {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [
                    {"key": REGION, "operator": "In", "values": ["eu-west-1", "eu-central-1"]},
                    {"key": "pool", "operator": "In", "values": ["serving"]},
                    {"key": REGION, "operator": "In", "values": ["eu-central-1"]},
                ]
            }
        ]
    }
    assert admits({REGION: "eu-central-1", "pool": "serving"}, affinity)
    assert not admits({REGION: "eu-west-1", "pool": "serving"}, affinity)


def test_user_outside_the_policy_gets_a_term_no_node_matches() -> None:
    # A user who asks for US nodes in an EU policy gets no node at all, never the US or "preferred".
    placement = PlacementSpec(node_selector={REGION: "us-east-1"})
    affinity = build_node_affinity([], EU_POLICY, placement)
    assert affinity == {
        REQUIRED: {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": UNSATISFIABLE_KEY, "operator": "Exists"},
                        {"key": UNSATISFIABLE_KEY, "operator": "DoesNotExist"},
                    ]
                }
            ]
        }
    }
    assert not admits({REGION: "us-east-1"}, affinity)
    assert not admits({REGION: "eu-west-1"}, affinity)
    assert not admits({UNSATISFIABLE_KEY: ""}, affinity)


def test_empty_user_term_does_not_widen_the_policy() -> None:
    # The user's [{}] admits nothing; concatenated naively with the policy's term it would admit EU.
    placement = PlacementSpec.model_validate(
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}}}
    )
    affinity = build_node_affinity([], EU_POLICY, placement)
    assert not admits({REGION: "eu-west-1"}, affinity)


def test_preferred_terms_are_carried_over_and_never_replace_required() -> None:
    preferred = [
        {
            "weight": 10,
            "preference": {"matchExpressions": [{"key": REGION, "operator": "In", "values": ["us-east-1"]}]},
        }
    ]
    placement = PlacementSpec.model_validate(
        {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}
    )
    affinity = build_node_affinity([], EU_POLICY, placement)
    assert affinity[PREFERRED] == preferred
    assert placement.node_affinity is not None
    assert (
        affinity[PREFERRED]
        is not placement.node_affinity.preferred_during_scheduling_ignored_during_execution
    )
    assert not admits({REGION: "us-east-1"}, affinity)  # preferring US does not admit US
    assert admits({REGION: "eu-west-1"}, affinity)


def test_no_constraint_builds_no_affinity() -> None:
    assert build_node_affinity([], None, PlacementSpec()) == {}
    assert admits({}, {})


def test_match_fields_are_concatenated() -> None:
    placement = PlacementSpec.model_validate(
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["eu-node-1"]}]}
                    ]
                }
            }
        }
    )
    affinity = build_node_affinity([], EU_POLICY, placement)
    required = affinity[REQUIRED]
    assert isinstance(required, dict)
    (only,) = required["nodeSelectorTerms"]
    assert only["matchFields"] == [{"key": "metadata.name", "operator": "In", "values": ["eu-node-1"]}]
    assert admits({REGION: "eu-west-1"}, affinity, node_name="eu-node-1")
    assert not admits({REGION: "eu-west-1"}, affinity, node_name="eu-node-2")
    assert not admits({REGION: "us-east-1"}, affinity, node_name="eu-node-1")
    assert not admits({REGION: "eu-west-1"}, affinity)  # name unknown


def test_admits_round_trips_beyond_the_api_models_size_limits() -> None:
    # 16 policy terms x 16 user terms is more than a NodeSelector model holds; the pod can hold it.
    regions = [f"r{i}" for i in range(16)]
    wide = policy(
        "wide", [{"matchExpressions": [{"key": REGION, "operator": "In", "values": [r]}]} for r in regions]
    )
    placement = PlacementSpec.model_validate(
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": [f"z{i}"]}]}
                        for i in range(16)
                    ]
                }
            }
        }
    )
    affinity = build_node_affinity([], wide, placement)
    required = affinity[REQUIRED]
    assert isinstance(required, dict)
    assert len(required["nodeSelectorTerms"]) == 256
    assert admits({REGION: "r15", "zone": "z3"}, affinity)
    assert not admits({REGION: "r16", "zone": "z3"}, affinity)
