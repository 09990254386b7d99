"""What every benchmark shares: timing with many repetitions, the machine, tables, the fleets."""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
FLEET_FILE = EXAMPLES / "cluster" / "nodes.yaml"


# ------------------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    """Wall-clock time of one call, over `runs` calls (seconds)."""

    runs: int
    median: float
    p95: float
    mean: float
    best: float

    @property
    def per_second(self) -> float:
        return 1.0 / self.median if self.median > 0 else float("inf")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, nearest rank."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def measure(
    fn: Callable[[], object], min_runs: int = 50, min_seconds: float = 0.5, max_runs: int = 20_000
) -> Timing:
    """Call `fn` until both `min_runs` calls and `min_seconds` have passed (at most `max_runs`),
    after a few warm-up calls, timing each call with time.perf_counter."""
    for _ in range(3):
        fn()
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < max_runs and (
        len(samples) < min_runs or time.perf_counter() - started < min_seconds
    ):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return Timing(
        runs=len(samples),
        median=statistics.median(samples),
        p95=percentile(samples, 95),
        mean=statistics.fmean(samples),
        best=samples[0],
    )


def ms(seconds: float) -> str:
    """Seconds as milliseconds with three significant-ish decimals."""
    value = seconds * 1000
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


# ------------------------------------------------------------------------------------ output


def machine() -> str:
    """One line that says where the figures were measured (the load average says how busy it was)."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cores (nproc), {platform.machine()}, "
        f"Python {sys.version.split()[0]} ({platform.python_implementation()}), {platform.system()}; "
        f"load average {load}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A plain-text table. `align` has one letter per column, l or r; by default the first column
    is left-aligned and the others (figures) right-aligned."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(widths[i]) if align[i] == "l" else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()

    out = [line(cells[0]), line(["-" * w for w in widths])]
    out += [line(row) for row in cells[1:]]
    return "\n".join(out)


def heading(title: str) -> str:
    return f"\n== {title}\n"


# ------------------------------------------------------------------------------------ inputs


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def example_nodes() -> list[dict[str, Any]]:
    """The 18 simulated nodes of examples/cluster/nodes.yaml, as the API would return them
    (plus a Ready condition, which KWOK sets on the real cluster)."""
    return [with_ready(node) for node in load_documents(FLEET_FILE) if node.get("kind") == "Node"]


def with_ready(node: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(node)
    status = dict(out.get("status") or {})
    status.setdefault("conditions", [{"type": "Ready", "status": "True"}])
    out["status"] = status
    return out


def example_model_deployments() -> Iterator[tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, Any]]]:
    """(file, ModelDeployment, ResidencyPolicies in the same file, namespace labels) per example."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs = load_documents(path)
        policies = [d for d in docs if d["kind"] == "ResidencyPolicy"]
        labels: dict[str, Any] = {}
        for doc in docs:
            if doc["kind"] == "Namespace":
                labels[doc["metadata"]["name"]] = doc["metadata"].get("labels") or {}
        for doc in docs:
            if doc["kind"] == "ModelDeployment":
                yield path.name, doc, policies, labels


# One synthetic node shape per catalog accelerator: (GPU product label, GPUs per node, MiB per GPU,
# instance-type-like name). AMD nodes carry AMD's label and resource instead of NVIDIA's.
SYNTHETIC_SHAPES: tuple[tuple[str, str, int, int], ...] = (
    ("nvidia-t4", "Tesla-T4", 4, 15360),
    ("nvidia-l4", "NVIDIA-L4", 1, 23034),
    ("nvidia-a10g", "NVIDIA-A10G", 4, 23028),
    ("nvidia-l40s", "NVIDIA-L40S", 4, 46068),
    ("nvidia-a100-40gb", "NVIDIA-A100-SXM4-40GB", 8, 40960),
    ("nvidia-a100-80gb", "NVIDIA-A100-SXM4-80GB", 8, 81920),
    ("nvidia-h100-80gb", "NVIDIA-H100-80GB-HBM3", 8, 81559),
    ("nvidia-h200", "NVIDIA-H200", 8, 143771),
    ("nvidia-b200", "NVIDIA-B200", 8, 183359),
    ("amd-mi300x", "AMD_Instinct_MI300X", 8, 196608),
)
SYNTHETIC_REGIONS: tuple[str, ...] = (
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ap-southeast-1",
    "ap-northeast-1",
    "ap-south-1",
)


def synthetic_node(index: int) -> dict[str, Any]:
    """Node number `index` of a deterministic synthetic fleet: accelerator types round-robin, then
    regions, then three zones; every node Ready and GPU-tainted like the example fleet."""
    _, product, gpus, memory = SYNTHETIC_SHAPES[index % len(SYNTHETIC_SHAPES)]
    region = SYNTHETIC_REGIONS[(index // len(SYNTHETIC_SHAPES)) % len(SYNTHETIC_REGIONS)]
    zone = f"{region}{'abc'[index % 3]}"
    name = f"{zone}-n{index:05d}"
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": zone,
    }
    if product.startswith("AMD"):
        labels["amd.com/gpu.product-name"] = product
        resource = "amd.com/gpu"
    else:
        labels |= {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": product,
            "nvidia.com/gpu.memory": str(memory),
            "nvidia.com/gpu.count": str(gpus),
        }
        resource = "nvidia.com/gpu"
    resources = {"cpu": "96", "memory": "1024Gi", "pods": "110", resource: str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def synthetic_nodes(count: int = 2000) -> list[dict[str, Any]]:
    return [synthetic_node(i) for i in range(count)]
