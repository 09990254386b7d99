"""The Service in front of the replicas: ClusterIP, port `http`, the OpenAI-compatible /v1 endpoint.

Across nodes only the leader of each group runs the HTTP server, so the selector adds the
LeaderWorkerSet's worker-index label "0" (the leader) to the deployment label.
"""

from __future__ import annotations

from typing import Any

from .inputs import ChildInputs
from .labels import COMPONENT_SERVER, child_metadata, selector_labels

LWS_WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"


def build_service(inputs: ChildInputs, *, leaders_only: bool = False) -> dict[str, Any]:
    selector = selector_labels(inputs.name)
    if leaders_only:
        selector[LWS_WORKER_INDEX_LABEL] = "0"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(inputs.deployment, inputs.plan.accelerator, COMPONENT_SERVER),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {
                    "name": "http",
                    "port": inputs.deployment.spec.serving.port,
                    "targetPort": "http",
                    "protocol": "TCP",
                }
            ],
        },
    }


def service_endpoint(inputs: ChildInputs) -> str:
    """The URL clients use: http://<name>.<namespace>.svc:<port>/v1."""
    namespace = inputs.deployment.metadata.namespace or "default"
    return f"http://{inputs.name}.{namespace}.svc:{inputs.deployment.spec.serving.port}/v1"
