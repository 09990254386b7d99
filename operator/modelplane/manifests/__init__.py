"""Pure builders of the children of a ModelDeployment: Deployment or LeaderWorkerSet, and Service.

`build_children(ChildInputs(...))` is the entry point; the per-kind builders are public for tests
and tools.
"""

from .children import CHILD_KINDS, build_children
from .deployment import build_deployment
from .hashing import spec_hash, with_spec_hash
from .inputs import ChildInputs
from .labels import (
    ACCELERATOR_LABEL,
    DEPLOYMENT_LABEL,
    SPEC_HASH_ANNOTATION,
    child_labels,
    owner_reference,
    selector_labels,
    selector_string,
)
from .leaderworkerset import build_leaderworkerset
from .service import build_service, service_endpoint

__all__ = [
    "ACCELERATOR_LABEL",
    "CHILD_KINDS",
    "DEPLOYMENT_LABEL",
    "SPEC_HASH_ANNOTATION",
    "ChildInputs",
    "build_children",
    "build_deployment",
    "build_leaderworkerset",
    "build_service",
    "child_labels",
    "owner_reference",
    "selector_labels",
    "selector_string",
    "service_endpoint",
    "spec_hash",
    "with_spec_hash",
]
