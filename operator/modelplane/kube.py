"""The only module that talks to the API server: apply, delete, status patches, events.

Blocking calls of the `kubernetes` client run in a worker thread so the kopf event loop stays free.
Every request is counted in `modelplane_kube_requests_total{verb,kind}`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from . import metrics

FIELD_MANAGER = "modelplane"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResourceKind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def collection_path(self, namespace: str | None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.kind} is namespaced: a namespace is needed")
            return f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{prefix}/{self.plural}"


KINDS: dict[tuple[str, str], ResourceKind] = {
    (k.api_version, k.kind): k
    for k in (
        ResourceKind("apps/v1", "Deployment", "deployments"),
        ResourceKind("v1", "Service", "services"),
        ResourceKind("v1", "Event", "events"),
        ResourceKind("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", "leaderworkersets"),
        ResourceKind("modelplane.dev/v1alpha1", "ModelDeployment", "modeldeployments"),
        ResourceKind("modelplane.dev/v1alpha1", "ResidencyPolicy", "residencypolicies", namespaced=False),
    )
}


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status, self.reason, self.message = status, reason, message
        super().__init__(f"{status} {reason}: {message}")

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def refused(self) -> bool:
        """The API server refused the request itself (invalid, forbidden): retrying the same
        request cannot help. Conflicts, throttling, missing objects and server errors can."""
        return 400 <= self.status < 500 and self.status not in (404, 409, 429)


def kind_of(obj: Mapping[str, Any]) -> ResourceKind:
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    if key not in KINDS:
        raise ValueError(f"modelplane does not manage {key[1]} ({key[0]})")
    return KINDS[key]


def load_api_client(kubeconfig: str | None = None) -> k8s_client.ApiClient:
    """In-cluster credentials when running as a pod, else the kubeconfig (KUBECONFIG or the file)."""
    configuration = k8s_client.Configuration()
    try:
        if kubeconfig is None:
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            raise k8s_config.ConfigException("a kubeconfig was named")
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return k8s_client.ApiClient(configuration)


class Kube:
    """A thin asynchronous facade over the API server for the operator's few kinds."""

    def __init__(self, api: k8s_client.ApiClient, field_manager: str = FIELD_MANAGER) -> None:
        self.api = api
        self.field_manager = field_manager

    # ------------------------------------------------------------------ transport
    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> Any:
        _method, url, headers, _body, _post = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        resp = self.api.call_api(method, url, header_params=headers, body=_body, _request_timeout=30)
        data = resp.read()
        if not 200 <= resp.status < 300:
            message, reason = data.decode(errors="replace")[:500], resp.reason or ""
            try:
                status = json.loads(data)
                message, reason = status.get("message", message), status.get("reason", reason)
            except ValueError:
                pass
            raise KubeError(resp.status, str(reason), str(message))
        return json.loads(data) if data else None

    async def _request(
        self, verb: str, kind: str, method: str, path: str, namespace: str | None = None, **kw: Any
    ) -> Any:
        metrics.count_request(verb, kind, namespace)
        return await asyncio.to_thread(self._call, method, path, **kw)

    # ------------------------------------------------------------------ children
    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply under one field manager, taking ownership of conflicting fields."""
        rk = kind_of(obj)
        meta = obj["metadata"]
        path = f"{rk.collection_path(meta.get('namespace'))}/{meta['name']}"
        result: dict[str, Any] = await self._request(
            "apply",
            rk.kind,
            "PATCH",
            path,
            namespace=meta.get("namespace"),
            body=dict(obj),
            content_type="application/apply-patch+yaml",
            query=[("fieldManager", self.field_manager), ("force", "true")],
        )
        return result

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete in the foreground; False when it was already gone."""
        rk = KINDS[(api_version, kind)]
        path = f"{rk.collection_path(namespace)}/{name}"
        try:
            await self._request(
                "delete",
                kind,
                "DELETE",
                path,
                namespace=namespace,
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
        except KubeError as err:
            if err.not_found:
                return False
            raise
        return True

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """A JSON merge patch of a ModelDeployment's status subresource."""
        rk = KINDS[("modelplane.dev/v1alpha1", "ModelDeployment")]
        path = f"{rk.collection_path(namespace)}/{name}/status"
        await self._request(
            "patch-status",
            rk.kind,
            "PATCH",
            path,
            namespace=namespace,
            body={"status": dict(status)},
            content_type="application/merge-patch+json",
        )

    async def api_available(self, group_version: str, plural: str) -> bool:
        """Is `plural` served under `group_version` (e.g. LeaderWorkerSets)?"""
        try:
            doc = await self._request("get", "APIResourceList", "GET", f"/apis/{group_version}")
        except KubeError as err:
            if err.not_found:
                return False
            raise
        return any(r.get("name") == plural for r in (doc or {}).get("resources", []))

    # ------------------------------------------------------------------ events
    async def post_event(
        self,
        involved: Mapping[str, Any],
        type_: str,
        reason: str,
        message: str,
        now: dt.datetime,
        component: str = "modelplane",
    ) -> None:
        """A core/v1 Event about `involved` (a ModelDeployment), as `kubectl describe` shows them."""
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{secrets.token_hex(8)}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta["name"],
                "namespace": namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": component,
            "action": reason,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        rk = KINDS[("v1", "Event")]
        try:
            await self._request(
                "create", "Event", "POST", rk.collection_path(namespace), namespace=namespace, body=event
            )
        except KubeError as err:  # an event is best effort: never fail a reconcile for one
            log.warning("could not post event %s on %s/%s: %s", reason, namespace, meta["name"], err)
