"""What an engine builder gets (EngineContext) and what it returns (EngineLaunch).

An engine builder is one pure function `EngineContext -> EngineLaunch`: the container command,
arguments, environment, probes and volumes of a serving engine. The pod around it (GPU requests,
security context, affinity, labels) is the business of `modelplane.manifests`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import api
from ..config import OperatorConfig
from .source import ModelLocation, resolve_source

# Where the pod keeps things; every engine uses the same layout.
MODEL_CACHE_PATH = "/models"  # the model cache volume (emptyDir or the configured PVC)
HF_HOME_PATH = f"{MODEL_CACHE_PATH}/huggingface"  # HF_HOME; downloads land in its hub/ folder
HF_HUB_CACHE_PATH = f"{HF_HOME_PATH}/hub"
TMP_PATH = "/tmp"  # a scratch emptyDir; also HOME, because the pod runs as a user with no home
SHM_PATH = "/dev/shm"

# Probes sized for slow model loads: a 405B checkpoint can take many minutes to download and load,
# so the startup probe allows 10 s x 180 = 30 minutes before the kubelet restarts the container.
HEALTH_PATH = "/health"
STARTUP_PERIOD_SECONDS = 10
STARTUP_FAILURE_THRESHOLD = 180
READINESS_PERIOD_SECONDS = 5
LIVENESS_PERIOD_SECONDS = 10
LIVENESS_FAILURE_THRESHOLD = 3


@dataclass(frozen=True)
class EngineContext:
    """Everything an engine needs to start, already decided by the spec, the plan and the config."""

    served_model_name: str
    source: ModelLocation
    precision: api.Precision
    tensor_parallel: int
    pipeline_parallel: int
    nodes: int  # nodes per replica; > 1 means a leader and workers (LeaderWorkerSet)
    gpus_per_node: int  # GPUs each pod requests
    max_context_length: int
    max_concurrent_sequences: int | None
    gpu_memory_utilization: float
    port: int
    user_args: tuple[str, ...] = ()
    user_env: tuple[api.EnvVar, ...] = ()
    credentials_secret_name: str | None = None
    model_cache_size_limit: str = "200Gi"
    model_cache_claim: str | None = None
    weights_gib: float = 0.0  # the whole checkpoint: every node of a group downloads all of it

    @property
    def multi_node(self) -> bool:
        return self.nodes > 1

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_node * self.nodes

    @classmethod
    def from_spec(
        cls, spec: api.ModelDeploymentSpec, plan: api.Plan, config: OperatorConfig
    ) -> EngineContext:
        if plan.nodes_per_replica < 1 or plan.gpus_per_replica % plan.nodes_per_replica:
            raise ValueError(
                f"plan has {plan.gpus_per_replica} GPUs per replica on {plan.nodes_per_replica} nodes: "
                "GPUs must split evenly across nodes"
            )
        return cls(
            served_model_name=spec.model.name,
            source=resolve_source(spec.model),
            precision=plan.precision,
            tensor_parallel=plan.tensor_parallel,
            pipeline_parallel=plan.pipeline_parallel,
            nodes=plan.nodes_per_replica,
            gpus_per_node=plan.gpus_per_replica // plan.nodes_per_replica,
            max_context_length=plan.max_context_length,
            max_concurrent_sequences=spec.serving.max_concurrent_sequences,
            gpu_memory_utilization=config.gpu_memory_utilization,
            port=spec.serving.port,
            user_args=tuple(spec.engine.args),
            user_env=tuple(spec.engine.env),
            credentials_secret_name=spec.model.credentials_secret_name,
            model_cache_size_limit=config.model_cache.size_limit,
            model_cache_claim=config.model_cache.persistent_volume_claim,
            weights_gib=plan.weights_gi_b,
        )


@dataclass(frozen=True)
class EngineContainer:
    """One engine container, without name, image, resources or security context."""

    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[Mapping[str, Any], ...]
    env_from: tuple[Mapping[str, Any], ...] = ()
    ports: tuple[Mapping[str, Any], ...] = ()
    startup_probe: Mapping[str, Any] | None = None
    readiness_probe: Mapping[str, Any] | None = None
    liveness_probe: Mapping[str, Any] | None = None
    volume_mounts: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class EngineLaunch:
    """The engine's containers: `server` alone on one node; `server` as leader plus `worker` across nodes."""

    server: EngineContainer
    worker: EngineContainer | None = None
    volumes: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)


def http_probes(port_name: str = "http") -> dict[str, dict[str, Any]]:
    """Startup, readiness and liveness probes on the engine's /health endpoint."""

    def get(period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": HEALTH_PATH, "port": port_name},
            "periodSeconds": period,
            "timeoutSeconds": 5,
            "failureThreshold": failures,
        }

    return {
        "startup": get(STARTUP_PERIOD_SECONDS, STARTUP_FAILURE_THRESHOLD),
        "readiness": get(READINESS_PERIOD_SECONDS, 3),
        "liveness": get(LIVENESS_PERIOD_SECONDS, LIVENESS_FAILURE_THRESHOLD),
    }


def env_list(pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, Any], ...]:
    return tuple({"name": name, "value": value} for name, value in pairs)
