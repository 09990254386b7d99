"""The serving pod template: the engine's container inside the pod rules every replica shares.

- GPUs: `limits` and `requests` of the accelerator's extended resource; every pod of a multi-node
  group asks for all GPUs of its node. CPU and memory are requested (4 CPUs and 16 GiB per GPU,
  enough to tokenize and to stage weights) but not limited: a memory limit would OOM-kill a server
  while it loads weights through the page cache, and CPU throttling stalls the scheduler loop.
- The restricted Pod Security profile: non-root (uid/gid 1000, fsGroup 1000 so the cache volume is
  writable), seccomp RuntimeDefault, no privilege escalation, every capability dropped. The root
  filesystem stays writable: the engines (Triton, torch.compile, Ray) write caches outside the
  mounted volumes and are not tested read-only.
- Placement: `affinity.nodeAffinity` is the affinity handed in, verbatim (accelerator type AND
  residency AND user placement); the tolerations likewise.
- No service links (a namespace with many Services would flood the environment) and no API token:
  the engine never talks to the API server.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..engines import EngineContainer
from .inputs import ChildInputs
from .labels import child_labels

RUN_AS_USER = 1000
CPU_PER_GPU = 4
MEMORY_GIB_PER_GPU = 16
# SIGTERM lets the server finish in-flight requests before the kubelet kills it.
TERMINATION_GRACE_PERIOD_SECONDS = 60


def gpu_resources(gpu_resource: str, gpus: int) -> dict[str, Any]:
    return {
        "limits": {gpu_resource: str(gpus)},
        "requests": {
            gpu_resource: str(gpus),
            "cpu": str(CPU_PER_GPU * gpus),
            "memory": f"{MEMORY_GIB_PER_GPU * gpus}Gi",
        },
    }


def container_security_context() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def engine_container(inputs: ChildInputs, name: str, engine: EngineContainer) -> dict[str, Any]:
    image = inputs.config.image_for(inputs.deployment.spec.engine.name.value)
    out: dict[str, Any] = {
        "name": name,
        "image": image.image,
        "imagePullPolicy": image.pull_policy,
        "command": list(engine.command),
        "args": list(engine.args),
        "env": [dict(e) for e in engine.env],
    }
    if engine.env_from:
        out["envFrom"] = [dict(e) for e in engine.env_from]
    if engine.ports:
        out["ports"] = [dict(p) for p in engine.ports]
    for key, probe in (
        ("startupProbe", engine.startup_probe),
        ("readinessProbe", engine.readiness_probe),
        ("livenessProbe", engine.liveness_probe),
    ):
        if probe is not None:
            out[key] = dict(probe)
    out["resources"] = gpu_resources(inputs.gpu_resource, inputs.gpus_per_pod)
    out["securityContext"] = container_security_context()
    out["volumeMounts"] = [dict(m) for m in engine.volume_mounts]
    return out


def pod_template(
    inputs: ChildInputs,
    component: str,
    container: Mapping[str, Any],
    volumes: list[dict[str, Any]],
    pod_affinity: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A pod template; `pod_affinity` is added next to (never instead of) the node affinity."""
    affinity: dict[str, Any] = {"nodeAffinity": copy.deepcopy(dict(inputs.node_affinity))}
    if pod_affinity is not None:
        affinity["podAffinity"] = copy.deepcopy(dict(pod_affinity))
    spec: dict[str, Any] = {
        "containers": [copy.deepcopy(dict(container))],
        "volumes": copy.deepcopy(volumes),
        "affinity": affinity,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": TERMINATION_GRACE_PERIOD_SECONDS,
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
    }
    if inputs.tolerations:
        spec["tolerations"] = [copy.deepcopy(dict(t)) for t in inputs.tolerations]
    return {
        "metadata": {"labels": child_labels(inputs.name, inputs.plan.accelerator, component)},
        "spec": spec,
    }
