"""The operator's own configuration (a YAML file, from the chart's ConfigMap).

Pure and typed: `modelplane run --config FILE` and `modelplane plan --config FILE` read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from .api.base import ApiModel
from .api.errors import SpecError, from_validation_error

DEFAULT_IMAGES = {
    "vllm": "docker.io/vllm/vllm-openai:v0.11.0",
    "sglang": "docker.io/lmsysorg/sglang:v0.5.3",
    "llama-cpp": "ghcr.io/ggml-org/llama.cpp:server-cuda-b6700",
}


class EngineImage(ApiModel):
    image: str = Field(min_length=1)
    pull_policy: str = Field(default="IfNotPresent", pattern="^(Always|IfNotPresent|Never)$")


class ModelCacheConfig(ApiModel):
    """Where pods keep downloaded weights: an emptyDir by default, or a PVC per namespace."""

    size_limit: str = "200Gi"
    persistent_volume_claim: str | None = None


class OperatorConfig(ApiModel):
    engines: dict[str, EngineImage] = Field(
        default_factory=lambda: {k: EngineImage(image=v) for k, v in DEFAULT_IMAGES.items()}
    )
    # Price per GPU-hour by catalog accelerator name, as a decimal string; overrides the catalog's.
    prices: dict[str, str] = Field(default_factory=dict)
    gpu_memory_utilization: float = Field(default=0.9, gt=0.1, le=0.99)
    # The KV cache must be at least this share of the usable GPU memory (room to batch).
    min_kv_cache_share: float = Field(default=0.15, ge=0.0, lt=1.0)
    # Per-GPU memory vLLM needs beyond weights and KV (activations, CUDA graphs, non-torch).
    runtime_reserve_gib: float = Field(default=1.0, ge=0.0)
    default_residency_policy: str | None = None
    model_cache: ModelCacheConfig = Field(default_factory=ModelCacheConfig)
    # Label the operator sets on pods and reads back; the GPU taint it tolerates.
    gpu_toleration_key: str = "nvidia.com/gpu"

    def image_for(self, engine: str) -> EngineImage:
        if engine not in self.engines:
            raise SpecError.single(
                "spec.engine.name", f"engine {engine!r} has no image in the operator config"
            )
        return self.engines[engine]


def load_config(data: Mapping[str, Any] | None) -> OperatorConfig:
    try:
        return OperatorConfig.model_validate(dict(data or {}))
    except ValidationError as err:
        raise from_validation_error(err, "config") from None


def load_config_file(path: str | Path) -> OperatorConfig:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SpecError.single("config", f"cannot read {path}: {err}") from None
    if data is not None and not isinstance(data, dict):
        raise SpecError.single("config", f"{path} must hold a mapping")
    return load_config(data)
