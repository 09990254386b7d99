"""Labels, selectors and the owner reference every child carries (deterministic, no clock, no randomness)."""

from __future__ import annotations

from typing import Any

from .. import api

DEPLOYMENT_LABEL = "modelplane.dev/deployment"  # the selector label: status.selector is built on it
ACCELERATOR_LABEL = "modelplane.dev/accelerator"
SPEC_HASH_ANNOTATION = "modelplane.dev/spec-hash"
APP_NAME = "modelplane-server"
MANAGED_BY = "modelplane"

COMPONENT_SERVER = "server"  # single-node pods, and the Service / Deployment / LeaderWorkerSet objects
COMPONENT_LEADER = "leader"
COMPONENT_WORKER = "worker"


def selector_labels(name: str) -> dict[str, str]:
    return {DEPLOYMENT_LABEL: name}


def selector_string(name: str) -> str:
    """The label selector as `status.selector` and `kubectl get pods -l` spell it."""
    return f"{DEPLOYMENT_LABEL}={name}"


def child_labels(name: str, accelerator: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/component": component,
        DEPLOYMENT_LABEL: name,
        ACCELERATOR_LABEL: accelerator,
    }


def owner_reference(deployment: api.ModelDeployment) -> dict[str, Any]:
    """The ModelDeployment as controller of the child: deleting it garbage-collects the child."""
    if not deployment.metadata.uid:
        raise ValueError(
            f"ModelDeployment {deployment.metadata.name!r} has no uid; children need their owner's uid"
        )
    return {
        "apiVersion": api.API_VERSION,
        "kind": deployment.kind,
        "name": deployment.metadata.name,
        "uid": deployment.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(deployment: api.ModelDeployment, accelerator: str, component: str) -> dict[str, Any]:
    """Metadata of a child object: named after the ModelDeployment, in its namespace, owned by it."""
    name = deployment.metadata.name
    meta: dict[str, Any] = {"name": name}
    if deployment.metadata.namespace:
        meta["namespace"] = deployment.metadata.namespace
    meta["labels"] = child_labels(name, accelerator, component)
    meta["ownerReferences"] = [owner_reference(deployment)]
    return meta
