"""ModelDeployment (modelplane.dev/v1alpha1): the typed spec and status."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import ApiModel
from .errors import field_error
from .scheduling import NodeAffinity, Toleration

KIND = "ModelDeployment"
PLURAL = "modeldeployments"

# Children are named after the ModelDeployment (Service, Deployment, LeaderWorkerSet and the
# pods under them, e.g. "<name>-<group>-<worker>"); 40 characters leaves room for suffixes
# inside the 63-character label and DNS-1035 limits.
MAX_NAME_LENGTH = 40
NAME_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
SOURCE_SCHEMES = ("hf", "s3", "gs", "pvc", "oci")
SOURCE_PATTERN = re.compile(r"^(hf|s3|gs|pvc|oci)://\S+$")
MAX_SOURCE_LENGTH = 2048
# Upper bounds on the parallelism overrides: far above any real node, low enough that the
# CRD's CEL rule (tensorParallel * pipelineParallel) can never overflow.
MAX_TENSOR_PARALLEL = 64
MAX_PIPELINE_PARALLEL = 64
MAX_GPUS_PER_REPLICA = 4096


class Precision(StrEnum):
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"
    INT8 = "int8"
    INT4 = "int4"


class EngineName(StrEnum):
    VLLM = "vllm"
    SGLANG = "sglang"
    LLAMA_CPP = "llama-cpp"


class OptimizeFor(StrEnum):
    COST = "Cost"
    THROUGHPUT = "Throughput"


class LatencyMetric(StrEnum):
    TIME_TO_FIRST_TOKEN = "TimeToFirstToken"
    END_TO_END_LATENCY = "EndToEndLatency"
    TIME_PER_OUTPUT_TOKEN = "TimePerOutputToken"


class MetricSource(StrEnum):
    PROMETHEUS = "Prometheus"
    PODS = "Pods"


class Architecture(ApiModel):
    """What the planner needs to know of a model that is not in the catalog."""

    parameters: int = Field(gt=0, description="total parameter count")
    active_parameters: int | None = Field(default=None, gt=0, description="per token, for MoE models")
    layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    attention_heads: int = Field(gt=0)
    kv_heads: int | None = Field(default=None, gt=0)
    head_dim: int | None = Field(default=None, gt=0)
    max_context_length: int = Field(default=8192, gt=0)
    kv_lora_rank: int | None = Field(default=None, gt=0, description="MLA latent rank (DeepSeek-V2/V3)")
    qk_rope_head_dim: int | None = Field(default=None, gt=0, description="MLA decoupled RoPE dim")

    @model_validator(mode="after")
    def _heads(self) -> Architecture:
        name = type(self).__name__
        if self.kv_heads is not None and self.kv_heads > self.attention_heads:
            raise field_error(name, "kvHeads", "kvHeads cannot exceed attentionHeads", self.kv_heads)
        if self.active_parameters is not None and self.active_parameters > self.parameters:
            raise field_error(
                name, "activeParameters", "activeParameters cannot exceed parameters", self.active_parameters
            )
        if (self.kv_lora_rank is None) != (self.qk_rope_head_dim is None):
            raise field_error(
                name, "kvLoraRank", "kvLoraRank and qkRopeHeadDim go together (MLA)", self.kv_lora_rank
            )
        return self


class ModelSpec(ApiModel):
    name: str = Field(min_length=1, max_length=253)
    source: str | None = Field(default=None, max_length=MAX_SOURCE_LENGTH)
    precision: Precision | None = None  # default: the model's native precision from the catalog
    architecture: Architecture | None = None
    credentials_secret_name: str | None = Field(
        default=None, max_length=253, description="Secret with HF_TOKEN and friends, by name only"
    )

    @field_validator("source")
    @classmethod
    def _source_scheme(cls, v: str | None) -> str | None:
        if v is not None and not SOURCE_PATTERN.match(v):
            raise ValueError(f"must start with one of {', '.join(s + '://' for s in SOURCE_SCHEMES)}")
        return v


class EnvVar(ApiModel):
    name: str = Field(min_length=1)
    value: str | None = None
    value_from: dict[str, Any] | None = None


class EngineSpec(ApiModel):
    name: EngineName = EngineName.VLLM
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)


class ServingSpec(ApiModel):
    max_context_length: int | None = Field(default=None, gt=0)
    max_time_per_output_token_milliseconds: int | None = Field(default=None, gt=0)
    kv_cache_sequences: int = Field(default=1, ge=1)
    max_concurrent_sequences: int | None = Field(default=None, ge=1)
    port: int = Field(default=8000, ge=1, le=65535)


class ResourcesSpec(ApiModel):
    accelerators: list[str] = Field(default_factory=list)
    optimize_for: OptimizeFor = OptimizeFor.COST
    gpus_per_replica: int | None = Field(default=None, ge=1, le=MAX_GPUS_PER_REPLICA)
    tensor_parallel: int | None = Field(default=None, ge=1, le=MAX_TENSOR_PARALLEL)
    pipeline_parallel: int | None = Field(default=None, ge=1, le=MAX_PIPELINE_PARALLEL)

    @model_validator(mode="after")
    def _parallel_consistent(self) -> ResourcesSpec:
        tp, pp, gpus = self.tensor_parallel, self.pipeline_parallel, self.gpus_per_replica
        if tp is not None and pp is not None and gpus is not None and tp * pp != gpus:
            raise field_error(
                type(self).__name__,
                "gpusPerReplica",
                f"tensorParallel * pipelineParallel ({tp} * {pp} = {tp * pp}) "
                f"must equal gpusPerReplica ({gpus})",
                gpus,
            )
        return self


class AutoscalingSpec(ApiModel):
    enabled: bool = False
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=4, ge=1)
    metric: LatencyMetric = LatencyMetric.TIME_TO_FIRST_TOKEN
    percentile: int = Field(default=95, ge=50, le=99)
    target_milliseconds: int = Field(default=500, gt=0)
    window_seconds: int = Field(default=60, ge=10)
    scale_down_stabilization_seconds: int = Field(default=300, ge=0)
    source: MetricSource = MetricSource.PROMETHEUS

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise field_error(
                type(self).__name__,
                "minReplicas",
                f"minReplicas ({self.min_replicas}) must not exceed maxReplicas ({self.max_replicas})",
                self.min_replicas,
            )
        return self


class PlacementSpec(ApiModel):
    residency: str | None = Field(default=None, min_length=1)
    node_selector: dict[str, str] = Field(default_factory=dict)
    node_affinity: NodeAffinity | None = None
    tolerations: list[Toleration] = Field(default_factory=list)


class ModelDeploymentSpec(ApiModel):
    model: ModelSpec
    engine: EngineSpec = Field(default_factory=EngineSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    replicas: int = Field(default=1, ge=0)
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec)
    placement: PlacementSpec = Field(default_factory=PlacementSpec)


class ObjectMeta(ApiModel):
    """The part of metadata the operator reads."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    name: str
    namespace: str | None = None
    generation: int | None = None
    uid: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class DeploymentMeta(ObjectMeta):
    """A ModelDeployment's name also names its children, so it is held to a shorter limit."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if len(v) > MAX_NAME_LENGTH:
            raise ValueError(f"must be at most {MAX_NAME_LENGTH} characters so that child names fit")
        if not NAME_PATTERN.match(v):
            raise ValueError(
                "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter"
            )
        return v


# ---------------------------------------------------------------------------------- status


class RejectedCandidate(ApiModel):
    accelerator: str
    reason: str
    message: str | None = None


class Plan(ApiModel):
    plan_class: Literal["SLM", "LLM"] = Field(alias="class")
    accelerator: str
    # For people (the ACCELERATOR printer column), e.g. "2x nvidia-h100-80gb"; machines read the fields.
    accelerator_summary: str | None = None
    gpus_per_replica: int
    tensor_parallel: int
    pipeline_parallel: int
    nodes_per_replica: int
    precision: Precision
    max_context_length: int
    weights_gi_b: float = Field(alias="weightsGiB")
    kv_cache_tokens: int
    est_time_per_output_token_ms: float
    cost_per_replica_hour: str
    regions: list[str] = Field(default_factory=list)
    rejected: list[RejectedCandidate] = Field(default_factory=list)


class Condition(ApiModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class LatencyStatus(ApiModel):
    metric: LatencyMetric
    percentile: int
    value_milliseconds: int | None = None
    target_milliseconds: int
    observed_at: str | None = None


class ModelDeploymentStatus(ApiModel):
    observed_generation: int | None = None
    phase: str | None = None
    plan: Plan | None = None
    replicas: int | None = None
    ready_replicas: int | None = None
    desired_replicas: int | None = None
    selector: str | None = None
    latency: LatencyStatus | None = None
    endpoint: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    # Display strings for the printer columns, for people; machines read conditions and plan.
    ready_summary: str | None = None  # READY, e.g. "2/2"
    latency_summary: str | None = None  # P95, e.g. "310ms"
    regions_summary: str | None = None  # REGIONS (wide), e.g. "eu-west-1,eu-central-1"
    residency_policy: str | None = Field(default=None, max_length=253)  # last applied to the pods


class ModelDeployment(ApiModel):
    model_config = ApiModel.model_config | {"extra": "ignore"}

    api_version: str = Field(pattern=r"^modelplane\.dev/v1alpha1$")
    kind: str = Field(pattern=f"^{KIND}$")
    metadata: DeploymentMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None
