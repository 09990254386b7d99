"""core/v1 node affinity in pure Python: matching, tolerations, and the AND of term lists.

Matching follows the scheduler's NodeAffinity filter (k8s.io/component-helpers, `nodeaffinity`):
terms are ORed, the requirements inside a term ANDed, and an empty term matches nothing. A term
whose requirements are malformed (e.g. `Gt` with two values) matches nothing either, while the
other terms still count, as with the scheduler's lazy-error selector.

One deliberate difference: the scheduler ignores `matchFields` for a node without a name (which
no real node is). Here a term with `matchFields` never matches when the node's fields are not
given, so a caller that knows only labels can never be told "admitted" by mistake.

`build_node_affinity` ANDs the accelerator's terms, a residency policy's terms and the user's own
placement into one required node affinity. Terms are ORed, so the AND of two term lists is their
cross product: every pair of terms, their requirements concatenated.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from modelplane.api import (
    NodeSelectorOperator,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    PlacementSpec,
    ResidencyPolicy,
    Toleration,
)

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
NODE_NAME_FIELD = "metadata.name"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
# The taint effects that keep a pod off a node (PreferNoSchedule only ranks).
BLOCKING_TAINT_EFFECTS = ("NoSchedule", "NoExecute")
# When the AND of the constraints admits no node at all, the required affinity still has to say
# so: a term that no set of labels can satisfy. Never an empty list, never a fallback.
UNSATISFIABLE_KEY = "modelplane.dev/unsatisfiable"

_Op = NodeSelectorOperator
_INT64 = re.compile(r"[+-]?[0-9]+")  # the syntax of Go's strconv.ParseInt(s, 10, 64)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_int64(text: str) -> int | None:
    if _INT64.fullmatch(text) is None:
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _well_formed(req: NodeSelectorRequirement) -> bool:
    """The checks labels.NewRequirement makes on operator and values (malformed → no match)."""
    if req.operator in (_Op.IN, _Op.NOT_IN):
        return len(req.values) > 0
    if req.operator in (_Op.EXISTS, _Op.DOES_NOT_EXIST):
        return not req.values
    return len(req.values) == 1 and _parse_int64(req.values[0]) is not None


def matches_node_selector_requirement(labels: Mapping[str, str], req: NodeSelectorRequirement) -> bool:
    """One matchExpressions requirement against a node's labels.

    `NotIn` and `DoesNotExist` match a node without the key; `Gt`/`Lt` compare 64-bit integers and
    never match a node without the key or with a value that is not an integer.
    """
    if not _well_formed(req):
        return False
    present = req.key in labels
    op = req.operator
    if op is _Op.IN:
        return present and labels[req.key] in req.values
    if op is _Op.NOT_IN:
        return not present or labels[req.key] not in req.values
    if op is _Op.EXISTS:
        return present
    if op is _Op.DOES_NOT_EXIST:
        return not present
    if not present:
        return False
    value, bound = _parse_int64(labels[req.key]), _parse_int64(req.values[0])
    if value is None or bound is None:
        return False
    return value > bound if op is _Op.GT else value < bound


def _matches_field_requirement(fields: Mapping[str, str], req: NodeSelectorRequirement) -> bool:
    """matchFields support `In` and `NotIn` with exactly one value; anything else is malformed."""
    if req.operator not in (_Op.IN, _Op.NOT_IN) or len(req.values) != 1:
        return False
    equal = fields.get(req.key, "") == req.values[0]
    return equal if req.operator is _Op.IN else not equal


@dataclass(frozen=True)
class _Term:
    """A node selector term without the API model's size limits, for building cross products."""

    expressions: tuple[NodeSelectorRequirement, ...]
    fields: tuple[NodeSelectorRequirement, ...]

    @staticmethod
    def of(term: NodeSelectorTerm) -> _Term:
        return _Term(tuple(term.match_expressions), tuple(term.match_fields))

    def empty(self) -> bool:
        return not self.expressions and not self.fields

    def matches(self, labels: Mapping[str, str], fields: Mapping[str, str] | None) -> bool:
        if self.empty():
            return False
        if not all(matches_node_selector_requirement(labels, r) for r in self.expressions):
            return False
        if self.fields:
            if not fields:
                return False
            return all(_matches_field_requirement(fields, r) for r in self.fields)
        return True

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {}
        if self.expressions:
            wire["matchExpressions"] = [_requirement_to_wire(r) for r in self.expressions]
        if self.fields:
            wire["matchFields"] = [_requirement_to_wire(r) for r in self.fields]
        return wire


