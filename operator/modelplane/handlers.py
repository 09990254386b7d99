"""kopf handlers: thin glue. Watches feed in-memory indexes; every event that can change what a
ModelDeployment should look like triggers one reconcile of it (coalesced, serialised per object);
the reconcile takes a snapshot, asks `reconcile.decide`, and carries the decision out via `kube`.

Level-triggered: create, update, resume, a child edited or deleted by hand, a pod changing state,
a Node, a ResidencyPolicy or a Namespace changing — all lead to the same reconcile.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from . import metrics
from .api import LabelSelector, parse_residency_policy
from .api.errors import SpecError
from .config import OperatorConfig
from .kube import Kube, KubeError
from .manifests.labels import DEPLOYMENT_LABEL
from .placement import Fleet, fleet_from_nodes
from .reconcile import Decision, Snapshot, decide, refused_by_api_server

log = logging.getLogger(__name__)

GROUP, VERSION = "modelplane.dev", "v1alpha1"
LWS_GROUP, LWS_VERSION = "leaderworkerset.x-k8s.io", "v1"
LWS_CRD = "leaderworkersets.leaderworkerset.x-k8s.io"
Key = tuple[str, str]  # (namespace, name) of a ModelDeployment

BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


# ----------------------------------------------------------------------------- runtime


@dataclass
class Runtime:
    """What `modelplane run` hands the handlers through kopf's memo."""

    config: OperatorConfig
    kube: Kube
    coordinator: Coordinator = field(init=False)
    # The last status we wrote, and children we applied, until the watch shows them back.
    written_status: dict[Key, dict[str, Any]] = field(default_factory=dict)
    applied: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    node_summaries: dict[str, Any] = field(default_factory=dict)
    # The fleet inventory, rebuilt only when a Node changed in a way placement reads.
    fleet_version: int = 0
    fleet_cache: tuple[int, Fleet] | None = None
    policy_selectors: dict[str, LabelSelector] = field(default_factory=dict)
    failures: dict[Key, int] = field(default_factory=dict)
    # Is kopf watching LeaderWorkerSets? kopf resolves the resources it watches when it starts; one
    # whose CRD appears later (or is deleted and created again) may never be watched again (a race
    # in its CRD scan), so the operator restarts itself when that API appears (see runner).
    multi_node_watched: bool = False
    stop_flag: threading.Event = field(default_factory=threading.Event)
    restart_reason: str | None = None

    def __post_init__(self) -> None:
        self.coordinator = Coordinator()


