"""Where serving pods may run: the node inventory (the fleet) and residency policies."""

from .inventory import Fleet, NodeInfo, Pool, default_fleet, fleet_from_nodes, node_info

__all__ = ["Fleet", "NodeInfo", "Pool", "default_fleet", "fleet_from_nodes", "node_info"]