def _requirement_to_wire(req: NodeSelectorRequirement) -> dict[str, object]:
    wire: dict[str, object] = {"key": req.key, "operator": req.operator.value}
    if req.values:
        wire["values"] = list(req.values)
    return wire


def matches_node_selector_terms(
    labels: Mapping[str, str],
    terms: Sequence[NodeSelectorTerm],
    fields: Mapping[str, str] | None = None,
) -> bool:
    """Whether a node (its labels; `fields` such as {"metadata.name": name}) satisfies the terms.

    Terms are ORed, the requirements of a term ANDed; an empty term, or an empty list of terms,
    matches nothing.
    """
    return any(_Term.of(t).matches(labels, fields) for t in terms)


def node_fields(node_name: str | None) -> dict[str, str] | None:
    """The fields matchFields can select on, as the scheduler builds them."""
    return {NODE_NAME_FIELD: node_name} if node_name else None


# --- tolerations -------------------------------------------------------------------------------


def toleration_tolerates_taint(toleration: Toleration, taint: Mapping[str, object]) -> bool:
    """core/v1 Toleration.ToleratesTaint. `taint` is a node's taint as the API serves it."""
    if toleration.effect and toleration.effect != taint.get("effect"):
        return False
    if toleration.key and toleration.key != taint.get("key"):
        return False
    operator = toleration.operator or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.value or "") == (taint.get("value") or "")
    return False


def tolerates(taints: Iterable[Mapping[str, object]], tolerations: Sequence[Toleration]) -> bool:
    """Whether every NoSchedule/NoExecute taint of a node is tolerated (the scheduler's filter)."""
    return all(
        any(toleration_tolerates_taint(t, taint) for t in tolerations)
        for taint in taints
        if taint.get("effect") in BLOCKING_TAINT_EFFECTS
    )


# --- building the required affinity ------------------------------------------------------------


def accelerator_node_terms(
    products: Sequence[str], label_key: str = GPU_PRODUCT_LABEL
) -> list[NodeSelectorTerm]:
    """The nodes that carry one of these accelerator products (one term, one `In` expression)."""
    values = sorted(set(products))
    if not values:
        raise ValueError("accelerator_node_terms needs at least one product; no product names no node")
    return [
        NodeSelectorTerm(
            match_expressions=[NodeSelectorRequirement(key=label_key, operator=_Op.IN, values=values)]
        )
    ]


def _dedupe(reqs: Iterable[NodeSelectorRequirement]) -> tuple[NodeSelectorRequirement, ...]:
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    out: list[NodeSelectorRequirement] = []
    for r in reqs:
        key = (r.key, r.operator.value, tuple(r.values))
        if key not in seen:
            seen.add(key)
            out.append(r)
    return tuple(out)


def _contradictory(term: _Term) -> bool:
    """True only when no set of labels can satisfy the term's expressions (a sound, partial check)."""
    by_key: dict[str, list[NodeSelectorRequirement]] = {}
    for r in term.expressions:
        if not _well_formed(r):
            return True
        by_key.setdefault(r.key, []).append(r)
    for reqs in by_key.values():
        ops = {r.operator for r in reqs}
        if _Op.DOES_NOT_EXIST in ops and ops - {_Op.DOES_NOT_EXIST, _Op.NOT_IN}:
            return True  # must be absent, and present
        allowed: set[str] | None = None
        for r in reqs:
            if r.operator is _Op.IN:
                allowed = set(r.values) if allowed is None else allowed & set(r.values)
        if allowed is None:
            continue
        for r in reqs:
            if r.operator is _Op.NOT_IN:
                allowed -= set(r.values)
            elif r.operator in (_Op.GT, _Op.LT):
                allowed = {v for v in allowed if matches_node_selector_requirement({r.key: v}, r)}
        if not allowed:
            return True
    return False


def _and(left: Sequence[_Term], right: Sequence[_Term]) -> list[_Term]:
    """The terms admitting exactly the nodes both lists admit: the cross product.

    Empty terms match nothing, so they drop out of each side first; otherwise concatenating an
    empty term with another would widen what it admits.
    """
    out: list[_Term] = []
    for a in left:
        if a.empty():
            continue
        for b in right:
            if b.empty():
                continue
            term = _Term(_dedupe(a.expressions + b.expressions), _dedupe(a.fields + b.fields))
            if term not in out and not _contradictory(term):
                out.append(term)
    return out


