"""ResidencyPolicy (modelplane.dev/v1alpha1, cluster-scoped): where data may be processed."""

from __future__ import annotations

from pydantic import Field

from .base import ApiModel
from .model_deployment import ObjectMeta
from .scheduling import MAX_SELECTOR_TERMS, LabelSelector, NodeSelectorTerm

KIND = "ResidencyPolicy"
PLURAL = "residencypolicies"


class ResidencyPolicySpec(ApiModel):
    node_selector_terms: list[NodeSelectorTerm] = Field(min_length=1, max_length=MAX_SELECTOR_TERMS)
    namespace_selector: LabelSelector | None = None
    description: str | None = Field(default=None, max_length=1024)


class ResidencyPolicy(ApiModel):
    model_config = ApiModel.model_config | {"extra": "ignore"}

    api_version: str = Field(pattern=r"^modelplane\.dev/v1alpha1$")
    kind: str = Field(pattern=f"^{KIND}$")
    metadata: ObjectMeta
    spec: ResidencyPolicySpec
