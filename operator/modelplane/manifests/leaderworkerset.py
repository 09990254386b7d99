"""The LeaderWorkerSet of a replica that spans nodes (leaderworkerset.x-k8s.io/v1).

One replica is one group of `size` = nodes-per-replica pods: the leader (worker index 0) runs the
engine's head and the HTTP server, the workers join it. Every pod asks for all GPUs of its node and
carries the same node affinity, tolerations and security context as a single-node pod.

Choices, checked against the LWS v0.9/v0.10 source:
- startupPolicy LeaderCreated: the workers start with the leader. LeaderReady would deadlock, since
  the leader only becomes ready once its workers have joined.
- restartPolicy RecreateGroupOnPodRestart: a sharded engine cannot survive the loss of one shard,
  so any restart recreates the whole group.
- One zone per group, with a required podAffinity on the group's pods (`matchLabelKeys` on the
  group-key label LWS puts on every pod of a group; Kubernetes >= 1.33) and topologyKey
  topology.kubernetes.io/zone. LWS's exclusive-topology annotation would do it too, but it also
  forbids any other group in the zone (a required anti-affinity on every LWS pod of the namespace),
  so two replicas would need two zones.
- networkConfig.subdomainPolicy UniquePerReplica: with the default (Shared) LWS creates a headless
  Service named after the LeaderWorkerSet, which is the name of our own ClusterIP Service. With
  UniquePerReplica it creates one per group, named after the group's leader pod (`<name>-<group>`),
  and LWS_LEADER_ADDRESS resolves through it.
"""

from __future__ import annotations

from typing import Any

from ..engines import EngineLaunch
from .inputs import ChildInputs
from .labels import COMPONENT_LEADER, COMPONENT_SERVER, COMPONENT_WORKER, child_metadata
from .pod import engine_container, pod_template

API_VERSION = "leaderworkerset.x-k8s.io/v1"
KIND = "LeaderWorkerSet"
SET_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
GROUP_KEY_LABEL = "leaderworkerset.sigs.k8s.io/group-key"
ZONE_TOPOLOGY_KEY = "topology.kubernetes.io/zone"
LEADER_CONTAINER = "server"
WORKER_CONTAINER = "worker"


def group_pod_affinity(name: str) -> dict[str, Any]:
    """Every pod of a group in the zone of the group's other pods."""
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {
                "labelSelector": {"matchLabels": {SET_NAME_LABEL: name}},
                "matchLabelKeys": [GROUP_KEY_LABEL],
                "topologyKey": ZONE_TOPOLOGY_KEY,
            }
        ]
    }


def build_leaderworkerset(inputs: ChildInputs, launch: EngineLaunch) -> dict[str, Any]:
    if launch.worker is None:
        raise ValueError("a LeaderWorkerSet needs the engine's worker container")
    volumes = [dict(v) for v in launch.volumes]
    zone = group_pod_affinity(inputs.name)
    leader = pod_template(
        inputs, COMPONENT_LEADER, engine_container(inputs, LEADER_CONTAINER, launch.server), volumes, zone
    )
    worker = pod_template(
        inputs, COMPONENT_WORKER, engine_container(inputs, WORKER_CONTAINER, launch.worker), volumes, zone
    )
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": child_metadata(inputs.deployment, inputs.plan.accelerator, COMPONENT_SERVER),
        "spec": {
            "replicas": inputs.replicas,
            "startupPolicy": "LeaderCreated",
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdateConfiguration": {"maxUnavailable": 1, "maxSurge": 0},
            },
            "networkConfig": {"subdomainPolicy": "UniquePerReplica"},
            "leaderWorkerTemplate": {
                "size": inputs.plan.nodes_per_replica,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": leader,
                "workerTemplate": worker,
            },
        },
    }