def _node_selector_terms(node_selector: Mapping[str, str]) -> list[_Term]:
    """pod.spec.nodeSelector as one term: every label equal to its value."""
    reqs = tuple(
        NodeSelectorRequirement(key=k, operator=_Op.IN, values=[v]) for k, v in sorted(node_selector.items())
    )
    return [_Term(reqs, ())]


UNSATISFIABLE_TERM = _Term(
    (
        NodeSelectorRequirement(key=UNSATISFIABLE_KEY, operator=_Op.EXISTS),
        NodeSelectorRequirement(key=UNSATISFIABLE_KEY, operator=_Op.DOES_NOT_EXIST),
    ),
    (),
)


def build_node_affinity(
    accelerator_terms: Sequence[NodeSelectorTerm],
    policy: ResidencyPolicy | None,
    placement: PlacementSpec,
) -> dict[str, object]:
    """The pod's `affinity.nodeAffinity` as the API server stores it (camelCase wire dict).

    The required part admits exactly the nodes that satisfy all of: the residency policy's terms
    (when a policy applies), the accelerator terms (an empty sequence means no accelerator
    constraint), the user's `nodeSelector` (folded in as `In` expressions, so the pod needs no
    separate nodeSelector) and the user's own required node affinity. When nothing can satisfy
    them all, the required part is a term no node matches: the pods stay Pending, they never land
    elsewhere. The user's preferred terms are carried over as they are; they only rank nodes the
    required part already admits. An empty dict means "no node affinity at all".
    """
    factors: list[list[_Term]] = []
    if policy is not None:
        factors.append([_Term.of(t) for t in policy.spec.node_selector_terms])
    if accelerator_terms:
        factors.append([_Term.of(t) for t in accelerator_terms])
    if placement.node_selector:
        factors.append(_node_selector_terms(placement.node_selector))
    user = placement.node_affinity
    if user is not None and user.required_during_scheduling_ignored_during_execution is not None:
        factors.append(
            [
                _Term.of(t)
                for t in user.required_during_scheduling_ignored_during_execution.node_selector_terms
            ]
        )

    affinity: dict[str, object] = {}
    if factors:
        terms = [t for t in factors[0] if not t.empty() and not _contradictory(t)]
        for factor in factors[1:]:
            terms = _and(terms, factor)
        affinity[REQUIRED] = {"nodeSelectorTerms": [t.to_wire() for t in terms or [UNSATISFIABLE_TERM]]}
    if user is not None and user.preferred_during_scheduling_ignored_during_execution:
        affinity[PREFERRED] = copy.deepcopy(list(user.preferred_during_scheduling_ignored_during_execution))
    return affinity


def _terms_from_wire(wire: object) -> list[_Term]:
    if not isinstance(wire, Mapping):
        raise ValueError("required node affinity must be an object with nodeSelectorTerms")
    raw_terms = wire.get("nodeSelectorTerms")
    if not isinstance(raw_terms, list):
        raise ValueError("nodeSelectorTerms must be a list")
    terms: list[_Term] = []
    for raw in raw_terms:
        if not isinstance(raw, Mapping):
            raise ValueError("a node selector term must be an object")
        exprs = tuple(NodeSelectorRequirement.model_validate(r) for r in raw.get("matchExpressions") or [])
        fields = tuple(NodeSelectorRequirement.model_validate(r) for r in raw.get("matchFields") or [])
        terms.append(_Term(exprs, fields))
    return terms


def admitter(affinity: Mapping[str, object]) -> Callable[[Mapping[str, str], str | None], bool]:
    """`admits` with the affinity parsed once: for checking many nodes against one affinity."""
    required = affinity.get(REQUIRED)
    terms = None if required is None else _terms_from_wire(required)

    def check(node_labels: Mapping[str, str], node_name: str | None = None) -> bool:
        if terms is None:
            return True
        fields = node_fields(node_name)
        return any(t.matches(node_labels, fields) for t in terms)

    return check


def admits(
    node_labels: Mapping[str, str], affinity: Mapping[str, object], node_name: str | None = None
) -> bool:
    """Whether a wire-shape `nodeAffinity` (as built above) lets the scheduler put a pod on the node.

    Only the required part decides; preferred terms rank. Taints are separate: see `tolerates`.
    """
    return admitter(affinity)(node_labels, node_name)
