"""The fleet: Node objects read into accelerator pools per region."""

from __future__ import annotations

from sizing_helpers import node

from modelplane import catalog
from modelplane.placement import default_fleet, fleet_from_nodes


def test_gfd_labels_and_allocatable_make_a_node() -> None:
    n = node("gpu-1", "nvidia-h100-80gb", 8, "eu-west-1", "eu-west-1b")
    n["metadata"]["labels"]["nvidia.com/gpu.memory"] = "81559"
    n["status"]["allocatable"]["nvidia.com/gpu"] = "6"  # two GPUs unhealthy: allocatable wins
    (info,) = fleet_from_nodes([n]).nodes
    assert info.name == "gpu-1"
    assert info.accelerator == "nvidia-h100-80gb"
    assert info.gpus == 6
    assert (info.region, info.zone) == ("eu-west-1", "eu-west-1b")
    assert info.memory_mib == 81559
    assert info.ready
    assert info.schedulable
    assert info.usable


def test_amd_nodes_use_the_amd_labeller_and_resource() -> None:
    (info,) = fleet_from_nodes([node("mi-1", "amd-mi300x", 8, "eu-central-1")]).nodes
    assert info.accelerator == "amd-mi300x"
    assert info.gpus == 8


def test_gpu_count_label_when_allocatable_is_missing() -> None:
    n = node("gpu-1", "nvidia-l4", 4)
    n["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    (info,) = fleet_from_nodes([n]).nodes
    assert info.gpus == 4


def test_not_ready_and_cordoned_nodes_are_kept_but_not_pooled() -> None:
    fleet = fleet_from_nodes(
        [
            node("a", "nvidia-l4", 1, ready=False),
            node("b", "nvidia-l4", 1, unschedulable=True),
            node("c", "nvidia-l4", 1),
        ]
    )
    assert [(n.name, n.ready, n.schedulable) for n in fleet.nodes] == [
        ("a", False, True),
        ("b", True, False),
        ("c", True, True),
    ]
    (pool,) = fleet.pools()
    assert pool.node_count == 1


def test_unknown_products_are_reported_not_crashed_on() -> None:
    odd = {
        "metadata": {"name": "gaming", "labels": {"nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-4090"}},
        "status": {
            "allocatable": {"nvidia.com/gpu": "2"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    cpu = {"metadata": {"name": "cpu-1"}, "status": {}}
    fleet = fleet_from_nodes([odd, cpu, node("l4", "nvidia-l4", 1)])
    assert fleet.unknown_products() == {"NVIDIA-GeForce-RTX-4090": ["gaming"]}
    gaming = fleet.nodes[0]
    assert gaming.accelerator is None
    assert gaming.gpus == 2
    assert not gaming.usable
    assert [p.accelerator for p in fleet.pools()] == ["nvidia-l4"]


def test_pools_group_by_accelerator_and_region() -> None:
    fleet = fleet_from_nodes(
        [
            node("h1", "nvidia-h100-80gb", 8, "us-east-1", "us-east-1a"),
            node("h2", "nvidia-h100-80gb", 4, "us-east-1", "us-east-1b"),
            node("h3", "nvidia-h100-80gb", 8, "eu-west-1"),
            node("l1", "nvidia-l4", 1, "eu-west-1"),
        ]
    )
    pools = {(p.accelerator, p.region): p for p in fleet.pools()}
    us = pools[("nvidia-h100-80gb", "us-east-1")]
    assert (us.gpus_per_node, us.node_count, us.zones, us.node_gpus) == (
        8,
        2,
        ("us-east-1a", "us-east-1b"),
        (8, 4),
    )
    assert us.nodes_with(8) == 1
    assert us.nodes_with(4) == 2
    assert pools[("nvidia-l4", "eu-west-1")].gpus_per_node == 1
    assert [p.accelerator for p in fleet.pools()] == ["nvidia-l4", "nvidia-h100-80gb", "nvidia-h100-80gb"]
    assert fleet.accelerators() == ["nvidia-l4", "nvidia-h100-80gb"]
    eu = fleet.filter(lambda n: n.region == "eu-west-1")
    assert {n.name for n in eu.nodes} == {"h3", "l1"}


def test_default_fleet_has_one_8_gpu_node_of_every_accelerator() -> None:
    fleet = default_fleet()
    assert sorted(p.accelerator for p in fleet.pools()) == sorted(a.name for a in catalog.all_accelerators())
    assert all(p.gpus_per_node == 8 and p.node_count == 1 for p in fleet.pools())
