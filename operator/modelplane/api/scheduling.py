"""core/v1 scheduling shapes the API reuses: node selector terms, label selectors, tolerations."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from .base import ApiModel

# Bounds the CRDs also declare: they keep the API server's CEL cost estimate of the per-item rules
# below its budget, and are far above what a node selector or label selector needs.
MAX_SELECTOR_TERMS = 16
MAX_SELECTOR_REQUIREMENTS = 32
MAX_SELECTOR_VALUES = 64
MAX_SELECTOR_VALUE_LENGTH = 253
INTEGER_PATTERN = re.compile(r"^-?[0-9]+$")

SelectorValue = Annotated[str, Field(max_length=MAX_SELECTOR_VALUE_LENGTH)]


class NodeSelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


def _check_set_operator(operator: str, values: list[str]) -> None:
    """The rule node and label selectors share: In/NotIn need values, Exists/DoesNotExist take none."""
    if operator in ("In", "NotIn") and not values:
        raise ValueError(f"operator {operator} needs at least one value")
    if operator in ("Exists", "DoesNotExist") and values:
        raise ValueError(f"operator {operator} takes no values")


class NodeSelectorRequirement(ApiModel):
    key: str = Field(min_length=1)
    operator: NodeSelectorOperator
    values: list[SelectorValue] = Field(default_factory=list, max_length=MAX_SELECTOR_VALUES)

    @model_validator(mode="after")
    def _values_fit_operator(self) -> NodeSelectorRequirement:
        op = self.operator
        _check_set_operator(op.value, self.values)
        if op in (NodeSelectorOperator.GT, NodeSelectorOperator.LT) and (
            len(self.values) != 1 or not INTEGER_PATTERN.match(self.values[0])
        ):
            raise ValueError(f"operator {op.value} needs exactly one integer value")
        return self


class NodeSelectorTerm(ApiModel):
    """Expressions in a term are ANDed; a list of terms is ORed (core/v1 semantics)."""

    match_expressions: list[NodeSelectorRequirement] = Field(
        default_factory=list, max_length=MAX_SELECTOR_REQUIREMENTS
    )
    match_fields: list[NodeSelectorRequirement] = Field(
        default_factory=list, max_length=MAX_SELECTOR_REQUIREMENTS
    )


class NodeSelector(ApiModel):
    node_selector_terms: list[NodeSelectorTerm] = Field(min_length=1, max_length=MAX_SELECTOR_TERMS)


class NodeAffinity(ApiModel):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: list[dict[str, object]] = Field(
        default_factory=list
    )


class LabelSelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(ApiModel):
    key: str = Field(min_length=1)
    operator: LabelSelectorOperator
    values: list[SelectorValue] = Field(default_factory=list, max_length=MAX_SELECTOR_VALUES)

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        _check_set_operator(self.operator.value, self.values)
        return self


class LabelSelector(ApiModel):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=MAX_SELECTOR_REQUIREMENTS
    )

    def matches(self, labels: dict[str, str]) -> bool:
        """metav1.LabelSelector semantics; an empty selector matches everything."""
        for k, v in self.match_labels.items():
            if labels.get(k) != v:
                return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator is LabelSelectorOperator.IN and not (present and labels[req.key] in req.values):
                return False
            if req.operator is LabelSelectorOperator.NOT_IN and present and labels[req.key] in req.values:
                return False
            if req.operator is LabelSelectorOperator.EXISTS and not present:
                return False
            if req.operator is LabelSelectorOperator.DOES_NOT_EXIST and present:
                return False
        return True


class Toleration(ApiModel):
    key: str | None = None
    operator: str | None = Field(default=None, pattern="^(Exists|Equal)$")
    value: str | None = None
    effect: str | None = Field(default=None, pattern="^(NoSchedule|PreferNoSchedule|NoExecute)$")
    toleration_seconds: int | None = None
