"""Property: the built required affinity admits exactly the nodes every constraint admits.

Random residency policies, random user placements (nodeSelector, required and preferred node
affinity, tolerations), random accelerator terms and random nodes, all over one small label
universe so that they often agree and often disagree. For every node:

    admitted by the built affinity (and its taints tolerated)
        <=> policy AND accelerator AND nodeSelector AND user's required terms AND tolerations.

The right-hand side evaluates each constraint on its own, as the scheduler would if it were given
them separately; the left-hand side is the one cross-product affinity the operator writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelplane.api import (
    NodeAffinity,
    NodeSelector,
    NodeSelectorOperator,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    PlacementSpec,
    ResidencyPolicy,
    ResidencyPolicySpec,
    Toleration,
)
from modelplane.api.model_deployment import ObjectMeta
from modelplane.placement.affinity import (
    PREFERRED,
    REQUIRED,
    accelerator_node_terms,
    admits,
    build_node_affinity,
    matches_node_selector_terms,
    tolerates,
)

# The label universe: key -> the values nodes may carry (a few are not integers, for Gt/Lt).
UNIVERSE: dict[str, list[str]] = {
    "topology.kubernetes.io/region": ["eu-west-1", "us-east-1"],
    "topology.kubernetes.io/zone": ["eu-west-1a", "us-east-1d"],
    "node-restriction.kubernetes.io/residency": ["eu", "us"],
    "nvidia.com/gpu.product": ["NVIDIA-L4", "NVIDIA-H100-80GB-HBM3"],
    "nvidia.com/gpu.count": ["1", "8", "many"],
}
KEYS = sorted(UNIVERSE)
COUNT = "nvidia.com/gpu.count"
INTEGERS = ["-1", "0", "1", "2", "4", "8"]
NAMES = ["node-a", "node-b"]
TAINT_KEYS = ["nvidia.com/gpu", "dedicated"]
TAINT_VALUES = ["present", "serving"]
EFFECTS = ["NoSchedule", "NoExecute", "PreferNoSchedule"]

SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# Strategies are built once here: building them inside composites would cost more than the test.
_ops = st.sampled_from(list(NodeSelectorOperator))
_keys = st.sampled_from(KEYS)
_integers = st.sampled_from(INTEGERS)
_value_of = {k: st.sampled_from(v) for k, v in UNIVERSE.items()}
_values_of = {
    k: st.lists(st.sampled_from(v), min_size=1, max_size=2, unique=True) for k, v in UNIVERSE.items()
}
_names = st.sampled_from(NAMES)
_field_ops = st.sampled_from([NodeSelectorOperator.IN, NodeSelectorOperator.NOT_IN])
_one_in = {n: st.integers(0, n - 1) for n in (3, 4, 5, 10)}


def _one_in_n(draw: st.DrawFn, n: int) -> bool:
    return draw(_one_in[n]) == 0


@st.composite
def requirements(draw: st.DrawFn) -> NodeSelectorRequirement:
    op = draw(_ops)
    if op in (NodeSelectorOperator.GT, NodeSelectorOperator.LT):
        # Mostly on the numeric label; sometimes on a label whose values are not integers.
        key = draw(_keys) if _one_in_n(draw, 4) else COUNT
        return NodeSelectorRequirement(key=key, operator=op, values=[draw(_integers)])
    key = draw(_keys)
    values: list[str] = []
    if op in (NodeSelectorOperator.IN, NodeSelectorOperator.NOT_IN):
        values = draw(_values_of[key])
    return NodeSelectorRequirement(key=key, operator=op, values=values)


@st.composite
def field_requirements(draw: st.DrawFn) -> NodeSelectorRequirement:
    return NodeSelectorRequirement(key="metadata.name", operator=draw(_field_ops), values=[draw(_names)])


_requirement_lists = st.lists(requirements(), min_size=1, max_size=2)
_field_requirement = field_requirements()


@st.composite
def terms(draw: st.DrawFn) -> NodeSelectorTerm:
    # Mostly one or two expressions, so that terms often admit something; sometimes an empty term,
    # sometimes a node name (matchFields).
    if _one_in_n(draw, 10):
        return NodeSelectorTerm()
    return NodeSelectorTerm(
        match_expressions=draw(_requirement_lists),
        match_fields=[draw(_field_requirement)] if _one_in_n(draw, 5) else [],
    )


term_lists = st.lists(terms(), min_size=1, max_size=3)


@st.composite
def policies(draw: st.DrawFn) -> ResidencyPolicy | None:
    if _one_in_n(draw, 10):
        return None
    return ResidencyPolicy(
        api_version="modelplane.dev/v1alpha1",
        kind="ResidencyPolicy",
        metadata=ObjectMeta(name="p"),
        spec=ResidencyPolicySpec(node_selector_terms=draw(term_lists)),
    )


_toleration_ops = st.sampled_from([None, "Equal", "Exists"])
_taint_keys = st.sampled_from(TAINT_KEYS)
_taint_keys_or_any = st.sampled_from([None, *TAINT_KEYS])
_taint_values = st.sampled_from(TAINT_VALUES)
_effects_or_any = st.sampled_from([None, *EFFECTS])


@st.composite
def tolerations(draw: st.DrawFn) -> Toleration:
    operator = draw(_toleration_ops)
    key = draw(_taint_keys_or_any) if operator == "Exists" else draw(_taint_keys)
    value = None if operator == "Exists" else draw(_taint_values)
    return Toleration(key=key, operator=operator, value=value, effect=draw(_effects_or_any))


_selected_keys = st.lists(_keys, max_size=2, unique=True)
_preferred_terms = st.lists(terms(), max_size=2)
_weights = st.integers(1, 100)
_toleration_lists = st.lists(tolerations(), max_size=2)


@st.composite
def placements(draw: st.DrawFn) -> PlacementSpec:
    node_selector = {k: draw(_value_of[k]) for k in draw(_selected_keys)}
    required = draw(term_lists) if _one_in_n(draw, 3) else None
    preferred: list[dict[str, object]] = [
        {"weight": draw(_weights), "preference": t.to_wire()} for t in draw(_preferred_terms)
    ]
    affinity = None
    if required is not None or preferred:
        affinity = NodeAffinity(
            required_during_scheduling_ignored_during_execution=(
                NodeSelector(node_selector_terms=required) if required is not None else None
            ),
            preferred_during_scheduling_ignored_during_execution=preferred,
        )
    return PlacementSpec(
        node_selector=node_selector, node_affinity=affinity, tolerations=draw(_toleration_lists)
    )


_products = st.lists(st.sampled_from(UNIVERSE["nvidia.com/gpu.product"]), min_size=1, unique=True)


@st.composite
def accelerator_terms(draw: st.DrawFn) -> list[NodeSelectorTerm]:
    kind = draw(_one_in[3])
    if kind == 0:
        return []
    if kind == 1:
        return accelerator_node_terms(draw(_products))
    return draw(term_lists)


@dataclass(frozen=True)
class Node:
    name: str
    labels: dict[str, str]
    taints: list[dict[str, str]]


_taint_lists = st.lists(
    st.fixed_dictionaries(
        {"key": _taint_keys, "effect": st.sampled_from(EFFECTS)}, optional={"value": _taint_values}
    ),
    max_size=1,
)


@st.composite
def nodes(draw: st.DrawFn) -> Node:
    # Each label is present four times in five, so that absent keys are common but not the rule.
    labels = {k: draw(_value_of[k]) for k in KEYS if not _one_in_n(draw, 5)}
    return Node(name=draw(_names), labels=labels, taints=draw(_taint_lists))


def satisfies_each(
    node: Node, accel: list[NodeSelectorTerm], policy: ResidencyPolicy | None, placement: PlacementSpec
) -> dict[str, bool]:
    fields = {"metadata.name": node.name}
    user = placement.node_affinity
    user_required = user.required_during_scheduling_ignored_during_execution if user else None
    return {
        "policy": policy is None
        or matches_node_selector_terms(node.labels, policy.spec.node_selector_terms, fields),
        "accelerator": not accel or matches_node_selector_terms(node.labels, accel, fields),
        "nodeSelector": all(node.labels.get(k) == v for k, v in placement.node_selector.items()),
        "userRequired": user_required is None
        or matches_node_selector_terms(node.labels, user_required.node_selector_terms, fields),
        "tolerations": tolerates(node.taints, placement.tolerations),
    }


@SETTINGS
@given(
    policy=policies(),
    placement=placements(),
    accel=accelerator_terms(),
    fleet=st.lists(nodes(), min_size=1, max_size=6),
)
def test_built_affinity_admits_exactly_the_nodes_every_constraint_admits(
    policy: ResidencyPolicy | None,
    placement: PlacementSpec,
    accel: list[NodeSelectorTerm],
    fleet: list[Node],
) -> None:
    affinity = build_node_affinity(accel, policy, placement)
    for node in fleet:
        each = satisfies_each(node, accel, policy, placement)
        admitted = admits(node.labels, affinity, node.name) and tolerates(node.taints, placement.tolerations)
        if admitted:  # soundness, spelled out: nothing outside the policy, ever
            assert each["policy"], (node, affinity)
        assert admitted == all(each.values()), (node, each, affinity)


@SETTINGS
@given(policy=policies(), placement=placements(), accel=accelerator_terms())
def test_required_affinity_is_present_whenever_something_constrains(
    policy: ResidencyPolicy | None, placement: PlacementSpec, accel: list[NodeSelectorTerm]
) -> None:
    affinity: dict[str, Any] = build_node_affinity(accel, policy, placement)
    user = placement.node_affinity
    constrained = (
        policy is not None
        or bool(accel)
        or bool(placement.node_selector)
        or (user is not None and user.required_during_scheduling_ignored_during_execution is not None)
    )
    assert (REQUIRED in affinity) == constrained
    if constrained:
        assert affinity[REQUIRED]["nodeSelectorTerms"], "a required node selector needs at least one term"
    preferred = user.preferred_during_scheduling_ignored_during_execution if user else []
    assert affinity.get(PREFERRED, []) == preferred


# A narrower universe, enumerated exhaustively: terms that pile several requirements onto the same
# two keys, where the pruning of contradictory terms has to be exactly right.
NARROW: dict[str, list[str]] = {"a": ["1", "2", "x"], "b": ["1", "9"]}
NARROW_NODES: list[dict[str, str]] = [
    {k: v for k, v in (("a", a), ("b", b)) if v is not None}
    for a in [None, *NARROW["a"]]
    for b in [None, *NARROW["b"]]
]
_narrow_keys = st.sampled_from(sorted(NARROW))
_narrow_values = {
    k: st.lists(st.sampled_from(v), min_size=1, max_size=2, unique=True) for k, v in NARROW.items()
}
_narrow_integers = st.sampled_from(["0", "1", "2", "5"])


@st.composite
def narrow_requirements(draw: st.DrawFn) -> NodeSelectorRequirement:
    key, op = draw(_narrow_keys), draw(_ops)
    if op in (NodeSelectorOperator.GT, NodeSelectorOperator.LT):
        return NodeSelectorRequirement(key=key, operator=op, values=[draw(_narrow_integers)])
    values = draw(_narrow_values[key]) if op in (NodeSelectorOperator.IN, NodeSelectorOperator.NOT_IN) else []
    return NodeSelectorRequirement(key=key, operator=op, values=values)


_narrow_terms = st.lists(
    st.builds(NodeSelectorTerm, match_expressions=st.lists(narrow_requirements(), min_size=0, max_size=4)),
    min_size=1,
    max_size=2,
)


@SETTINGS
@given(policy_terms=_narrow_terms, user_terms=_narrow_terms)
def test_and_of_two_term_lists_over_every_possible_node(
    policy_terms: list[NodeSelectorTerm], user_terms: list[NodeSelectorTerm]
) -> None:
    policy = ResidencyPolicy(
        api_version="modelplane.dev/v1alpha1",
        kind="ResidencyPolicy",
        metadata=ObjectMeta(name="p"),
        spec=ResidencyPolicySpec(node_selector_terms=policy_terms),
    )
    placement = PlacementSpec(
        node_affinity=NodeAffinity(
            required_during_scheduling_ignored_during_execution=NodeSelector(node_selector_terms=user_terms)
        )
    )
    affinity = build_node_affinity([], policy, placement)
    for labels in NARROW_NODES:
        expected = matches_node_selector_terms(labels, policy_terms) and matches_node_selector_terms(
            labels, user_terms
        )
        assert admits(labels, affinity) == expected, (labels, affinity)
