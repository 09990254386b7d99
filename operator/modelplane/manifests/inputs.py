"""ChildInputs: everything the child builders need, decided before they run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import api
from ..config import OperatorConfig

REQUIRED_NODE_AFFINITY = "requiredDuringSchedulingIgnoredDuringExecution"


@dataclass(frozen=True)
class ChildInputs:
    deployment: api.ModelDeployment  # metadata (name, namespace, uid) + spec
    plan: api.Plan
    config: OperatorConfig
    # The pod's nodeAffinity wire dict (placement.residency.build_node_affinity): accelerator type AND
    # residency AND user placement as required terms, plus any preferred ones. Copied verbatim.
    node_affinity: Mapping[str, Any]
    tolerations: Sequence[Mapping[str, Any]]  # the user's and the GPU toleration, wire dicts
    gpu_resource: str  # extended resource name: "nvidia.com/gpu" | "amd.com/gpu"
    replicas: int

    def __post_init__(self) -> None:
        required = self.node_affinity.get(REQUIRED_NODE_AFFINITY)
        if not isinstance(required, Mapping) or not required.get("nodeSelectorTerms"):
            # No path may build a serving pod without the placement policy's required affinity.
            raise ValueError(f"node_affinity must hold {REQUIRED_NODE_AFFINITY} with nodeSelectorTerms")
        if self.replicas < 0:
            raise ValueError(f"replicas must not be negative, got {self.replicas}")
        if not self.gpu_resource:
            raise ValueError("gpu_resource must name the accelerator's extended resource")

    @property
    def name(self) -> str:
        return self.deployment.metadata.name

    @property
    def gpus_per_pod(self) -> int:
        return self.plan.gpus_per_replica // max(self.plan.nodes_per_replica, 1)