class Coordinator:
    """At most one reconcile per ModelDeployment at a time; triggers during one coalesce into one more."""

    def __init__(self) -> None:
        self._running: dict[Key, asyncio.Task[None]] = {}
        self._again: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}

    def trigger(self, key: Key, work: Callable[[Key], Awaitable[float | None]]) -> None:
        if key in self._running:
            self._again.add(key)
            return
        self._running[key] = asyncio.get_running_loop().create_task(self._run(key, work))

    async def _run(self, key: Key, work: Callable[[Key], Awaitable[float | None]]) -> None:
        retry: float | None = None
        try:
            while True:
                self._again.discard(key)
                retry = await work(key)
                if key not in self._again:
                    break
        finally:
            self._running.pop(key, None)
        if retry is not None:
            old = self._timers.pop(key, None)
            if old is not None:
                old.cancel()
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(retry, lambda: self.trigger(key, work))

    async def drain(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _runtime(memo: Any) -> Runtime:
    rt = memo.get("runtime")
    if not isinstance(rt, Runtime):
        raise kopf.PermanentError("modelplane runtime missing from memo: start with `modelplane run`")
    return rt


# ----------------------------------------------------------------------------- startup


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.peering.standalone = True
    settings.posting.level = logging.WARNING
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    rt = memo.get("runtime")
    if isinstance(rt, Runtime):
        await rt.coordinator.drain()


# ----------------------------------------------------------------------------- indexes


def _copy(body: Mapping[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(dict(body))


def trim_node(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a Node that placement reads; the rest (images, managedFields) is dropped."""
    meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
    return {
        "metadata": {"name": meta.get("name"), "labels": dict(meta.get("labels") or {})},
        "spec": {"taints": list(spec.get("taints") or []), "unschedulable": bool(spec.get("unschedulable"))},
        "status": {
            "capacity": dict(status.get("capacity") or {}),
            "allocatable": dict(status.get("allocatable") or {}),
            "conditions": [
                {"type": c.get("type"), "status": c.get("status")}
                for c in status.get("conditions") or []
                if c.get("type") == "Ready"
            ],
        },
    }


@kopf.index("", "v1", "nodes")
def node_index(name: str, body: kopf.Body, **_: Any) -> object:
    return {name: trim_node(body)}


@kopf.index(GROUP, VERSION, "residencypolicies")
def policy_index(name: str, body: kopf.Body, **_: Any) -> object:
    return {name: _copy(body)}


@kopf.index("", "v1", "namespaces")
def namespace_index(name: str, labels: kopf.Labels, **_: Any) -> object:
    return {name: dict(labels)}


@kopf.index(GROUP, VERSION, "modeldeployments")
def deployment_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> object:
    return {(namespace or "", name): _copy(body)}


@kopf.index(GROUP, VERSION, "modeldeployments")
def deployments_by_namespace(namespace: str | None, name: str, **_: Any) -> object:
    return {namespace or "": (namespace or "", name)}


@kopf.index(GROUP, VERSION, "modeldeployments")
def deployments_by_policy(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> object:
    requested = (spec.get("placement") or {}).get("residency")
    return {requested: (namespace or "", name)} if requested else {}


def _child_index(namespace: str | None, labels: kopf.Labels, body: kopf.Body) -> dict[Key, Any]:
    owner = labels.get(DEPLOYMENT_LABEL)
    return {(namespace or "", owner): _copy(body)} if owner else {}


@kopf.index("apps", "v1", "deployments", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
def deployment_children(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> object:
    return _child_index(namespace, labels, body)


@kopf.index("", "v1", "services", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
def service_children(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> object:
    return _child_index(namespace, labels, body)


@kopf.index(LWS_GROUP, LWS_VERSION, "leaderworkersets", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
def lws_children(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> object:
    return _child_index(namespace, labels, body)


@kopf.index("", "v1", "pods", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
def pod_index(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> object:
    owner = labels.get(DEPLOYMENT_LABEL)
    if not owner:
        return {}
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    slim = {
        "metadata": {
            "name": meta.get("name"),
            "labels": dict(meta.get("labels") or {}),
            "deletionTimestamp": meta.get("deletionTimestamp"),
        },
        "spec": {"nodeName": (body.get("spec") or {}).get("nodeName")},
        "status": {"phase": status.get("phase"), "conditions": list(status.get("conditions") or [])},
    }
    return {(namespace or "", owner): slim}


@kopf.index("apiextensions.k8s.io", "v1", "customresourcedefinitions", field="metadata.name", value=LWS_CRD)
def multi_node_api(name: str, status: kopf.Status, **_: Any) -> object:
    established = any(
        c.get("type") == "Established" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    return {name: established}


@dataclass(frozen=True)
class Indexes:
    nodes: kopf.Index[str, Any]
    policies: kopf.Index[str, Any]
    namespaces: kopf.Index[str, Any]
    deployments: kopf.Index[Key, Any]
    by_namespace: kopf.Index[str, Key]
    by_policy: kopf.Index[str, Key]
    children: tuple[kopf.Index[Key, Any], ...]
    pods: kopf.Index[Key, Any]
    multi_node: kopf.Index[str, bool]

    @classmethod
    def from_kwargs(cls, kw: Mapping[str, Any]) -> Indexes:
        return cls(
            nodes=kw["node_index"],
            policies=kw["policy_index"],
            namespaces=kw["namespace_index"],
            deployments=kw["deployment_index"],
            by_namespace=kw["deployments_by_namespace"],
            by_policy=kw["deployments_by_policy"],
            children=(kw["deployment_children"], kw["service_children"], kw["lws_children"]),
            pods=kw["pod_index"],
            multi_node=kw["multi_node_api"],
        )


def _one(index: kopf.Index[Any, Any], key: Any) -> Any:
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


def _all(index: kopf.Index[Any, Any], key: Any) -> list[Any]:
    store = index.get(key)
    return list(store) if store is not None else []


# ----------------------------------------------------------------------------- the reconcile


def _rv(obj: Mapping[str, Any] | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _snapshot(key: Key, ix: Indexes, rt: Runtime, now: dt.datetime) -> Snapshot | None:
    body = _one(ix.deployments, key)
    if body is None:
        return None
    namespace = key[0]
    # What we wrote ourselves may be newer than what the watch has shown us yet.
    written = rt.written_status.get(key)
    if written is not None and _rv(written) >= _rv(body):
        body = {**body, "status": written["status"]}
    children: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for index in ix.children:
        for child in _all(index, key):
            ck = (namespace, child["apiVersion"], child["kind"], child["metadata"]["name"])
            children[ck] = child
    for ck, applied in rt.applied.items():
        mine = ck[0] == namespace and applied["metadata"].get("labels", {}).get(DEPLOYMENT_LABEL) == key[1]
        if mine and _rv(applied) > _rv(children.get(ck)):
            children[ck] = applied
    ns_labels = _one(ix.namespaces, namespace) or {}
    nodes = [n for store in ix.nodes.values() for n in store]
    if rt.fleet_cache is None or rt.fleet_cache[0] != rt.fleet_version:
        rt.fleet_cache = (rt.fleet_version, fleet_from_nodes(nodes))
    return Snapshot(
        body=body,
        nodes=nodes,
        fleet=rt.fleet_cache[1],
        policies=[p for store in ix.policies.values() for p in store],
        namespace_labels=ns_labels,
        children=list(children.values()),
        pods=_all(ix.pods, key),
        multi_node_available=bool(_one(ix.multi_node, LWS_CRD)),
        config=rt.config,
        now=now,
    )


async def _execute(key: Key, snap: Snapshot, decision: Decision, rt: Runtime) -> None:
    namespace, name = key
    for child in decision.apply:
        applied = await rt.kube.apply(child)
        rt.applied[(namespace, applied["apiVersion"], applied["kind"], applied["metadata"]["name"])] = applied
    for ref in decision.delete:
        await rt.kube.delete(ref.api_version, ref.kind, namespace, ref.name)
        rt.applied.pop((namespace, ref.api_version, ref.kind, ref.name), None)
    if decision.status_changed:
        await rt.kube.patch_status(namespace, name, decision.status)
        # Remember it until the watch brings back an object at least this new.
        rt.written_status[key] = {
            "metadata": {"resourceVersion": snap.body["metadata"].get("resourceVersion")},
            "status": decision.status,
        }
    for ev in decision.events:
        await rt.kube.post_event(snap.body, ev.type, ev.reason, ev.message, snap.now)


async def reconcile(key: Key, ix: Indexes, rt: Runtime) -> float | None:
    """One reconcile of one ModelDeployment; returns seconds until a retry, or None."""
    now = dt.datetime.now(dt.UTC)
    snap = _snapshot(key, ix, rt, now)
    if snap is None:
        rt.written_status.pop(key, None)
        return None
    with metrics.RECONCILE_SECONDS.time():
        try:
            decision = decide(snap)
            await _execute(key, snap, decision, rt)
        except KubeError as err:
            if err.refused:
                body = snap.body
                report = refused_by_api_server(
                    decision, body.get("status") or {}, body["metadata"].get("generation"), now, err.message
                )
                log.warning("the API server refused a child of %s/%s: %s", *key, err)
                try:
                    await _execute(key, snap, report, rt)
                except KubeError as again:
                    log.warning("could not report it on %s/%s: %s", *key, again)
                metrics.RECONCILES.labels(result="refused").inc()
                return None
            attempt = rt.failures.get(key, 0)
            rt.failures[key] = attempt + 1
            delay = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
            metrics.RECONCILES.labels(result="retry").inc()
            log.warning("reconcile of %s/%s failed (%s); retrying in %.0fs", *key, err, delay)
            return delay
        except Exception:
            metrics.RECONCILES.labels(result="error").inc()
            log.exception("reconcile of %s/%s crashed; retrying in 60s", *key)
            return 60.0
    rt.failures.pop(key, None)
    metrics.RECONCILES.labels(result="ok").inc()
    return None


def _trigger(keys: Iterable[Key], memo: Any, kwargs: Mapping[str, Any]) -> None:
    rt = _runtime(memo)
    ix = Indexes.from_kwargs(kwargs)

    async def work(key: Key) -> float | None:
        return await reconcile(key, ix, rt)

    for key in set(keys):
        rt.coordinator.trigger(key, work)


def _all_keys(ix: Indexes) -> list[Key]:
    return list(ix.deployments)


# ----------------------------------------------------------------------------- watches


@kopf.on.event(GROUP, VERSION, "modeldeployments")
async def on_model_deployment(type: str, namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    key = (namespace or "", name)
    if type == "DELETED":
        rt = _runtime(memo)
        rt.written_status.pop(key, None)
        rt.failures.pop(key, None)
        for ck in [ck for ck, obj in rt.applied.items() if ck[0] == key[0] and _owner(obj) == name]:
            rt.applied.pop(ck, None)
        return  # children go with it: garbage collection follows their ownerReferences
    _trigger([key], memo, kwargs)


def _owner(obj: Mapping[str, Any]) -> str | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    owner = labels.get(DEPLOYMENT_LABEL)
    return str(owner) if owner else None


def _on_child(
    type: str, namespace: str | None, body: kopf.Body, memo: Any, kwargs: Mapping[str, Any]
) -> None:
    owner = _owner(body)
    if not owner:
        return
    ns = namespace or ""
    if type == "DELETED":
        ck = (ns, str(body.get("apiVersion")), str(body.get("kind")), str(body["metadata"]["name"]))
        _runtime(memo).applied.pop(ck, None)
    _trigger([(ns, owner)], memo, kwargs)


@kopf.on.event("apps", "v1", "deployments", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
async def on_deployment(type: str, namespace: str | None, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    _on_child(type, namespace, body, memo, kwargs)


@kopf.on.event("", "v1", "services", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
async def on_service(type: str, namespace: str | None, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    _on_child(type, namespace, body, memo, kwargs)


@kopf.on.event(LWS_GROUP, LWS_VERSION, "leaderworkersets", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
async def on_lws(type: str, namespace: str | None, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    _on_child(type, namespace, body, memo, kwargs)


@kopf.on.event("", "v1", "pods", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
async def on_pod(namespace: str | None, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    owner = _owner(body)
    if owner:
        _trigger([(namespace or "", owner)], memo, kwargs)


@kopf.on.event("", "v1", "nodes")
async def on_node(type: str, name: str, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """A node that joins, leaves or changes what it offers re-evaluates the deployments."""
    rt = _runtime(memo)
    summary = None if type == "DELETED" else trim_node(body)
    if rt.node_summaries.get(name) == summary:
        return  # heartbeats and the like change nothing placement reads
    if summary is None:
        rt.node_summaries.pop(name, None)
    else:
        rt.node_summaries[name] = summary
    rt.fleet_version += 1
    _trigger(_all_keys(Indexes.from_kwargs(kwargs)), memo, kwargs)


@kopf.on.event(GROUP, VERSION, "residencypolicies")
async def on_policy(type: str, name: str, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """Re-plan every deployment the policy governs: those that name it (an index) and those in the
    namespaces its selector binds now or bound before the change."""
    ix = Indexes.from_kwargs(kwargs)
    rt = _runtime(memo)
    keys = set(_all(ix.by_policy, name))
    if rt.config.default_residency_policy == name:
        keys.update(_all_keys(ix))
    selectors = [sel for sel in [rt.policy_selectors.pop(name, None)] if sel is not None]
    if type != "DELETED":
        try:
            selector = parse_residency_policy(body).spec.namespace_selector
        except SpecError as err:
            log.warning("ResidencyPolicy %s cannot be read: %s", name, err)
            selector = None
        if selector is not None:
            rt.policy_selectors[name] = selector
            selectors.append(selector)
    for ns, store in ix.namespaces.items():
        labels: Mapping[str, str] = next(iter(store), {})
        if any(sel.matches(dict(labels)) for sel in selectors):
            keys.update(_all(ix.by_namespace, ns))
    _trigger(keys, memo, kwargs)


@kopf.on.event("", "v1", "namespaces")
async def on_namespace(name: str, memo: Any, **kwargs: Any) -> None:
    _trigger(_all(Indexes.from_kwargs(kwargs).by_namespace, name), memo, kwargs)


@kopf.on.event(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", field="metadata.name", value=LWS_CRD
)
async def on_multi_node_api(type: str, status: kopf.Status, memo: Any, **kwargs: Any) -> None:
    rt = _runtime(memo)
    established = type != "DELETED" and any(
        c.get("type") == "Established" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    if established and not rt.multi_node_watched:
        rt.restart_reason = f"the LeaderWorkerSet API ({LWS_CRD}) appeared; restarting to watch it"
        rt.stop_flag.set()
        return
    if not established:
        rt.multi_node_watched = False  # gone (or going): when it comes back, kopf must watch it anew
    _trigger(_all_keys(Indexes.from_kwargs(kwargs)), memo, kwargs)
