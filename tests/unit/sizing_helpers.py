"""Builders shared by the sizing and CLI tests: node dicts as the API returns them, and specs."""

from __future__ import annotations

from typing import Any

from modelplane import api, catalog
from modelplane.placement import Fleet, fleet_from_nodes


def node(
    name: str,
    accelerator: str,
    gpus: int = 8,
    region: str | None = "us-east-1",
    zone: str | None = None,
    ready: bool = True,
    unschedulable: bool = False,
) -> dict[str, Any]:
    acc = catalog.get_accelerator(accelerator)
    assert acc is not None
    labels = {
        ("amd.com/gpu.product-name" if acc.vendor == "amd" else "nvidia.com/gpu.product"): acc.products[0],
    }
    if acc.vendor == "nvidia":
        labels["nvidia.com/gpu.count"] = str(gpus)
    if region:
        labels["topology.kubernetes.io/region"] = region
        labels["topology.kubernetes.io/zone"] = zone or f"{region}a"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {
            "capacity": {acc.resource: str(gpus)},
            "allocatable": {acc.resource: str(gpus)},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def fleet(*specs: tuple[str, int, int] | tuple[str, int, int, str]) -> Fleet:
    """(accelerator, gpus per node, node count[, region]) per pool."""
    nodes = []
    for s in specs:
        acc, gpus, count = s[0], s[1], s[2]
        region = s[3] if len(s) > 3 else "us-east-1"
        nodes += [node(f"{acc}-{region}-{i}", acc, gpus, region) for i in range(count)]
    return fleet_from_nodes(nodes)


def deployment_spec(
    model: str,
    precision: str | None = None,
    serving: dict[str, Any] | None = None,
    architecture: dict[str, Any] | None = None,
    **resources: Any,
) -> api.ModelDeploymentSpec:
    m: dict[str, Any] = {"name": model}
    if precision:
        m["precision"] = precision
    if architecture:
        m["architecture"] = architecture
    return api.parse_model_deployment_spec({"model": m, "serving": serving or {}, "resources": resources})
