"""The Deployment of a replica that fits one node: one pod per replica holding all its GPUs.

Rolling updates replace pods one at a time without surging (maxSurge 0, maxUnavailable 1): a
surge pod would need GPUs beyond the replicas', which a GPU fleet rarely has idle, and it would sit
Pending and stall the rollout. The price is one replica fewer while a new pod loads; with one
replica that is a gap in service. progressDeadlineSeconds covers the startup probe's 30 minutes of
model loading, so a slow load is not reported as a failed rollout.
"""

from __future__ import annotations

from typing import Any

from ..engines import EngineLaunch
from .inputs import ChildInputs
from .labels import COMPONENT_SERVER, child_metadata, selector_labels
from .pod import engine_container, pod_template

SERVER_CONTAINER = "server"
PROGRESS_DEADLINE_SECONDS = 2400
REVISION_HISTORY_LIMIT = 3


def build_deployment(inputs: ChildInputs, launch: EngineLaunch) -> dict[str, Any]:
    if launch.worker is not None:
        raise ValueError("a Deployment serves single-node replicas; this engine launch has workers")
    container = engine_container(inputs, SERVER_CONTAINER, launch.server)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(inputs.deployment, inputs.plan.accelerator, COMPONENT_SERVER),
        "spec": {
            "replicas": inputs.replicas,
            "selector": {"matchLabels": selector_labels(inputs.name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "progressDeadlineSeconds": PROGRESS_DEADLINE_SECONDS,
            "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
            "template": pod_template(inputs, COMPONENT_SERVER, container, [dict(v) for v in launch.volumes]),
        },
    }
