"""The operator's own Prometheus metrics (served by `modelplane run --metrics-port`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

KUBE_REQUESTS = Counter(
    "modelplane_kube_requests_total",
    "Requests the operator sent to the API server, by verb and kind.",
    ["verb", "kind"],
    registry=REGISTRY,
)
NAMESPACE_WRITES = Counter(
    "modelplane_kube_namespace_writes_total",
    "Write requests the operator sent for objects in a namespace.",
    ["namespace"],
    registry=REGISTRY,
)
RECONCILES = Counter(
    "modelplane_reconciles_total",
    "Reconciles of ModelDeployments, by outcome.",
    ["result"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "modelplane_reconcile_duration_seconds",
    "Time one reconcile took, API calls included.",
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WRITE_VERBS = frozenset({"apply", "create", "patch", "update", "delete", "patch-status"})


def count_request(verb: str, kind: str, namespace: str | None = None) -> None:
    KUBE_REQUESTS.labels(verb=verb, kind=kind).inc()
    if namespace and verb in WRITE_VERBS:
        NAMESPACE_WRITES.labels(namespace=namespace).inc()
