"""Plan, then execute: the desired children of a ModelDeployment, as a list the operator applies.

A replica that fits one node → Deployment + Service; a replica across nodes → LeaderWorkerSet +
Service (leaders only). The operator applies the list and deletes the children of other kinds it
owns (so a move between single- and multi-node leaves no orphan).
"""

from __future__ import annotations

from typing import Any

from ..engines import build_engine
from .deployment import build_deployment
from .hashing import with_spec_hash
from .inputs import ChildInputs
from .leaderworkerset import build_leaderworkerset
from .service import build_service

# (apiVersion, kind) of every child kind the operator may own; the ones not in build_children's
# output are the ones to delete.
CHILD_KINDS = (
    ("apps/v1", "Deployment"),
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"),
    ("v1", "Service"),
)


def build_children(inputs: ChildInputs) -> list[dict[str, Any]]:
    """The desired children, each with its spec hash. SpecError if the engine refuses the spec."""
    launch = build_engine(inputs.deployment.spec, inputs.plan, inputs.config)
    multi_node = inputs.plan.nodes_per_replica > 1
    workload = build_leaderworkerset(inputs, launch) if multi_node else build_deployment(inputs, launch)
    service = build_service(inputs, leaders_only=multi_node)
    return [with_spec_hash(workload), with_spec_hash(service)]
