"""Conditions: one pure setter, so lastTransitionTime moves only when status flips."""

from __future__ import annotations

from collections.abc import Sequence

from .model_deployment import Condition

# Condition types of a ModelDeployment, in the order people read them.
PLANNED = "Planned"
RESIDENCY_SATISFIED = "ResidencySatisfied"
SCHEDULED = "Scheduled"
READY = "Ready"
AUTOSCALING = "Autoscaling"
CONDITION_ORDER = (PLANNED, RESIDENCY_SATISFIED, SCHEDULED, READY, AUTOSCALING)

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: str,
    reason: str,
    message: str,
    now: str,
    observed_generation: int | None,
) -> list[Condition]:
    """Return the conditions with `type_` set; its transition time changes only if status did."""
    if status not in (TRUE, FALSE, UNKNOWN):
        raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")
    previous = next((c for c in conditions if c.type == type_), None)
    since = previous.last_transition_time if previous is not None and previous.status == status else now
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=observed_generation,
    )
    out = [c for c in conditions if c.type != type_] + [new]
    rank = {t: i for i, t in enumerate(CONDITION_ORDER)}
    return sorted(out, key=lambda c: rank.get(c.type, len(rank)))


def get_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
