"""The GPU fleet the operator sees: Node objects (as the API returns them) read into typed records.

Accelerator type, GPU count and memory come from the labels NVIDIA GPU Feature Discovery sets
(`nvidia.com/gpu.product`, `nvidia.com/gpu.count`, `nvidia.com/gpu.memory` in MiB) and the node's
allocatable `nvidia.com/gpu`; AMD nodes from the AMD node labeller (`amd.com/gpu.product-name`) and
allocatable `amd.com/gpu`. Regions and zones come from the well-known topology labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..catalog import accelerator_for_product, all_accelerators

REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
NVIDIA_PRODUCT_LABEL = "nvidia.com/gpu.product"
NVIDIA_COUNT_LABEL = "nvidia.com/gpu.count"
NVIDIA_MEMORY_LABEL = "nvidia.com/gpu.memory"
AMD_PRODUCT_LABELS = ("amd.com/gpu.product-name", "beta.amd.com/gpu.product-name")
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")


@dataclass(frozen=True)
class NodeInfo:
    name: str
    labels: Mapping[str, str] = field(hash=False)
    accelerator: str | None  # catalog name; None when the node has no GPU or an unknown product
    gpus: int
    region: str | None
    zone: str | None
    ready: bool
    schedulable: bool
    product: str | None = None  # the raw product label, kept to report unknown products
    memory_mib: int | None = None  # GFD's nvidia.com/gpu.memory, for reference
    taints: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)  # spec.taints, as served

    @property
    def usable(self) -> bool:
        """Counts for planning: a known accelerator, GPUs to allocate, Ready and schedulable."""
        return self.accelerator is not None and self.gpus > 0 and self.ready and self.schedulable


@dataclass(frozen=True)
class Pool:
    """Usable nodes of one accelerator type in one region."""

    accelerator: str
    region: str | None
    gpus_per_node: int  # the most GPUs one node of the pool offers
    node_count: int
    zones: tuple[str, ...]
    node_gpus: tuple[int, ...]  # GPUs per node, largest first

    def nodes_with(self, gpus: int) -> int:
        """How many nodes offer at least `gpus` GPUs."""
        return sum(1 for n in self.node_gpus if n >= gpus)


@dataclass(frozen=True)
class Fleet:
    nodes: tuple[NodeInfo, ...] = ()

    def filter(self, pred: Callable[[NodeInfo], bool]) -> Fleet:
        return Fleet(tuple(n for n in self.nodes if pred(n)))

    def __len__(self) -> int:
        return len(self.nodes)

    def pools(self) -> list[Pool]:
        """Usable nodes grouped per (accelerator, region), in catalog order, then region."""
        groups: dict[tuple[str, str | None], list[NodeInfo]] = {}
        for node in self.nodes:
            if node.usable and node.accelerator is not None:
                groups.setdefault((node.accelerator, node.region), []).append(node)
        order = {a.name: i for i, a in enumerate(all_accelerators())}
        pools = [
            Pool(
                accelerator=acc,
                region=region,
                gpus_per_node=max(n.gpus for n in nodes),
                node_count=len(nodes),
                zones=tuple(sorted({n.zone for n in nodes if n.zone})),
                node_gpus=tuple(sorted((n.gpus for n in nodes), reverse=True)),
            )
            for (acc, region), nodes in groups.items()
        ]
        return sorted(pools, key=lambda p: (order.get(p.accelerator, len(order)), p.region or ""))

    def accelerators(self) -> list[str]:
        """Catalog names of the accelerator types with usable nodes, in catalog order."""
        seen: list[str] = []
        for pool in self.pools():
            if pool.accelerator not in seen:
                seen.append(pool.accelerator)
        return seen

    def unknown_products(self) -> dict[str, list[str]]:
        """Product labels the catalog does not know, with the nodes that carry them."""
        out: dict[str, list[str]] = {}
        for node in self.nodes:
            if node.accelerator is None and node.product:
                out.setdefault(node.product, []).append(node.name)
        return out


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _ready(status: Mapping[str, Any]) -> bool:
    """The Ready condition; a node that reports no conditions at all (a fleet described in a file,
    before any kubelet ran) counts as Ready, one whose Ready condition is missing does not."""
    conditions = status.get("conditions")
    if not conditions:
        return True
    for cond in conditions:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def node_info(node: Mapping[str, Any]) -> NodeInfo:
    """One Node object (a dict, the way the API returns it) as the planner sees it."""
    meta = node.get("metadata") or {}
    status = node.get("status") or {}
    spec = node.get("spec") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    product = labels.get(NVIDIA_PRODUCT_LABEL) or next(
        (labels[k] for k in AMD_PRODUCT_LABELS if k in labels), None
    )
    acc = accelerator_for_product(product) if product else None
    resources = (acc.resource,) if acc is not None else GPU_RESOURCES
    allocatable = status.get("allocatable") or {}
    capacity = status.get("capacity") or {}
    gpus: int | None = None
    for table in (allocatable, capacity):
        for res in resources:
            if res in table and gpus is None:
                gpus = _int(table[res])
    if gpus is None:
        gpus = _int(labels.get(NVIDIA_COUNT_LABEL))
    return NodeInfo(
        name=str(meta.get("name", "")),
        labels=labels,
        accelerator=acc.name if acc is not None else None,
        gpus=max(gpus or 0, 0),
        region=labels.get(REGION_LABEL),
        zone=labels.get(ZONE_LABEL),
        ready=_ready(status),
        schedulable=not bool(spec.get("unschedulable", False)),
        product=product,
        memory_mib=_int(labels.get(NVIDIA_MEMORY_LABEL)),
        taints=tuple(spec.get("taints") or ()),
    )


def fleet_from_nodes(nodes: Iterable[Mapping[str, Any]]) -> Fleet:
    return Fleet(tuple(node_info(n) for n in nodes))


def default_fleet() -> Fleet:
    """One Ready 8-GPU node of every catalog accelerator, in no region: `modelplane plan` without --fleet."""
    return Fleet(
        tuple(
            NodeInfo(
                name=f"{acc.name}-x8",
                labels={},
                accelerator=acc.name,
                gpus=8,
                region=None,
                zone=None,
                ready=True,
                schedulable=True,
                product=acc.products[0],
            )
            for acc in all_accelerators()
        )
    )
