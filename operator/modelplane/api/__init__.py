"""The typed API of modelplane.dev/v1alpha1: spec and status models, parsing, conditions."""

from .base import API_VERSION, GROUP, VERSION, ApiModel
from .conditions import (
    AUTOSCALING,
    FALSE,
    PLANNED,
    READY,
    RESIDENCY_SATISFIED,
    SCHEDULED,
    TRUE,
    UNKNOWN,
    get_condition,
    set_condition,
)
from .errors import FieldProblem, SpecError
from .model_deployment import (
    MAX_NAME_LENGTH,
    SOURCE_SCHEMES,
    Architecture,
    AutoscalingSpec,
    Condition,
    EngineName,
    EngineSpec,
    EnvVar,
    LatencyMetric,
    LatencyStatus,
    MetricSource,
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    ModelSpec,
    ObjectMeta,
    OptimizeFor,
    PlacementSpec,
    Plan,
    Precision,
    RejectedCandidate,
    ResourcesSpec,
    ServingSpec,
)
from .parse import parse_manifest, parse_model_deployment, parse_model_deployment_spec, parse_residency_policy
from .residency_policy import ResidencyPolicy, ResidencyPolicySpec
from .scheduling import (
    LabelSelector,
    LabelSelectorRequirement,
    NodeAffinity,
    NodeSelector,
    NodeSelectorOperator,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Toleration,
)

__all__ = [
    "API_VERSION", "AUTOSCALING", "FALSE", "GROUP", "MAX_NAME_LENGTH", "PLANNED", "READY",
    "RESIDENCY_SATISFIED", "SCHEDULED", "SOURCE_SCHEMES", "TRUE", "UNKNOWN", "VERSION",
    "ApiModel", "Architecture", "AutoscalingSpec", "Condition", "EngineName", "EngineSpec", "EnvVar",
    "FieldProblem", "LabelSelector", "LabelSelectorRequirement", "LatencyMetric", "LatencyStatus",
    "MetricSource", "ModelDeployment", "ModelDeploymentSpec", "ModelDeploymentStatus", "ModelSpec",
    "NodeAffinity", "NodeSelector", "NodeSelectorOperator", "NodeSelectorRequirement", "NodeSelectorTerm",
    "ObjectMeta", "OptimizeFor", "PlacementSpec", "Plan", "Precision", "RejectedCandidate",
    "ResidencyPolicy", "ResidencyPolicySpec", "ResourcesSpec", "ServingSpec", "SpecError", "Toleration",
    "get_condition", "parse_manifest", "parse_model_deployment", "parse_model_deployment_spec",
    "parse_residency_policy", "set_condition",
]
